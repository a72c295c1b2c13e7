"""Small helpers for the reliability tests: fake roots, deadlines, fresh interpreters.

Kept here rather than in tests/conftest.py (owned by the unit tests) so the two can
change independently.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import elfgen

from ctypes_shim import _ldpaths, _resolve

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TESTS = os.path.dirname(HERE)

# Child interpreters run the base interpreter, not the test venv's: under tox the venv holds
# the wheel's .pth, which would activate the shim in every child before a test could look.
BASE_PYTHON = os.path.join(sys.base_prefix, "bin", "python%d.%d" % sys.version_info[:2])
if not os.path.exists(BASE_PYTHON):
    BASE_PYTHON = sys.executable


def default_dir() -> str:
    """The loader's first default dir inside a root, e.g. /usr/lib/x86_64-linux-gnu."""
    triplet = _ldpaths.multiarch()
    return "/usr/lib/" + triplet if triplet else "/usr/lib"


def host(root: str, inside: str) -> str:
    return os.path.join(root, inside.lstrip("/"))


def lib(root: str, inside: str, data: bytes | None = None, **kw: object) -> str:
    """Write a library (this interpreter's ABI unless *data*) at *inside* of *root*."""
    return elfgen.write(host(root, inside), data if data is not None else elfgen.native(**kw))


def text(root: str, inside: str, content: str | bytes) -> str:
    path = host(root, inside)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(content.encode() if isinstance(content, str) else content)
    return path


def link(root: str, inside: str, target: str) -> str:
    path = host(root, inside)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.symlink(target, path)
    return path


def resolver(root: str, environ: dict[str, str] | None = None) -> _resolve.Resolver:
    return _resolve.Resolver(root=root, environ=environ if environ is not None else {})


def lookup_traced(r: _resolve.Resolver, name: object) -> tuple[str | None, list[tuple[str, str, str]]]:
    """lookup() with a trace, asserting that nothing failed inside."""
    trace: list[_resolve.Step] = []
    answer = r.lookup(name, trace)
    errors = [t for t in trace if t.outcome == "error"]
    assert not errors, errors
    return answer, trace


def with_deadline(fn: object, seconds: float = 30.0, unblock: object = None) -> object:
    """Run fn() in a thread; fail (instead of hanging the suite) if it is still running
    after *seconds*.  *unblock* is called then, to release the stuck thread."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = fn()  # type: ignore[operator]
        except BaseException as e:  # reported below, in the test's thread
            box["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        if unblock is not None:
            unblock()  # type: ignore[operator]
        thread.join(5)
        raise AssertionError("blocked: still running after %s s" % seconds)
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box.get("value")


def release_fifo(path: str) -> None:
    """Open a FIFO's write end once, so a reader blocked in open() returns."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
    except OSError:
        pass


def python_env(**extra: str) -> dict[str, str]:
    """A small environment for a child interpreter that imports this checkout."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8",
           "PYTHONPATH": REPO + os.pathsep + TESTS, "PYTHONDONTWRITEBYTECODE": "1"}
    env.update(extra)
    return env


def run_json(code: str, *, env: dict[str, str] | None = None, args: tuple[str, ...] = (),
             timeout: float = 120, executable: str = BASE_PYTHON,
             **kw: object) -> tuple[object, subprocess.CompletedProcess[str]]:
    """Run *code* in a child; its last stdout line is JSON.  Returns (value, process)."""
    proc = subprocess.run([executable, *args, "-c", code], env=env or python_env(),
                          capture_output=True, text=True, timeout=timeout, **kw)  # type: ignore[call-overload]
    lines = proc.stdout.strip().splitlines()
    value = json.loads(lines[-1]) if proc.returncode == 0 and lines else None
    return value, proc
