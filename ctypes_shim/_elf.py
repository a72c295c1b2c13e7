"""A small, bounded ELF reader: class, byte order, machine, type, SONAME.

ELF header: https://refspecs.linuxfoundation.org/elf/gabi4+/ch4.eheader.html
The SONAME is read the way ldconfig reads it (glibc elf/readelflib.c): through the
program headers, PT_DYNAMIC and the PT_LOAD segment that maps DT_STRTAB, so files with
their section headers stripped still work.  No read is larger than a fixed bound, so a
hostile file cannot make us allocate or read much.
"""

import os
import stat
import struct
import sys

TYPE_CHECKING = False  # importing typing costs ~10 ms; mypy knows this idiom

if TYPE_CHECKING:
    from typing import Callable

    Reader = Callable[[int, int], bytes]  # (offset, size) -> at most size bytes

ELFCLASS32, ELFCLASS64 = 1, 2
ELFDATA2LSB, ELFDATA2MSB = 1, 2
ET_DYN = 3
PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3
DT_NULL, DT_NEEDED, DT_STRTAB, DT_SONAME, DT_RPATH, DT_RUNPATH = 0, 1, 5, 14, 15, 29
OSABI_SYSV, OSABI_GNU = 0, 3  # both mean "Linux" in practice (libc.so.6 is GNU, libssl SYSV)

EM_386, EM_SPARC, EM_MIPS, EM_PPC, EM_PPC64, EM_S390 = 3, 2, 8, 20, 21, 22
EM_ARM, EM_SPARCV9, EM_X86_64, EM_AARCH64, EM_RISCV, EM_LOONGARCH = 40, 43, 62, 183, 243, 258
EF_ARM_ABI_FLOAT_SOFT, EF_ARM_ABI_FLOAT_HARD = 0x200, 0x400

PT_GNU_PROPERTY, NT_GNU_PROPERTY_TYPE_0 = 0x6474E553, 5
GNU_PROPERTY_X86_ISA_1_NEEDED = 0xC0008002

_MAX_PHNUM = 512  # real libraries have about 10; glibc's own limit is far lower in practice
_MAX_DYN_BYTES = 64 * 1024  # 4096 Elf64_Dyn entries
_MAX_STR = 4096  # longer than any path glibc accepts


class ELFInvalid(ValueError):
    """The file is not an ELF shared object we can read."""


class ELFInfo:
    """What the resolver needs to know about one ELF file."""

    __slots__ = ("data", "elf_class", "flags", "gnu_property", "interp", "machine", "needed",
                 "osabi", "rpath", "runpath", "soname", "truncated", "type")

    def __init__(self, elf_class: int, data: int, osabi: int,  # noqa: PLR0917 -- header fields
                 e_type: int, machine: int, flags: int, soname: "str | None", interp: "str | None",
                 needed: "tuple[str, ...]", rpath: "str | None" = None,
                 runpath: "str | None" = None) -> None:
        self.elf_class = elf_class  # ELFCLASS32 or ELFCLASS64
        self.data = data  # ELFDATA2LSB or ELFDATA2MSB
        self.osabi = osabi
        self.type = e_type  # ET_DYN for shared objects (and PIE executables)
        self.machine = machine
        self.flags = flags  # e_flags: ARM float ABI lives here
        self.soname = soname  # DT_SONAME, or None
        self.interp = interp  # PT_INTERP, or None
        self.needed = needed  # DT_NEEDED, in order
        # DT_RPATH and DT_RUNPATH as written (':'-separated, tokens such as $ORIGIN kept).
        # glibc keeps one entry per tag, the last (elf/get-dynamic-info.h); so do we.
        self.rpath = rpath
        self.runpath = runpath
        self.truncated = False  # the dynamic section or a string it names is past the end
        # PT_GNU_PROPERTY's offset, size and alignment (x86_isa_level reads it)
        self.gnu_property: tuple[int, int, int] | None = None

    @property
    def abi(self) -> "tuple[int, int, int, int]":
        """The key two objects must share to be loaded into one process."""
        float_abi = self.flags & EF_ARM_ABI_FLOAT_HARD if self.machine == EM_ARM else 0
        return (self.elf_class, self.data, self.machine, float_abi)

    def __repr__(self) -> str:
        return (f"ELFInfo(class={self.elf_class}, data={self.data}, machine={self.machine}, "
                f"type={self.type}, soname={self.soname!r})")


def read_elf(path: str, *, dynamic: bool = True) -> "ELFInfo":
    """Read the ELF identification and dynamic section of *path*.

    Raises ELFInvalid for anything that is not a readable ELF file (including FIFOs and
    devices, which are never opened: open() blocks on a FIFO without a writer, and opening
    a device can act on it) and OSError for I/O errors.
    """
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise ELFInvalid("not a regular file")
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ELFInvalid("not a regular file")
        # Past the end there is nothing to read, as for parse_elf's slices; os.pread itself
        # raises OverflowError beyond 2**63 and EINVAL near it.
        return _parse(lambda offset, size: os.pread(fd, size, offset) if offset < st.st_size
                      else b"", dynamic=dynamic)
    finally:
        os.close(fd)


def parse_elf(data: bytes) -> "ELFInfo":
    """Parse ELF *data* held in memory (for tests and fuzzing)."""
    return _parse(lambda offset, size: data[offset:offset + size])


def _parse(read: "Reader", *, dynamic: bool = True) -> "ELFInfo":
    ident = read(0, 64)
    if len(ident) < 16 or ident[:4] != b"\x7fELF":
        raise ELFInvalid("no ELF magic")
    elf_class, data, osabi = ident[4], ident[5], ident[7]
    if data == ELFDATA2LSB:
        end = "<"
    elif data == ELFDATA2MSB:
        end = ">"
    else:
        raise ELFInvalid(f"unknown byte order {data}")
    if elf_class == ELFCLASS64:
        ehdr, phdr, dyn = end + "HHIQQQIHHHHHH", end + "IIQQQQQQ", end + "qQ"
    elif elf_class == ELFCLASS32:
        ehdr, phdr, dyn = end + "HHIIIIIHHHHHH", end + "IIIIIIII", end + "iI"
    else:
        raise ELFInvalid(f"unknown ELF class {elf_class}")
    try:
        (e_type,  # ET_DYN, ET_EXEC, ...
         machine,  # e_machine
         _version, _entry,
         phoff,  # offset of the program header table
         _shoff,
         flags,  # e_flags
         _ehsize,
         phentsize,  # size of one program header
         phnum,  # number of program headers
         _shentsize, _shnum, _shstrndx) = struct.unpack_from(ehdr, ident, 16)
    except struct.error as e:
        raise ELFInvalid("truncated ELF header") from e

    interp = soname = rpath = runpath = None
    gnu_property = None
    truncated = False
    interp_read = False
    needed: tuple[str, ...] = ()
    psize = struct.calcsize(phdr)
    # glibc's loader refuses any e_phentsize but sizeof(Phdr); so do we, which also bounds
    # the table read to _MAX_PHNUM * 56 bytes (0xFFFF * 512 would be 33 MB).
    if phnum > _MAX_PHNUM or (phnum and phentsize != psize):
        raise ELFInvalid("implausible program header table")
    table = read(phoff, phnum * phentsize) if phnum else b""
    if len(table) < phnum * phentsize:
        raise ELFInvalid("truncated program header table")
    loads = []
    dynamic_segment = None
    for i in range(phnum):
        fields = struct.unpack_from(phdr, table, i * phentsize)
        if elf_class == ELFCLASS64:
            p_type, _, p_offset, p_vaddr, _, p_filesz, _, p_align = fields
        else:
            p_type, p_offset, p_vaddr, _, p_filesz, _, _, p_align = fields
        if p_type == PT_LOAD:
            loads.append((p_vaddr, p_filesz, p_offset))
        elif p_type == PT_DYNAMIC:
            dynamic_segment = (p_offset, p_filesz)
        elif p_type == PT_GNU_PROPERTY:
            gnu_property = (p_offset, p_filesz, p_align)
        elif p_type == PT_INTERP and not interp_read:  # the kernel uses the first one only
            interp_read = True
            raw = read(p_offset, min(p_filesz, _MAX_STR))
            interp = raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape") or None

    if not dynamic:  # the caller wants the header and PT_INTERP only
        dynamic_segment = None
    if dynamic_segment is not None:
        dsize = struct.calcsize(dyn)
        blob = read(dynamic_segment[0], min(dynamic_segment[1], _MAX_DYN_BYTES))
        strtab = None
        soname_off = rpath_off = runpath_off = None
        needed_offs: list[int] = []
        # glibc's readelflib.c checks that every dynamic entry it reads, up to DT_NULL, and
        # the start of every string it takes lies inside the file ("file is truncated").
        ended = False
        for off in range(0, len(blob) - dsize + 1, dsize):
            tag, val = struct.unpack_from(dyn, blob, off)
            if tag == DT_NULL:
                ended = True
                break
            if tag == DT_STRTAB:
                strtab = val
            elif tag == DT_SONAME:
                soname_off = val
            elif tag == DT_NEEDED and len(needed_offs) < 256:
                needed_offs.append(val)
            elif tag == DT_RPATH:
                rpath_off = val
            elif tag == DT_RUNPATH:
                runpath_off = val
        if not ended and len(blob) < min(dynamic_segment[1], _MAX_DYN_BYTES):
            truncated = True  # the file ends before the dynamic section does
        if strtab is not None:
            base = _vaddr_to_offset(loads, strtab)
            if base is not None:
                offsets = [o for o in (soname_off, rpath_off, runpath_off) if o is not None]
                if any(not read(base + o, 1) for o in offsets + needed_offs):
                    truncated = True  # a string that starts past the end of the file
                if soname_off is not None:
                    soname = _read_str(read, base + soname_off)
                needed = tuple(s for s in (_read_str(read, base + o) for o in needed_offs) if s)
                # "" when present but empty: an empty DT_RUNPATH still turns DT_RPATH off.
                if rpath_off is not None:
                    rpath = _read_str(read, base + rpath_off) or ""
                if runpath_off is not None:
                    runpath = _read_str(read, base + runpath_off) or ""
    elif dynamic and e_type == ET_DYN:
        raise ELFInvalid("shared object without PT_DYNAMIC")
    info = ELFInfo(elf_class, data, osabi, e_type, machine, flags, soname, interp, needed,
                   rpath, runpath)
    info.gnu_property = gnu_property
    info.truncated = truncated
    return info


def _vaddr_to_offset(loads: "list[tuple[int, int, int]]", vaddr: int) -> "int | None":
    for p_vaddr, p_filesz, p_offset in loads:
        if p_vaddr <= vaddr < p_vaddr + p_filesz:
            return vaddr - p_vaddr + p_offset
    return None


def _read_str(read: "Reader", offset: int) -> "str | None":
    raw = read(offset, _MAX_STR)
    end = raw.find(b"\0")
    if end <= 0:  # empty, or no terminator within the bound: treat as absent
        return None
    return raw[:end].decode("utf-8", "surrogateescape")


def is_shared_object(info: "ELFInfo") -> bool:
    """What ldconfig accepts as a library: ET_DYN, Linux OS ABI."""
    return info.type == ET_DYN and info.osabi in (OSABI_SYSV, OSABI_GNU)


FLAG_ELF, FLAG_ELF_LIBC6 = 0x0001, 0x0003  # the type byte of cache flags (ldconfig.h)
_X86 = frozenset(("x86_64", "i386", "i486", "i586", "i686"))
# elf/readlib.c + sysdeps/unix/sysv/linux/*/ldconfig.h: a PT_INTERP or DT_NEEDED that makes
# an object without machine-specific flags (i386 on x86) "libc6" rather than plain "ELF".
_X86_INTERPRETERS = frozenset(("/lib/ld-linux-x86-64.so.2", "/lib/ld-linux.so.2",
                               "/libx32/ld-linux-x32.so.2", "/lib64/ld-linux-x86-64.so.2"))
_ARM_INTERPRETERS = frozenset(("/lib/ld-linux-aarch64.so.1", "/lib/ld-linux-aarch64_be.so.1",
                               "/lib/ld-linux-aarch64_ilp32.so.1", "/lib/ld-linux.so.3",
                               "/lib/ld-linux-aarch64_be_ilp32.so.1", "/lib/ld-linux-armhf.so.3"))
_KNOWN_LIBS = frozenset(("libc.so.6", "libm.so.6"))
_OTHER_64 = {EM_PPC64: 0x0503, EM_S390: 0x0403, EM_SPARCV9: 0x0103, EM_MIPS: 0x0703}


def cache_flags(info: ELFInfo, machine: "str | None" = None,
                glibc: "tuple[int, int] | None" = None) -> "int | None":
    """The ld.so.cache flags glibc's ldconfig built for *machine* (os.uname().machine by
    default) gives this object, or None when that ldconfig skips it as "for unknown
    machine" (sysdeps/unix/sysv/linux/{x86,arm,...}/readelflib.c).  Before *glibc* 2.37 an
    object without machine-specific flags that names no known libc is plain "ELF"; since
    2.37 (commit 8ee878592c, "Assume only FLAG_ELF_LIBC6 support") it is libc6.

    This is the one place that maps an ELF header to cache flags: the cache writer keys
    files with it, and the resolver derives from it which entries fit the interpreter.
    """
    machine = machine or os.uname().machine
    if info.data != (ELFDATA2LSB if sys.byteorder == "little" else ELFDATA2MSB):
        return None  # ldconfig reads e_type in its own byte order: never ET_DYN
    m, cls = info.machine, info.elf_class
    if machine in _X86:  # x86/readelflib.c knows exactly these
        if m == EM_X86_64:
            return 0x0303 if cls == ELFCLASS64 else 0x0803
        if m == EM_386 and cls == ELFCLASS32:
            return _libc_type(info, _X86_INTERPRETERS, glibc)
        return None
    if machine == "aarch64" or machine.startswith("arm"):  # arm/readelflib.c
        if cls == ELFCLASS64:
            return 0x0A03
        if info.flags >> 24 == 5:  # EABI version 5: the float ABI is in e_flags
            if info.flags & EF_ARM_ABI_FLOAT_HARD:
                return 0x0903
            return 0x0B03 if info.flags & EF_ARM_ABI_FLOAT_SOFT else FLAG_ELF_LIBC6
        return _libc_type(info, _ARM_INTERPRETERS, glibc)
    # Other machines: their readelflib.c rules, as far as they depend on the header.
    if cls == ELFCLASS64:
        if m == EM_RISCV:  # double-float ABI (lp64d) or soft
            return 0x1003 if info.flags & 0x6 == 0x4 else 0x0F03
        if m == EM_LOONGARCH:
            return 0x1203 if info.flags & 0x7 == 0x3 else 0x1103
        return _OTHER_64.get(m)
    if m in (EM_386, EM_PPC, EM_S390, EM_SPARC, EM_MIPS, EM_RISCV, EM_ARM):
        return _libc_type(info, frozenset(), glibc)
    return None


def _libc_type(info: ELFInfo, interpreters: "frozenset[str]",
               glibc: "tuple[int, int] | None") -> int:
    if glibc is not None and glibc >= (2, 37):
        return FLAG_ELF_LIBC6
    if info.interp in interpreters or any(n in _KNOWN_LIBS for n in info.needed):
        return FLAG_ELF_LIBC6
    return FLAG_ELF


def x86_isa_level(path: str, info: "ELFInfo") -> int:
    """The x86 ISA level a library needs (GNU_PROPERTY_X86_ISA_1_NEEDED in its
    PT_GNU_PROPERTY notes), as ldconfig stores it for glibc-hwcaps entries
    (sysdeps/x86/dl-prop.h); 0 when absent or malformed."""
    if info.gnu_property is None:
        return 0
    p_offset, p_filesz, p_align = info.gnu_property
    end = "<" if info.data == ELFDATA2LSB else ">"
    word = 8 if info.elf_class == ELFCLASS64 else 4
    if p_align != word:
        return 0
    try:
        with open(path, "rb") as f:
            f.seek(p_offset)
            data = f.read(min(p_filesz, _MAX_DYN_BYTES))
    except (OSError, ValueError, OverflowError):
        return 0
    try:
        note = 0
        while note + 12 < len(data):
            namesz, descsz, n_type = struct.unpack_from(end + "III", data, note)
            if namesz == 4 and n_type == NT_GNU_PROPERTY_TYPE_0 and \
                    data[note + 12:note + 16] == b"GNU\0":
                if descsz < 8 or descsz % word:
                    return 0
                ptr, ptr_end = note + 16, note + 16 + descsz
                last = 0
                while ptr_end - ptr >= 8:
                    p_kind, datasz = struct.unpack_from(end + "II", data, ptr)
                    if p_kind < last or ptr + 8 + datasz > ptr_end:
                        return 0
                    last = p_kind
                    if p_kind > GNU_PROPERTY_X86_ISA_1_NEEDED:
                        return 0
                    if p_kind == GNU_PROPERTY_X86_ISA_1_NEEDED:
                        if datasz != 4:
                            return 0
                        needed, = struct.unpack_from(end + "I", data, ptr + 8)
                        return needed.bit_length() - 1 if needed else 0
                    ptr += 8 + (datasz + word - 1) // word * word
                return 0
            note += 12 + (namesz + word - 1) // word * word + (descsz + word - 1) // word * word
    except struct.error:
        return 0
    return 0
