"""The ld.so.cache reader, on caches that the host's real ldconfig writes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import elfgen
import pytest
from conftest import FakeRoot

from ctypes_shim import _ldcache

LDCONFIG = shutil.which("ldconfig") or "/sbin/ldconfig"
needs_ldconfig = pytest.mark.skipif(not os.path.exists(LDCONFIG), reason="host has no ldconfig")
LINE = re.compile(r"^\t(\S+) \(([^)]*)\) => (\S+)$")


def ldconfig_p(cache: str) -> list[tuple[str, str]]:
    out = subprocess.run([LDCONFIG, "-p", "-C", cache], capture_output=True, text=True,
                         check=True, env={"LC_ALL": "C"}).stdout
    return [(m.group(1), m.group(3)) for m in map(LINE.match, out.splitlines()) if m]


def populate(root: FakeRoot) -> None:
    root.lib("/usr/lib/libfoo.so.1", soname="libfoo.so.1")
    root.lib("/usr/lib/libfoo.so.10", soname="libfoo.so.10")
    root.lib("/usr/lib/libbar.so", soname=None)
    root.lib("/usr/lib/lib32.so.2", elfgen.elf(bits=32, machine=elfgen.EM_386, soname="lib32.so.2",
                                            needed=("libc.so.6",)))
    root.lib("/usr/lib/lib32elf.so.1", elfgen.elf(bits=32, machine=elfgen.EM_386,
                                                 soname="lib32elf.so.1"))
    root.lib("/usr/lib/glibc-hwcaps/x86-64-v3/libfoo.so.10", soname="libfoo.so.10")
    root.text("/etc/ld.so.conf", "")


@needs_ldconfig
@pytest.mark.host
@pytest.mark.parametrize("fmt", ["new", "compat", "old"])
def test_reads_what_ldconfig_writes(root: FakeRoot, fmt: str) -> None:
    """Keys and values, in file order, equal `ldconfig -p` for every cache format."""
    populate(root)
    subprocess.run([LDCONFIG, "-X", "-c", fmt, "-r", root.path], check=True)
    cache = _ldcache.read_cache(root.host("/etc/ld.so.cache"))
    assert cache.format == fmt
    listed = ldconfig_p(root.host("/etc/ld.so.cache"))
    assert [(e.key, e.value) for e in cache.entries] == listed
    assert len(listed) >= 5
    flags = {e.key: e.flags for e in cache.entries}
    assert flags["lib32.so.2"] == 0x0003  # i386 needing libc.so.6: libc6
    assert flags["lib32elf.so.1"] == 0x0001  # i386 needing nothing: plain ELF
    if fmt != "old":
        hw = [e for e in cache.entries if e.hwcap]
        assert [(e.key, e.hwcap_name) for e in hw] == [("libfoo.so.10", "x86-64-v3")]


@needs_ldconfig
@pytest.mark.host
def test_reads_the_host_cache() -> None:
    """The host's /etc/ld.so.cache parses to exactly what `ldconfig -p` lists."""
    if not os.path.exists("/etc/ld.so.cache"):
        pytest.skip("host has no /etc/ld.so.cache")
    cache = _ldcache.read_cache("/etc/ld.so.cache")
    assert [(e.key, e.value) for e in cache.entries] == ldconfig_p("/etc/ld.so.cache")


@needs_ldconfig
@pytest.mark.parametrize("cut", [0, 10, 30, 47, 60, 200])
def test_truncated_cache_is_invalid(root: FakeRoot, cut: int) -> None:
    """A cache cut short anywhere raises CacheInvalid, never IndexError or struct.error."""
    populate(root)
    subprocess.run([LDCONFIG, "-X", "-r", root.path], check=True)
    with open(root.host("/etc/ld.so.cache"), "rb") as f:
        data = f.read()
    with pytest.raises(_ldcache.CacheInvalid):
        _ldcache.parse_cache(data[:cut])


def test_byte_order_flag_is_honoured() -> None:
    """The header's endianness field decides how the rest is read."""
    header = _ldcache.MAGIC_NEW + (0).to_bytes(4, "big") * 2 + bytes([3, 0, 0, 0]) + b"\0" * 16
    assert _ldcache.parse_cache(header).byteorder == "big"
    with pytest.raises(_ldcache.CacheInvalid, match="invalid"):
        _ldcache.parse_cache(header[:28] + bytes([1]) + header[29:])
