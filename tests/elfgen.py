"""Build tiny ELF files in memory: any class, byte order and machine, with or without SONAME.

The layout is what a linker would emit for a library with nothing in it: an ELF header,
program headers (PT_LOAD over the whole file, PT_DYNAMIC, optionally PT_INTERP), a
dynamic section and its string table.
"""

from __future__ import annotations

import os
import struct

EM_386, EM_ARM, EM_X86_64, EM_AARCH64, EM_PPC64, EM_S390, EM_RISCV = 3, 40, 62, 183, 21, 22, 243
ET_EXEC, ET_DYN = 2, 3


def elf(*, bits: int = 64, endian: str = "little", machine: int = EM_X86_64,
        soname: str | None = None, needed: tuple[str, ...] = (), e_type: int = ET_DYN,
        osabi: int = 0, flags: int = 0, interp: str | None = None,
        dynamic: bool = True, rpath: str | None = None, runpath: str | None = None) -> bytes:
    """The bytes of a minimal ELF object; *rpath* and *runpath* add DT_RPATH / DT_RUNPATH."""
    e = "<" if endian == "little" else ">"
    if bits == 64:
        ehsize, phentsize, dynsize = 64, 56, 16
    else:
        ehsize, phentsize, dynsize = 52, 32, 8
    strtab = b"\0"
    offsets = {}
    paths = [p for p in (rpath, runpath) if p is not None]
    for s in ([soname] if soname else []) + list(needed) + paths + ([interp] if interp else []):
        offsets[s] = len(strtab)
        strtab += s.encode() + b"\0"
    phdrs = [1] + ([2] if dynamic else []) + ([3] if interp else [])
    phoff = ehsize
    dyn_off = phoff + phentsize * len(phdrs)
    dyn = [(1, offsets[n]) for n in needed]
    if soname:
        dyn.append((14, offsets[soname]))
    if rpath is not None:
        dyn.append((15, offsets[rpath]))  # DT_RPATH
    if runpath is not None:
        dyn.append((29, offsets[runpath]))  # DT_RUNPATH
    str_off_placeholder = len(dyn)
    dyn += [(5, 0), (10, len(strtab)), (0, 0)]
    str_off = dyn_off + dynsize * len(dyn)
    dyn[str_off_placeholder] = (5, str_off)  # vaddr == offset: one PT_LOAD at 0
    total = str_off + len(strtab)
    ident = b"\x7fELF" + bytes([1 if bits == 32 else 2, 1 if endian == "little" else 2, 1,
                                osabi]) + b"\0" * 8
    if bits == 64:
        header = struct.pack(e + "HHIQQQIHHHHHH", e_type, machine, 1, 0, phoff, 0, flags,
                             ehsize, phentsize, len(phdrs), 64, 0, 0)
    else:
        header = struct.pack(e + "HHIIIIIHHHHHH", e_type, machine, 1, 0, phoff, 0, flags,
                             ehsize, phentsize, len(phdrs), 40, 0, 0)
    ph = b""
    for p_type in phdrs:
        if p_type == 1:
            off, size = 0, total
        elif p_type == 2:
            off, size = dyn_off, dynsize * len(dyn)
        else:
            off, size = str_off + offsets[interp], len(interp) + 1  # type: ignore[arg-type]
        if bits == 64:
            ph += struct.pack(e + "IIQQQQQQ", p_type, 5, off, off, off, size, size, 8)
        else:
            ph += struct.pack(e + "IIIIIIII", p_type, off, off, off, size, size, 5, 4)
    body = b"".join(struct.pack(e + ("qQ" if bits == 64 else "iI"), t, v) for t, v in dyn)
    data = ident + header + ph + body + strtab
    assert len(data) == total
    return data


def native(**kw: object) -> bytes:
    """An ELF object for this interpreter's ABI (read from /proc/self/exe)."""
    with open("/proc/self/exe", "rb") as f:
        head = f.read(64)
    bits = 64 if head[4] == 2 else 32
    endian = "little" if head[5] == 1 else "big"
    machine, = struct.unpack_from("<H" if endian == "little" else ">H", head, 18)
    flags_off = 48 if bits == 64 else 36
    flags, = struct.unpack_from("<I" if endian == "little" else ">I", head, flags_off)
    kw.setdefault("flags", flags if machine == EM_ARM else 0)
    return elf(bits=bits, endian=endian, machine=machine, **kw)  # type: ignore[arg-type]


def foreign_machine() -> int:
    """A machine that is not this interpreter's."""
    return EM_AARCH64 if native_machine() != EM_AARCH64 else EM_X86_64


def native_machine() -> int:
    with open("/proc/self/exe", "rb") as f:
        head = f.read(20)
    return struct.unpack_from("<H" if head[5] == 1 else ">H", head, 18)[0]  # type: ignore[no-any-return]


def write(path: str | os.PathLike[str], data: bytes) -> str:
    os.makedirs(os.path.dirname(os.fspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return os.fspath(path)


def put(root: str, path: str, data: bytes | str) -> str:
    """Write *data* at *path* inside the fake root *root*, making directories."""
    full = os.path.join(root, path.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    return full
