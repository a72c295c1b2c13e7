"""The struct-based ELF reader, on generated files and against pyelftools on host libraries."""

from __future__ import annotations

import glob
import io
import os

import elfgen
import pytest

from ctypes_shim import _elf


@pytest.mark.parametrize("bits", [32, 64])
@pytest.mark.parametrize("endian", ["little", "big"])
def test_reads_class_order_machine_soname(bits: int, endian: str) -> None:
    """Every class/byte-order combination yields its header fields and SONAME."""
    data = elfgen.elf(bits=bits, endian=endian, machine=elfgen.EM_PPC64, soname="libx.so.3",
                      needed=("liba.so.1", "libb.so.2"), interp="/lib/ld.so.1")
    info = _elf.parse_elf(data)
    assert info.elf_class == (1 if bits == 32 else 2)
    assert info.data == (1 if endian == "little" else 2)
    assert info.machine == elfgen.EM_PPC64
    assert info.soname == "libx.so.3"
    assert info.needed == ("liba.so.1", "libb.so.2")
    assert info.interp == "/lib/ld.so.1"
    assert _elf.is_shared_object(info)


def test_no_soname() -> None:
    """A library linked without -soname has none."""
    assert _elf.parse_elf(elfgen.elf()).soname is None


@pytest.mark.parametrize(("data", "message"), [
    (b"", "no ELF magic"),
    (b"!<arch>\n", "no ELF magic"),
    (b"/* GNU ld script */ GROUP ( libc.so.6 )", "no ELF magic"),
    (b"\x7fELF\x03\x01\x01" + b"\0" * 57, "unknown ELF class"),
    (b"\x7fELF\x02\x03\x01" + b"\0" * 57, "unknown byte order"),
    (b"\x7fELF\x02\x01\x01" + b"\0" * 20, "truncated ELF header"),
], ids=["empty", "archive", "linker-script", "bad-class", "bad-order", "short-header"])
def test_rejects_non_elf(data: bytes, message: str) -> None:
    """Anything that is not a whole ELF header raises ELFInvalid, a ValueError."""
    with pytest.raises(_elf.ELFInvalid, match=message):
        _elf.parse_elf(data)


def test_whole_file_reads_its_soname() -> None:
    """The file the truncation tests cut: whole, it has its SONAME."""
    assert _elf.parse_elf(elfgen.elf(soname="libcut.so.1")).soname == "libcut.so.1"


# elfgen's 64-bit layout: header 0-63, two program headers 64-175, the dynamic section
# (DT_SONAME, DT_STRTAB, DT_STRSZ, DT_NULL: 4 x 16 bytes) 176-239, strings from 240.
@pytest.mark.parametrize(("cut", "message"), [
    (60, "truncated ELF header"), (63, "truncated ELF header"),
    (70, "program header"), (130, "program header"), (175, "program header"),
])
def test_truncated_headers_raise(cut: int, message: str) -> None:
    """A file cut inside its ELF header or program header table is refused."""
    data = elfgen.elf(soname="libcut.so.1")
    assert len(data) == 240 + len(b"\0libcut.so.1\0")
    with pytest.raises(_elf.ELFInvalid, match=message):
        _elf.parse_elf(data[:cut])


def test_fifo_is_not_opened_for_a_blocking_read(tmp_path: object) -> None:
    """A FIFO named like a library is refused at once, not read."""
    path = os.path.join(str(tmp_path), "libfifo.so.1")
    os.mkfifo(path)
    with pytest.raises(_elf.ELFInvalid, match="not a regular file"):
        _elf.read_elf(path)


@pytest.mark.parametrize(("kw", "machine", "flags"), [
    # sysdeps/unix/sysv/linux/x86/readelflib.c
    ({"machine": elfgen.EM_X86_64}, "x86_64", 0x0303),
    ({"machine": elfgen.EM_X86_64, "bits": 32}, "x86_64", 0x0803),
    ({"machine": elfgen.EM_386, "bits": 32}, "x86_64", 0x0001),  # needs no libc: "ELF"
    ({"machine": elfgen.EM_386, "bits": 32, "needed": ("libc.so.6",)}, "i686", 0x0003),
    ({"machine": elfgen.EM_AARCH64}, "x86_64", None),  # "is for unknown machine"
    # sysdeps/unix/sysv/linux/arm/readelflib.c (it also builds aarch64's ldconfig)
    ({"machine": elfgen.EM_AARCH64}, "aarch64", 0x0A03),
    ({"machine": elfgen.EM_ARM, "bits": 32, "flags": 0x05000400}, "armv7l", 0x0903),
    ({"machine": elfgen.EM_ARM, "bits": 32, "flags": 0x05000200}, "armv7l", 0x0B03),
    ({"machine": elfgen.EM_ARM, "bits": 32, "flags": 0x05000000}, "armv7l", 0x0003),
    ({"machine": elfgen.EM_ARM, "bits": 32, "flags": 0x04000400}, "armv7l", 0x0001),  # EABI4
    ({"machine": elfgen.EM_RISCV, "flags": 0x4}, "riscv64", 0x1003),
    ({"machine": elfgen.EM_RISCV, "flags": 0x0}, "riscv64", 0x0F03),
    ({"machine": elfgen.EM_PPC64, "endian": "big"}, "ppc64", None),  # other byte order
    ({"machine": 0x9999}, "riscv64", None),
], ids=lambda v: str(v))
def test_cache_flags_match_ldconfig(kw: dict[str, object], machine: str,
                                    flags: int | None) -> None:
    """The flags an object gets are those of the ldconfig built for *machine*."""
    assert _elf.cache_flags(_elf.parse_elf(elfgen.elf(**kw)), machine) == flags  # type: ignore[arg-type]


def _host_libraries() -> list[str]:
    out = []
    for pattern in ("/lib/*/lib*.so*", "/usr/lib/*/lib*.so*", "/usr/lib64/lib*.so*"):
        out += glob.glob(pattern)
    return sorted({os.path.realpath(p) for p in out if os.path.isfile(p)})


@pytest.mark.slow  # the same on every interpreter: tox runs it in py311
@pytest.mark.host
def test_matches_pyelftools_on_every_host_library() -> None:
    """Class, machine, type, SONAME and DT_NEEDED agree with pyelftools on every host .so."""
    elffile = pytest.importorskip("elftools.elf.elffile")
    from elftools.common.exceptions import ELFError
    from elftools.elf.enums import ENUM_E_TYPE

    libraries = _host_libraries()
    if not libraries:
        pytest.skip("no shared libraries under /lib/*/ or /usr/lib/*/")
    compared = 0
    for path in libraries:
        with open(path, "rb") as f:
            data = f.read()
        try:
            ref = elffile.ELFFile(io.BytesIO(data))
            header = ref.header
        except (ELFError, Exception):
            with pytest.raises(_elf.ELFInvalid):
                _elf.parse_elf(data)
            continue
        ours = _elf.read_elf(path)
        assert ours.elf_class == (2 if ref.elfclass == 64 else 1), path
        assert ours.machine == _e_machine(data, ref.little_endian), path
        e_type = header["e_type"]
        assert ours.type == (ENUM_E_TYPE[e_type] if isinstance(e_type, str) else e_type), path
        soname, needed = None, []
        for segment in ref.iter_segments():
            if segment["p_type"] == "PT_DYNAMIC":
                for tag in segment.iter_tags():
                    if tag.entry.d_tag == "DT_SONAME":
                        soname = tag.soname
                    elif tag.entry.d_tag == "DT_NEEDED":
                        needed.append(tag.needed)
        assert (path, ours.soname) == (path, soname)
        assert (path, ours.needed) == (path, tuple(needed))
        compared += 1
    assert compared > 10


def _e_machine(data: bytes, little: bool) -> int:
    return int.from_bytes(data[18:20], "little" if little else "big")


FOREIGN = [(bits, endian, machine) for bits in (32, 64) for endian in ("little", "big")
           for machine in (elfgen.EM_386, elfgen.EM_ARM, elfgen.EM_X86_64, elfgen.EM_AARCH64,
                           elfgen.EM_PPC64, elfgen.EM_S390, elfgen.EM_RISCV)]


@pytest.mark.parametrize(("bits", "endian", "machine"), FOREIGN, ids=str)
@pytest.mark.parametrize("e_type", [elfgen.ET_DYN, elfgen.ET_EXEC])
def test_generated_files_of_every_machine_match_pyelftools(
        bits: int, endian: str, machine: int, e_type: int) -> None:
    """Generated files of every class, byte order and machine: header fields, SONAME,
    DT_NEEDED and PT_INTERP are what pyelftools reads from the same bytes."""
    from elftools.elf.elffile import ELFFile  # noqa: PLC0415 -- the reference reader
    from elftools.elf.enums import ENUM_E_MACHINE, ENUM_E_TYPE  # noqa: PLC0415

    data = elfgen.elf(bits=bits, endian=endian, machine=machine, soname="libm%d.so.2" % machine,
                      needed=("libc.so.6", "libx.so.1"), interp="/lib/ld.so.1",
                      e_type=e_type, osabi=3, flags=0x05000400 if machine == elfgen.EM_ARM else 0)
    ref = ELFFile(io.BytesIO(data))
    ours = _elf.parse_elf(data)
    assert ours.elf_class == {32: 1, 64: 2}[ref.elfclass]
    assert ours.data == (1 if ref.little_endian else 2)
    assert ours.machine == ENUM_E_MACHINE[ref.header["e_machine"]]
    assert ours.type == ENUM_E_TYPE[ref.header["e_type"]]
    assert ours.osabi == 3 and ref.header["e_ident"]["EI_OSABI"] == "ELFOSABI_LINUX"
    assert ours.flags == ref.header["e_flags"]
    tags = [t for seg in ref.iter_segments() if seg["p_type"] == "PT_DYNAMIC"
            for t in seg.iter_tags()]
    assert ours.soname == next(t.soname for t in tags if t.entry.d_tag == "DT_SONAME")
    assert ours.needed == tuple(t.needed for t in tags if t.entry.d_tag == "DT_NEEDED")
    assert ours.interp == next(seg.get_interp_name() for seg in ref.iter_segments()
                               if seg["p_type"] == "PT_INTERP")
