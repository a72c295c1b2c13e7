"""Concurrency and lifecycle: threads, fork, reload, sys.modules purges, uninstall, a
half-installed package, and the interpreter flags -S, -I, -E.

Everything that changes interpreter-wide state runs in a child interpreter.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import threading

import pytest
from fuzz.support import BASE_PYTHON, REPO, default_dir, lib, python_env, resolver, run_json

LIBDIR = default_dir()
TEMPLATE = os.path.join(REPO, "sitecustomize_template", "sitecustomize.py")
PTH = os.path.join(REPO, "ctypes_shim.pth")


# -- threads ------------------------------------------------------------------------------------

def test_threads_on_a_cold_resolver_agree_with_serial_calls(tmp_path: object) -> None:
    """16 threads released together on a cold resolver, asking the same and different names
    in random orders, get exactly the serial answers."""
    root = str(tmp_path)
    names = []
    for i in range(40):
        lib(root, "%s/libt%d.so.%d" % (LIBDIR if i % 2 else "/opt/t", i, i % 5),
            soname="libt%d.so.%d" % (i, i % 5))
        names.append("t%d" % i)
    os.makedirs(os.path.join(root, "etc"), exist_ok=True)
    with open(os.path.join(root, "etc/ld.so.conf"), "w") as f:
        f.write("/opt/t\n")
    names += ["missing%d" % i for i in range(10)]
    serial = {n: resolver(root).lookup(n) for n in names}
    assert sum(v is not None for v in serial.values()) == 40
    shared = resolver(root)
    barrier = threading.Barrier(16)
    results: list[dict[str, object]] = []
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        order = names * 3
        random.Random(seed).shuffle(order)
        got: dict[str, object] = {}
        try:
            barrier.wait(60)
            for n in order:
                answer = shared.find(n) if seed % 2 else shared.lookup(n)
                if got.setdefault(n, answer) != answer:
                    got[n] = ("changed", got[n], answer)
        except BaseException as e:
            errors.append(e)
        results.append(got)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:3]
    assert len(results) == 16
    for got in results:
        assert got == serial


# -- fork ----------------------------------------------------------------------------------------

FORK = r"""
import json, os, signal, sys, threading, warnings
warnings.simplefilter("ignore")  # 3.12+: DeprecationWarning for fork() with threads
from ctypes_shim import _resolve
scenario = sys.argv[1]
parent = None
if scenario != "cold-busy":
    parent = _resolve.find_library("c")  # warm: memo, cache index, dir indexes
held, release = threading.Event(), threading.Event()
def busy(first):
    # Lookups in a loop: at fork() this thread is somewhere inside the resolver.
    while not release.is_set():
        _resolve.default().lookup(first)
        _resolve.default().lookup("nonexistent-busy")
        held.set()
if scenario == "busy":
    threading.Thread(target=busy, args=("c",), daemon=True).start()
    held.wait(10)
elif scenario == "cold-busy":  # another thread is creating the default resolver
    threading.Thread(target=busy, args=("m",), daemon=True).start()
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    signal.alarm(20)  # a deadlocked child dies of SIGALRM instead of hanging the test
    out = [_resolve.find_library("c"), _resolve.find_library("nonexistent-xyz"),
           _resolve.default().lookup("c")]
    os.write(w, json.dumps(out).encode())
    os._exit(0)
os.close(w)
data = b""
while True:
    chunk = os.read(r, 65536)
    if not chunk:
        break
    data += chunk
_, status = os.waitpid(pid, 0)
release.set()
print(json.dumps({"parent": parent or _resolve.find_library("c"), "child": data.decode(),
                  "status": status}))
"""


@pytest.mark.parametrize("scenario", ["warm", "busy", "cold-busy"])
def test_fork_child_resolves(scenario: str) -> None:
    """After os.fork() the child resolves like the parent: with warm caches, while another
    thread was inside a lookup, and while another thread was creating the default resolver
    (the resolver takes no lock, so no lock can be left held in the child)."""
    proc = subprocess.run([BASE_PYTHON, "-c", FORK, scenario], env=python_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    value = json.loads(proc.stdout.strip().splitlines()[-1])
    assert value["status"] == 0, "child killed or failed (deadlock?): %r" % value
    child = json.loads(value["child"])
    assert child == [value["parent"], None, value["parent"]]


# -- reload, purge, uninstall ---------------------------------------------------------------------

RELOAD = r"""
import importlib, json, sys
import ctypes.util
stock = ctypes.util.find_library
import ctypes_shim
from ctypes_shim import _patch
out = {}
for cycle in range(5):
    ctypes_shim.install()
    ctypes_shim.install()  # twice: idempotent
    assert _patch.is_patched(ctypes.util), cycle
    answer = ctypes.util.find_library("c")
    ctypes_shim.uninstall()
    out.setdefault("identity", []).append(ctypes.util.find_library is stock)
    out.setdefault("finders", []).append(
        sum(type(f).__name__ == "CtypesUtilFinder" for f in sys.meta_path))
ctypes_shim.install()
importlib.reload(ctypes.util)
out["after_reload"] = [_patch.is_patched(ctypes.util), ctypes.util.find_library("c") == answer]
del sys.modules["ctypes.util"]
import ctypes.util as again
out["after_purge"] = [_patch.is_patched(again), again.find_library("c") == answer,
                      sys.modules["ctypes.util"] is again]
sys.modules.pop("ctypes", None); sys.modules.pop("ctypes.util", None)
import ctypes.util as third
out["after_purging_ctypes"] = [_patch.is_patched(third), third.find_library("c") == answer]
reloaded_stock_code = third.find_library.__wrapped__.__code__
ctypes_shim.uninstall()
f = third.find_library
out["restored_after_reload"] = [f.__code__ is reloaded_stock_code, not hasattr(f, "__wrapped__"),
                                ctypes_shim.is_installed()]
out["answer"] = answer
print(json.dumps(out))
"""


def test_reload_purge_and_uninstall_restore_stock_exactly() -> None:
    """install/uninstall five times restores the very same function object and leaves no
    finder behind; importlib.reload and sys.modules purges (of ctypes.util, and of ctypes
    too) re-patch; uninstall after them restores the module's own function."""
    value, proc = run_json(RELOAD)
    assert proc.returncode == 0, proc.stderr
    assert value["identity"] == [True] * 5
    assert value["finders"] == [0] * 5
    assert value["after_reload"] == [True, True]
    assert value["after_purge"] == [True, True, True]
    assert value["after_purging_ctypes"] == [True, True]
    assert value["restored_after_reload"] == [True, True, False]
    assert value["answer"] and value["answer"].startswith("libc.so")


# -- a half-installed package, missing dependencies -------------------------------------------------

PROBE = ("import ctypes.util, json, sys; a = ctypes.util.find_library('c'); "
         "print(json.dumps([a, any(type(f).__name__ == 'CtypesUtilFinder' for f in sys.meta_path),"
         " hasattr(ctypes.util.find_library, '__wrapped__')]))")

DAMAGE = {
    "intact": lambda pkg: None,
    "no-_patch": lambda pkg: os.unlink(os.path.join(pkg, "_patch.py")),
    "no-_resolve": lambda pkg: os.unlink(os.path.join(pkg, "_resolve.py")),
    "no-_elf": lambda pkg: os.unlink(os.path.join(pkg, "_elf.py")),
    "no-_activate": lambda pkg: os.unlink(os.path.join(pkg, "_activate.py")),
    "broken-_resolve": lambda pkg: _append(pkg, "_resolve.py", "\nraise MemoryError('boom')\n"),
    "syntax-_activate": lambda pkg: _append(pkg, "_activate.py", "\ndef (:\n"),
    "raising-__init__": lambda pkg: _append(pkg, "__init__.py", "\nraise RuntimeError('x')\n"),
    "empty-package": lambda pkg: [os.unlink(os.path.join(pkg, f)) for f in os.listdir(pkg)
                                  if f.endswith(".py")],
}


def _append(pkg: str, name: str, text: str) -> None:
    with open(os.path.join(pkg, name), "a") as f:
        f.write(text)


def copy_package(dest: str) -> str:
    pkg = os.path.join(dest, "ctypes_shim")
    shutil.copytree(os.path.join(REPO, "ctypes_shim"), pkg,
                    ignore=shutil.ignore_patterns("__pycache__"))
    return pkg


def make_venv(path: str) -> tuple[str, str]:
    """A venv without pip (so without wrapt and pyelftools); returns (python, site-packages)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", path], check=True,
                   timeout=120)
    python = os.path.join(path, "bin", "python")
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    return python, site


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return make_venv(str(tmp_path_factory.mktemp("rel-venv")))


def clean_start(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "Error" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_half_installed_package_via_pth(venv: tuple[str, str], damage: str) -> None:
    """.pth route, package damaged, no wrapt/pyelftools in the venv: the interpreter starts
    cleanly (exit 0, nothing on stderr) and ctypes.util works, patched only if intact."""
    python, site = venv
    for name in ("ctypes_shim", "ctypes_shim.pth"):
        path = os.path.join(site, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.unlink(path)
    DAMAGE[damage](copy_package(site))
    shutil.copy(PTH, site)
    env = python_env()
    del env["PYTHONPATH"]
    value, proc = run_json(PROBE, env=env, executable=python, cwd="/")
    clean_start(proc)
    assert isinstance(value, list)
    answer, finder, patched = value
    if damage == "intact":
        assert finder and patched and answer and answer.startswith("libc.so")
    else:
        assert not patched


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_half_installed_package_via_sitecustomize(tmp_path: object, damage: str) -> None:
    """Sitecustomize route (PYTHONPATH=site:deps), package damaged: clean start, exit 0."""
    site = os.path.join(str(tmp_path), "site")
    deps = os.path.join(str(tmp_path), "deps")
    os.makedirs(site)
    os.makedirs(deps)
    shutil.copy(TEMPLATE, site)
    DAMAGE[damage](copy_package(deps))
    env = python_env(PYTHONPATH=site + os.pathsep + deps)
    value, proc = run_json(PROBE, env=env, cwd="/")
    clean_start(proc)
    answer, finder, patched = value  # type: ignore[misc]
    if damage == "intact":
        assert finder and patched and answer and answer.startswith("libc.so")
    else:
        assert not patched


# -- -S, -I, -E --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pth_venv(tmp_path_factory: pytest.TempPathFactory) -> str:
    python, site = make_venv(str(tmp_path_factory.mktemp("rel-pth-venv")))
    copy_package(site)
    shutil.copy(PTH, site)
    return python


@pytest.fixture(scope="module")
def pythonpath_route(tmp_path_factory: pytest.TempPathFactory) -> str:
    top = str(tmp_path_factory.mktemp("rel-pythonpath"))
    os.makedirs(os.path.join(top, "site"))
    shutil.copy(TEMPLATE, os.path.join(top, "site"))
    copy_package(os.path.join(top, "deps"))
    return os.path.join(top, "site") + os.pathsep + os.path.join(top, "deps")


FLAGS = [  # (route, flags, CTYPES_SHIM_DISABLE, expected active)
    ("pth", (), None, True),
    ("pth", ("-S",), None, False),  # no site: no .pth processing
    ("pth", ("-I",), None, True),  # isolated mode still processes site-packages .pth files
    ("pth", ("-E",), None, True),
    ("pth", ("-E",), "1", False),  # -E ignores PYTHON* only; the shim reads os.environ
    ("pth", ("-I",), "1", False),
    ("pth", (), "0", True),
    ("pythonpath", (), None, True),
    ("pythonpath", ("-S",), None, False),
    ("pythonpath", ("-I",), None, False),  # -I: PYTHONPATH ignored
    ("pythonpath", ("-E",), None, False),  # -E: PYTHONPATH ignored
    ("pythonpath", ("-s",), None, True),
    ("pythonpath", (), "1", False),
]


@pytest.mark.parametrize(("route", "flags", "disable", "active"), FLAGS,
                         ids=["%s%s-%s" % (r, "".join(f), d) for r, f, d, _ in FLAGS])
def test_interpreter_flags(pth_venv: str, pythonpath_route: str, route: str,
                           flags: tuple[str, ...], disable: str | None, active: bool) -> None:
    """-S: never active; -I: the .pth route works, the PYTHONPATH route does not; -E:
    PYTHONPATH ignored, CTYPES_SHIM_DISABLE still honoured."""
    env = python_env()
    del env["PYTHONPATH"]
    if disable is not None:
        env["CTYPES_SHIM_DISABLE"] = disable
    if route == "pth":
        executable = pth_venv
    else:
        executable = BASE_PYTHON
        env["PYTHONPATH"] = pythonpath_route
    value, proc = run_json(PROBE, env=env, args=flags, executable=executable, cwd="/")
    clean_start(proc)
    answer, finder, patched = value  # type: ignore[misc]
    assert (finder and patched) == active, (value, proc.stderr)
    if active:
        assert answer and answer.startswith("libc.so")
