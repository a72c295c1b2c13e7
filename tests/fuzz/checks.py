"""Invariants every input must keep, and a meter of the bytes read from each file.

Each check_* function raises AssertionError (with the input in the message) when the code
under test breaks a promise from docs/guarantees.md; anything else it returns normally.
"""

from __future__ import annotations

import os
import sys

from ctypes_shim import _elf, _ldcache, _ldpaths, _resolve

from . import reference

# The most any one ELF file may cost: the identification and header, a full program header
# table (512 entries), one PT_INTERP string, the dynamic section (64 KiB), the SONAME and 256
# DT_NEEDED strings (4 KiB each) and a 512-byte look for a linker script.
ELF_READ_BOUND = 2 * 1024 * 1024
ELF_SINGLE_READ = 64 * 1024
CACHE_READ_BOUND = _ldcache.MAX_CACHE_BYTES + 1
CONF_READ_BOUND = 1024 * 1024
# Decoded cache strings may exceed the file (ldconfig shares suffixes), but not by much.
CACHE_STRING_FACTOR = 4
CACHE_STRING_SLACK = 64 * 1024


class MeteredBytes(bytes):
    """bytes that count what the parser slices out of them."""

    sliced = 0

    def __getitem__(self, key):  # type: ignore[no-untyped-def,override]
        out = bytes.__getitem__(self, key)
        if isinstance(key, slice):
            MeteredBytes.sliced += len(out)
        return out


class _MeteredFile:
    """A file object whose read() calls are counted; everything else is delegated."""

    def __init__(self, meter: ReadMeter, path: str, f: object) -> None:
        self._meter, self._path, self._f = meter, path, f

    def __getattr__(self, name: str) -> object:  # fileno, seek, readinto, ...
        return getattr(self._f, name)

    def readinto(self, buffer: bytearray) -> int:
        self._meter.add(self._path, len(buffer))
        return self._f.readinto(buffer)  # type: ignore[attr-defined,no-any-return]

    def read(self, size: int = -1) -> bytes:
        self._meter.add(self._path, size if size is not None and size >= 0 else -1)
        return self._f.read(size)  # type: ignore[attr-defined,no-any-return]

    def __enter__(self) -> _MeteredFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._f.close()  # type: ignore[attr-defined]

    def close(self) -> None:
        self._f.close()  # type: ignore[attr-defined]


class ReadMeter:
    """Sums the bytes requested from each path through os.pread/os.read and open().read.

    Requested, not returned: a request is what the interpreter allocates for, so a small
    file with a hostile header still shows the size it asked for.  Unbounded reads (size -1)
    are recorded as infinite.
    """

    @staticmethod
    def modules() -> list[object]:
        """Every loaded module of the package (the resolver's internals move between them)."""
        return [m for n, m in sorted(sys.modules.items())
                if m is not None and (n == "ctypes_shim" or n.startswith("ctypes_shim."))]

    def __init__(self) -> None:
        self.by_path: dict[str, float] = {}
        self.largest: dict[str, float] = {}
        self.opened: list[str] = []
        self._fds: dict[int, str] = {}

    def add(self, path: str, size: float) -> None:
        size = float("inf") if size < 0 else size
        self.by_path[path] = self.by_path.get(path, 0) + size
        self.largest[path] = max(self.largest.get(path, 0), size)

    def __enter__(self) -> ReadMeter:
        self._saved = (os.open, os.pread, os.read, os.close)
        real_open, real_pread, real_read, real_close = self._saved
        meter = self

        def m_open(path, flags, mode=0o777, *a, **kw):  # type: ignore[no-untyped-def]
            fd = real_open(path, flags, mode, *a, **kw)
            meter._fds[fd] = os.fsdecode(path) if not isinstance(path, int) else str(path)
            meter.opened.append(meter._fds[fd])
            return fd

        def m_pread(fd, n, offset):  # type: ignore[no-untyped-def]
            meter.add(meter._fds.get(fd, "fd %d" % fd), n)
            return real_pread(fd, n, offset)

        def m_read(fd, n):  # type: ignore[no-untyped-def]
            if fd in meter._fds:
                meter.add(meter._fds[fd], n)
            return real_read(fd, n)

        def m_close(fd):  # type: ignore[no-untyped-def]
            meter._fds.pop(fd, None)
            return real_close(fd)

        def m_builtin_open(file, mode="r", *a, **kw):  # type: ignore[no-untyped-def]
            f = open(file, mode, *a, **kw)  # noqa: SIM115
            name = os.fsdecode(file) if not isinstance(file, int) else str(file)
            meter.opened.append(name)
            return _MeteredFile(meter, name, f)

        os.open, os.pread, os.read, os.close = m_open, m_pread, m_read, m_close  # type: ignore[assignment]
        self._patched = self.modules()
        for module in self._patched:
            module.open = m_builtin_open  # type: ignore[attr-defined]
        return self

    def __exit__(self, *exc: object) -> None:
        os.open, os.pread, os.read, os.close = self._saved  # type: ignore[assignment]
        for module in self._patched:
            module.__dict__.pop("open", None)  # type: ignore[attr-defined]

    def over(self, bound: float, single: float | None = None,
             only: str | None = None) -> list[tuple[str, float, float]]:
        """Paths whose total (or largest single request) is over the bound."""
        out = []
        for path, total in self.by_path.items():
            if only is not None and only not in path:
                continue
            if total > bound or (single is not None and self.largest[path] > single):
                out.append((path, total, self.largest[path]))
        return out


def _short(data: bytes) -> str:
    return repr(data[:200]) + ("... (%d bytes)" % len(data) if len(data) > 200 else "")


def check_elf(data: bytes, scratch: str | None = None) -> _elf.ELFInfo | None:
    """parse_elf (and read_elf on a file with the same bytes) raise only ELFInvalid, agree
    with each other, read boundedly and return sane fields."""
    MeteredBytes.sliced = 0
    try:
        info: _elf.ELFInfo | None = _elf.parse_elf(MeteredBytes(data))
        error = None
    except _elf.ELFInvalid as e:
        info, error = None, e
    except Exception as e:
        raise AssertionError("parse_elf raised %r on %s" % (e, _short(data))) from e
    assert MeteredBytes.sliced <= ELF_READ_BOUND, (MeteredBytes.sliced, _short(data))
    if info is not None:
        for s in (info.soname, info.interp, *info.needed):
            assert s is None or (isinstance(s, str) and "\0" not in s and len(s) <= 4096), s
        assert len(info.needed) <= 256
    if scratch is None:
        return info
    path = os.path.join(scratch, "libfuzz.so.1")
    with open(path, "wb") as f:
        f.write(data)
    with ReadMeter() as meter:
        try:
            from_file: _elf.ELFInfo | None = _elf.read_elf(path)
        except _elf.ELFInvalid:
            from_file = None
        except OSError as e:
            raise AssertionError("read_elf raised OSError %r on a regular file %s"
                                 % (e, _short(data))) from e
        except Exception as e:
            raise AssertionError("read_elf raised %r on %s" % (e, _short(data))) from e
    assert not meter.over(ELF_READ_BOUND, ELF_SINGLE_READ), (meter.by_path, _short(data))
    assert (from_file is None) == (info is None), (error, from_file, _short(data))
    if info is not None and from_file is not None:
        assert (from_file.soname, from_file.abi, from_file.type, from_file.needed,
                from_file.interp) == (info.soname, info.abi, info.type, info.needed,
                                      info.interp), _short(data)
    return info


def check_elf_fields(info: _elf.ELFInfo | None, kw: dict[str, object]) -> None:
    """An unmutated generated file reads back as what it was generated from (the ELF spec's
    numbers: ELFCLASS32/64 = 1/2, ELFDATA2LSB/MSB = 1/2).  Only a file without PT_DYNAMIC
    may be refused (ldconfig skips such a "shared object" too)."""
    if info is None:
        assert not kw["dynamic"], ("a well-formed generated file was refused", kw)
        return
    got = (info.elf_class, info.data, info.machine, info.type, info.osabi, info.soname,
           info.needed, info.interp)
    want = (1 if kw["bits"] == 32 else 2, 1 if kw["endian"] == "little" else 2, kw["machine"],
            kw["e_type"], kw["osabi"], kw["soname"] if kw["dynamic"] else None,
            kw["needed"] if kw["dynamic"] else (), kw["interp"])
    assert got == want, (got, want)


def check_cache_entries(cache: _ldcache.Cache | None, built: dict[str, object]) -> None:
    """An unedited generated cache reads back entry for entry, or is refused for the reason
    glibc refuses it: the other byte order, or a byte-order flag of 1 ("invalid")."""
    native = "<" if sys.byteorder == "little" else ">"
    flag = built["order_flag"]
    new_part = built["format"] != "old"
    wrong = new_part and (flag == 1 or (flag is not None and flag & 3 in (2, 3) and
                                        (flag & 3 == 2) != (built["end"] == "<")) or
                          (flag is None and built["end"] != native))
    if wrong or (new_part and built["end"] != native):
        return  # refused or read in its own byte order: both allowed by the format
    assert cache is not None, ("a well-formed generated cache was refused", built)
    want = [(k, v, f, h) for f, k, v, h in built["entries"]]  # type: ignore[attr-defined]
    got = [(e.key, e.value, e.flags, e.hwcap) for e in cache.entries]
    if built["format"] == "old":
        got = [(k, v, f, 0) for k, v, f, _ in got]
        want = [(k, v, f, 0) for k, v, f, _ in want]
    assert got == want, (got, want)


def check_cache(data: bytes) -> _ldcache.Cache | None:
    """parse_cache raises only CacheInvalid, slices boundedly, decodes boundedly."""
    MeteredBytes.sliced = 0
    try:
        cache = _ldcache.parse_cache(MeteredBytes(data))
    except _ldcache.CacheInvalid:
        return None
    except Exception as e:
        raise AssertionError("parse_cache raised %r on %s" % (e, _short(data))) from e
    assert MeteredBytes.sliced <= 4 * len(data) + 4096, (MeteredBytes.sliced, _short(data))
    assert cache.format in ("new", "old", "compat") and cache.byteorder in ("little", "big")
    decoded = 0
    for entry in cache.entries:
        assert isinstance(entry.key, str) and isinstance(entry.value, str)
        assert isinstance(entry.flags, int) and isinstance(entry.hwcap, int)
        assert entry.hwcap_name is None or isinstance(entry.hwcap_name, str)
        decoded += len(entry.key) + len(entry.value)
    assert decoded <= CACHE_STRING_FACTOR * len(data) + CACHE_STRING_SLACK, (decoded, len(data))
    return cache


def check_conf(root: str) -> tuple[tuple[str, str], ...]:
    """parse_ld_so_conf and conf_dirs never raise and return (dir, origin) string pairs."""
    results = []
    for call in (lambda: _ldpaths.parse_ld_so_conf(root=root),
                 lambda: _ldpaths.conf_dirs(root=root)):
        with ReadMeter() as meter:
            try:
                out = call()
            except Exception as e:
                raise AssertionError("ld.so.conf parsing raised %r in %s" % (e, root)) from e
        assert not meter.over(CONF_READ_BOUND), meter.by_path
        assert isinstance(out, tuple)
        for item in out:
            assert isinstance(item, tuple) and len(item) == 2
            assert all(isinstance(x, str) for x in item), item
            assert "#" not in item[0], item
        results.append(out)
    return results[0]


def check_resolver(root: str, name: object, environ: dict[str, str], must_find: bool,
                   ) -> tuple[str | None, reference.Expected | None]:
    """A fresh Resolver on *root* never raises, reads boundedly, agrees with itself when
    warm, and answers exactly what glibc's ldconfig and stock's rule give for the same root
    (tests/fuzz/reference.py).  Returns (answer, the reference's verdict)."""
    resolver = _resolve.Resolver(root=root, environ=environ)
    trace: list[_resolve.Step] = []
    with ReadMeter() as meter:
        try:
            answer = resolver.lookup(name, trace)
            again = resolver.find(name)
        except BaseException as e:
            raise AssertionError("lookup(%r) raised %r in %s" % (name, e, root)) from e
    errors = [t for t in trace if t.outcome == "error"]
    assert not errors, (errors, trace)
    assert answer == again, (answer, again)
    elf_over = [o for o in meter.over(ELF_READ_BOUND, ELF_SINGLE_READ)
                if not o[0].endswith(("ld.so.cache", ".conf", "/environ"))]
    assert not elf_over, elf_over
    assert not meter.over(CACHE_READ_BOUND, only="ld.so.cache")
    if not isinstance(name, str):
        assert answer is None
        return answer, None
    want = reference.expected(root, name, environ)
    assert want.accepts(answer), "lib%s in %s: shim %r, reference %r; trace %r" % (
        name, root, answer, want, trace)
    if must_find and want.decided:
        assert want.answer is not None, ("the generated root holds a valid lib%s but glibc's "
                                         "ldconfig found none: %r" % (name, want))
    return answer, want


def native_triplet() -> str | None:
    return _ldpaths.multiarch()

