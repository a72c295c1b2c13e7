"""Read /etc/ld.so.cache: the "glibc-ld.so.cache1.1" format and the old "ld.so-1.7.0" one.

Layout: glibc sysdeps/generic/dl-cache.h and elf/cache.c; see shared SPEC section 3.
New format: a 48-byte header, then nlibs 24-byte entries {int32 flags; uint32 key, value;
uint32 osversion; uint64 hwcap}; string offsets count from the start of that header.
Old format: an 11-byte magic, uint32 nlibs at 12, then 12-byte entries {int32 flags;
uint32 key, value} whose string offsets count from the end of the entry array.  The
"compat" layout is an old cache followed by a new one at the next 8-byte boundary.
"""

from __future__ import annotations

import os
import stat
import struct
import sys

MAGIC_OLD = b"ld.so-1.7.0"
MAGIC_NEW = b"glibc-ld.so.cache1.1"
EXTENSION_MAGIC = 0xEAA42174
EXT_TAG_GENERATOR, EXT_TAG_HWCAPS = 0, 1
HWCAP_EXTENSION_MASK = 0x3FF << 32  # bits 32..41: ISA level; bit 62 marks a glibc-hwcaps entry
DL_CACHE_HWCAP_EXTENSION = 1 << 62
MAX_CACHE_BYTES = 64 * 1024 * 1024  # a busy distribution's cache is well under 1 MiB

_NEW_HEADER = "20sIIB3xI12x"  # magic+version, nlibs, len_strings, flags, extension_offset
_NEW_ENTRY = "iIIIQ"  # flags, key, value, osversion (unused), hwcap
_OLD_ENTRY = "iII"  # flags, key, value
_MAX_STR = 4096  # PATH_MAX: no key or path the loader uses is longer
_MAX_HWCAPS = 1024  # glibc knows a handful of glibc-hwcaps subdirectories per architecture


class CacheInvalid(ValueError):
    """The data is not an ld.so.cache we can read."""


class CacheEntry:
    """One cache entry: *key* is the soname, *value* the path the loader opens."""

    __slots__ = ("flags", "hwcap", "hwcap_name", "key", "value")

    def __init__(self, flags: int, key: str, value: str, hwcap: int = 0,
                 hwcap_name: str | None = None) -> None:
        self.flags = flags
        self.key = key
        self.value = value
        self.hwcap = hwcap
        self.hwcap_name = hwcap_name  # the glibc-hwcaps subdirectory, when hwcap says so

    def __repr__(self) -> str:
        return f"CacheEntry({self.flags:#06x}, {self.key!r}, {self.value!r}, {self.hwcap:#x})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CacheEntry):
            return NotImplemented
        return (self.flags, self.key, self.value, self.hwcap) == (
            other.flags, other.key, other.value, other.hwcap)

    __hash__ = None  # type: ignore[assignment]


class Cache:
    """A parsed cache: entries in file order (the order the loader and `ldconfig -p` use)."""

    __slots__ = ("byteorder", "entries", "format", "generator")

    def __init__(self, entries: tuple[CacheEntry, ...], fmt: str, byteorder: str,
                 generator: str | None) -> None:
        self.entries = entries
        self.format = fmt  # "new", "old" or "compat"
        self.byteorder = byteorder  # "little" or "big"
        self.generator = generator  # "ldconfig (Debian GLIBC ...) ...", new format only


def read_cache(path: str) -> Cache:
    """Read and parse the cache file at *path* (OSError if unreadable, CacheInvalid if bad)."""
    return parse_cache(read_bytes(path))


def read_bytes(path: str) -> bytes:
    """The bytes of a cache file, refusing implausibly large ones."""
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):  # open() would block on a FIFO
        raise CacheInvalid("not a regular file")
    with open(path, "rb") as f:
        # read(n) allocates n bytes before reading: ask for the file's size, not the bound
        # (a 64 MiB allocation cost ~40 us of a ~500 us first find_library call).
        data = f.read(min(st.st_size, MAX_CACHE_BYTES) + 1)
        if len(data) > st.st_size:  # replaced or grown since the stat: read on, to the bound
            data += f.read(MAX_CACHE_BYTES + 1 - len(data))
    if len(data) > MAX_CACHE_BYTES:
        raise CacheInvalid("cache file is implausibly large")
    return data


class _Layout:
    """Where the parts of a cache are: the entry rows and the bytes their offsets index."""

    __slots__ = ("base", "byteorder", "end", "ext_off", "format", "rows", "strings")

    def __init__(self, data: bytes) -> None:
        if data.startswith(MAGIC_NEW):
            self._new(data, 0, "new")
            return
        if not data.startswith(MAGIC_OLD):
            raise CacheInvalid("unknown cache magic")
        end = "<" if sys.byteorder == "little" else ">"
        if len(data) < 16:
            raise CacheInvalid("truncated old-format header")
        (nlibs,) = struct.unpack_from(end + "I", data, 12)
        entries_end = 16 + nlibs * 12
        if entries_end > len(data):
            raise CacheInvalid("old-format entry table runs past the end")
        new_at = (entries_end + 7) & ~7
        if data.startswith(MAGIC_NEW, new_at):
            self._new(data, new_at, "compat")
            return
        self.format, self.byteorder, self.end, self.base, self.ext_off = (
            "old", sys.byteorder, end, entries_end, 0)
        self.strings = data[entries_end:]  # old offsets count from the end of the entries
        self.rows = [(flags, key, value, 0) for flags, key, value
                     in struct.iter_unpack(end + _OLD_ENTRY, data[16:entries_end])]

    def _new(self, data: bytes, base: int, fmt: str) -> None:
        if len(data) < base + 48:
            raise CacheInvalid("truncated header")
        flags = data[base + 28] & 3
        if flags == 1:
            raise CacheInvalid("cache marks its byte order invalid")
        self.format, self.base = fmt, base
        self.byteorder = {0: sys.byteorder, 2: "little", 3: "big"}[flags]
        self.end = end = "<" if self.byteorder == "little" else ">"
        _, nlibs, _len_strings, _, self.ext_off = struct.unpack_from(
            end + _NEW_HEADER, data, base)
        table = base + 48
        if (len(data) - table) // 24 < nlibs:
            raise CacheInvalid("entry table runs past the end")
        self.strings = data[base:]  # offsets count from the start of the new header
        self.rows = [(flags, key, value, hwcap) for flags, key, value, _osv, hwcap
                     in struct.iter_unpack(end + _NEW_ENTRY, data[table:table + nlibs * 24])]


def parse_cache(data: bytes) -> Cache:
    """Parse ld.so.cache *data*; raise CacheInvalid on anything malformed."""
    layout = _Layout(data)
    strings, end = layout.strings, layout.end
    hwcaps = _hwcap_names(data, layout.base, layout.ext_off, end) if layout.ext_off else ()
    entries = []
    # ldconfig shares string suffixes, so the strings may add up to more than the file,
    # but never to much more: many entries pointing at one long string must not.
    budget = 4 * len(data) + 65536
    for flags, key, value, hwcap in layout.rows:
        name = None
        if hwcap & ~HWCAP_EXTENSION_MASK & ~0xFFFFFFFF == DL_CACHE_HWCAP_EXTENSION:
            index = hwcap & 0xFFFFFFFF
            name = hwcaps[index] if index < len(hwcaps) else None
        entry = CacheEntry(flags, _string(strings, key), _string(strings, value), hwcap, name)
        budget -= len(entry.key) + len(entry.value)
        if budget < 0:
            raise CacheInvalid("entries share strings implausibly")
        entries.append(entry)
    generator = _generator(data, layout.base, layout.ext_off, end) if layout.ext_off else None
    return Cache(tuple(entries), layout.format, layout.byteorder, generator)


class CacheIndex:
    """Answers "which entries have a key starting with lib<name>." straight from the bytes.

    Building it decodes nothing: it maps each key's string offset to its entries.  A
    lookup finds "lib<name>." in the string table (with glibc's suffix merging a key may
    sit inside its value's string) and keeps the hits that start a key.  This keeps the
    first find_library call in a process well under a millisecond.
    """

    __slots__ = ("_keys", "_rows", "_strings", "byteorder", "format")

    def __init__(self, data: bytes) -> None:
        layout = _Layout(data)
        self.format, self.byteorder = layout.format, layout.byteorder
        self._rows, self._strings = layout.rows, layout.strings
        keys: dict[int, list[int]] = {}
        for number, row in enumerate(layout.rows):
            keys.setdefault(row[1], []).append(number)
        self._keys = keys

    def __len__(self) -> int:
        return len(self._rows)

    def matches(self, prefix: str) -> list[tuple[str, int, int]]:
        """(key, flags, value offset) of the entries whose key starts with *prefix*,
        in cache order."""
        strings, keys = self._strings, self._keys
        needle = prefix.encode("utf-8", "surrogateescape")
        found: list[int] = []
        budget = 4 * len(strings) + 65536  # see parse_cache
        at = strings.find(needle)
        while at != -1:
            found += keys.get(at, ())
            at = strings.find(needle, at + 1)
        out = []
        for number in sorted(found):
            flags, key_off, value_off, _hwcap = self._rows[number]
            stop = strings.find(b"\0", key_off, key_off + _MAX_STR)
            if stop >= 0:
                budget -= stop - key_off
                if budget < 0:
                    break
                key = strings[key_off:stop].decode("utf-8", "surrogateescape")
                out.append((key, flags, value_off))
        return out

    def value(self, offset: int) -> str:
        """The path string at *offset* (CacheInvalid if out of range or unterminated)."""
        return _string(self._strings, offset)


def _string(strings: bytes, offset: int) -> str:
    stop = strings.find(b"\0", offset, offset + _MAX_STR) if offset < len(strings) else -1
    if stop < 0:
        raise CacheInvalid(f"string offset {offset} is out of range or unterminated")
    return strings[offset:stop].decode("utf-8", "surrogateescape")


def _sections(data: bytes, base: int, ext_off: int, end: str) -> list[tuple[int, int, int]]:
    """The extension directory: (tag, offset, size) triples; empty when absent or bad."""
    at = ext_off  # counts from the start of the file, even behind an old-format part
    if ext_off % 4 or at + 8 > len(data):
        return []
    magic, count = struct.unpack_from(end + "II", data, at)
    if magic != EXTENSION_MAGIC or count > (len(data) - at - 8) // 16:
        return []
    out = []
    for i in range(count):
        tag, _flags, offset, size = struct.unpack_from(end + "IIII", data, at + 8 + 16 * i)
        if offset + size <= len(data):
            out.append((tag, offset, size))
    return out


def _generator(data: bytes, base: int, ext_off: int, end: str) -> str | None:
    for tag, offset, size in _sections(data, base, ext_off, end):
        if tag == EXT_TAG_GENERATOR:
            return data[offset:offset + size].decode("utf-8", "replace")
    return None


def _hwcap_names(data: bytes, base: int, ext_off: int, end: str) -> tuple[str, ...]:
    for tag, offset, size in _sections(data, base, ext_off, end):
        if tag == EXT_TAG_HWCAPS and size % 4 == 0 and size // 4 <= _MAX_HWCAPS:
            offsets = struct.unpack_from(f"{end}{size // 4}I", data, offset)
            strings = data[base:]  # once: a copy per name was quadratic in the file size
            try:
                return tuple(_string(strings, o) for o in offsets)
            except CacheInvalid:
                return ()
    return ()


def cache_path(root: str = "/") -> str:
    """Where the loader looks for its cache inside *root*."""
    return os.path.join(root, "etc/ld.so.cache")
