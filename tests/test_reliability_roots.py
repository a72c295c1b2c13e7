"""Broken roots: odd files where libraries, caches and configs should be.

Every test builds a root in a temp dir and asks Resolver(root=...) (or, in a child
interpreter, the patched ctypes.util.find_library with LD_LIBRARY_PATH into the temp
dir).  A valid library next to the breakage must still be found; nothing may raise,
block, or open a FIFO or a device.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import threading

import elfgen
import pytest
from fuzz import cases, checks
from fuzz.support import (
    BASE_PYTHON,
    default_dir,
    host,
    lib,
    link,
    lookup_traced,
    python_env,
    release_fifo,
    resolver,
    run_json,
    text,
    with_deadline,
)

import ctypes_shim
from ctypes_shim import _ldcache, _resolve

LIBDIR = default_dir()
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def good(root: str, name: str = "good", version: int = 1, where: str = LIBDIR) -> str:
    soname = "lib%s.so.%d" % (name, version)
    lib(root, "%s/%s" % (where, soname), soname=soname)
    return soname


# -- odd things named like libraries -----------------------------------------------------------

@pytest.mark.parametrize("breakage", ["dangling", "loop", "self-loop", "directory",
                                      "link-to-directory", "empty", "linker-script",
                                      "out-of-root", "long-chain"])
def test_broken_neighbour_does_not_hide_the_library(tmp_path: object, breakage: str) -> None:
    """A broken lib<name>.so.N that sorts above the real one is passed over."""
    root = str(tmp_path)
    soname = good(root)
    bad = LIBDIR + "/libgood.so.9"
    if breakage == "dangling":
        link(root, bad, "libgood.so.9.0.0")
    elif breakage == "loop":
        link(root, bad, "libgood.so.10")
        link(root, LIBDIR + "/libgood.so.10", "libgood.so.9")
    elif breakage == "self-loop":
        link(root, bad, "libgood.so.9")
    elif breakage == "directory":
        os.makedirs(host(root, bad))
    elif breakage == "link-to-directory":
        os.makedirs(host(root, "/elsewhere"))
        link(root, bad, "/elsewhere")
    elif breakage == "empty":
        text(root, bad, b"")
    elif breakage == "linker-script":
        text(root, bad, "/* GNU ld script */\nGROUP ( libgood.so.1 )\n")
    elif breakage == "out-of-root":
        link(root, bad, "../../../../../../../../../../etc/ld.so.cache")
    else:  # 60 hops: more than the 40 the kernel (and the chroot emulation) allow
        link(root, bad, "/chain/0")
        for i in range(60):
            link(root, "/chain/%d" % i, "/chain/%d" % (i + 1))
        lib(root, "/chain/60", soname="libgood.so.9")
    answer, trace = lookup_traced(resolver(root), "good")
    assert answer == soname, trace


def test_broken_root_through_ctypes_util(tmp_path: object) -> None:
    """The real patched ctypes.util.find_library, LD_LIBRARY_PATH into a broken dir: the
    good library is a loadable path, the rest None, exit 0, no traceback."""
    d = os.path.join(str(tmp_path), "d")
    os.makedirs(d)
    elfgen.write(os.path.join(d, "libokay.so.1"), elfgen.native(soname="libokay.so.1"))
    os.symlink("libokay.so.404", os.path.join(d, "libokay.so.2"))
    os.symlink("libloop.so.1", os.path.join(d, "libloop.so.1"))
    os.makedirs(os.path.join(d, "libdir.so.1"))
    os.mkfifo(os.path.join(d, "libfifo.so.1"))
    with open(os.path.join(d, "libtext.so"), "w") as f:
        f.write("not a library")
    code = ("import json, ctypes_shim; ctypes_shim.install(); import ctypes.util as u; "
            "print(json.dumps({n: u.find_library(n) for n in "
            "['okay', 'loop', 'dir', 'fifo', 'text']}))")
    value, proc = run_json(code, env=python_env(LD_LIBRARY_PATH=d), timeout=60)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert value == {"okay": "libokay.so.1", "loop": None, "dir": None, "fifo": None,
                     "text": None}


# -- FIFOs and devices ---------------------------------------------------------------------------

def test_fifo_named_like_a_library_is_never_opened(tmp_path: object) -> None:
    """Regression: a FIFO called libfifo.so.2 was opened (O_NONBLOCK, but an open is a
    side effect: it wakes a writer blocked in open()); now it is only stat()ed."""
    root = str(tmp_path)
    soname = good(root, "fifo", 1)
    fifo = host(root, LIBDIR + "/libfifo.so.2")
    os.mkfifo(fifo)
    with checks.ReadMeter() as meter:
        answer = with_deadline(lambda: lookup_traced(resolver(root), "fifo")[0], 30,
                               lambda: release_fifo(fifo))
    assert answer == soname
    assert fifo not in meter.opened


@pytest.mark.parametrize("where", ["/etc/ld.so.cache", "/etc/ld.so.conf",
                                   "/etc/ld.so.conf.d/x.conf", "/etc/ld-musl-x86_64.path"])
def test_fifo_as_cache_or_config_does_not_block(tmp_path: object, where: str) -> None:
    """Regression: a FIFO at /etc/ld.so.cache or an ld.so.conf (include) made open() block
    forever, hanging find_library and the import that called it."""
    root = str(tmp_path)
    if where != "/etc/ld.so.conf":
        text(root, "/etc/ld.so.conf", "include /etc/ld.so.conf.d/*.conf\n")
    os.makedirs(os.path.dirname(host(root, where)), exist_ok=True)
    fifo = host(root, where)
    os.mkfifo(fifo)
    if "musl" in where:  # a musl interpreter reads its path file instead of ld.so.conf
        native = _resolve.Native(elfgen_info(interp="/lib/ld-musl-x86_64.so.1"))
        lib(root, "/env/libgood.so.1", soname="libgood.so.1")
        r = _resolve.Resolver(root=root, environ={"LD_LIBRARY_PATH": "/env"}, native=native)
        expected = "/env/libgood.so.1"
    else:
        expected = good(root)
        r = resolver(root)
    answer = with_deadline(lambda: lookup_traced(r, "good")[0], 30, lambda: release_fifo(fifo))
    assert answer == expected


def elfgen_info(**kw: object) -> object:
    from ctypes_shim import _elf

    return _elf.parse_elf(elfgen.native(**kw))


needs_root = pytest.mark.skipif(not IS_ROOT, reason="mknod of a device needs root")


@needs_root
@pytest.mark.parametrize("where", [LIBDIR + "/libdev.so.2", "/etc/ld.so.cache",
                                   "/etc/ld.so.conf"])
def test_device_files_are_never_opened(tmp_path: object, where: str) -> None:
    """Regression: a character device (here a /dev/zero twin) named libdev.so.2 or put at
    /etc/ld.so.cache was opened and read (64 MiB of zeros for the cache)."""
    root = str(tmp_path)
    soname = good(root, "dev", 1)
    dev = host(root, where)
    os.makedirs(os.path.dirname(dev), exist_ok=True)
    try:
        os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 5))  # like /dev/zero
    except OSError as e:
        pytest.skip("cannot mknod here: %s" % e)
    with checks.ReadMeter() as meter:
        answer = with_deadline(lambda: lookup_traced(resolver(root), "dev")[0], 30)
    assert answer == soname
    assert dev not in meter.opened, meter.by_path


# -- unreadable files and directories (as a non-root user) -------------------------------------

UNREADABLE_CHILD = r"""
import json, sys
from ctypes_shim import _resolve
root = sys.argv[1]
r = _resolve.Resolver(root=root, environ={"LD_LIBRARY_PATH": "/hidden:/open"})
out = {}
for name in ("unr", "hid", "cached", "conf"):
    trace = []
    out[name] = r.lookup(name, trace)
    assert not [t for t in trace if t.outcome == "error"], trace
print(json.dumps(out))
"""


def _blocked_ancestor(path: str) -> str | None:
    """The first directory above *path* that uid 65534 cannot pass through (pyenv's
    interpreters live under /root, mode 0700), or None."""
    parts = os.path.abspath(path).split("/")[1:]
    for i in range(1, len(parts)):
        d = "/" + "/".join(parts[:i])
        if not os.stat(d).st_mode & stat.S_IXOTH:
            return d
    return None


def as_nobody(args: list[str], env: dict[str, str], stash: str,
              ) -> subprocess.CompletedProcess[str]:
    """Run *args* as uid 65534 with this tox env's own interpreter (its base installation,
    sys.base_prefix) reachable: in a private mount namespace a 0755 tmpfs covers the
    directory that blocks it, holding only a bind mount of that installation."""
    prefix = os.path.realpath(sys.base_prefix)
    blocked = _blocked_ancestor(prefix)
    drop = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
    if blocked is None:
        return subprocess.run(drop + args, env=env, capture_output=True, text=True,
                              timeout=120, cwd="/")
    script = ('set -e; mkdir -p "$1"; mount --bind "$2" "$1"; '
              'mount -t tmpfs -o mode=0755 ctypes-shim "$3"; mkdir -p "$2"; '
              'mount --bind "$1" "$2"; shift 3; exec "$@"')
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
                           "sh", stash, prefix, blocked, *drop, *args], env=env,
                          capture_output=True, text=True, timeout=120, cwd="/")


@pytest.mark.skipif(not IS_ROOT, reason="needs root to create a tree and drop to uid 65534")
def test_unreadable_files_and_dirs_as_nobody() -> None:
    """As uid 65534: an unreadable library is passed over for a readable older one, an
    unreadable LD_LIBRARY_PATH dir and an unreadable cache/conf are skipped, no error."""
    top = tempfile.mkdtemp(prefix="ctypes-shim-nobody-")
    try:
        os.chmod(top, 0o755)
        root = os.path.join(top, "root")
        good(root, "unr", 1)
        lib(root, LIBDIR + "/libunr.so.2", soname="libunr.so.2")
        os.chmod(host(root, LIBDIR + "/libunr.so.2"), 0)
        lib(root, "/hidden/libhid.so.1", soname="libhid.so.1")
        os.chmod(host(root, "/hidden"), 0)
        os.makedirs(host(root, "/open"))
        cached = good(root, "cached", 3, "/opt/cached")
        text(root, "/etc/ld.so.cache", cases.build_cache(
            [(0x303, cached, "/opt/cached/" + cached, 0)]))
        os.chmod(host(root, "/etc/ld.so.cache"), 0)
        good(root, "conf", 1, "/opt/conf")
        text(root, "/etc/ld.so.conf", "/opt/conf\n")
        os.chmod(host(root, "/etc/ld.so.conf"), 0)
        for d, _, _ in os.walk(root):
            if not d.endswith("hidden"):
                os.chmod(d, 0o755)
        # The package this interpreter imported (under tox: the wheel installed in the
        # env), copied where uid 65534 can read it; run by the env's own interpreter.
        shutil.copytree(os.path.dirname(_resolve.__file__), os.path.join(top, "pkg", "ctypes_shim"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        env = python_env(PYTHONPATH=os.path.join(top, "pkg"))
        probe = ("import sys, ctypes_shim; print(sys.version_info[:2], ctypes_shim.__file__, "
                 "ctypes_shim.__version__)")
        proc = as_nobody([BASE_PYTHON, "-c", probe], env, os.path.join(top, "stash"))
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split()[:2] == ["(%d," % sys.version_info[0], "%d)" % sys.version_info[1]]
        assert proc.stdout.split()[2] == os.path.join(top, "pkg", "ctypes_shim", "__init__.py")
        assert proc.stdout.split()[3] == ctypes_shim.__version__
        proc = as_nobody([BASE_PYTHON, "-c", UNREADABLE_CHILD, root], env,
                         os.path.join(top, "stash"))
        assert proc.returncode == 0, proc.stderr
        value = json.loads(proc.stdout.strip().splitlines()[-1])
        # libunr.so.2 cannot be read, so the older readable one wins
        assert value["unr"] == "libunr.so.1"
        assert value["hid"] is None
        # the unreadable cache is skipped; its library is not in a searched dir
        assert value["cached"] is None
        # the unreadable conf names nothing
        assert value["conf"] is None
    finally:
        for d, dirs, files in os.walk(top):
            for x in dirs + files:
                try:
                    os.chmod(os.path.join(d, x), 0o755, follow_symlinks=False)
                except (OSError, NotImplementedError):
                    pass
        shutil.rmtree(top, ignore_errors=True)


# -- configs and caches --------------------------------------------------------------------------

@pytest.mark.parametrize("shape", ["self-include", "mutual", "conf-is-directory",
                                   "conf-is-loop", "include-glob-dirs"])
def test_broken_configs(tmp_path: object, shape: str) -> None:
    """Include cycles, a directory or a symlink loop at /etc/ld.so.conf: libraries in the
    conf dirs that can still be read are found, the rest of the scan goes on."""
    root = str(tmp_path)
    good(root, "dflt")
    conf_lib = good(root, "inconf", 1, "/opt/inconf")
    if shape == "self-include":
        text(root, "/etc/ld.so.conf", "/opt/inconf\ninclude /etc/ld.so.conf\n")
    elif shape == "mutual":
        text(root, "/etc/ld.so.conf", "include /etc/b.conf\n")
        text(root, "/etc/b.conf", "/opt/inconf\ninclude /etc/ld.so.conf\n")
    elif shape == "conf-is-directory":
        os.makedirs(host(root, "/etc/ld.so.conf"))
    elif shape == "conf-is-loop":
        link(root, "/etc/ld.so.conf", "ld.so.conf")
    else:
        text(root, "/etc/ld.so.conf", "include /etc/ld.so.conf.d/*\n")
        os.makedirs(host(root, "/etc/ld.so.conf.d/sub.conf"))
        text(root, "/etc/ld.so.conf.d/z.conf", "/opt/inconf\n")
    r = resolver(root)
    assert lookup_traced(r, "dflt")[0] == "libdflt.so.1"
    found = lookup_traced(r, "inconf")[0]
    if shape in ("conf-is-directory", "conf-is-loop"):
        assert found is None
    else:
        assert found == "/opt/inconf/" + conf_lib


@pytest.mark.slow  # the same on every interpreter: tox runs it in py311
def test_conf_glob_over_thousands_of_files(tmp_path: object) -> None:
    """An include glob matching 2000 conf files: the one dir that holds the library wins."""
    root = str(tmp_path)
    text(root, "/etc/ld.so.conf", "include /etc/ld.so.conf.d/*.conf\n")
    d = host(root, "/etc/ld.so.conf.d")
    os.makedirs(d)
    for i in range(2000):
        with open(os.path.join(d, "%04d.conf" % i), "w") as f:
            f.write("/opt/d%04d\ninclude /etc/ld.so.conf.d/*.conf\n" % i)
    soname = good(root, "many", 1, "/opt/d1999")
    assert lookup_traced(resolver(root), "many")[0] == "/opt/d1999/" + soname


def cache_for(entries: list[tuple[int, str, str, int]], **kw: object) -> bytes:
    return cases.build_cache(entries, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("state", ["stale", "wrong-arch", "wrong-endian", "truncated",
                                   "garbage", "empty", "directory", "dangling-link",
                                   "huge-count"])
def test_unusable_cache_falls_back_to_the_scan(tmp_path: object, state: str) -> None:
    """Stale entries (files deleted), another architecture's flags, the other byte order,
    a cut or corrupt file: the scan still finds the library; no stale path is returned."""
    root = str(tmp_path)
    soname = good(root, "sc", 2)
    other = ">" if cases.NATIVE_END == "<" else "<"
    entries = [(0x303, "libsc.so.7", "/gone/libsc.so.7", 0)]
    path = host(root, "/etc/ld.so.cache")
    os.makedirs(os.path.dirname(path))
    if state == "stale":
        lib(root, "/gone/libsc.so.7", soname="libsc.so.7")
        text(root, "/etc/ld.so.cache", cache_for(entries))
        os.unlink(host(root, "/gone/libsc.so.7"))
    elif state == "wrong-arch":
        lib(root, "/opt/a/libsc.so.7", soname="libsc.so.7")
        text(root, "/etc/ld.so.cache", cache_for([(0x0A03, "libsc.so.7", "/opt/a/libsc.so.7", 0),
                                                  (0x0003, "libsc.so.7", "/opt/a/libsc.so.7", 0)]))
    elif state == "wrong-endian":
        lib(root, "/opt/a/libsc.so.7", soname="libsc.so.7")
        text(root, "/etc/ld.so.cache", cache_for([(0x303, "libsc.so.7", "/opt/a/libsc.so.7", 0)],
                                                 end=other))
    elif state == "truncated":
        text(root, "/etc/ld.so.cache", cache_for(entries * 4)[:70])
    elif state == "garbage":
        text(root, "/etc/ld.so.cache", os.urandom(4096))
    elif state == "empty":
        text(root, "/etc/ld.so.cache", b"")
    elif state == "directory":
        os.makedirs(path)
    elif state == "dangling-link":
        os.symlink("/nonexistent/ld.so.cache", path)
    else:
        data = bytearray(cache_for(entries))
        struct.pack_into(cases.NATIVE_END + "I", data, 20, 0xFFFFFFFF)
        text(root, "/etc/ld.so.cache", bytes(data))
    answer, trace = lookup_traced(resolver(root), "sc")
    assert answer == soname, trace


def test_cache_rewritten_while_readers_resolve(tmp_path: object) -> None:
    """A writer replaces the cache atomically (rename), rewrites it in place in two halves,
    and leaves it truncated, while 4 threads resolve: every answer is one that some state
    of the file justifies, none raises, and the final state is what they end up seeing."""
    root = str(tmp_path)
    for v in (1, 2, 3):
        lib(root, "%s/libfoo.so.%d" % ("/opt/c", v), soname="libfoo.so.%d" % v)
    lib(root, LIBDIR + "/libfoo.so.5", soname="libfoo.so.5")  # what the scan finds
    a = cache_for([(0x303, "libfoo.so.1", "/opt/c/libfoo.so.1", 0)])
    b = cache_for([(0x303, "libfoo.so.2", "/opt/c/libfoo.so.2", 0),
                   (0x303, "libfoo.so.3", "/opt/c/libfoo.so.3", 0)])
    path = host(root, "/etc/ld.so.cache")
    os.makedirs(os.path.dirname(path))
    with open(path, "wb") as f:
        f.write(a)
    stop = threading.Event()
    writes = [0]

    def writer() -> None:
        n = 0
        while not stop.is_set():
            data = (a, b)[n % 2]
            mode = n % 3
            if mode == 0:  # atomic, as ldconfig does: write FILE~ then rename
                with open(path + "~", "wb") as f:
                    f.write(data)
                os.replace(path + "~", path)
            elif mode == 1:  # in place, in two halves
                with open(path, "r+b" if os.path.exists(path) else "wb") as f:
                    f.truncate(0)
                    f.write(data[:len(data) // 2])
                    f.flush()
                    f.write(data[len(data) // 2:])
            else:  # left truncated for a moment
                with open(path, "wb") as f:
                    f.write(data[:30])
            n += 1
            writes[0] = n

    shared = resolver(root)
    answers: list[object] = []
    failures: list[BaseException] = []

    def reader(own: bool) -> None:
        r = resolver(root) if own else shared
        try:
            for _ in range(300):
                answers.append(lookup_traced(r, "foo")[0])
        except BaseException as e:
            failures.append(e)

    w = threading.Thread(target=writer, daemon=True)
    w.start()
    readers = [threading.Thread(target=reader, args=(i % 2 == 0,)) for i in range(4)]
    for t in readers:
        t.start()
    for t in readers:
        t.join(120)
    stop.set()
    w.join(30)
    assert not failures, failures[:3]
    assert len(answers) == 1200
    assert set(answers) <= {"libfoo.so.1", "libfoo.so.2", "libfoo.so.5"}, set(answers)
    assert writes[0] > 3
    with open(path + "~", "wb") as f:
        f.write(b)
    os.replace(path + "~", path)
    assert lookup_traced(shared, "foo")[0] == "libfoo.so.2"
    assert lookup_traced(resolver(root), "foo")[0] == "libfoo.so.2"


def test_cache_rewritten_to_truncated_garbage_then_repaired(tmp_path: object) -> None:
    """After the cache turns unreadable, then valid again (new inode), lookups follow."""
    root = str(tmp_path)
    lib(root, "/opt/c/libfix.so.1", soname="libfix.so.1")
    good(root, "fix", 0)
    path = text(root, "/etc/ld.so.cache", cache_for([(0x303, "libfix.so.1",
                                                      "/opt/c/libfix.so.1", 0)]))
    r = resolver(root)
    assert lookup_traced(r, "fix")[0] == "libfix.so.1"
    text(root, "/etc/ld.so.cache~", b"glibc-ld.so.cache1.1\0\0")
    os.replace(path + "~", path)
    assert lookup_traced(r, "fix")[0] == "libfix.so.0"
    with open(path + "~", "wb") as f:
        f.write(cache_for([(0x303, "libfix.so.1", "/opt/c/libfix.so.1", 0)]))
    os.replace(path + "~", path)
    assert lookup_traced(r, "fix")[0] == "libfix.so.1"
    assert isinstance(_ldcache.read_cache(path), _ldcache.Cache)
