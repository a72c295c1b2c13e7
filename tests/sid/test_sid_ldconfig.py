"""The pure-Python cache writer and ``ldconfig -p`` against Debian unstable's glibc 2.43 ldconfig.

Both run inside the sid root: ``/sbin/ldconfig -X -r DIR -C FILE`` (glibc 2.43-7) and
``python3.14 -m ctypes_shim ldconfig --root DIR -C FILE`` (the wheel). The files must be
byte-identical apart from the generator string, and ``ldconfig -p`` must list the same
entries. The writer follows the glibc of the root it writes for; each case below holds what
changed in ldconfig after 2.36 (bminor/glibc history of elf/ldconfig.c, elf/readelflib.c,
elf/cache.c), so 2.43 itself judges those rules:

- 2.37, 8ee878592c "Assume only FLAG_ELF_LIBC6 suport": every ELF library is FLAG_ELF_LIBC6
  (no more FLAG_ELF for an i386 object with neither a known PT_INTERP nor a known
  DT_NEEDED); ``dir=TYPE`` lines of ld.so.conf are no longer parsed, the whole line is the
  directory; ``ldconfig -p`` prints "unknown or unsupported flag" for any type but libc6;
- 2.37, b78ff5a25d "elf: Remove legacy hwcaps support from ldconfig": no tls/, x86_64/,
  i686/sse2/ ... subdirectories, and no hwcap bits for a configured directory whose name
  is a platform (/opt/x86_64);
- 2.39, 2aa0974d25 + cfb5a97a93 (``skip_dso_based_on_name``): names ending in
  ``.dpkg-new`` or ``.dpkg-tmp``, or containing ``;`` (RPM), are skipped.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Callable

import elfgen
import pytest
from sidchroot import BASE_ENV, run
from sidlayout import deps, python

VERSION = "3.14"  # the writer is pure Python; its unit tests run on both in test_sid_suite.py
ENV = {**BASE_ENV, "LC_ALL": "C", "PYTHONPATH": deps(VERSION)}
EXT_MAGIC = 0xEAA42174  # sysdeps/generic/dl-cache.h cache_extension_magic
TAG_GENERATOR = 0  # cache_extension_tag_generator


def _lib(soname: str | None = None, **kw: object) -> bytes:
    return elfgen.elf(soname=soname, **kw)  # type: ignore[arg-type]


def common(root: str) -> None:
    """ldconfig's rules that 2.36 and 2.43 share: conf includes, duplicate dirs, versions,
    links, SONAME-less files, non-libraries, foreign machines, prelink temporaries."""
    put = elfgen.put
    put(root, "/etc/ld.so.conf",
        "include /etc/ld.so.conf.d/*.conf\n/opt/a\n  /opt/b/  # trailing\n# comment\n"
        "/opt/dup\n/nonexistent\n")
    put(root, "/etc/ld.so.conf.d/10-x.conf", "/opt/c\ninclude sub/*.conf\n")
    put(root, "/etc/ld.so.conf.d/05-y.conf", "/opt/d\n/opt/a\n")
    put(root, "/etc/ld.so.conf.d/sub/1.conf", "/opt/e\n")
    a = "/opt/a/"
    put(root, a + "libfoo.so.1", _lib("libfoo.so.1"))
    put(root, a + "libfoo.so.10.2", _lib("libfoo.so.10"))
    os.symlink("libfoo.so.10.2", root + a + "libfoo.so.10")
    os.symlink("libfoo.so.10", root + a + "libfoo.so")  # dev link: a key of its own
    put(root, a + "libnosoname.so.3", _lib())
    put(root, a + "libbar.so", "/* GNU ld script */\nGROUP ( libbar.so.1 )\n")
    put(root, a + "libjunk.so.1", "x" * 100)
    os.symlink("nowhere.so", root + a + "libdangle.so.1")
    put(root, a + "libexec.so.1", _lib("libexec.so.1", e_type=elfgen.ET_EXEC))
    put(root, a + "libi386c.so.1", _lib("libi386c.so.1", bits=32, machine=elfgen.EM_386,
                                        needed=("libc.so.6",)))
    put(root, a + "libi386i.so.1", _lib("libi386i.so.1", bits=32, machine=elfgen.EM_386,
                                        interp="/lib/ld-linux.so.2"))
    put(root, a + "libx32.so.1", _lib("libx32.so.1", bits=32, machine=elfgen.EM_X86_64))
    put(root, a + "libarm64.so.1", _lib("libarm64.so.1", machine=elfgen.EM_AARCH64))
    put(root, a + "libpre.so.1.#prelink#.abcdef", _lib("libpre.so.1"))
    put(root, a + "libtilde.so.2~", _lib("libtilde.so.2"))
    put(root, a + "ld-fake.so.1", _lib("ld-fake.so.1"))
    put(root, a + "libnum.so.01", _lib("libnum.so.01"))
    put(root, a + "libnum.so.1", _lib("libnum.so.1"))
    put(root, "/opt/b/libsame.so.1", _lib("libsame.so.1"))
    put(root, "/opt/b/libsame.so.1.5", _lib("libsame.so.1"))
    for d in "cde":
        put(root, f"/opt/{d}/lib{d}1.so.1", _lib(f"lib{d}1.so.1"))
    os.symlink("/opt/a", root + "/opt/dup")
    os.makedirs(root + "/usr/lib/x86_64-linux-gnu")
    os.symlink("usr/lib", root + "/lib")


def hwcaps(root: str) -> None:
    """glibc-hwcaps subdirectories (glibc 2.33+), unchanged since."""
    common(root)
    a = "/opt/a/"
    elfgen.put(root, a + "glibc-hwcaps/x86-64-v3/libfoo.so.10.2", _lib("libfoo.so.10"))
    elfgen.put(root, a + "glibc-hwcaps/x86-64-v2/libhw2.so.1", _lib("libhw2.so.1"))
    os.makedirs(root + a + "glibc-hwcaps/empty-unused")


def package_temporaries(root: str) -> None:
    common(root)
    a = "/opt/a/"
    elfgen.put(root, a + "libnew.so.1.dpkg-new", _lib("libnew.so.1"))
    elfgen.put(root, a + "libtmp.so.1.dpkg-tmp", _lib("libtmp.so.1"))
    elfgen.put(root, a + "librpm.so.1;5f3a2b1c", _lib("librpm.so.1"))


def elf_without_libc(root: str) -> None:
    common(root)
    elfgen.put(root, "/opt/a/libi386.so.1", _lib("libi386.so.1", bits=32,
                                                 machine=elfgen.EM_386))


def dir_type(root: str) -> None:
    common(root)
    with open(root + "/etc/ld.so.conf", "a") as f:
        f.write("/opt/typed=libc6\n")
    elfgen.put(root, "/opt/typed/libtyped.so.1", _lib("libtyped.so.1"))


def legacy_hwcaps(root: str) -> None:
    common(root)
    a = "/opt/a/"
    elfgen.put(root, a + "tls/libtls.so.1", _lib("libtls.so.1"))
    elfgen.put(root, a + "tls/x86_64/libtlsx.so.1", _lib("libtlsx.so.1"))
    elfgen.put(root, a + "i686/sse2/libsse.so.1", _lib("libsse.so.1"))
    elfgen.put(root, "/opt/x86_64/libx8664dir.so.1", _lib("libx8664dir.so.1"))
    with open(root + "/etc/ld.so.conf", "a") as f:
        f.write("/opt/x86_64\n")


CASES = [
    pytest.param(None, id="sid-root"),
    pytest.param(common, id="common"),
    pytest.param(hwcaps, id="glibc-hwcaps"),
    pytest.param(package_temporaries, id="package-temporaries"),  # 2.39
    pytest.param(elf_without_libc, id="elf-flag"),  # 2.37
    pytest.param(dir_type, id="dir-type"),  # 2.37
    pytest.param(legacy_hwcaps, id="legacy-hwcaps"),  # 2.37
]


def without_generator(data: bytes) -> tuple[bytes, list[tuple[int, int, bytes]]]:
    """The file up to its extension directory, and each section (tag, flags, bytes) with the
    generator's bytes left out (layout: glibc elf/cache.c save_cache, write_extensions)."""
    assert data[:20] == b"glibc-ld.so.cache1.1", data[:20]
    (ext_offset,) = struct.unpack_from("<I", data, 32)
    magic, count = struct.unpack_from("<II", data, ext_offset)
    assert magic == EXT_MAGIC
    sections = []
    for i in range(count):
        tag, flags, offset, size = struct.unpack_from("<IIII", data, ext_offset + 8 + 16 * i)
        sections.append((tag, flags, b"" if tag == TAG_GENERATOR else data[offset:offset + size]))
    return data[:ext_offset], sections


def _ok(res: object, what: str) -> None:
    rc, out, err = res  # type: ignore[misc]
    assert rc == 0, f"{what}: rc={rc}\n{out}\n{err}"


class Case:
    """A case root inside the sid root (``inner``) and both cache files, as seen inside."""

    def __init__(self, sid_root: Path, build: Callable[[str], None] | None) -> None:
        self.sid_root = sid_root
        # Under /tmp: kept out of the library walk of test_sid_oracle.py.
        self.inner = "/" if build is None else f"/tmp/t/{build.__name__}"
        if build is not None:
            build(str(sid_root) + self.inner)
        cache_dir = "/tmp/t" if build is None else "/etc"
        self.real, self.ours = f"{cache_dir}/real.cache", f"{cache_dir}/ours.cache"
        os.makedirs(self.host(self.real).parent, exist_ok=True)
        _ok(run(str(sid_root), ["/sbin/ldconfig", "-X", "-r", self.inner, "-C", self.real],
                env=ENV), "ldconfig")
        _ok(run(str(sid_root), [python(VERSION), "-m", "ctypes_shim", "ldconfig", "--root",
                                self.inner, "-C", self.ours], env=ENV), "ctypes_shim ldconfig")

    def host(self, in_case: str) -> Path:
        """Where a path of the case root (as -r/--root see it) lies on the host."""
        return self.sid_root / self.inner.lstrip("/") / in_case.lstrip("/")

    def listing(self, tool: str, cache: str) -> list[str]:
        """``ldconfig -p`` of ``cache`` by glibc 2.43 ("glibc") or by ctypes_shim ("ours")."""
        argv = (["/sbin/ldconfig", "-p", "-r", self.inner, "-C", cache] if tool == "glibc" else
                [python(VERSION), "-m", "ctypes_shim", "ldconfig", "-p", "--root", self.inner,
                 "-C", cache])
        res = run(str(self.sid_root), argv, env=ENV)
        _ok(res, " ".join(argv[:4]))
        return res.stdout.splitlines()


@pytest.fixture(scope="module")
def cases(sid_root: Path) -> Callable[[Callable[[str], None] | None], Case]:
    made: dict[object, Case] = {}

    def get(build: Callable[[str], None] | None) -> Case:
        if build not in made:
            made[build] = Case(sid_root, build)
        return made[build]

    return get


@pytest.mark.parametrize("build", CASES)
def test_cache_is_byte_identical_to_glibc_243(cases: Callable[..., Case],
                                              build: Callable[[str], None] | None) -> None:
    """ldconfig -X -r DIR -C FILE of glibc 2.43 and ours: the same bytes but the generator."""
    case = cases(build)
    real_bytes = case.host(case.real).read_bytes()
    ours_bytes = case.host(case.ours).read_bytes()
    assert b"stable release version 2.43" in real_bytes
    assert without_generator(ours_bytes) == without_generator(real_bytes)


@pytest.mark.parametrize("build", CASES)
def test_glibc_243_lists_our_cache_as_its_own(cases: Callable[..., Case],
                                              build: Callable[[str], None] | None) -> None:
    """glibc 2.43's ldconfig -p: the same entries for our file and its own."""
    case = cases(build)
    real, ours = case.listing("glibc", case.real), case.listing("glibc", case.ours)
    assert real[-1].startswith("Cache generated by: ldconfig (Debian GLIBC 2.43")
    assert len(real) > 3
    assert ours[1:-1] == real[1:-1]  # line 0 names the file, the last line the generator


@pytest.mark.parametrize("build", CASES)
def test_our_listing_of_a_glibc_243_cache_is_byte_identical(
        cases: Callable[..., Case], build: Callable[[str], None] | None) -> None:
    """ctypes_shim ldconfig -p prints glibc 2.43's own cache exactly as 2.43 does."""
    case = cases(build)
    assert case.listing("ours", case.real) == case.listing("glibc", case.real)


def test_our_listing_of_an_elf_flag_entry_matches_glibc_243(cases: Callable[..., Case]) -> None:
    """A FLAG_ELF (0x0001) entry, as glibc <= 2.36 wrote for libi386.so.1: both print it as
    2.43 does, "unknown or unsupported flag" (8ee878592c, elf/cache.c print_entry)."""
    case = cases(elf_without_libc)
    data = bytearray(case.host(case.real).read_bytes())
    (nlibs,) = struct.unpack_from("<I", data, 20)
    for i in range(nlibs):  # file_entry_new: int32 flags, uint32 key, value, osversion; u64
        flags, key = struct.unpack_from("<iI", data, 48 + 24 * i)
        if data[key:data.index(b"\0", key)] == b"libi386.so.1":
            assert flags == 0x0003  # what 2.43 wrote: libc6
            struct.pack_into("<i", data, 48 + 24 * i, 0x0001)
            break
    else:
        pytest.fail("2.43 did not cache libi386.so.1")
    case.host("/etc/old.cache").write_bytes(bytes(data))
    glibc = case.listing("glibc", "/etc/old.cache")
    assert "\tlibi386.so.1 (unknown or unsupported flag) => /opt/a/libi386.so.1" in glibc
    assert case.listing("ours", "/etc/old.cache") == glibc
