"""A pure-Python ldconfig: build an ld.so.cache for a root and print one, never starting a process.

It follows glibc 2.36, the version on Debian 12 (see the shared SPEC, sections 3 and 4):
- which dirs, in which order: elf/ldconfig.c `main`, `parse_conf`, `add_dir_1` (dedupe by
  st_dev/st_ino, first spelling wins) and `add_glibc_hwcaps_subdirectories`;
- which files and which names: `search_dir` (`_dl_is_dso`, the symlink rules, one winner
  per directory and SONAME) and elf/readlib.c + sysdeps/unix/sysv/linux/x86/readelflib.c;
- the order of the entries: elf/cache.c `compare` (descending `_dl_cache_libcmp`);
- the file layout: elf/cache.c `save_cache`, `write_extensions` and the tail-merged string
  table of elf/stringtable.c, so that for the same root the file differs from what
  `ldconfig -X -r ROOT` writes only in the generator string;
- the `ldconfig -p` text: elf/cache.c `print_entry` and `print_cache`.
Unlike ldconfig it never creates, changes or removes symlinks, and never reads or writes
the auxiliary cache.  Paths inside the root resolve as they would after chroot(ROOT).
"""

from __future__ import annotations

import os
import struct
import sys

from . import __version__, _ldcache, _ldpaths, _ldscan

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._ldscan import Scan

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Iterable, Iterator

GENERATOR = f"ctypes_shim {__version__} (pure-Python ldconfig)"
LD_SO_CACHE = _ldcache.LD_SO_CACHE
LD_SO_CONF = "/etc/ld.so.conf"

_FLAG_TYPES = ("libc4", "ELF", "libc5", "libc6")
_FLAG_REQUIRED = {  # print_entry in glibc 2.36 elf/cache.c; others print as ",<decimal>"
    0x0000: "", 0x0100: ",64bit", 0x0200: ",IA-64", 0x0300: ",x86-64", 0x0400: ",64bit",
    0x0500: ",64bit", 0x0600: ",N32", 0x0700: ",64bit", 0x0800: ",x32", 0x0900: ",hard-float",
    0x0A00: ",AArch64", 0x0B00: ",soft-float", 0x0C00: ",nan2008", 0x0D00: ",N32,nan2008",
    0x0E00: ",64bit,nan2008", 0x0F00: ",soft-float", 0x1000: ",double-float",
}


class LdconfigError(OSError):
    """A cache cannot be written (or read) where asked; the message is one line."""




# -- layout ------------------------------------------------------------------------------------


def _string_table(strings: Iterable[bytes]) -> tuple[bytes, dict[bytes, int]]:
    """elf/stringtable.c: sort by reversed string, longest first, and share suffixes."""
    order = sorted(set(strings), key=lambda s: s[::-1], reverse=True)
    offsets: dict[bytes, int] = {}
    size = 0
    previous = b""
    for s in order:
        if offsets and len(previous) >= len(s) and previous.endswith(s):
            offsets[s] = offsets[previous] + len(previous) - len(s)
        else:
            offsets[s] = offsets[previous] + len(previous) + 1 if offsets else 0
        previous = s
        size = offsets[s] + len(s) + 1
    table = bytearray(size)
    for s, at in offsets.items():
        table[at:at + len(s)] = s
    return bytes(table), offsets


def build(result: Scan, generator: str = GENERATOR) -> bytes:
    """The bytes of a new-format (glibc-ld.so.cache1.1) cache, as `ldconfig -c new` lays it out."""
    end = "<" if sys.byteorder == "little" else ">"
    entries = result.entries
    used = sorted({os.fsencode(e.hwcaps) for e in entries if e.hwcaps is not None})
    index = {name: i for i, name in enumerate(used)}
    strings = [os.fsencode(e.key) for e in entries] + [os.fsencode(e.value) for e in entries]
    strings += [os.fsencode(n) for n in result.hwcaps_names]
    table, offsets = _string_table(strings)
    str_offset = _ldcache.NEW_HEADER_SIZE + _ldcache.NEW_ENTRY_SIZE * len(entries)
    out = bytearray()
    ext_offset = (str_offset + len(table) + 3) & ~3
    out += struct.pack(end + _ldcache.NEW_HEADER, _ldcache.MAGIC_NEW, len(entries),
                       len(table), 2 if end == "<" else 3, ext_offset)
    for e in entries:
        if e.hwcaps is None:
            hwcap = e.hwcap
        else:
            if e.isa_level > 0x3FF:
                raise ValueError(f"{e.value}: ISA level is too high ({e.isa_level} > 1023)")
            hwcap = _ldcache.DL_CACHE_HWCAP_EXTENSION | e.isa_level << 32 | index[
                os.fsencode(e.hwcaps)]
        out += struct.pack(end + _ldcache.NEW_ENTRY, e.flags,
                           str_offset + offsets[os.fsencode(e.key)],
                           str_offset + offsets[os.fsencode(e.value)], 0, hwcap)
    out += table
    out += b"\0" * (ext_offset - len(out))
    gen = generator.encode("utf-8", "surrogateescape")
    count = 2 if used else 1
    hwcaps_offset = ext_offset + _ldcache.EXT_HEADER_SIZE + _ldcache.EXT_SECTION_SIZE * count
    gen_offset = hwcaps_offset + 4 * len(used)
    out += struct.pack(end + _ldcache.EXT_HEADER, _ldcache.EXTENSION_MAGIC, count)
    out += struct.pack(end + _ldcache.EXT_SECTION, _ldcache.EXT_TAG_GENERATOR, 0, gen_offset,
                       len(gen))
    if used:
        out += struct.pack(end + _ldcache.EXT_SECTION, _ldcache.EXT_TAG_HWCAPS, 0,
                           hwcaps_offset, 4 * len(used))
        out += struct.pack(f"{end}{len(used)}I", *(str_offset + offsets[n] for n in used))
    out += gen
    return bytes(out)


# -- writing ----------------------------------------------------------------------------------


def output_path(root: str, cache: str = LD_SO_CACHE) -> str:
    """Where on this machine to write *cache* (a path inside *root*).

    Like ldconfig, the directory is resolved inside the root and the file itself is
    replaced, not written through.  Raises LdconfigError when the directory is missing
    or when the kernel would follow a symlink out of the root to reach it.
    """
    head, _, name = cache.rpartition("/")
    if not name or name in (".", ".."):
        raise LdconfigError(f"cache file name {cache!r} names a directory")
    inside = _ldpaths.chroot_path(root, head or "/")  # relative names start at "/", as in a chroot
    if inside is None:
        raise LdconfigError(f"can't open cache file directory {head or '/'}: too many "
                            "levels of symbolic links")
    top = os.path.realpath(root)
    kernel = os.path.realpath(_ldpaths.kernel_path(root, head or "/"))
    if kernel != inside or not (kernel == top or kernel.startswith(top.rstrip("/") + "/")):
        raise LdconfigError(f"refusing to write {cache}: its directory is a symlink that "
                            f"leads out of the root ({kernel})")
    if not os.path.isdir(inside):
        raise LdconfigError(f"can't open cache file directory {head or '/'}: "
                            "No such file or directory")
    target = inside.rstrip("/") + "/" + name
    if os.path.islink(target):
        link = os.path.realpath(target)
        if not link.startswith(top.rstrip("/") + "/"):
            raise LdconfigError(f"refusing to write {cache}: it is a symlink that leads out "
                                f"of the root ({link})")
    return target


def write_cache(path: str, data: bytes) -> None:
    """Replace *path* by a file holding *data*, atomically: a temporary file in the same
    directory, fsync, rename; mode 0644 as ldconfig leaves it.  Never half-written."""
    import contextlib  # noqa: PLC0415 -- only when writing
    import tempfile  # noqa: PLC0415

    directory, name = os.path.split(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix="~", dir=directory or ".")
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fchmod(fd, 0o644)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dfd = os.open(directory or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


# -- printing (`ldconfig -p`) ------------------------------------------------------------------


def describe(flags: int, glibc: tuple[int, int] | None = None) -> str:
    """The "(libc6,x86-64)" part of a `ldconfig -p` line, without the parentheses, as the
    ldconfig of *glibc* prints it: since 2.37 (8ee878592c) any type but libc6 is "unknown
    or unsupported flag"; None: this machine's glibc."""
    kind = flags & 0xFF
    if glibc is None:
        glibc = _ldscan.glibc_version("/") or _ldscan.GLIBC_2_37
    if glibc >= _ldscan.GLIBC_2_37:
        text = "libc6" if kind == 3 else "unknown or unsupported flag"
    else:
        text = _FLAG_TYPES[kind] if kind < 4 else "unknown"
    required = flags & 0xFF00
    return text + _FLAG_REQUIRED.get(required, f",{required}")


def print_lines(cache: _ldcache.Cache, name: str,
                glibc: tuple[int, int] | None = None) -> Iterator[str]:
    """The lines (without newlines) `LC_ALL=C ldconfig -p -C NAME` of *glibc* prints for
    *cache* (None: this machine's)."""
    yield f"{len(cache.entries)} libs found in cache `{name}'"
    for e in cache.entries:
        if e.hwcap_name is not None:
            extra = f', hwcap: "{e.hwcap_name}"'
        elif e.hwcap:
            extra = f", hwcap: {e.hwcap:#018x}"
        else:
            extra = ""
        yield f"\t{e.key} ({describe(e.flags, glibc)}{extra}) => {e.value}"
    if cache.generator is not None:
        yield f"Cache generated by: {cache.generator}"


def read_for_print(path: str, name: str) -> _ldcache.Cache | None:
    """Read a cache the way `ldconfig -p` does: None for an empty file (prints nothing);
    LdconfigError with ldconfig's message otherwise."""
    try:
        with open(path, "rb") as f:
            data = f.read(_ldcache.MAX_CACHE_BYTES + 1)
    except OSError as e:
        raise LdconfigError(f"Can't open cache file {name}: {e.strerror or e}") from e
    if not data:
        return None
    if len(data) > _ldcache.MAX_CACHE_BYTES:
        raise LdconfigError(f"{name}: cache file is implausibly large")
    try:
        cache = _ldcache.parse_cache(data)
    except ValueError as e:
        raise LdconfigError(f"{name}: File is not a cache file ({e})") from e
    if cache.byteorder != sys.byteorder:
        raise LdconfigError(f"{name}: Cache file has wrong endianness")
    return cache
