"""Read /etc/ld.so.cache: the "glibc-ld.so.cache1.1" format and the old "ld.so-1.7.0" one.

Layout: glibc sysdeps/generic/dl-cache.h and elf/cache.c; see shared SPEC section 3.
New format: a 48-byte header, then nlibs 24-byte entries {int32 flags; uint32 key, value;
uint32 osversion; uint64 hwcap}; string offsets count from the start of that header.
Old format: an 11-byte magic, uint32 nlibs at 12, then 12-byte entries {int32 flags;
uint32 key, value} whose string offsets count from the end of the entry array.  The
"compat" layout is an old cache followed by a new one at the next 8-byte boundary.
"""

import os
import stat
import struct
import sys

LD_SO_CACHE = "/etc/ld.so.cache"
MAGIC_OLD = b"ld.so-1.7.0"
MAGIC_NEW = b"glibc-ld.so.cache1.1"
EXTENSION_MAGIC = 0xEAA42174
EXT_TAG_GENERATOR, EXT_TAG_HWCAPS = 0, 1
HWCAP_EXTENSION_MASK = 0x3FF << 32  # bits 32..41: ISA level; bit 62 marks a glibc-hwcaps entry
DL_CACHE_HWCAP_EXTENSION = 1 << 62
MAX_CACHE_BYTES = 64 * 1024 * 1024  # a busy distribution's cache is well under 1 MiB

# The layout, in struct formats (without the byte order); the writer in _ldconfig packs
# with the same ones.
NEW_HEADER = "20sIIB3xI12x"  # magic+version, nlibs, len_strings, flags, extension_offset
NEW_ENTRY = "iIIIQ"  # flags, key, value, osversion (unused), hwcap
OLD_HEADER = "11sxI"  # magic, nlibs
OLD_ENTRY = "iII"  # flags, key, value
EXT_HEADER = "II"  # magic, count
EXT_SECTION = "IIII"  # tag, flags, offset (from the start of the file), size
NEW_HEADER_SIZE, NEW_ENTRY_SIZE, OLD_HEADER_SIZE, OLD_ENTRY_SIZE = 48, 24, 16, 12
EXT_HEADER_SIZE, EXT_SECTION_SIZE = 8, 16
_MAX_STR = 4096  # PATH_MAX: no key or path the loader uses is longer
_MAX_HWCAPS = 1024  # glibc knows a handful of glibc-hwcaps subdirectories per architecture


# char is signed on x86 (and most others), unsigned on ARM, PowerPC, s390x and RISC-V.
_SIGNED_CHAR = os.uname().machine not in ("aarch64", "armv7l", "armv8l", "ppc64le", "ppc64",
                                          "s390x", "riscv64")


def _sc(c: int) -> int:
    return c - 256 if _SIGNED_CHAR and c > 127 else c


def libcmp(p1: bytes, p2: bytes) -> int:
    """glibc's _dl_cache_libcmp, the order of cache entries and of library versions: digit
    runs compare as numbers and above anything else."""
    i = j = 0
    n1, n2 = len(p1), len(p2)
    while i < n1:
        c1 = p1[i]
        c2 = p2[j] if j < n2 else 0
        if 48 <= c1 <= 57:
            if not 48 <= c2 <= 57:
                return 1
            i1, j1 = i + 1, j + 1
            while i1 < n1 and 48 <= p1[i1] <= 57:
                i1 += 1
            while j1 < n2 and 48 <= p2[j1] <= 57:
                j1 += 1
            v1, v2 = int(p1[i:i1]), int(p2[j:j1])
            if v1 != v2:
                return 1 if v1 > v2 else -1
            i, j = i1, j1
        elif 48 <= c2 <= 57:
            return -1
        elif c1 != c2:
            return _sc(c1) - _sc(c2)
        else:
            i += 1
            j += 1
    return -_sc(p2[j]) if j < n2 else 0


def accepted_flags(flags: "int | None") -> "frozenset[int] | None":
    """The entry flags glibc's loader takes for an interpreter whose own flags (as ldconfig
    would give them) are *flags* (sysdeps/*/dl-cache.h _dl_cache_check_flags).  None: any
    libc6 entry, as stock CPython's "libc6" regex accepts on unknown machines."""
    if flags is None:
        return None
    if flags in (0x0903, 0x0B03):  # ARM hard/soft float also take untagged libc6 entries
        return frozenset((flags, 0x0003))
    if flags & 0xFF00 == 0:  # the generic check: libc6, or ELF that needs no libc
        return frozenset((0x0001, 0x0003))
    return frozenset((flags,))


def key_matches(key: str, prefix: str) -> bool:
    """Whether stock's regex, r"\\s+(lib<name>\\.[^\\s]+)\\s+\\(", takes *key* for *prefix*
    ("lib<name>."): it starts with it, has more after it, and holds no whitespace."""
    return key.startswith(prefix) and len(key) > len(prefix) and len(key.split()) == 1


def signature(path: str) -> "tuple[int, ...] | None":
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class CacheInvalid(ValueError):
    """The data is not an ld.so.cache we can read."""


class CacheEntry:
    """One cache entry: *key* is the soname, *value* the path the loader opens."""

    __slots__ = ("flags", "hwcap", "hwcap_name", "key", "value")

    def __init__(self, flags: int, key: str, value: str, hwcap: int = 0,
                 hwcap_name: "str | None" = None) -> None:
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

    def __init__(self, entries: "tuple[CacheEntry, ...]", fmt: str, byteorder: str,
                 generator: "str | None") -> None:
        self.entries = entries
        self.format = fmt  # "new", "old" or "compat"
        self.byteorder = byteorder  # "little" or "big"
        self.generator = generator  # "ldconfig (Debian GLIBC ...) ...", new format only


def read_cache(path: str) -> "Cache":
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
    """Where the parts of a cache are: the entry table, as columns, and the bytes that
    its string offsets index."""

    __slots__ = ("_table", "base", "byteorder", "end", "ext_off", "flags", "format", "keys",
                 "strings", "values")

    def __init__(self, data: bytes) -> None:
        if data.startswith(MAGIC_NEW):
            self._new(data, 0, "new")
            return
        if not data.startswith(MAGIC_OLD):
            raise CacheInvalid("unknown cache magic")
        end = "<" if sys.byteorder == "little" else ">"
        if len(data) < OLD_HEADER_SIZE:
            raise CacheInvalid("truncated old-format header")
        _, nlibs = struct.unpack_from(end + OLD_HEADER, data, 0)
        entries_end = OLD_HEADER_SIZE + nlibs * OLD_ENTRY_SIZE
        if entries_end > len(data):
            raise CacheInvalid("old-format entry table runs past the end")
        new_at = (entries_end + 7) & ~7
        if data.startswith(MAGIC_NEW, new_at):
            self._new(data, new_at, "compat")
            return
        self.format, self.byteorder, self.end, self.base, self.ext_off = (
            "old", sys.byteorder, end, entries_end, 0)
        self.strings = data[entries_end:]  # old offsets count from the end of the entries
        self._columns(data[OLD_HEADER_SIZE:entries_end], OLD_ENTRY_SIZE // 4)

    def _new(self, data: bytes, base: int, fmt: str) -> None:
        if len(data) < base + NEW_HEADER_SIZE:
            raise CacheInvalid("truncated header")
        flags = data[base + 28] & 3
        if flags == 1:
            raise CacheInvalid("cache marks its byte order invalid")
        self.format, self.base = fmt, base
        self.byteorder = {0: sys.byteorder, 2: "little", 3: "big"}[flags]
        self.end = end = "<" if self.byteorder == "little" else ">"
        _, nlibs, _len_strings, _, self.ext_off = struct.unpack_from(
            end + NEW_HEADER, data, base)
        table = base + NEW_HEADER_SIZE
        if (len(data) - table) // NEW_ENTRY_SIZE < nlibs:
            raise CacheInvalid("entry table runs past the end")
        self.strings = data[base:]  # offsets count from the start of the new header
        self._columns(data[table:table + nlibs * NEW_ENTRY_SIZE], NEW_ENTRY_SIZE // 4)

    def _columns(self, table: bytes, words: int) -> None:
        """flags, key and value offsets of every entry (*words* 32-bit words long)."""
        self._table = table
        if self.byteorder == sys.byteorder:  # as the loader reads it: in place, in C
            signed, unsigned = memoryview(table).cast("i"), memoryview(table).cast("I")
            self.flags = signed[0::words].tolist()
            self.keys = unsigned[1::words].tolist()
            self.values = unsigned[2::words].tolist()
        else:  # a foreign cache, only ever listed
            fmt = self.end + "i" + "I" * (words - 1)
            columns = list(zip(*struct.iter_unpack(fmt, table))) or [(), (), ()]
            self.flags, self.keys, self.values = (list(c) for c in columns[:3])

    @property
    def hwcaps(self) -> "list[int]":
        """Each entry's hwcap word (0 in the old format); only listing needs them."""
        if self.format == "old":
            return [0] * len(self.keys)
        return [row[4] for row in struct.iter_unpack(self.end + NEW_ENTRY, self._table)]


def parse_cache(data: bytes) -> "Cache":
    """Parse ld.so.cache *data*; raise CacheInvalid on anything malformed."""
    layout = _Layout(data)
    strings, end = layout.strings, layout.end
    hwcaps = _hwcap_names(data, layout.base, layout.ext_off, end) if layout.ext_off else ()
    entries = []
    # ldconfig shares string suffixes, so the strings may add up to more than the file,
    # but never to much more: many entries pointing at one long string must not.
    budget = 4 * len(data) + 65536
    for flags, key, value, hwcap in zip(layout.flags, layout.keys, layout.values, layout.hwcaps):
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
    """Answers "which entries have a key starting with lib<name>." without parsing the cache.

    The first lookup decodes nothing: it finds "lib<name>." in the string table (with
    glibc's suffix merging a key may sit inside its value's string) and keeps the offsets
    that start a key.  That costs one pass over the strings, so from the second lookup on
    an index of every key's "lib<stem>." prefixes answers instead, whatever the size.
    """

    __slots__ = ("_by_stem", "_flags", "_keys", "_scans", "_strings", "_values", "byteorder",
                 "format")
    SCANS_BEFORE_INDEX = 8  # a scan costs ~1/20 of building the index (536 entries here)

    def __init__(self, data: bytes) -> None:
        layout = _Layout(data)
        self.format, self.byteorder = layout.format, layout.byteorder
        self._flags, self._keys, self._values = layout.flags, layout.keys, layout.values
        self._strings = layout.strings
        self._by_stem: dict[str, tuple[int, ...]] | None = None
        self._scans = 0

    def __len__(self) -> int:
        return len(self._keys)

    def matches(self, prefix: str) -> "list[tuple[str, int, int]]":
        """(key, flags, value offset) of the entries whose key starts with *prefix*
        ("lib<name>."), in cache order."""
        raw = prefix.encode("utf-8", "surrogateescape")
        if self._by_stem is None and self._scans >= self.SCANS_BEFORE_INDEX:
            self._by_stem = self._index()
        if self._by_stem is None:
            self._scans += 1
            found = self._scan(raw)
        else:  # keyed by what lies between "lib" and the first dot
            found = list(self._by_stem.get(raw[3:raw.index(b".", 3)].decode("latin-1"), ()))
        out = []
        keys: dict[int, str | None] = {}  # entries may share a key: decode each once
        budget = 4 * len(self._strings) + 65536  # see parse_cache
        for number in found:
            offset = self._keys[number]
            if offset not in keys:
                keys[offset] = self._key(number)
            key = keys[offset]
            budget -= len(key or "")
            if budget < 0:  # a crafted cache: thousands of entries sharing one long key
                break
            if key is not None and key.startswith(prefix):
                out.append((key, self._flags[number], self._values[number]))
        return out

    def _scan(self, needle: bytes) -> "list[int]":
        strings, keys = self._strings, self._keys
        found = []
        at = strings.find(needle)
        while at != -1:
            start = 0
            while True:  # tuple.index scans in C; keys repeat for glibc-hwcaps entries
                try:
                    start = keys.index(at, start) + 1
                except ValueError:
                    break
                found.append(start - 1)
            at = strings.find(needle, at + 1)
        return sorted(found)

    def _index(self) -> "dict[str, tuple[int, ...]]":
        # latin-1 maps each byte to one character, so byte offsets index the text as is.
        text = self._strings.decode("latin-1")
        index: dict[str, list[int]] = {}
        for number, offset in enumerate(self._keys):
            if text.startswith("lib", offset):
                dot = text.find(".", offset + 3, offset + _MAX_STR)
                if dot > 0 and "\0" not in text[offset:dot]:
                    index.setdefault(text[offset + 3:dot], []).append(number)
        return {stem: tuple(numbers) for stem, numbers in index.items()}

    def _key(self, number: int) -> "str | None":
        offset = self._keys[number]
        stop = self._strings.find(b"\0", offset, offset + _MAX_STR)
        if stop < 0:
            return None
        return self._strings[offset:stop].decode("utf-8", "surrogateescape")

    def value(self, offset: int) -> str:
        """The path string at *offset* (CacheInvalid if out of range or unterminated)."""
        return _string(self._strings, offset)


def _string(strings: bytes, offset: int) -> str:
    stop = strings.find(b"\0", offset, offset + _MAX_STR) if offset < len(strings) else -1
    if stop < 0:
        raise CacheInvalid(f"string offset {offset} is out of range or unterminated")
    return strings[offset:stop].decode("utf-8", "surrogateescape")


def _sections(data: bytes, base: int, ext_off: int, end: str) -> "list[tuple[int, int, int]]":
    """The extension directory: (tag, offset, size) triples; empty when absent or bad."""
    at = ext_off  # counts from the start of the file, even behind an old-format part
    if ext_off % 4 or at + EXT_HEADER_SIZE > len(data):
        return []
    magic, count = struct.unpack_from(end + EXT_HEADER, data, at)
    if magic != EXTENSION_MAGIC or count > (len(data) - at - EXT_HEADER_SIZE) // EXT_SECTION_SIZE:
        return []
    out = []
    for i in range(count):
        tag, _flags, offset, size = struct.unpack_from(
            end + EXT_SECTION, data, at + EXT_HEADER_SIZE + EXT_SECTION_SIZE * i)
        if offset + size <= len(data):
            out.append((tag, offset, size))
    return out


def _generator(data: bytes, base: int, ext_off: int, end: str) -> "str | None":
    for tag, offset, size in _sections(data, base, ext_off, end):
        if tag == EXT_TAG_GENERATOR:
            return data[offset:offset + size].decode("utf-8", "replace")
    return None


def _hwcap_names(data: bytes, base: int, ext_off: int, end: str) -> "tuple[str, ...]":
    for tag, offset, size in _sections(data, base, ext_off, end):
        if tag == EXT_TAG_HWCAPS and size % 4 == 0 and size // 4 <= _MAX_HWCAPS:
            offsets = struct.unpack_from(f"{end}{size // 4}I", data, offset)
            strings = data[base:]  # once: a copy per name was quadratic in the file size
            try:
                return tuple(_string(strings, o) for o in offsets)
            except CacheInvalid:
                return ()
    return ()
