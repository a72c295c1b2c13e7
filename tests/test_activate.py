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
HEAVY = ("ctypes", "ctypes.util", "wrapt", "elftools", "logging", "subprocess")


def package_dir() -> str:
    """Where the ctypes_shim under test lives (the installed wheel under tox)."""
    import ctypes_shim

    return os.path.dirname(os.path.dirname(os.path.abspath(ctypes_shim.__file__)))


def site_env(**extra: str) -> dict[str, str]:
    return {"PYTHONPATH": f"{TEMPLATE}:{package_dir()}", **extra}


MODULES = "import sys, json; print(json.dumps(sorted(sys.modules)))"


def test_startup_imports_nothing_heavy() -> None:
    """The sitecustomize route adds only ctypes_shim's tiny modules at start-up."""
    before = set(json.loads(run_python(MODULES, env={"PYTHONPATH": package_dir()}).stdout))
    result = run_python(MODULES, env=site_env())
    assert result.returncode == 0, result.stderr
    added = set(json.loads(result.stdout)) - before
    assert added <= {"sitecustomize", "ctypes_shim", "ctypes_shim._activate"}, added
    assert "ctypes_shim._activate" in added
    assert not added & set(HEAVY)


PATCHED = """
import ctypes.util, json, sys
from ctypes.util import find_library
import ctypes_shim
print(json.dumps({"patched": getattr(ctypes.util.find_library, "__wrapped__", None) is not None,
                  "same": find_library is ctypes.util.find_library,
                  "c": find_library("c"), "installed": ctypes_shim.is_installed(),
                  "route": sys.modules["ctypes_shim._activate"].route}))
"""


def test_patched_lazily_on_import() -> None:
    """Importing ctypes.util gives the shim, also through `from ctypes.util import ...`."""
    result = run_python(PATCHED, env=site_env())
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["patched"] and out["same"] and out["installed"]
    assert out["route"] == "sitecustomize"
    assert out["c"] is not None and out["c"].startswith("libc.")


def test_opt_out() -> None:
    """CTYPES_SHIM_DISABLE=1 leaves stock find_library in place."""
    result = run_python(PATCHED, env=site_env(CTYPES_SHIM_DISABLE="1", PATH="/nonexistent"))
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


def test_shadowed_sitecustomize_still_runs(tmp_path: object) -> None:
    """The template imports the sitecustomize it shadows, which then runs as usual."""
    other = os.path.join(str(tmp_path), "other")
    os.makedirs(other)
    with open(os.path.join(other, "sitecustomize.py"), "w") as f:
        f.write("import builtins\nbuiltins.OTHER_SITECUSTOMIZE_RAN = True\n")
    code = "import builtins; print(getattr(builtins, 'OTHER_SITECUSTOMIZE_RAN', False))"
    result = run_python(code, env={"PYTHONPATH": f"{TEMPLATE}:{package_dir()}:{other}"})
    assert (result.stdout.strip(), result.stderr) == ("True", "")


def test_broken_shadowed_sitecustomize_is_reported_like_site_does(tmp_path: object) -> None:
    """An error in the shadowed sitecustomize is one message, as site prints it; we stay on."""
    other = os.path.join(str(tmp_path), "other")
    os.makedirs(other)
    with open(os.path.join(other, "sitecustomize.py"), "w") as f:
        f.write("raise RuntimeError('boom')\n")
    code = "import ctypes_shim; print(ctypes_shim.is_installed())"
    result = run_python(code, env={"PYTHONPATH": f"{TEMPLATE}:{package_dir()}:{other}"})
    assert result.returncode == 0
    assert result.stdout.strip() == "True"
    assert "Error in sitecustomize" in result.stderr and "boom" in result.stderr


def test_missing_package_starts_cleanly() -> None:
    """The template without ctypes_shim importable: a normal start, nothing printed."""
    result = run_python("import ctypes.util; print('up')", env={"PYTHONPATH": TEMPLATE})
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, "up", "")


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A venv whose site-packages holds ctypes_shim and its .pth, as pip would put them."""
    path = str(tmp_path_factory.mktemp("venv"))
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", path], check=True)
    python = os.path.join(path, "bin", "python")
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
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
