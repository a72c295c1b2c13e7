"""Environment: LD_LIBRARY_PATH shapes and run-time changes, and a read-only filesystem."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from fuzz.support import BASE_PYTHON, REPO, lib, python_env, run_json

from ctypes_shim import _ldcache, _resolve

TEMPLATE = os.path.join(REPO, "sitecustomize_template", "sitecustomize.py")


def real_library() -> str:
    """A small real library of the host that dlopen can load a second copy of."""
    try:
        cache = _ldcache.read_cache("/etc/ld.so.cache")
    except (OSError, ValueError):
        pytest.skip("no readable host /etc/ld.so.cache to pick a real library from")
    native = _resolve.Native.detect()
    for key in ("libz.so.1", "libffi.so.8", "libbz2.so.1.0", "liblzma.so.5", "libexpat.so.1"):
        for e in cache.entries:
            if e.key == key and native.cache_flags_fit(e.flags) and not e.hwcap and \
                    os.path.exists(e.value):
                return e.value
    pytest.skip("none of the small host libraries is installed")
    raise AssertionError  # unreachable


@pytest.mark.parametrize("value", [":{d}", "{d}:", "::{d}::", "{d}:{d}:{d}", "{d};{d}",
                                   "/nonexistent:{d}", "{d}/:{d}//", "{d}/../{b}"])
def test_ld_library_path_shapes(tmp_path: object, value: str) -> None:
    """Empty components, duplicates, ';', trailing slashes and '..': the library is found
    as one loadable path, and each directory is searched once."""
    d = os.path.join(str(tmp_path), "lp")
    lib("/", os.path.join(d, "libshape.so.1"), soname="libshape.so.1")
    env = {"LD_LIBRARY_PATH": value.format(d=d, b=os.path.basename(d))}
    r = _resolve.Resolver(environ=env)
    trace: list[_resolve.Step] = []
    answer = r.lookup("shape", trace)
    assert answer is not None and os.path.realpath(answer) == os.path.realpath(
        os.path.join(d, "libshape.so.1")), trace
    dirs = [x for x, origin in r.search_dirs() if origin == "LD_LIBRARY_PATH"]
    assert len({os.path.realpath(x) for x in dirs}) == len(dirs)


def test_empty_and_relative_components_follow_the_cwd(tmp_path: object,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty component means the current directory (glibc) and a relative one is taken
    from the cwd at the call; the answer is an absolute path."""
    top = str(tmp_path)
    lib("/", os.path.join(top, "a", "libcwd.so.1"), soname="libcwd.so.1")
    lib("/", os.path.join(top, "b", "sub", "librel.so.2"), soname="librel.so.2")
    r = _resolve.Resolver(environ={"LD_LIBRARY_PATH": "/nonexistent::sub"})
    monkeypatch.chdir(os.path.join(top, "a"))
    assert r.find("cwd") == os.path.join(top, "a", "libcwd.so.1")
    assert r.find("rel") is None
    monkeypatch.chdir(os.path.join(top, "b"))
    assert r.find("rel") == os.path.join(top, "b", "sub", "librel.so.2")
    assert r.find("cwd") is None


RUNTIME = r"""
import ctypes, json, os, sys
import ctypes_shim
ctypes_shim.install()
import ctypes.util
d = sys.argv[1]
before = ctypes.util.find_library("shimrt")
os.environ["LD_LIBRARY_PATH"] = d + ":/nonexistent"
after = ctypes.util.find_library("shimrt")
loaded = None
if after:
    loaded = ctypes.CDLL(after)._name
os.environ["LD_LIBRARY_PATH"] = "/nonexistent"
gone = ctypes.util.find_library("shimrt")
print(json.dumps([before, after, loaded, gone]))
"""


def test_ld_library_path_set_after_start_up(tmp_path: object) -> None:
    """A library reachable only through an LD_LIBRARY_PATH set after start-up (which the
    loader never sees) is returned as a full path that ctypes.CDLL loads; unsetting it
    again is seen by the next call."""
    d = os.path.join(str(tmp_path), "late")
    os.makedirs(d)
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("no gcc to build a library with SONAME libshimrt.so.1")
    source = os.path.join(str(tmp_path), "shimrt.c")
    with open(source, "w") as f:
        f.write("int shimrt(void) { return 42; }\n")
    subprocess.run([gcc, "-shared", "-fPIC", "-Wl,-soname,libshimrt.so.1", "-o",
                    os.path.join(d, "libshimrt.so.1"), source], check=True)
    proc = subprocess.run([BASE_PYTHON, "-c", RUNTIME, d], env=python_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    import json

    before, after, loaded, gone = json.loads(proc.stdout.strip().splitlines()[-1])
    assert before is None
    assert after == os.path.join(d, "libshimrt.so.1")
    assert loaded == after
    assert gone is None


def unshare_available() -> str | None:
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("mount"):
        return "needs root, unshare and mount"
    probe = subprocess.run(["unshare", "--mount", "sh", "-c",
                            "mount --make-rprivate / && mount -o remount,ro,bind / && "
                            "! touch /ctypes-shim-ro-probe 2>/dev/null"],
                           capture_output=True, text=True, timeout=60)
    return None if probe.returncode == 0 else "cannot remount / read-only here: " + probe.stderr


READ_ONLY = r"""
import json, os, sys
import ctypes.util
top = sys.argv[1]
try:
    open(os.path.join(top, "probe"), "w")
    writable = True
except OSError:
    writable = False
print(json.dumps([writable, ctypes.util.find_library("c"), ctypes.util.find_library("rolib"),
                  ctypes.util.find_library("nonexistent"),
                  hasattr(ctypes.util.find_library, "__wrapped__")]))
"""


def test_read_only_root_filesystem(tmp_path: object) -> None:
    """With / and the app dir mounted read-only (a private mount namespace), start-up via the
    sitecustomize route and lookups work, and nothing tries to write."""
    why = unshare_available()
    if why:
        pytest.skip(why)
    top = str(tmp_path)
    os.makedirs(os.path.join(top, "site"))
    shutil.copy(TEMPLATE, os.path.join(top, "site"))
    shutil.copytree(os.path.join(REPO, "ctypes_shim"), os.path.join(top, "deps", "ctypes_shim"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    lib("/", os.path.join(top, "lib", "librolib.so.1"), soname="librolib.so.1")
    script = os.path.join(top, "probe.py")
    with open(script, "w") as f:
        f.write(READ_ONLY)
    env = python_env(PYTHONPATH=os.path.join(top, "site") + os.pathsep + os.path.join(top, "deps"),
                     LD_LIBRARY_PATH=os.path.join(top, "lib"))
    env.pop("PYTHONDONTWRITEBYTECODE")  # let it try to write .pyc files: it must not care
    cmd = ("mount --make-rprivate / && mount --bind {t} {t} && mount -o remount,ro,bind {t} && "
           "mount -o remount,ro,bind / && exec {py} {script} {t}").format(
               t=top, py=BASE_PYTHON, script=script)
    proc = subprocess.run(["unshare", "--mount", "sh", "-c", cmd], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    import json

    writable, c, rolib, missing, patched = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not writable
    assert patched
    assert c and c.startswith("libc.so")
    assert rolib == "librolib.so.1"  # found via the start-up LD_LIBRARY_PATH: the loader sees it
    assert missing is None


def test_opt_out_values() -> None:
    """CTYPES_SHIM_DISABLE: unset, '' and '0' keep the shim; anything else opts out, also
    for an explicit install()."""
    code = ("import json, ctypes_shim; a = ctypes_shim.install(); import ctypes.util; "
            "print(json.dumps([a, hasattr(ctypes.util.find_library, '__wrapped__')]))")
    for value, active in ((None, True), ("", True), ("0", True), ("1", False),
                          ("yes", False), ("false", False)):
        env = python_env()
        if value is not None:
            env["CTYPES_SHIM_DISABLE"] = value
        out, proc = run_json(code, env=env)
        assert proc.returncode == 0, proc.stderr
        assert out == [active, active], (value, out)
