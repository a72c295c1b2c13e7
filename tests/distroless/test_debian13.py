"""python3-debian13 alone: its pre-generated cache, and the shim against stock with a fresh one.

The image ships libc-bin's /sbin/ldconfig and an /etc/ld.so.cache made when the image was
built (see mkroot.py). Stock find_library answers from that cache through ``ldconfig -p``;
a later layer that adds libraries leaves it stale. The differential test compares, for
every library file in the root and every name derived from it, the shim in the image root
with stock find_library in a copy of the root whose cache the image's own ldconfig has just
rebuilt: first the image as shipped, then after a later layer (the shipped cache now
stale), then with the cache deleted.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any, Callable

import chroot
import mkroot
import pytest
from recipe import LATER_LAYER, pip

pytestmark = pytest.mark.distroless

UPSTREAM_CACHE = Path(__file__).parent / "data/python3-debian13.ld.so.cache.amd64"
# The later layer of the differential test: LATER_LAYER, plus a library whose soname is not
# "lib<name>.so.N" (libusb-1.0.so.0), so names such as "usb-1" are asked for.
DIFF_LAYER = (LATER_LAYER, "libusb-1.0-0")

# find_library for each name of a JSON list on stdin; ``shim`` uses ctypes_shim.find_library,
# else ctypes.util.find_library as the program sees it. Process starts are recorded.
FIND = """
import json, sys
events = []
sys.addaudithook(lambda ev, a: ev.startswith(("subprocess.Popen", "os.exec", "os.posix_spawn"))
                 and events.append(ev))
if sys.argv[1] == "shim":
    import ctypes_shim
    find = ctypes_shim.find_library
else:
    import ctypes.util
    find = ctypes.util.find_library
names = json.load(sys.stdin)
out = {name: find(name) for name in names}
print(json.dumps({"results": out, "events": sorted(set(events))}))
"""


def generator_free(data: bytes) -> tuple[bytes, str]:
    """A new-format cache without its generator string, and that string.

    Layout of sysdeps/generic/dl-cache.h: ``struct cache_file_new`` (48 bytes, the
    extension offset at byte 32), at that offset ``struct cache_extension`` (magic
    0xeaa42174, count) and ``count`` sections (tag, flags, offset, size); tag 0 is
    the generator. elf/cache.c ``save_cache`` writes the generator last, so dropping
    it and zeroing its size leaves everything else to compare.
    """
    (ext,) = struct.unpack_from("<I", data, 32)
    magic, count = struct.unpack_from("<II", data, ext)
    assert magic == 0xEAA42174, hex(magic)
    out = bytearray(data)
    for i in range(count):
        tag, _flags, offset, size = struct.unpack_from("<IIII", data, ext + 8 + 16 * i)
        if tag == 0:
            assert offset + size == len(data), "the generator is not the last thing written"
            struct.pack_into("<I", out, ext + 8 + 16 * i + 12, 0)
            return bytes(out[:offset]), data[offset:].decode()
    raise AssertionError("no generator section")


def real_ldconfig(root: Path, *args: str) -> chroot.Result:
    """The image's own /sbin/ldconfig (trixie's libc-bin, glibc 2.41), run inside ``root``."""
    res = chroot.run(str(root), list(args), entrypoint=["/sbin/ldconfig"])
    assert res.rc == 0, res.stderr
    return res


@pytest.fixture(scope="module")
def shipped_root(make_debian13_root: Callable[[str], Path]) -> Path:
    """python3-debian13 as shipped (the tests below only add files under /tmp, and .pyc)."""
    return make_debian13_root("shipped")


def test_pregenerated_cache_is_upstreams(shipped_root: Path) -> None:
    """The cache mkroot.py generates is the one gcr.io/distroless/python3-debian13 ships for
    amd64 (python3/ldconfig/ld.so.cache.amd64), byte for byte apart from the generator."""
    root = shipped_root
    ours, ours_gen = generator_free((root / "etc/ld.so.cache").read_bytes())
    upstream, upstream_gen = generator_free(UPSTREAM_CACHE.read_bytes())
    assert ours == upstream
    for gen in (ours_gen, upstream_gen):
        assert gen.startswith("ldconfig (Debian GLIBC 2.41-") and gen.endswith(" 2.41"), gen
    # Read by glibc itself: the same 52 entries.
    scratch = root / "tmp/upstream.cache"
    shutil.copyfile(UPSTREAM_CACHE, scratch)
    listing = real_ldconfig(root, "-p", "-C", "/tmp/upstream.cache").stdout.splitlines()
    assert listing[0] == "52 libs found in cache `/tmp/upstream.cache'"
    assert listing[1:-1] == real_ldconfig(root, "-p").stdout.splitlines()[1:-1]
    st = (root / "etc/ld.so.cache").stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (0, 0, 0o644)


# python3/testdata/debian13.yaml "import_everything": every installed module imports, so the
# package set carries every native library the stdlib needs.
IMPORT_EVERYTHING = """
import pkgutil
skip_modules = frozenset((
  'asyncio.windows_events', 'asyncio.windows_utils', 'ctypes.wintypes',
  'distutils._msvccompiler', 'distutils.command.bdist_msi', 'distutils.msvc9compiler',
  'encodings.cp65001', 'encodings.mbcs', 'encodings.oem', 'multiprocessing.popen_spawn_win32',
  '_pyrepl.windows_console', 'winreg', 'test', '_ios_support', '_pyrepl._minimal_curses',
  '_distutils_system_mod', 'unittest.__main__', 'venv.__main__', 'dbm.gnu',
  'lib2to3.pgen2.conv', 'turtle',
))
def walk_packages_onerror(failed_module_name):
  raise Exception('failed to import module: {}'.format(repr(failed_module_name)))
for module_info in pkgutil.walk_packages(onerror=walk_packages_onerror):
  module_name = module_info.name
  if module_name in skip_modules or module_name.startswith('test.'):
    continue
  __import__(module_name)
print('FINISHED ENTIRE SCRIPT')
"""


def test_image_imports_everything(shipped_root: Path) -> None:
    """The image's structure test python3/testdata/debian13.yaml ``import_everything``."""
    r = chroot.run(str(shipped_root), ["-c", IMPORT_EVERYTHING], entrypoint=["/usr/bin/python3"],
                   timeout=120)
    assert (r.rc, r.stdout.splitlines()[-1:]) == (0, ["FINISHED ENTIRE SCRIPT"]), r.stderr[-3000:]


# -- the differential test ------------------------------------------------------------------


def derived_names(root: Path) -> list[str]:
    """Every name find_library could be asked for, from every library file in ``root``.

    For a file ``lib<s>`` whose name contains ``.so`` (what ldconfig considers), each prefix
    of ``s`` that ends before a ``.`` or ``-``, and ``s`` itself: ``libdb-5.3.so`` gives
    ``db``, ``db-5``, ``db-5.3``, ``db-5.3.so``.
    """
    names: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root):
        if dirpath == str(root):
            dirnames[:] = [d for d in dirnames if d not in ("proc", "sys", "dev")]
        for fn in filenames:
            if not (fn.startswith("lib") and ".so" in fn):
                continue
            s = fn[3:]
            names.update(s[:i] for i, ch in enumerate(s) if ch in ".-" and i)
            names.add(s)
    return sorted(names)


def find_all(root: Path, names: list[str], which: str, env: dict[str, str]) -> dict[str, Any]:
    res = chroot.run(str(root), ["-c", FIND, which], env=env, input=json.dumps(names),
                     timeout=600)
    assert res.rc == 0, res.stderr
    out: dict[str, Any] = json.loads(res.stdout)
    return out


def stock_with_fresh_cache(root: Path, tmp: Path, names: list[str]) -> dict[str, str | None]:
    """Stock find_library for each name in a copy of ``root`` whose cache is fresh."""
    oracle = tmp / "oracle"
    # Hard links, not copies: ldconfig replaces what it writes (rename, unlink + symlink)
    # and never writes into an existing file, so ``root`` is left as it was.
    subprocess.run(["cp", "-al", str(root), str(oracle)], check=True)
    real_ldconfig(oracle)  # the image's ldconfig, as the image build ran it: a fresh cache
    stock = find_all(oracle, names, "stock", {"CTYPES_SHIM_DISABLE": "1"})
    shutil.rmtree(oracle)
    assert "subprocess.Popen" in stock["events"]  # /sbin/ldconfig -p, and ld for misses
    return stock["results"]  # type: ignore[no-any-return]


def differences(
    root: Path, names: list[str], stock: dict[str, str | None]
) -> dict[str, tuple[str | None, str | None]]:
    """{name: (shim in ``root``, ``stock[name]``)} where they differ."""
    shim = find_all(root, names, "shim", {})
    assert shim["events"] == []  # the shim started nothing
    return {n: (shim["results"][n], stock[n]) for n in names if shim["results"][n] != stock[n]}


@pytest.fixture(scope="module")
def diff_root(make_debian13_root: Callable[[str], Path], shim_wheel: Path) -> Path:
    """python3-debian13 with only the ctypes-shim wheel in its site dir (the .pth route)."""
    root = make_debian13_root("diff")
    pip("install", "--no-deps", "--target", str(root / mkroot.DEBIAN13.site_dir),
        str(shim_wheel), python=mkroot.DEBIAN13.python)
    return root


@pytest.fixture(scope="module")
def layered_diff(diff_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The differences in the image as shipped, then after DIFF_LAYER (cache left stale)."""
    tmp = tmp_path_factory.mktemp("oracle")
    names_before = derived_names(diff_root)
    before = differences(
        diff_root, names_before, stock_with_fresh_cache(diff_root, tmp, names_before)
    )
    cache = diff_root / "etc/ld.so.cache"
    shipped = cache.read_bytes()
    mkroot.add_layer(str(diff_root), list(DIFF_LAYER), image=mkroot.DEBIAN13)
    assert cache.read_bytes() == shipped
    names_after = derived_names(diff_root)
    stock = stock_with_fresh_cache(diff_root, tmp, names_after)
    after = differences(diff_root, names_after, stock)
    # Without any cache (deleted, as a user might to save space): the shim only scans.
    cache.rename(diff_root / "etc/ld.so.cache.away")
    try:
        no_cache = differences(diff_root, names_after, stock)
    finally:
        (diff_root / "etc/ld.so.cache.away").rename(cache)
    return {"before": before, "names_before": names_before, "after": after,
            "names_after": names_after, "no_cache": no_cache}


def test_shim_equals_stock_with_a_fresh_cache(layered_diff: dict[str, Any]) -> None:
    """Zero differences: in the image as shipped; after the later layer, where the shim's
    answers for the layer's libraries come from its scan and stock's from the fresh cache;
    and in that root with /etc/ld.so.cache deleted, where the shim only scans."""
    # 206 names today, from the 52 cached libraries and other lib*.so* files (gconv, ...)
    assert {"c", "c.so", "c.so.6", "db-5", "db-5.3.so", "ssl", "stdc++"} <= set(
        layered_diff["names_before"])
    assert {"yaml-0", "yaml-0.so", "usb-1", "usb-1.0"} <= set(layered_diff["names_after"])
    assert layered_diff["before"] == {}
    assert layered_diff["after"] == {}
    assert layered_diff["no_cache"] == {}
