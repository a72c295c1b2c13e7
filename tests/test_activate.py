"""Activation in real interpreters: start-up cost, lazy patching, chaining, opt-out, routes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import REPO, run_python

TEMPLATE = os.path.join(REPO, "sitecustomize_template")
HEAVY = ("ctypes", "ctypes.util", "wrapt", "elftools", "logging", "subprocess", "typing", "re")


def package_dir() -> str:
    """Where the ctypes_shim under test lives (the installed wheel under tox)."""
    import ctypes_shim

    return os.path.dirname(os.path.dirname(os.path.abspath(ctypes_shim.__file__)))


def bootstrap_dir() -> str:
    return os.path.join(package_dir(), "ctypes_shim", "_bootstrap")


# The two sitecustomize routes: the bootstrap dir the wheel ships, and a copied template.
SITE_DIRS = {"bootstrap": bootstrap_dir, "template": lambda: TEMPLATE}


@pytest.fixture(params=sorted(SITE_DIRS))
def site_dir(request: pytest.FixtureRequest) -> str:
    return SITE_DIRS[request.param]()  # type: ignore[no-any-return]


def site_env(site_dir: str | None = None, *after: str, **extra: str) -> dict[str, str]:
    """PYTHONPATH=<site_dir (default: the bootstrap)>:<the package>:<after...>."""
    site_dir = site_dir or bootstrap_dir()
    return {"PYTHONPATH": os.pathsep.join([site_dir, package_dir(), *after]), **extra}


MODULES = "import sys, json; print(json.dumps(sorted(sys.modules)))"


def test_startup_imports_nothing_heavy(site_dir: str) -> None:
    """Each sitecustomize route adds only ctypes_shim's tiny modules at start-up."""
    before = set(json.loads(run_python(MODULES, env={"PYTHONPATH": package_dir()}).stdout))
    result = run_python(MODULES, env=site_env(site_dir))
    assert result.returncode == 0, result.stderr
    added = set(json.loads(result.stdout)) - before
    assert added <= {"sitecustomize", "ctypes_shim", "ctypes_shim._activate",
                     "ctypes_shim._bootstrap", "ctypes_shim._bootstrap.sitecustomize"}, added
    assert "ctypes_shim._activate" in added
    assert not added & set(HEAVY)


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A venv without pip: a site dir with no .pth files, as in a distroless image."""
    path = str(tmp_path_factory.mktemp("bare"))
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", path], check=True)
    return os.path.join(path, "bin", "python")


def test_startup_check_from_the_readme(bare_python: str, site_dir: str) -> None:
    """In a clean interpreter, no heavy stdlib module is loaded after start-up, patch on."""
    code = ("import sys; print(sorted(m for m in ('ctypes', 'wrapt', 'elftools', 'logging', "
            "'typing', 're') if m in sys.modules), sys.modules['ctypes_shim._activate'].route)")
    result = run_python(code, executable=bare_python, env=site_env(site_dir), cwd="/")
    assert (result.stdout.split(), result.stderr) == (["[]", "sitecustomize"], "")


PATCHED = """
import ctypes.util, json, sys
from ctypes.util import find_library
import ctypes_shim
print(json.dumps({"patched": getattr(ctypes.util.find_library, "__wrapped__", None) is not None,
                  "same": find_library is ctypes.util.find_library,
                  "c": find_library("c"), "installed": ctypes_shim.is_installed(),
                  "route": sys.modules["ctypes_shim._activate"].route}))
"""


def test_patched_lazily_on_import(site_dir: str) -> None:
    """Importing ctypes.util gives the shim, also through `from ctypes.util import ...`."""
    result = run_python(PATCHED, env=site_env(site_dir))
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["patched"] and out["same"] and out["installed"]
    assert out["route"] == "sitecustomize"
    assert out["c"] is not None and out["c"].startswith("libc.")


def test_opt_out(site_dir: str) -> None:
    """CTYPES_SHIM_DISABLE=1 leaves stock find_library in place."""
    result = run_python(PATCHED, env=site_env(site_dir, CTYPES_SHIM_DISABLE="1",
                                              PATH="/nonexistent"))
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert not out["patched"] and not out["installed"] and out["route"] is None


LIFECYCLE = """
import importlib, sys, ctypes.util
import ctypes_shim
stock = ctypes.util.find_library.__wrapped__
assert ctypes.util.find_library("c")
importlib.reload(ctypes.util)
assert ctypes.util.find_library.__wrapped__ is not None, "reload lost the patch"
del sys.modules["ctypes.util"]
import ctypes.util as again
assert again.find_library.__wrapped__ is not None, "re-import lost the patch"
assert ctypes_shim.uninstall() is True
assert not hasattr(again.find_library, "__wrapped__"), again.find_library
assert ctypes_shim.is_installed() is False
assert ctypes_shim.install() is True
assert again.find_library.__wrapped__ is not None
print("ok")
"""


def test_reload_purge_uninstall_install() -> None:
    """The patch survives reload and re-import; uninstall restores stock exactly."""
    result = run_python(LIFECYCLE, env=site_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_uninstall_restores_the_identical_function() -> None:
    """After install() then uninstall(), find_library is stock's own function object."""
    code = ("import ctypes.util, ctypes_shim; stock = ctypes.util.find_library; "
            "ctypes_shim.install(); assert ctypes.util.find_library is not stock; "
            "ctypes_shim.uninstall(); print(ctypes.util.find_library is stock)")
    result = run_python(code, env={"PYTHONPATH": package_dir()})
    assert result.stdout.strip() == "True", result.stderr


def test_wrapt_is_used_only_when_already_imported() -> None:
    """With wrapt loaded first, the replacement is a wrapt.FunctionWrapper around stock."""
    pytest.importorskip("wrapt")
    code = ("import wrapt, ctypes.util, ctypes_shim; stock = ctypes.util.find_library; "
            "ctypes_shim.install(); f = ctypes.util.find_library; "
            "assert isinstance(f, wrapt.FunctionWrapper), type(f); "
            "assert f.__wrapped__ is stock and f.__name__ == 'find_library'; "
            "assert f('c').startswith('libc.'), f('c'); "
            "ctypes_shim.uninstall(); print(ctypes.util.find_library is stock)")
    result = run_python(code, env={"PYTHONPATH": package_dir()})
    assert result.stdout.strip() == "True", result.stderr


def shadowed(tmp_path: object, body: str) -> str:
    """A directory holding a sitecustomize.py (the one the image ships, e.g. Debian's)."""
    other = os.path.join(str(tmp_path), "other")
    os.makedirs(other)
    with open(os.path.join(other, "sitecustomize.py"), "w") as f:
        f.write(body)
    return other


CHAINED = """
import builtins, sys
ours = sys.modules["sitecustomize"]
print(getattr(builtins, "OTHER_RAN", 0), ours.__file__, ours.chained.__file__,
      ours.chained.__name__, ours.chained.NAME)
"""


def test_shadowed_sitecustomize_still_runs(tmp_path: object, site_dir: str) -> None:
    """The sitecustomize we shadow runs once, under its own name; ours stays `sitecustomize`."""
    other = shadowed(tmp_path, "import builtins\n"
                     "builtins.OTHER_RAN = getattr(builtins, 'OTHER_RAN', 0) + 1\n"
                     "NAME = __name__\n")
    result = run_python(CHAINED, env=site_env(site_dir, other))
    assert result.stderr == ""
    assert result.stdout.split() == [
        "1", os.path.join(site_dir, "sitecustomize.py"),
        os.path.join(other, "sitecustomize.py"), "sitecustomize", "sitecustomize"]


# dd-trace's ddtrace/bootstrap/sitecustomize.py loads "the next sitecustomize" this way.
REIMPORTS_NEXT = """
import os, sys
here = os.path.dirname(os.path.abspath(__file__))
mine = sys.modules.pop("sitecustomize", None)
saved = sys.path[:]
sys.path[:] = [p for p in sys.path if os.path.abspath(p) != here]
try:
    import sitecustomize
finally:
    sys.path[:] = saved
    sys.modules["sitecustomize"] = mine
"""


def test_chains_through_a_sitecustomize_that_reimports_the_next_one(tmp_path: object,
                                                                    site_dir: str) -> None:
    """ours -> an agent's that imports the next one itself -> the image's: each runs once."""
    agent = os.path.join(str(tmp_path), "agent")
    os.makedirs(agent)
    with open(os.path.join(agent, "sitecustomize.py"), "w") as f:
        f.write(REIMPORTS_NEXT)
    last = shadowed(tmp_path, "import builtins\n"
                    "builtins.OTHER_RAN = getattr(builtins, 'OTHER_RAN', 0) + 1\n")
    code = ("import builtins, sys; print(getattr(builtins, 'OTHER_RAN', 0), "
            f"sys.modules['sitecustomize'].__file__, sys.path.count({site_dir!r}))")
    result = run_python(code, env=site_env(site_dir, agent, last))
    assert result.stderr == ""
    assert result.stdout.split() == ["1", os.path.join(site_dir, "sitecustomize.py"), "1"]


def test_broken_shadowed_sitecustomize_is_reported_like_site_does(tmp_path: object,
                                                                  site_dir: str) -> None:
    """An error in the shadowed sitecustomize is one message, as site prints it; we stay on."""
    other = shadowed(tmp_path, "raise RuntimeError('boom')\n")
    code = "import ctypes_shim; print(ctypes_shim.is_installed())"
    result = run_python(code, env=site_env(site_dir, other))
    assert result.returncode == 0
    assert result.stdout.strip() == "True"
    assert result.stderr == ("Error in sitecustomize; set PYTHONVERBOSE for traceback:\n"
                             "RuntimeError: boom\n")


def test_missing_package_starts_cleanly() -> None:
    """The template without ctypes_shim importable: a normal start, nothing printed."""
    result = run_python("import ctypes.util; print('up')", env={"PYTHONPATH": TEMPLATE})
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, "up", "")


def test_bootstrap_without_the_package_still_chains(tmp_path: object) -> None:
    """The bootstrap dir on PYTHONPATH without ctypes_shim after it: start-up goes on, the
    shadowed sitecustomize still runs, and CTYPES_SHIM_DEBUG says why nothing was patched."""
    alone = os.path.join(str(tmp_path), "boot")
    os.makedirs(alone)
    shutil.copy(os.path.join(bootstrap_dir(), "sitecustomize.py"), alone)
    other = shadowed(tmp_path, "import builtins\nbuiltins.OTHER_RAN = 1\n")
    code = "import builtins; print(getattr(builtins, 'OTHER_RAN', 0))"
    env = {"PYTHONPATH": os.pathsep.join([alone, other])}
    result = run_python(code, env=env, cwd=str(tmp_path))
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, "1", "")
    result = run_python(code, env={**env, "CTYPES_SHIM_DEBUG": "1"}, cwd=str(tmp_path))
    assert result.stdout.strip() == "1"
    assert result.stderr.startswith("ctypes_shim: not activated: ModuleNotFoundError(")


def test_bootstrap_is_read_from_its_pyc(tmp_path: object) -> None:
    """pip install --target byte-compiles the bootstrap: with PYTHONDONTWRITEBYTECODE=1 (a
    read-only image) start-up loads its .pyc and compiles nothing of ours."""
    target = os.path.join(str(tmp_path), "deps")
    wheel = os.path.join(str(tmp_path), "wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", REPO, "-w", wheel],
                   check=True, capture_output=True)
    (whl,) = os.listdir(wheel)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    target, os.path.join(wheel, whl)], check=True, capture_output=True)
    boot = os.path.join(target, "ctypes_shim", "_bootstrap")
    pyc = os.path.join(boot, "__pycache__", f"sitecustomize.{sys.implementation.cache_tag}.pyc")
    assert os.path.exists(pyc)
    env = {"PYTHONPATH": os.pathsep.join([boot, target]), "PYTHONDONTWRITEBYTECODE": "1"}
    result = run_python("import ctypes.util", "-v", env=env, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    ours = [line for line in result.stderr.splitlines() if target in line]
    loaded = {line.split("'")[1] for line in ours if line.startswith("# code object from")}
    assert pyc in loaded, ours
    assert {os.path.basename(p).split(".")[0] for p in loaded} == {
        "sitecustomize", "__init__", "_activate", "_patch"}, loaded
    assert all(line.endswith(".pyc'") for line in ours if line.startswith("# code object")), ours


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A venv whose site-packages holds ctypes_shim and its .pth, as pip would put them."""
    path = str(tmp_path_factory.mktemp("venv"))
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", path], check=True)
    python = os.path.join(path, "bin", "python")
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True, text=True, check=True).stdout.strip()
    shutil.copytree(os.path.join(package_dir(), "ctypes_shim"),
                    os.path.join(purelib, "ctypes_shim"))
    shutil.copy(_pth_source(), purelib)
    return python


@pytest.mark.parametrize("flags", [(), ("-I",), ("-E",)], ids=["plain", "isolated", "ignore-env"])
def test_pth_route(venv: str, flags: tuple[str, ...]) -> None:
    """The .pth activates in a site dir, also under -I and -E."""
    result = run_python(PATCHED, *flags, executable=venv)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["patched"] and out["route"] == "pth"


def test_pth_route_honours_opt_out_and_dash_s(venv: str) -> None:
    """-S skips site (so the .pth); CTYPES_SHIM_DISABLE works even under -E."""
    code = "import ctypes.util; print(hasattr(ctypes.util.find_library, '__wrapped__'))"
    assert run_python(code, "-S", executable=venv).stdout.strip() == "False"
    result = run_python(code, "-E", executable=venv, env={"CTYPES_SHIM_DISABLE": "1"})
    assert result.stdout.strip() == "False", result.stderr


def test_pth_with_half_installed_package_starts_cleanly(tmp_path: object) -> None:
    """A .pth whose package is missing: exit 0, no traceback."""
    broken = os.path.join(str(tmp_path), "venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", broken], check=True)
    python = os.path.join(broken, "bin", "python")
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    shutil.copy(_pth_source(), site)
    result = run_python("print('up')", executable=python)
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, "up", "")


def _pth_source() -> str:
    pth = os.path.join(package_dir(), "ctypes_shim.pth")
    return pth if os.path.exists(pth) else os.path.join(REPO, "ctypes_shim.pth")


AUDIT = """
import sys, json
events = []
watch = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
         "os.forkpty"}
def hook(event, args):
    if event in watch:
        events.append(event)
sys.addaudithook(hook)
import ctypes.util
watch.add("ctypes.dlopen")  # `import ctypes` itself dlopens the interpreter; lookups must not
names = ["c", "m", "ssl", "crypto", "z", "stdc++", "nope-not-here", "libc", "", "x" * 300,
         "pthread", "dl", "gobject-2.0-0"]
answers = {n: ctypes.util.find_library(n) for n in names}
print(json.dumps({"events": events, "answers": answers}))
"""


def test_no_process_is_started() -> None:
    """Cold lookups, hits and misses start no process and dlopen nothing (audit hook)."""
    result = run_python(AUDIT, env=site_env(PATH=os.environ.get("PATH", "")))
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["events"] == []
    assert out["answers"]["c"] is not None
    assert out["answers"]["nope-not-here"] is None


def test_off_linux_leaves_ctypes_alone() -> None:
    """On another platform, activation does nothing and says so."""
    code = ("import sys; sys.platform = 'darwin'; import ctypes_shim, ctypes.util; "
            "print(ctypes_shim.install(), hasattr(ctypes.util.find_library, '__wrapped__'))")
    result = run_python(code, env={"PYTHONPATH": package_dir()})
    assert result.stdout.split() == ["False", "False"], result.stderr


def test_resolver_loads_on_first_call_not_on_import() -> None:
    """Importing ctypes.util adds only the patch; the resolver loads with the first call."""
    code = ("import sys, ctypes.util; before = 'ctypes_shim._resolve' in sys.modules; "
            "ctypes.util.find_library('c'); "
            "print(before, 'ctypes_shim._resolve' in sys.modules, "
            "hasattr(ctypes.util.find_library, '__wrapped__'))")
    result = run_python(code, env=site_env())
    assert result.stdout.split() == ["False", "True", "True"], result.stderr
