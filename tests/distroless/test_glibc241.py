"""The pure-Python cache writer against glibc 2.41's ldconfig, run inside python3-debian13.

``python -m ctypes_shim ldconfig --root ROOT -C FILE`` (run here, outside the root) and
trixie's real ``ldconfig -X -C FILE`` (libc-bin 2.41, run inside the root under chroot.py)
write a cache for the same root; the files must be byte-identical apart from the generator
string, and glibc's own ``ldconfig -p`` must list the same entries from both. Our ``-p``
must print glibc's cache exactly as glibc's ``-p`` does. tests/test_ldconfig.py does the
same against the host's glibc 2.36.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import chroot
import mkroot
import pytest
from test_debian13 import DIFF_LAYER, generator_free, real_ldconfig

pytestmark = pytest.mark.distroless

LIBDIR = "usr/lib/x86_64-linux-gnu"
LOCAL = "usr/local/lib"  # named by the image's /etc/ld.so.conf.d/libc.conf


def _copy_lib(root: Path, name: str) -> None:
    """A real library of the image (libffi.so.8) under another name in /usr/local/lib."""
    src = os.path.realpath(root / LIBDIR / "libffi.so.8")
    (root / LOCAL).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, root / LOCAL / name)


def _hwcaps(root: Path) -> None:
    d = root / LOCAL / "glibc-hwcaps/x86-64-v3"
    d.mkdir(parents=True)
    shutil.copyfile(os.path.realpath(root / LIBDIR / "libffi.so.8"), d / "libffi.so.8")


def _osabi_freebsd(root: Path) -> None:
    _copy_lib(root, "libfreebsd.so.1")
    with open(root / LOCAL / "libfreebsd.so.1", "r+b") as f:
        f.seek(7)  # e_ident[EI_OSABI]
        f.write(b"\x09")  # ELFOSABI_FREEBSD


def _dev_link(root: Path) -> None:
    (root / LOCAL).mkdir(parents=True, exist_ok=True)
    (root / LOCAL / "libffi.so").symlink_to("/" + LIBDIR + "/libffi.so.8")


def _vendor_conf(root: Path) -> None:
    vendor = root / "opt/vendor/lib"
    vendor.mkdir(parents=True)
    shutil.copyfile(os.path.realpath(root / LIBDIR / "libffi.so.8"), vendor / "libvendor.so.3")
    (root / "etc/ld.so.conf.d/vendor.conf").write_text("/opt/vendor/lib\n")


def _later_layer(root: Path) -> None:
    mkroot.add_layer(str(root), list(DIFF_LAYER), image=mkroot.DEBIAN13)


CASES: dict[str, Callable[[Path], None]] = {
    "image": lambda root: None,
    "later-layer": _later_layer,
    "dpkg-new": lambda root: _copy_lib(root, "libffi.so.8.dpkg-new"),
    "dpkg-tmp": lambda root: _copy_lib(root, "libffi.so.8.dpkg-tmp"),
    "rpm-semicolon": lambda root: _copy_lib(root, "libffi.so.8;6f1c2a"),
    "prelink-tmp": lambda root: _copy_lib(root, "libffi.so.8.#prelink#.Ab12Cd"),  # 2.36 too
    "hwcaps-subdir": _hwcaps,
    "osabi-freebsd": _osabi_freebsd,
    "dev-link": _dev_link,
    "name-not-soname": lambda root: _copy_lib(root, "libother.so"),
    "ld.so.conf.d-dir": _vendor_conf,
}
# The writer follows the glibc in the root, so no case differs from 2.41 (the 2.39 skip of
# package managers' temporary files included: the dpkg-new/dpkg-tmp/rpm-semicolon cases).
XFAIL_241: dict[str, str] = {}  # the writer follows the root's glibc (2.41 here)


@pytest.fixture(scope="module")
def base_root(make_debian13_root: Callable[[str], Path]) -> Path:
    return make_debian13_root("glibc241")


def _copy(base: Path, root: Path, case: str) -> Path:
    """``base`` for one case: hard links (the setups add new files, and both ldconfigs write
    theirs by rename), except where packages are unpacked over the tree (dpkg-deb -x)."""
    flags = "-a" if case == "later-layer" else "-al"
    subprocess.run(["cp", flags, str(base), str(root)], check=True)
    return root


def _ours(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "ctypes_shim", "ldconfig", "--root", str(root),
                           *args], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(c, marks=[pytest.mark.xfail(strict=True, raises=AssertionError,
                                                 reason=XFAIL_241[c])]
                     if c in XFAIL_241 else [])
        for c in CASES
    ],
)
def test_writer_matches_glibc_241(base_root: Path, tmp_path: Path, case: str) -> None:
    """Same bytes as glibc 2.41's ``ldconfig -X -C`` apart from the generator; same listing."""
    root = _copy(base_root, tmp_path / "root", case)
    CASES[case](root)
    _ours(root, "-C", "/tmp/ours.cache")
    real_ldconfig(root, "-X", "-C", "/tmp/real.cache")
    ours, ours_gen = generator_free((root / "tmp/ours.cache").read_bytes())
    real, real_gen = generator_free((root / "tmp/real.cache").read_bytes())
    assert real_gen.startswith("ldconfig (Debian GLIBC 2.41-"), real_gen
    assert ours_gen.startswith("ctypes_shim "), ours_gen
    listed = {
        which: real_ldconfig(root, "-p", "-C", f"/tmp/{which}.cache").stdout.splitlines()
        for which in ("ours", "real")
    }
    # Line 0 names the file and the last line the generator: the entries in between.
    assert listed["ours"][1:-1] == listed["real"][1:-1]
    assert ours == real


@pytest.mark.parametrize("case", ["image", "later-layer"])
def test_print_matches_glibc_241(base_root: Path, tmp_path: Path, case: str) -> None:
    """Our ``ldconfig -p`` prints a cache glibc 2.41 wrote exactly as glibc 2.41's ``-p``."""
    root = _copy(base_root, tmp_path / "root", case)
    CASES[case](root)
    real_ldconfig(root, "-X", "-C", "/tmp/real.cache")
    ours = _ours(root, "-p", "-C", "/tmp/real.cache").stdout
    real = real_ldconfig(root, "-p", "-C", "/tmp/real.cache").stdout
    assert ours == real
    assert real.splitlines()[-1].startswith("Cache generated by: ldconfig (Debian GLIBC 2.41-")


def test_glibc_is_241(base_root: Path) -> None:
    """The ldconfig these tests run is trixie's glibc 2.41."""
    res = chroot.run(str(base_root), ["--version"], entrypoint=["/sbin/ldconfig"])
    assert res.rc == 0 and res.stdout.startswith("ldconfig (Debian GLIBC 2.41-"), res
