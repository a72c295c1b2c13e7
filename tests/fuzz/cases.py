"""Hostile inputs for the three parsers and the resolver, built from a random.Random.

Every generator takes an `rng` so that a case is reproducible from its seed (hypothesis
feeds seeds in the pytest suite, tests/fuzz/run.py feeds a counter).  Nothing here
imports the code under test except to learn the native ABI.
"""

from __future__ import annotations

import os
import random
import struct
import sys

import elfgen

ABSURD32 = (0, 1, 7, 8, 47, 48, 63, 64, 0x7F, 0xFF, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000,
            0xFFFFFFF0, 0xFFFFFFFF)
ABSURD64 = ABSURD32 + (0x100000000, 2**40, 2**62, 2**63 - 1, 2**63, 2**64 - 16, 2**64 - 1)
MACHINES = (elfgen.EM_386, elfgen.EM_ARM, elfgen.EM_X86_64, elfgen.EM_AARCH64, elfgen.EM_PPC64,
            elfgen.EM_S390, elfgen.EM_RISCV, 0, 0xFFFF)
NATIVE_END = "<" if sys.byteorder == "little" else ">"


# -- ELF ----------------------------------------------------------------------------------

def _layout(data: bytes) -> tuple[str, int, int]:
    """(struct byte order, class bits, phoff) of a generated ELF object."""
    e = "<" if data[5] == 1 else ">"
    bits = 64 if data[4] == 2 else 32
    return e, bits, 64 if bits == 64 else 52


def _put(data: bytearray, fmt: str, offset: int, value: int) -> None:
    fmt = fmt[:-1] + fmt[-1].upper()  # write the bit pattern, signed fields too
    if 0 <= offset and offset + struct.calcsize(fmt) <= len(data):
        size = struct.calcsize(fmt) * 8
        struct.pack_into(fmt, data, offset, value % (1 << size))


def _absurd(rng: random.Random, bits: int, length: int) -> int:
    pool = ABSURD64 if bits == 64 else ABSURD32
    pick = rng.random()
    if pick < 0.5:
        return rng.choice(pool)
    if pick < 0.8:  # near the end of the file: off-by-one territory
        return max(0, length + rng.randint(-16, 16))
    return rng.getrandbits(bits)


def random_elf(rng: random.Random) -> bytes:
    """A generated ELF object, sometimes valid, usually mutated in a hostile way."""
    return random_elf_case(rng)[0]


def random_elf_case(rng: random.Random) -> tuple[bytes, dict[str, object] | None]:
    """random_elf, plus the generator's arguments when no mutation was applied (what an
    unmutated file must read back as), else None."""
    bits = rng.choice((32, 64))
    kw: dict[str, object] = {
        "bits": bits,
        "endian": rng.choice(("little", "big")),
        "machine": rng.choice(MACHINES),
        "soname": rng.choice((None, "libx.so.1", "libfuzz.so." + str(rng.randint(0, 99)),
                              "lib" + "y" * rng.randint(1, 300) + ".so")),
        "needed": tuple("libn%d.so" % i for i in range(rng.choice((0, 1, 3, 40)))),
        "e_type": rng.choice((3, 3, 3, 2, 0, 1, 4, 0xFFFF)),
        "osabi": rng.choice((0, 0, 3, 9, 255)),
        "interp": rng.choice((None, None, "/lib64/ld-linux-x86-64.so.2", "/lib/ld-musl-x86_64.so.1")),
        "dynamic": rng.random() < 0.9,
    }
    data = bytearray(elfgen.elf(**kw))  # type: ignore[arg-type]
    edits = rng.choice((0, 1, 1, 2, 3, 5))
    for _ in range(edits):
        mutate_elf(rng, data)
    return bytes(data), (None if edits else kw)


def mutate_elf(rng: random.Random, data: bytearray) -> None:
    """One hostile edit of *data* in place (or a truncation / extension)."""
    if len(data) < 20 or data[:4] != b"\x7fELF":
        data.extend(rng.getrandbits(8) for _ in range(rng.randint(0, 8)))
        return
    e, bits, phoff_at = _layout(bytes(data))
    q = "Q" if bits == 64 else "I"
    hdr = {  # field -> (format, offset) in the ELF header
        "phoff": (q, 32 if bits == 64 else 28), "shoff": (q, 40 if bits == 64 else 32),
        "phentsize": ("H", 54 if bits == 64 else 42), "phnum": ("H", 56 if bits == 64 else 44),
        "type": ("H", 16), "machine": ("H", 18), "flags": ("I", 48 if bits == 64 else 36),
    }
    try:
        (phoff,) = struct.unpack_from(e + hdr["phoff"][0], data, hdr["phoff"][1])
        (phentsize, phnum) = struct.unpack_from(e + "HH", data, hdr["phentsize"][1])
    except struct.error:
        phoff = phentsize = phnum = 0
    kind = rng.randrange(11)
    if kind == 0:  # truncate anywhere
        del data[rng.randint(0, len(data)):]
    elif kind == 1:  # flip bytes
        for _ in range(rng.randint(1, 8)):
            if data:
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif kind == 2:  # absurd header field
        fmt, at = hdr[rng.choice(sorted(hdr))]
        _put(data, e + fmt, at, _absurd(rng, 8 * struct.calcsize(fmt), len(data)))
    elif kind == 3:  # absurd program header field
        if phnum and phentsize and phoff < len(data):
            base = phoff + phentsize * rng.randrange(min(phnum, 8))
            fields = (8, 16, 32, 40) if bits == 64 else (4, 8, 16, 20)  # offset, vaddr, sizes
            at = rng.choice(fields)
            _put(data, e + q, base + at, _absurd(rng, bits, len(data)))
    elif kind == 4:  # program header type changed (PT_INTERP over PT_LOAD, ...)
        if phnum and phentsize and phoff < len(data):
            _put(data, e + "I", phoff + phentsize * rng.randrange(min(phnum, 8)),
                 rng.choice((0, 1, 2, 3, 6, 0x6474E551, 0xFFFFFFFF)))
    elif kind == 5:  # absurd dynamic entry (DT_STRTAB, DT_SONAME, DT_NEEDED values)
        dsize = 16 if bits == 64 else 8
        start = phoff_at + phentsize * phnum if phentsize < 100 else phoff_at
        slots = [start + i * dsize for i in range(8) if start + (i + 1) * dsize <= len(data)]
        if slots:
            at = rng.choice(slots)
            _put(data, e + q, at + dsize // 2, _absurd(rng, bits, len(data)))
            if rng.random() < 0.3:
                _put(data, e + q, at, rng.choice((1, 5, 14, 15, 29, 0x7FFFFFFF)))
    elif kind == 6:  # string table without any terminator
        tail = rng.randint(1, min(len(data), 600))
        data[-tail:] = bytes(b or 0x41 for b in data[-tail:])
        if rng.random() < 0.5:
            data += b"B" * rng.choice((10, 4096, 5000))
    elif kind == 7:  # huge counts: every DT_NEEDED / PT_INTERP / phnum maxed out
        _put(data, e + "H", hdr["phnum"][1], rng.choice((512, 513, 0xFFFF)))
    elif kind == 8:  # extend with junk, or with a copy of itself (many PT_* repeats)
        data += bytes(data) if rng.random() < 0.5 else os.urandom(rng.randint(1, 256))
    elif kind == 9:  # class / data / version / osabi bytes
        data[rng.choice((4, 5, 6, 7))] = rng.choice((0, 1, 2, 3, 255))
    else:  # phentsize smaller/larger than the struct
        _put(data, e + "H", hdr["phentsize"][1], rng.choice((0, 1, 31, 32, 33, 55, 56, 57, 4096, 0xFFFF)))


def random_bytes(rng: random.Random) -> bytes:
    """Plain noise, sometimes behind a real magic number."""
    size = rng.choice((0, 1, 3, 4, 15, 16, 47, 48, 63, 64, 100, 1000))
    body = bytes(rng.getrandbits(8) for _ in range(size))
    prefix = rng.choice((b"", b"\x7fELF", b"\x7fELF\x02\x01\x01", b"\x7fELF\x01\x02\x01",
                         b"glibc-ld.so.cache1.1", b"ld.so-1.7.0", b"ld.so-1.7.0\0"))
    return prefix + body


# -- ld.so.cache ----------------------------------------------------------------------------

def build_cache(entries: list[tuple[int, str, str, int]], *, fmt: str = "new", end: str = NATIVE_END,
                generator: str | None = "ldconfig (fuzz) 1.0", hwcaps: tuple[str, ...] = (),
                order_flag: int | None = None) -> bytes:
    """A cache in the layout glibc's ldconfig writes: entries are (flags, key, value, hwcap)."""
    if fmt == "old":
        return _build_old(entries)
    new = _build_new(entries, end, generator, hwcaps, order_flag, 0)
    if fmt == "new":
        return new
    old = _build_old(entries)  # compat: old part, then the new one at the next 8 bytes
    at = (16 + 12 * len(entries) + 7) & ~7
    new = _build_new(entries, end, generator, hwcaps, order_flag, at)
    return old[:at].ljust(at, b"\0") + new


def _build_old(entries: list[tuple[int, str, str, int]]) -> bytes:
    e = NATIVE_END
    strings = bytearray()
    table = b""
    for flags, key, value, _ in entries:
        k = len(strings)
        strings += key.encode("utf-8", "surrogateescape") + b"\0"
        v = len(strings)
        strings += value.encode("utf-8", "surrogateescape") + b"\0"
        table += struct.pack(e + "iII", flags, k, v)
    return b"ld.so-1.7.0\0" + struct.pack(e + "I", len(entries)) + table + bytes(strings)


def _build_new(entries: list[tuple[int, str, str, int]], e: str, generator: str | None,
               hwcaps: tuple[str, ...], order_flag: int | None, base: int) -> bytes:
    n = len(entries)
    str_start = 48 + 24 * n  # relative to the header
    strings = bytearray()

    def add(s: str) -> int:
        at = str_start + len(strings)
        strings.extend(s.encode("utf-8", "surrogateescape") + b"\0")
        return at

    table = b""
    for flags, key, value, hwcap in entries:
        table += struct.pack(e + "iIIIQ", flags, add(key), add(value), 0, hwcap)
    hw_offsets = [add(h) for h in hwcaps]
    body = table + bytes(strings)
    ext = b""
    ext_off = 0
    if generator is not None or hwcaps:
        ext_off = (base + 48 + len(body) + 3) & ~3
        sections = []
        payload = b""
        data_at = ext_off + 8 + 16 * ((generator is not None) + bool(hwcaps))
        if generator is not None:
            g = generator.encode()
            sections.append((0, data_at + len(payload), len(g)))
            payload += g
        if hwcaps:
            payload += b"\0" * (-(data_at + len(payload)) % 4)
            arr = struct.pack(e + "%dI" % len(hw_offsets), *hw_offsets)
            sections.append((1, data_at + len(payload), len(arr)))
            payload += arr
        ext = struct.pack(e + "II", 0xEAA42174, len(sections))
        ext += b"".join(struct.pack(e + "IIII", t, 0, o, s) for t, o, s in sections) + payload
    flag = order_flag if order_flag is not None else (2 if e == "<" else 3)
    header = b"glibc-ld.so.cache1.1" + struct.pack(e + "IIB3xI12x", n, len(strings), flag, ext_off)
    out = header + body
    pad = ext_off - base - len(out) if ext_off else 0
    return out + b"\0" * pad + ext


def random_cache(rng: random.Random) -> bytes:
    """A cache of any format and byte order, then hostile edits."""
    return random_cache_case(rng)[0]


def random_cache_case(rng: random.Random) -> tuple[bytes, dict[str, object] | None]:
    """random_cache, plus (when no edit was made) the entries, format and byte order the
    cache was built from, else None."""
    n = rng.choice((0, 1, 2, 5, 30))
    entries = [(rng.choice((0x303, 0x303, 0x3, 0x1, 0xA03, 0x803, -1)),
                "lib%s.so.%d" % (rng.choice("abcxyz"), i),
                "/usr/lib/lib%d.so.%d" % (i, i),
                rng.choice((0, 0, 0, 1 << 62, (1 << 62) | rng.randint(0, 3), 2**64 - 1)))
               for i in range(n)]
    fmt, end = rng.choice(("new", "new", "old", "compat")), rng.choice(("<", ">"))
    order_flag = rng.choice((None, None, 0, 1, 2, 3, 0xFF))
    data = bytearray(build_cache(
        entries, fmt=fmt, end=end, generator=rng.choice((None, "ldconfig (fuzz)")),
        hwcaps=rng.choice(((), ("x86-64-v3",), ("x86-64-v2", "x86-64-v3", "x86-64-v4"))),
        order_flag=order_flag))
    edits = rng.choice((0, 1, 1, 2, 4))
    for _ in range(edits):
        mutate_cache(rng, data)
    built = {"entries": entries, "format": fmt, "end": end, "order_flag": order_flag}
    return bytes(data), (None if edits else built)


def mutate_cache(rng: random.Random, data: bytearray) -> None:
    new_at = data.find(b"glibc-ld.so.cache1.1")
    e = "<" if rng.random() < 0.5 else ">"
    kind = rng.randrange(9)
    if kind == 0:
        del data[rng.randint(0, len(data)):]
    elif kind == 1:
        for _ in range(rng.randint(1, 6)):
            if data:
                data[rng.randrange(len(data))] = rng.getrandbits(8)
    elif kind == 2 and new_at >= 0:  # nlibs, len_strings, extension_offset
        _put(data, e + "I", new_at + rng.choice((20, 24, 32)), _absurd(rng, 32, len(data)))
    elif kind == 3 and new_at >= 0:  # an entry's key/value offset or hwcap
        slot = new_at + 48 + 24 * rng.randrange(4)
        fmt, at = rng.choice((("I", 4), ("I", 8), ("Q", 16), ("i", 0)))
        _put(data, e + fmt, slot + at, _absurd(rng, 8 * struct.calcsize(fmt), len(data)))
    elif kind == 4:  # strings without terminator
        data[:] = data.rstrip(b"\0").replace(b"\0", b"A") if rng.random() < 0.2 else (
            data[:-1] + b"Z" if data else data)
    elif kind == 5 and data.startswith(b"ld.so-1.7.0"):
        _put(data, e + "I", 12, _absurd(rng, 32, len(data)))
    elif kind == 6:  # extension directory: count / section offset / size
        at = data.find(struct.pack("<I", 0xEAA42174)) if e == "<" else data.find(
            struct.pack(">I", 0xEAA42174))
        if at >= 0:
            _put(data, e + "I", at + rng.choice((4, 8, 16, 20, 24, 32, 36)),
                 _absurd(rng, 32, len(data)))
    elif kind == 7:
        data += os.urandom(rng.randint(1, 64))
    else:
        if len(data) > 28 and new_at >= 0 and new_at + 28 < len(data):
            data[new_at + 28] = rng.choice((0, 1, 2, 3, 4, 255))


def quadratic_cache(n: int = 200, run: int = 20000, fmt: str = "new") -> bytes:
    """Every entry's key and value point at one long unterminated-until-the-end run."""
    e = NATIVE_END
    start = 48 + 24 * n
    header = b"glibc-ld.so.cache1.1" + struct.pack(e + "IIB3xI12x", n, run + 1, 2 if e == "<" else 3, 0)
    return header + struct.pack(e + "iIIIQ", 0x303, start, start, 0, 0) * n + b"A" * run + b"\0"


def hwcaps_bomb(size: int = 100000, compat: bool = True) -> bytes:
    """An extension section claiming *size* bytes of hwcaps string offsets."""
    e = NATIVE_END
    old = b"ld.so-1.7.0\0" + struct.pack(e + "I", 0) if compat else b""
    base = len(old)
    new = b"glibc-ld.so.cache1.1" + struct.pack(e + "IIB3xI12x", 0, 0, 2 if e == "<" else 3,
                                                base + 48)
    ext = struct.pack(e + "II", 0xEAA42174, 1) + struct.pack(e + "IIII", 1, 0, base + 48 + 24, size)
    return old + new + ext + b"\0" * size


# -- ld.so.conf -------------------------------------------------------------------------------

CONF_WORDS = ("/usr/lib", "/opt/a/", "/opt/b  ", "relative/dir", "/", "include", "hwcap 1 x",
              "include *.conf", "include ld.so.conf.d/*.conf", "include /etc/ld.so.conf",
              "include /etc/*", "include ../*", "include /nonexistent/*.conf", "include [",
              "include [!a]*", "include ?.conf", "include /etc/ld.so.conf.d/**",
              "# comment", "   ", "\t/tabbed/dir\t# trailing comment", "/dir#with#hash",
              "include\t/etc/ld.so.conf.d/*.conf extra.conf", "/x\0y", "/caf\xe9", "/\udcff")


def random_conf_tree(rng: random.Random, root: str) -> None:
    """/etc/ld.so.conf and a few includes under *root*, with cycles and junk."""
    etc = os.path.join(root, "etc")
    d = os.path.join(etc, "ld.so.conf.d")
    os.makedirs(d, exist_ok=True)
    names = ["ld.so.conf"] + ["ld.so.conf.d/%s.conf" % c for c in rng.sample("abcdefgh", 4)]
    for name in names:
        if rng.random() < 0.15:
            continue
        lines = [rng.choice(CONF_WORDS) for _ in range(rng.randint(0, 8))]
        if rng.random() < 0.1:
            lines.append("/" + "l" * rng.choice((255, 5000, 200000)))
        text = "\n".join(lines)
        if rng.random() < 0.2:
            text = text.replace("\n", rng.choice(("\r\n", "\r", "\x0b", "\x1c", "\u2028")))
        raw = text.encode("utf-8", "surrogateescape")
        if rng.random() < 0.1:
            raw += bytes(rng.getrandbits(8) for _ in range(64))
        with open(os.path.join(etc, name), "wb") as f:
            f.write(raw)
    if rng.random() < 0.2:
        _try(os.symlink, "loop2.conf", os.path.join(d, "loop1.conf"))
        _try(os.symlink, "loop1.conf", os.path.join(d, "loop2.conf"))
    if rng.random() < 0.2:
        _try(os.symlink, "../ld.so.conf", os.path.join(d, "up.conf"))
    if rng.random() < 0.1:
        _try(os.makedirs, os.path.join(d, "dir.conf"))
    if rng.random() < 0.1:
        _try(os.symlink, "/nonexistent/x.conf", os.path.join(d, "dangling.conf"))


def _try(fn: object, *args: object) -> None:
    try:
        fn(*args)  # type: ignore[operator]
    except OSError:
        pass


# -- a whole root for the resolver ------------------------------------------------------------

GOOD = "good"  # the library every fuzzed root holds one valid copy of


def random_root(rng: random.Random, root: str, default: str) -> tuple[str, dict[str, str]]:
    """Fill *root* with one valid lib<GOOD> and hostile neighbours; return (name, environ).

    The valid copy sits in a default dir, an ld.so.conf dir or an LD_LIBRARY_PATH dir; next
    to it: mutated ELF files, linker scripts, empty files, dangling symlinks, symlink loops,
    directories, foreign-architecture libraries and links leading out of the root.  The
    cache, when there is one, is valid, stale, of the other byte order, or garbage.
    """
    dirs = [default, "/opt/conf", "/env"]
    environ = {"LD_LIBRARY_PATH": rng.choice(("/env", "/env:", ":/env", "/env::/nonexistent",
                                              "/env;/env", "/env:/env"))}
    os.makedirs(os.path.join(root, "etc"), exist_ok=True)
    conf = rng.choice(("/opt/conf\n", "include /etc/ld.so.conf.d/*.conf\n", "/opt/conf/\n",
                       "include ld.so.conf.d/*.conf\ninclude /etc/ld.so.conf\n"))
    _write(root, "/etc/ld.so.conf", conf.encode())
    _write(root, "/etc/ld.so.conf.d/a.conf", b"/opt/conf\n/nonexistent\n")
    for d in dirs:
        os.makedirs(root + d, exist_ok=True)
    good_dir = rng.choice(dirs)
    soname = "lib%s.so.3" % GOOD
    good = elfgen.native(soname=soname)
    if rng.random() < 0.5:
        _write(root, good_dir + "/" + soname, good)
    else:
        _write(root, good_dir + "/" + soname + ".0.1", good)
        _try(os.symlink, soname + ".0.1", root + good_dir + "/" + soname)
    for _ in range(rng.randint(0, 6)):
        d = root + rng.choice(dirs)
        name = rng.choice(("lib%s.so" % GOOD, "lib%s.so.%d" % (GOOD, rng.randint(0, 12)),
                           "lib%s.so.%d.%d" % (GOOD, rng.randint(0, 12), rng.randint(0, 9)),
                           "libother.so.1"))
        path = os.path.join(d, name)
        if os.path.lexists(path):
            continue
        kind = rng.randrange(10)
        if kind <= 2:
            data = bytearray(elfgen.native(soname=rng.choice((None, name, "lib%s.so.9" % GOOD))))
            for _ in range(rng.randint(1, 3)):
                mutate_elf(rng, data)
            _write_host(path, bytes(data))
        elif kind == 3:
            _write_host(path, b"/* GNU ld script */\nGROUP ( libgood.so.3 )\n")
        elif kind == 4:
            _write_host(path, b"")
        elif kind == 5:
            _try(os.symlink, rng.choice(("missing.so", "/nonexistent/libgood.so.1",
                                         "../../../../../../../../etc/passwd", "/etc/passwd",
                                         name)), path)
        elif kind == 6:
            _try(os.symlink, name + ".loop", path)
            _try(os.symlink, name, path + ".loop")
        elif kind == 7:
            _try(os.makedirs, path)
        else:
            machine = rng.choice((elfgen.EM_386, elfgen.EM_AARCH64, elfgen.EM_X86_64, elfgen.EM_PPC64))
            _write_host(path, elfgen.elf(bits=rng.choice((32, 64)), machine=machine, soname=name,
                                         endian=rng.choice(("little", "big"))))
    cache = rng.randrange(6)
    if cache == 1:  # valid
        entries = [(0x303, soname, good_dir + "/" + soname, 0)]
        _write(root, "/etc/ld.so.cache", build_cache(entries))
    elif cache == 2:  # stale: the entries point at files that are gone
        entries = [(0x303, "lib%s.so.4" % GOOD, "/gone/lib%s.so.4" % GOOD, 0),
                   (0x303, soname, "/gone/" + soname, 0)]
        _write(root, "/etc/ld.so.cache", build_cache(entries, fmt=rng.choice(("new", "compat"))))
    elif cache == 3:  # the other byte order
        other = ">" if NATIVE_END == "<" else "<"
        entries = [(0x303, "lib%s.so.5" % GOOD, good_dir + "/" + soname, 0)]
        _write(root, "/etc/ld.so.cache", build_cache(entries, end=other))
    elif cache == 4:
        _write(root, "/etc/ld.so.cache", random_cache(rng))
    elif cache == 5:  # a valid cache cut short
        data = build_cache([(0x303, soname, good_dir + "/" + soname, 0)] * 3)
        _write(root, "/etc/ld.so.cache", data[:rng.randint(0, len(data) - 1)])
    name = GOOD if rng.random() < 0.85 else rng.choice(("other", "goo", "good.so", "x", "c"))
    return name, environ


def _write(root: str, inside: str, data: bytes) -> None:
    _write_host(root + inside, data)


def _write_host(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
