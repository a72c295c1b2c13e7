"""Hostile and truncated input for the three parsers: ELF, ld.so.cache, ld.so.conf.

Each parser may only raise its own ValueError subclass (ELFInvalid, CacheInvalid; the conf
parser nothing at all) and must not read or decode more than a fixed bound, whatever
the header claims.  The generators and checks live in tests/fuzz/, shared with run.py.
"""

from __future__ import annotations

import os
import random
import struct
import tempfile

import elfgen
import pytest
from fuzz import cases, checks
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctypes_shim import _elf, _ldcache, _ldpaths

# hypothesis touches mypy_extensions.TypedDict while it reports a failure; with
# filterwarnings=error that would hide the failure behind an INTERNALERROR.
pytestmark = pytest.mark.filterwarnings("ignore:mypy_extensions:DeprecationWarning")
FUZZ = settings(max_examples=150, deadline=None, derandomize=False,
                suppress_health_check=[HealthCheck.too_slow])
SEEDS = st.integers(min_value=0, max_value=2**32 - 1)
LAYOUTS = [(bits, endian) for bits in (32, 64) for endian in ("little", "big")]
LAYOUT_IDS = ["%d-%s" % layout for layout in LAYOUTS]


@pytest.fixture(scope="module")
def scratch() -> object:
    with tempfile.TemporaryDirectory(prefix="ctypes-shim-rel-") as d:
        yield d


def header_fields(bits: int) -> dict[str, tuple[str, int]]:
    """ELF header field -> (struct format, offset)."""
    if bits == 64:
        return {"phoff": ("Q", 32), "phentsize": ("H", 54), "phnum": ("H", 56)}
    return {"phoff": ("I", 28), "phentsize": ("H", 42), "phnum": ("H", 44)}


def patched(data: bytes, fmt: str, offset: int, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(("<" if data[5] == 1 else ">") + fmt, out, offset, value)
    return bytes(out)


# -- ELF --------------------------------------------------------------------------------------

@FUZZ
@given(st.binary(max_size=600))
def test_elf_random_bytes(data: bytes) -> None:
    """Noise raises ELFInvalid and nothing else."""
    assert checks.check_elf(data) is None or data[:4] == b"\x7fELF"


@FUZZ
@given(st.sampled_from([b"\x7fELF\x01\x01\x01", b"\x7fELF\x02\x01\x01", b"\x7fELF\x01\x02\x01",
                        b"\x7fELF\x02\x02\x01"]), st.binary(min_size=0, max_size=400))
def test_elf_valid_ident_random_rest(ident: bytes, rest: bytes) -> None:
    """A real identification followed by noise never escapes as struct.error or IndexError."""
    checks.check_elf(ident + rest)


@pytest.mark.slow  # the same on every interpreter: tox runs it in py311
@FUZZ
@given(SEEDS)
def test_elf_mutated_libraries(scratch: str, seed: int) -> None:
    """Mutated libraries (truncated, absurd fields, no terminators, huge counts): parse_elf
    and read_elf agree, raise only ELFInvalid and stay within the read bound."""
    checks.check_elf(cases.random_elf(random.Random(seed)), scratch)


@pytest.mark.parametrize(("bits", "endian"), LAYOUTS, ids=LAYOUT_IDS)
def test_elf_truncated_at_every_byte(scratch: str, bits: int, endian: str) -> None:
    """A library cut at any byte is ELFInvalid or, past the SONAME, still the same library."""
    data = elfgen.elf(bits=bits, endian=endian, soname="libcut.so.1", needed=("libc.so.6",))
    for cut in range(len(data) + 1):
        info = checks.check_elf(data[:cut], scratch if cut % 7 == 0 else None)
        if info is not None:
            assert info.soname in (None, "libcut.so.1")
    assert checks.check_elf(data, scratch).soname == "libcut.so.1"


ABSURD = [0, 1, 0x7FFFFFFF, 0xFFFFFFFF, 2**32, 2**63 - 1, 2**63, 2**64 - 1]


@pytest.mark.parametrize(("bits", "endian"), LAYOUTS, ids=LAYOUT_IDS)
@pytest.mark.parametrize("field", ["phoff", "phentsize", "phnum"])
def test_elf_absurd_header_fields(scratch: str, bits: int, endian: str, field: str) -> None:
    """Any e_phoff/e_phentsize/e_phnum: only ELFInvalid, never OverflowError, bounded reads."""
    data = elfgen.elf(bits=bits, endian=endian, soname="libabs.so.1")
    fmt, at = header_fields(bits)[field]
    for value in ABSURD + [len(data) - 1, len(data), len(data) + 1, 512, 513, 0xFFFF]:
        value %= 1 << (8 * struct.calcsize(fmt))
        checks.check_elf(patched(data, fmt, at, value), scratch)


@pytest.mark.parametrize(("bits", "endian"), LAYOUTS, ids=LAYOUT_IDS)
def test_elf_absurd_segment_and_dynamic_values(scratch: str, bits: int, endian: str) -> None:
    """Offsets past the end (p_offset, p_filesz, p_vaddr, DT_STRTAB, DT_SONAME): no exception
    other than ELFInvalid, and a SONAME that cannot be reached is simply absent."""
    data = elfgen.elf(bits=bits, endian=endian, soname="libseg.so.1")
    q = "Q" if bits == 64 else "I"
    phoff, phent = (64, 56) if bits == 64 else (52, 32)
    seg_fields = (8, 16, 32) if bits == 64 else (4, 8, 16)
    dyn_off = phoff + 2 * phent  # PT_LOAD, PT_DYNAMIC
    dsize = 16 if bits == 64 else 8
    spots = [phoff + phent * n + f for n in (0, 1) for f in seg_fields]
    spots += [dyn_off + dsize * n + dsize // 2 for n in range(3)]  # SONAME, STRTAB, STRSZ
    for at in spots:
        for value in ABSURD:
            value %= 1 << (8 * struct.calcsize(q))
            checks.check_elf(patched(data, q, at, value), scratch)


def test_elf_64bit_offsets_beyond_c_long(scratch: str) -> None:
    """Regression: e_phoff >= 2**63 made os.pread raise OverflowError out of read_elf."""
    data = elfgen.elf(bits=64, soname="libbig.so.1")
    with open(os.path.join(scratch, "libbig.so.1"), "wb") as f:
        f.write(patched(data, "Q", 32, 2**64 - 1))
    with pytest.raises(_elf.ELFInvalid):
        _elf.read_elf(os.path.join(scratch, "libbig.so.1"))


@pytest.mark.parametrize("bits", [32, 64])
def test_elf_huge_program_header_table_is_not_read(scratch: str, bits: int) -> None:
    """Regression: e_phentsize 0xFFFF x e_phnum 512 made read_elf ask for 33 MB at once."""
    data = elfgen.elf(bits=bits, soname="libhuge.so.1")
    fields = header_fields(bits)
    data = patched(patched(data, "H", fields["phentsize"][1], 0xFFFF), "H",
                   fields["phnum"][1], 512)
    path = os.path.join(scratch, "libhuge.so.1")
    with open(path, "wb") as f:
        f.write(data + b"\0" * 4096)
    with checks.ReadMeter() as meter, pytest.raises(_elf.ELFInvalid):
        _elf.read_elf(path)
    assert meter.largest[path] <= checks.ELF_SINGLE_READ
    assert meter.by_path[path] <= checks.ELF_READ_BOUND


def test_elf_many_interpreters_are_not_all_read(scratch: str) -> None:
    """Regression: 512 PT_INTERP headers made read_elf read 512 x 4 KiB; only the first
    counts (as for the kernel)."""
    ph = struct.pack("<IIQQQQQQ", 3, 4, 64 + 512 * 56, 0, 0, 4096, 4096, 1)
    header = bytearray(elfgen.elf(bits=64, e_type=elfgen.ET_EXEC)[:64])
    struct.pack_into("<Q", header, 32, 64)  # e_phoff
    struct.pack_into("<HH", header, 54, 56, 512)  # e_phentsize, e_phnum
    blob = bytes(header) + ph * 512 + b"/lib/ld-first.so.1\0" + b"x" * 8192
    path = os.path.join(scratch, "libinterp.so.1")
    with open(path, "wb") as f:
        f.write(blob)
    with checks.ReadMeter() as meter:
        info = _elf.read_elf(path)
    assert info.interp == "/lib/ld-first.so.1"
    assert meter.by_path[path] <= 64 + 512 * 56 + 4096 + 64


def test_elf_string_table_without_terminator(scratch: str) -> None:
    """A SONAME that runs to the end of the file without a NUL is absent, not an error."""
    data = elfgen.elf(bits=64, soname="libnoterm.so.1").rstrip(b"\0")
    info = checks.check_elf(data + b"A" * 5000, scratch)
    assert info is not None and info.soname is None


# -- ld.so.cache -------------------------------------------------------------------------------

ENTRIES = [(0x303, "libz.so.1", "/lib/x86_64-linux-gnu/libz.so.1", 0),
           (0x303, "libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6", 0),
           (0x303, "libc.so.6", "/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libc.so.6", 1 << 62),
           (0x3, "libc.so.6", "/lib/i386-linux-gnu/libc.so.6", 0)]
FORMATS = ["new", "compat", "old"]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("end", ["<", ">"], ids=["little", "big"])
def test_cache_builder_round_trips(fmt: str, end: str) -> None:
    """The generator's caches parse back to exactly what went in (so mutations mean something)."""
    if fmt == "old" and end != cases.NATIVE_END:
        pytest.skip("the old format has no byte-order mark: always native")
    cache = _ldcache.parse_cache(cases.build_cache(ENTRIES, fmt=fmt, end=end,
                                                   hwcaps=("x86-64-v3",)))
    assert [(e.flags, e.key, e.value) for e in cache.entries] == [x[:3] for x in ENTRIES]
    assert cache.format == fmt
    if fmt != "old":
        assert cache.byteorder == ("little" if end == "<" else "big")
        assert [e.hwcap_name for e in cache.entries] == [None, None, "x86-64-v3", None]


@FUZZ
@given(st.binary(max_size=600))
def test_cache_random_bytes(data: bytes) -> None:
    """Noise raises CacheInvalid and nothing else."""
    checks.check_cache(data)


@FUZZ
@given(st.sampled_from([b"glibc-ld.so.cache1.1", b"ld.so-1.7.0\0"]), st.binary(max_size=400))
def test_cache_valid_magic_random_rest(magic: bytes, rest: bytes) -> None:
    """A real magic followed by noise raises CacheInvalid or parses; nothing else."""
    checks.check_cache(magic + rest)


@FUZZ
@given(SEEDS)
def test_cache_mutated(seed: int) -> None:
    """Mutated caches of every format and byte order: CacheInvalid or a sane parse."""
    checks.check_cache(cases.random_cache(random.Random(seed)))


@pytest.mark.parametrize("fmt", FORMATS)
def test_cache_truncated_at_every_byte(fmt: str) -> None:
    """A cache cut anywhere is CacheInvalid or a prefix of the real entries."""
    data = cases.build_cache(ENTRIES, fmt=fmt, hwcaps=("x86-64-v3",))
    whole = [(e.key, e.value) for e in _ldcache.parse_cache(data).entries]
    for cut in range(len(data)):
        cache = checks.check_cache(data[:cut])
        if cache is not None:
            got = [(e.key, e.value) for e in cache.entries]
            assert got == whole[:len(got)], cut


@pytest.mark.parametrize("at", [20, 24, 32], ids=["nlibs", "len_strings", "extension_offset"])
@pytest.mark.parametrize("fmt", ["new", "compat"])
def test_cache_absurd_header_fields(fmt: str, at: int) -> None:
    """nlibs/len_strings/extension_offset of 0..2**32-1 never allocate or escape."""
    data = cases.build_cache(ENTRIES, fmt=fmt, hwcaps=("x86-64-v3",))
    base = data.find(b"glibc-ld.so.cache1.1")
    for value in [0, 1, 3, 4, len(data), len(data) + 1, 0x7FFFFFFF, 0xFFFFFFFC, 0xFFFFFFFF]:
        out = bytearray(data)
        struct.pack_into(cases.NATIVE_END + "I", out, base + at, value)
        checks.check_cache(bytes(out))


def test_cache_old_format_absurd_count() -> None:
    """An old-format count of 2**32-1 is CacheInvalid, not a 48 GiB table."""
    data = bytearray(cases.build_cache(ENTRIES, fmt="old"))
    struct.pack_into(cases.NATIVE_END + "I", data, 12, 0xFFFFFFFF)
    with pytest.raises(_ldcache.CacheInvalid):
        _ldcache.parse_cache(bytes(data))


@pytest.mark.parametrize("slot", [4, 8], ids=["key", "value"])
def test_cache_string_offsets_past_the_end(slot: int) -> None:
    """A key or value offset past the end is CacheInvalid."""
    data = bytearray(cases.build_cache(ENTRIES))
    for value in (len(data), len(data) + 100, 0xFFFFFFFF):
        struct.pack_into(cases.NATIVE_END + "I", data, 48 + slot, value)
        with pytest.raises(_ldcache.CacheInvalid):
            _ldcache.parse_cache(bytes(data))


def test_cache_strings_without_terminator() -> None:
    """A string table with its NULs gone is CacheInvalid."""
    data = cases.build_cache(ENTRIES, generator=None)
    with pytest.raises(_ldcache.CacheInvalid):
        _ldcache.parse_cache(data[:48 + 24 * len(ENTRIES)] +
                             data[48 + 24 * len(ENTRIES):].replace(b"\0", b"A"))


@pytest.mark.parametrize("fmt", ["new", "compat"])
def test_cache_shared_unterminated_strings_are_bounded(fmt: str) -> None:
    """Regression: 200 entries all pointing at one 20 kB run decoded 8 MB of strings (a 1 MB
    file of this shape would need ~40 GB); strings are capped at PATH_MAX."""
    data = cases.quadratic_cache(n=200, run=20000)
    if fmt == "compat":
        data = b"ld.so-1.7.0\0" + struct.pack(cases.NATIVE_END + "I", 0) + data
        # offsets count from the new header, which now starts at 16
    checks.check_cache(data)


def test_cache_hwcaps_section_is_not_quadratic() -> None:
    """Regression: a compat cache whose hwcaps section claims 100 kB of offsets copied the
    whole file once per offset (25 000 x 100 kB)."""
    checks.check_cache(cases.hwcaps_bomb(100000))


@pytest.mark.parametrize("flag", [0, 1, 2, 3, 4, 0xFF])
def test_cache_byte_order_flags(flag: int) -> None:
    """Every value of the byte-order flag gives CacheInvalid or a parse; 1 is invalid."""
    data = bytearray(cases.build_cache(ENTRIES))
    data[28] = flag
    cache = checks.check_cache(bytes(data))
    if flag & 3 == 1:
        assert cache is None


def test_cache_file_read_is_bounded(tmp_path: object) -> None:
    """A 1 GiB (sparse) file is refused after reading at most MAX_CACHE_BYTES + 1."""
    path = os.path.join(str(tmp_path), "ld.so.cache")
    with open(path, "wb") as f:
        f.write(b"glibc-ld.so.cache1.1")
        f.truncate(1 << 30)
    with checks.ReadMeter() as meter, pytest.raises(_ldcache.CacheInvalid):
        _ldcache.read_cache(path)
    assert meter.by_path[path] <= _ldcache.MAX_CACHE_BYTES + 1


# -- ld.so.conf --------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SEEDS)
def test_conf_random_trees(seed: int) -> None:
    """Junk lines, odd line breaks, invalid UTF-8, NULs, self-includes, symlink loops,
    directories named *.conf: parsing returns (dir, origin) pairs and never raises."""
    with tempfile.TemporaryDirectory() as root:
        cases.random_conf_tree(random.Random(seed), root)
        checks.check_conf(root)


def write(root: str, inside: str, text: str) -> None:
    path = os.path.join(root, inside.lstrip("/"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


@pytest.mark.parametrize("shape", ["self", "mutual", "symlink", "relative-parent"])
def test_conf_include_cycles_terminate(tmp_path: object, shape: str) -> None:
    """Include cycles end, and each directory is listed once per line that names it."""
    root = str(tmp_path)
    if shape == "self":
        write(root, "/etc/ld.so.conf", "/a\ninclude /etc/ld.so.conf\n")
    elif shape == "mutual":
        write(root, "/etc/ld.so.conf", "/a\ninclude /etc/other.conf\n")
        write(root, "/etc/other.conf", "/b\ninclude /etc/ld.so.conf\n")
    elif shape == "symlink":
        write(root, "/etc/ld.so.conf", "/a\ninclude /etc/ld.so.conf.d/*.conf\n")
        os.makedirs(os.path.join(root, "etc/ld.so.conf.d"))
        os.symlink("../ld.so.conf", os.path.join(root, "etc/ld.so.conf.d/back.conf"))
    else:
        write(root, "/etc/ld.so.conf", "/a\ninclude ld.so.conf.d/*.conf\n")
        write(root, "/etc/ld.so.conf.d/x.conf", "/b\ninclude ../*.conf\n")
    dirs = [d for d, _ in checks.check_conf(root)]
    assert dirs == (["/a"] if shape in ("self", "symlink") else ["/a", "/b"])


def test_conf_deep_include_chain(tmp_path: object) -> None:
    """Regression: a chain of 1500 nested includes raised RecursionError out of the parser."""
    root = str(tmp_path)
    write(root, "/etc/ld.so.conf", "include c/0.conf\n")
    for i in range(1500):
        write(root, "/etc/c/%d.conf" % i, "/d%d\ninclude %d.conf\n" % (i, i + 1))
    dirs = checks.check_conf(root)
    assert dirs[:3] == (("/d0", "/etc/c/0.conf:1"), ("/d1", "/etc/c/1.conf:1"),
                        ("/d2", "/etc/c/2.conf:1"))


@pytest.mark.slow  # the same on every interpreter: tox runs it in py311
def test_conf_glob_matching_thousands(tmp_path: object) -> None:
    """An include glob over 3000 files reads each once, in sorted order."""
    root = str(tmp_path)
    write(root, "/etc/ld.so.conf", "include /etc/ld.so.conf.d/*.conf\n")
    d = os.path.join(root, "etc/ld.so.conf.d")
    os.makedirs(d)
    for i in range(3000):
        with open(os.path.join(d, "%04d.conf" % i), "w") as f:
            f.write("/lib%04d\n" % i)
    dirs = [x for x, _ in checks.check_conf(root)]
    assert dirs == ["/lib%04d" % i for i in range(3000)]


@pytest.mark.slow  # the same on every interpreter: tox runs it in py311
def test_conf_glob_file_count_is_bounded(tmp_path: object) -> None:
    """More files than MAX_CONF_FILES: the parser stops at the bound instead of reading all."""
    root = str(tmp_path)
    write(root, "/etc/ld.so.conf", "include /etc/d/*\n")
    d = os.path.join(root, "etc/d")
    os.makedirs(d)
    for i in range(_ldpaths.MAX_CONF_FILES + 50):
        open(os.path.join(d, "%05d" % i), "w").close()
    with checks.ReadMeter() as meter:
        _ldpaths.parse_ld_so_conf(root=root)
    assert len(set(meter.opened)) <= _ldpaths.MAX_CONF_FILES


@pytest.mark.parametrize("run", [3000, 20000])
def test_cache_index_shared_keys_are_bounded(run: int) -> None:
    """Regression: CacheIndex.matches decoded one long shared key once per entry (2000
    entries x 20 kB = 40 MB for a 70 kB file); keys are capped at PATH_MAX and the total
    decoded is bounded by the file size."""
    n = 2000
    e = cases.NATIVE_END
    start = 48 + 24 * n
    data = (b"glibc-ld.so.cache1.1" + struct.pack(e + "IIB3xI12x", n, run + 6, 2 if e == "<"
                                                  else 3, 0)
            + struct.pack(e + "iIIIQ", 0x303, start, start, 0, 0) * n
            + b"libq." + b"A" * run + b"\0")
    index = _ldcache.CacheIndex(data)
    decoded = sum(len(key) for key, _, _ in index.matches("libq."))
    assert decoded <= checks.CACHE_STRING_FACTOR * len(data) + checks.CACHE_STRING_SLACK


@pytest.mark.slow  # the same on every interpreter: tox runs it in py311
def test_conf_self_including_glob_is_expanded_once(tmp_path: object,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: 2000 conf files that each include their own directory again expanded
    the glob 2000 times (4 million matches, ~15 s); each pattern is now expanded once."""
    root = str(tmp_path)
    write(root, "/etc/ld.so.conf", "include /etc/ld.so.conf.d/*.conf\n")
    d = os.path.join(root, "etc/ld.so.conf.d")
    for i in range(2000):
        write(root, "/etc/ld.so.conf.d/%04d.conf" % i,
              "/lib%04d\ninclude /etc/ld.so.conf.d/*.conf\n" % i)
    calls = []
    real = _ldpaths._glob

    def counting(*args: object) -> list[str]:
        calls.append(args[1])
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(_ldpaths, "_glob", counting)
    dirs = [x for x, _ in checks.check_conf(root)]
    assert dirs == ["/lib%04d" % i for i in range(2000)]
    assert len(calls) <= 2 * 2, len(calls)  # once per parse, two parses in check_conf
    assert os.path.isdir(d)
