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
import stat
import struct
import sys

from . import __version__, _elf, _ldcache, _ldpaths

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Iterable, Iterator

GENERATOR = f"ctypes_shim {__version__} (pure-Python ldconfig)"
LD_SO_CACHE = "/etc/ld.so.cache"
LD_SO_CONF = "/etc/ld.so.conf"

FLAG_ANY, FLAG_LIBC4, FLAG_ELF, FLAG_ELF_LIBC5, FLAG_ELF_LIBC6 = -1, 0, 1, 2, 3
_LIB_TYPES = {"libc4": FLAG_LIBC4, "libc5": FLAG_ELF_LIBC5, "libc6": FLAG_ELF_LIBC6,
              "glibc2": FLAG_ELF_LIBC6}  # "dir=TYPE" lines in ld.so.conf
_FLAG_TYPES = ("libc4", "ELF", "libc5", "libc6")
_FLAG_REQUIRED = {  # print_entry in glibc 2.36 elf/cache.c; others print as ",<decimal>"
    0x0000: "", 0x0100: ",64bit", 0x0200: ",IA-64", 0x0300: ",x86-64", 0x0400: ",64bit",
    0x0500: ",64bit", 0x0600: ",N32", 0x0700: ",64bit", 0x0800: ",x32", 0x0900: ",hard-float",
    0x0A00: ",AArch64", 0x0B00: ",soft-float", 0x0C00: ",nan2008", 0x0D00: ",N32,nan2008",
    0x0E00: ",64bit,nan2008", 0x0F00: ",soft-float", 0x1000: ",double-float",
}
_X86 = frozenset(("x86_64", "i386", "i486", "i586", "i686"))
# sysdeps/x86/dl-procinfo.c as ldconfig sees it (it covers both i386 and x86-64):
# hwcap names (bits 0..2), platform names (bits 48..51); "tls" is bit 63 everywhere.
_X86_HWCAPS = ("sse2", "x86_64", "avx512_1")
_X86_PLATFORMS = ("i586", "i686", "haswell", "xeon_phi")
_TLS_HWCAP_BIT = 63
# readlib.c + sysdeps/unix/sysv/linux/*/ldconfig.h: PT_INTERP / DT_NEEDED values that make
# an ELF object without machine-specific flags (i386 on x86) "libc6" rather than "ELF".
_X86_INTERPRETERS = frozenset(("/lib/ld-linux-x86-64.so.2", "/lib/ld-linux.so.2",
                               "/libx32/ld-linux-x32.so.2", "/lib64/ld-linux-x86-64.so.2"))
_ARM_INTERPRETERS = frozenset(("/lib/ld-linux-aarch64.so.1", "/lib/ld-linux-aarch64_be.so.1",
                               "/lib/ld-linux-aarch64_ilp32.so.1", "/lib/ld-linux.so.3",
                               "/lib/ld-linux-aarch64_be_ilp32.so.1", "/lib/ld-linux-armhf.so.3"))
_KNOWN_LIBS = frozenset(("libc.so.6", "libm.so.6"))
_PT_GNU_PROPERTY = 0x6474E553
_NT_GNU_PROPERTY_TYPE_0 = 5
_GNU_PROPERTY_X86_ISA_1_NEEDED = 0xC0008002


class LdconfigError(OSError):
    """A cache cannot be written (or read) where asked; the message is one line."""


# -- names ------------------------------------------------------------------------------


def is_dso(name: str) -> bool:
    """_dl_is_dso: lib*.so*, ld-*.so*, ld.so.*, ld64.so.*."""
    return (name.startswith(("lib", "ld-")) and ".so" in name) or name.startswith(
        ("ld.so.", "ld64.so."))


# -- what ldconfig knows about this machine -------------------------------------------------


class Machine:
    """The ldconfig whose rules we follow: the one built for this machine (as `ldconfig -r`
    is the host's binary, whatever the root holds)."""

    def __init__(self, uname: str | None = None, hwcap_mask: int | None = None,
                 triplet: str | None = None) -> None:
        self.uname = uname or os.uname().machine
        self.x86 = self.uname in _X86
        if hwcap_mask is None:  # ldconfig honours LD_HWCAP_MASK (set_hwcap)
            try:
                hwcap_mask = int(os.environ.get("LD_HWCAP_MASK", "7"), 0)
            except ValueError:
                hwcap_mask = 0
        self.hwcap_mask = hwcap_mask
        self.triplet = triplet if triplet is not None else _ldpaths.multiarch()
        if self.x86:
            self.interpreters = _X86_INTERPRETERS
        elif self.uname == "aarch64" or self.uname.startswith("arm"):
            self.interpreters = _ARM_INTERPRETERS
        else:
            self.interpreters = frozenset()

    def builtin_dirs(self) -> tuple[str, ...]:
        """add_system_dir(SLIBDIR), add_system_dir(LIBDIR); Debian also adds /lib, /usr/lib
        (what `ldconfig -v -r EMPTY` lists as `<builtin>` on this host)."""
        if self.triplet:
            return (f"/lib/{self.triplet}", f"/usr/lib/{self.triplet}", "/lib", "/usr/lib")
        if self.uname == "x86_64":  # upstream: /lib64 expands to /lib, /lib64, /libx32
            return ("/lib", "/lib64", "/libx32", "/usr/lib", "/usr/lib64", "/usr/libx32")
        if sys.maxsize > 2**32:
            return ("/lib", "/lib64", "/usr/lib", "/usr/lib64")
        return ("/lib", "/usr/lib")

    def hwcap_index(self, name: str) -> int | None:
        """The legacy hwcap bit a subdirectory name stands for (path_hwcap)."""
        if self.x86:
            if name in _X86_HWCAPS:
                return _X86_HWCAPS.index(name)
            if name in _X86_PLATFORMS:
                return 48 + _X86_PLATFORMS.index(name)
        return _TLS_HWCAP_BIT if name == "tls" else None

    def is_hwcap_platform(self, name: str) -> bool:
        if self.x86 and name in _X86_HWCAPS:
            return bool(1 << _X86_HWCAPS.index(name) & self.hwcap_mask)
        return self.hwcap_index(name) is not None

    def path_hwcap(self, path: str) -> int:
        hwcap = 0
        while "/" in path:
            path, _, last = path.rpartition("/")
            bit = self.hwcap_index(last)
            if bit is None:
                break
            hwcap += 1 << bit
        return hwcap

    def flags(self, info: _elf.ELFInfo) -> int | None:
        """The cache flags of a shared object, or None when this ldconfig skips it."""
        if info.data != (_elf.ELFDATA2LSB if sys.byteorder == "little" else _elf.ELFDATA2MSB):
            return None  # ldconfig reads e_type in its own byte order: never ET_DYN
        if self.x86:  # x86/readelflib.c knows exactly these
            if info.machine == _elf.EM_X86_64:
                return 0x0303 if info.elf_class == _elf.ELFCLASS64 else 0x0803
            if info.machine == _elf.EM_386 and info.elf_class == _elf.ELFCLASS32:
                return self._libc_type(info)
            return None  # "is for unknown machine"
        if self.uname == "aarch64" or self.uname.startswith("arm"):  # arm/readelflib.c
            if info.elf_class == _elf.ELFCLASS64:
                return 0x0A03
            if info.flags >> 24 == 5:  # EABI version 5
                if info.flags & _elf.EF_ARM_ABI_FLOAT_HARD:
                    return 0x0903
                return 0x0B03 if info.flags & _elf.EF_ARM_ABI_FLOAT_SOFT else 0x0003
            return self._libc_type(info)
        flags = _elf.cache_flags(info)  # other machines: best effort
        if flags == -1:
            return None
        return flags if flags & 0xFF00 else self._libc_type(info)

    def _libc_type(self, info: _elf.ELFInfo) -> int:
        if info.interp in self.interpreters or any(n in _KNOWN_LIBS for n in info.needed):
            return FLAG_ELF_LIBC6
        return FLAG_ELF


# -- the scan -------------------------------------------------------------------------------


class Dir:
    """One directory ldconfig processes (struct dir_entry)."""

    __slots__ = ("flag", "hwcaps", "id", "origin", "path")

    def __init__(self, path: str, origin: str, flag: int, hwcaps: str | None,
                 ident: tuple[int, int]) -> None:
        self.path = path  # as configured, inside the root; what cache values start with
        self.origin = origin  # "file:line" or "<builtin>:0"
        self.flag = flag  # FLAG_ANY, or the TYPE of a "dir=TYPE" line
        self.hwcaps = hwcaps  # the glibc-hwcaps subdirectory name, for those
        self.id = ident  # (st_dev, st_ino)


class Entry:
    """One cache entry to be (struct cache_entry)."""

    __slots__ = ("bits", "file", "flags", "hwcap", "hwcaps", "isa_level", "kb", "key", "value")

    def __init__(self, key: str, value: str, flags: int, *, hwcap: int = 0,
                 hwcaps: str | None = None, isa_level: int = 0, file: str | None = None) -> None:
        self.key = key
        self.value = value
        self.file = file or value  # the file found; value names its soname link, which
        # ldconfig would create and we do not
        self.flags = flags
        self.hwcap = hwcap  # legacy hwcap bits from the path (tls, x86_64, ...)
        self.hwcaps = hwcaps  # glibc-hwcaps subdirectory name, or None
        self.isa_level = isa_level
        self.bits = bin(hwcap).count("1")
        self.kb = os.fsencode(key)

    def __repr__(self) -> str:
        return f"Entry({self.key!r}, {self.value!r}, {self.flags:#06x}, {self.hwcaps!r})"


class Scan:
    """What ldconfig found in a root: its dirs, the entries in cache order, the files it
    passed over and why."""

    def __init__(self, root: str, machine: Machine) -> None:
        self.root = root
        self.machine = machine
        self.dirs: list[Dir] = []
        self.entries: list[Entry] = []
        self.hwcaps_names: set[str] = set()  # interned even when unused, as ldconfig does
        self.skipped: list[tuple[str, str]] = []  # (path inside root, why)
        self.verbose: list[str] = []  # the stdout of `ldconfig -v -X`, line by line
        self.conf_files: list[str] = []  # host paths of the config files read or looked for

    def missing_links(self) -> list[Entry]:
        """Entries whose value, the soname link ldconfig would create, does not exist."""
        out = []
        for e in self.entries:
            host = _ldpaths.chroot_path(self.root, e.value)
            if e.value != e.file and not (host and os.path.exists(host)):
                out.append(e)
        return out

    def _add_dir(self, d: Dir) -> bool:
        for other in self.dirs:
            if other.id == d.id:
                other.flag = d.flag  # "use the newer information"
                return False
        self.dirs.append(d)
        return True


def scan(root: str = "/", conf: str | None = None, *, machine: Machine | None = None) -> Scan:
    """Find the libraries ldconfig would cache for *root*.

    *conf* is the config file inside the root; by default /etc/ld.so.conf, or
    /etc/ld.so.conf.d/*.conf when that file is missing (an image with libc6 but without
    libc-bin has only the latter; glibc's ldconfig would read neither).
    """
    result = Scan(root, machine or Machine())
    if conf is None:
        lines = _ldpaths.conf_dirs(root=root, seen=result.conf_files)
    else:
        lines = _ldpaths.parse_ld_so_conf(conf, root=root, seen=result.conf_files)
    for line, origin in lines:
        _add_conf_dir(result, line, origin)
    for directory in result.machine.builtin_dirs():
        _add_conf_dir(result, directory, "<builtin>:0")
    i = 0
    while i < len(result.dirs):  # search_dir appends legacy hwcap subdirs as it goes
        _search_dir(result, result.dirs[i])
        i += 1
    result.entries = _sorted(result.entries)
    return result


def _add_conf_dir(result: Scan, line: str, origin: str) -> None:
    flag = FLAG_ANY
    path = line
    if "=" in line:  # "dir=TYPE", still accepted by glibc 2.36
        path, kind = line.split("=", 1)
        flag = _LIB_TYPES.get(kind, FLAG_ANY)
        path = path.rstrip(" \t\n\v\f\r").rstrip("/")
    if path in ("", "/"):  # ldconfig strips every trailing '/': nothing left
        return
    host = _ldpaths.chroot_path(result.root, path)
    try:
        st = os.stat(host)  # type: ignore[arg-type]  # None raises TypeError
    except (OSError, TypeError, ValueError):
        return
    d = Dir(path, origin, flag, None, (st.st_dev, st.st_ino))
    if result._add_dir(d):
        _add_hwcaps_subdirs(result, d, host)  # type: ignore[arg-type]


def _add_hwcaps_subdirs(result: Scan, parent: Dir, host: str) -> None:
    base = host.rstrip("/") + "/glibc-hwcaps"
    try:
        with os.scandir(base) as it:
            names = [(e.name, e.is_file(follow_symlinks=False)) for e in it]
    except OSError:
        return
    for name, is_reg in names:
        if name.startswith(".") or is_reg or ":" in name:
            continue
        target = _ldpaths.chroot_path(result.root, name, base)
        try:
            st = os.stat(target)  # type: ignore[arg-type]
        except (OSError, TypeError, ValueError):
            continue
        if stat.S_ISDIR(st.st_mode):
            result.hwcaps_names.add(name)
            result._add_dir(Dir(f"{parent.path}/glibc-hwcaps/{name}", parent.origin,
                                parent.flag, name, (st.st_dev, st.st_ino)))


class _Lib:  # struct dlib_entry
    __slots__ = ("flag", "is_link", "isa_level", "name", "soname")

    def __init__(self, name: str, soname: str, flag: int, is_link: bool, isa_level: int) -> None:
        self.name, self.soname, self.flag = name, soname, flag
        self.is_link, self.isa_level = is_link, isa_level


def _search_dir(result: Scan, d: Dir) -> None:
    machine, root = result.machine, result.root
    hwcap = machine.path_hwcap(d.path) if d.hwcaps is None else 0
    if d.hwcaps is not None:
        head = f'{d.path}: (hwcap: "{d.hwcaps}")'
    elif hwcap:
        head = f"{d.path}: (hwcap: {hwcap:#018x})"
    else:
        head = f"{d.path}:"
    result.verbose.append(f"{head} (from {d.origin})")
    dir_host = _ldpaths.chroot_path(root, d.path)
    if dir_host is None:  # (os.scandir(None) would list the current directory)
        return
    try:
        with os.scandir(dir_host) as it:
            dirents = list(it)
    except (OSError, ValueError):
        return
    libs: list[_Lib] = []  # ldconfig prepends; we append and walk it backwards
    for de in dirents:
        name = de.name
        try:
            is_link = de.is_symlink()
            is_reg = not is_link and de.is_file(follow_symlinks=False)
            is_dir = not is_link and de.is_dir(follow_symlinks=False)
        except OSError:
            continue
        if not (is_link or is_reg or is_dir):
            continue  # FIFOs, sockets, devices
        if not is_dso(name) and (is_reg or d.hwcaps is not None
                                 or not machine.is_hwcap_platform(name)):
            continue
        if name.endswith(".#prelink#") or (len(name) >= 17 and name[-17:-6] == ".#prelink#."):
            continue
        file_name = f"{d.path}/{name}"
        real = f"{dir_host}/{name}"
        if is_link:
            target = _ldpaths.chroot_path(root, name, dir_host)
            try:
                st = os.stat(target)  # type: ignore[arg-type]
            except (OSError, TypeError, ValueError):
                result.skipped.append((file_name, "dangling symlink"))
                continue
            is_dir = stat.S_ISDIR(st.st_mode)
            real = target  # type: ignore[assignment]
        if d.hwcaps is None and is_dir and machine.is_hwcap_platform(name):
            st = os.stat(real) if not is_link else st
            result._add_dir(Dir(file_name, d.origin, d.flag, None, (st.st_dev, st.st_ino)))
            continue
        if is_dir and not is_link:
            continue
        found = _process_file(result, real, file_name, name)
        if found is None:
            continue
        flag, soname, info = found
        if is_link and name != soname and not (name.endswith(".so") and soname.startswith(name)):
            is_link = False  # a link that is neither the soname nor its dev link: a file
        if is_link:
            soname = name
        if flag == FLAG_ELF and d.flag in (FLAG_ELF_LIBC5, FLAG_ELF_LIBC6):
            flag = d.flag
        isa_level = _isa_level(real, info) if d.hwcaps is not None and machine.x86 else 0
        for lib in libs:
            if lib.soname != soname:
                continue
            if (not is_link and lib.is_link) or (
                    is_link == lib.is_link
                    and _ldcache.libcmp(os.fsencode(lib.name), os.fsencode(name)) < 0):
                if lib.flag != flag:
                    if (lib.flag == FLAG_ELF and flag in (FLAG_ELF_LIBC5, FLAG_ELF_LIBC6)) or (
                            lib.flag in (FLAG_ELF_LIBC5, FLAG_ELF_LIBC6) and flag == FLAG_ELF):
                        lib.flag = flag
                    else:
                        result.skipped.append((file_name, f"same soname as {lib.name} but "
                                                          "different type: flags kept"))
                result.skipped.append((f"{d.path}/{lib.name}", f"superseded by {name}"))
                lib.name, lib.is_link, lib.isa_level = name, is_link, isa_level
            else:
                result.skipped.append((file_name, f"superseded by {lib.name}"))
            break
        else:
            libs.append(_Lib(name, soname, flag, is_link, isa_level))
    for lib in reversed(libs):
        if d.hwcaps is None:
            if not lib.is_link:
                result.verbose.append(f"\t{lib.soname} -> {lib.name}")
            filename = lib.soname
        else:
            result.verbose.append(f"\t{lib.soname} -> {lib.name}")
            filename = lib.name
        result.entries.append(Entry(lib.soname, f"{d.path}/{filename}", lib.flag, hwcap=hwcap,
                                    hwcaps=d.hwcaps, isa_level=lib.isa_level,
                                    file=f"{d.path}/{lib.name}"))


def _process_file(result: Scan, real: str, file_name: str, name: str
                  ) -> tuple[int, str, _elf.ELFInfo | None] | None:
    """process_file + process_elf_file: (flags, soname, info) or None to skip."""
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except (OSError, ValueError) as e:
        result.skipped.append((file_name, f"cannot open: {getattr(e, 'strerror', e)}"))
        return None
    try:
        st = os.fstat(fd)
        head = os.pread(fd, 512, 0) if stat.S_ISREG(st.st_mode) else b""
    except OSError as e:
        result.skipped.append((file_name, f"unreadable: {e.strerror}"))
        return None
    finally:
        os.close(fd)
    if not stat.S_ISREG(st.st_mode):
        result.skipped.append((file_name, "not a regular file"))
        return None
    if st.st_size < (64 if sys.maxsize > 2**32 else 52):  # sizeof (ElfW(Ehdr))
        result.skipped.append((file_name, "too small"))
        return None
    magic = int.from_bytes(head[:2], sys.byteorder)
    if magic in (0o413, 0o314):  # a.out ZMAGIC/QMAGIC: libc4, soname = name up to major
        soname = name
        at = soname.find(".so.")
        if at >= 0:
            dot = soname.find(".", at + 4)
            soname = soname if dot < 0 else soname[:dot]
        return FLAG_LIBC4, soname, None
    if head[:4] != b"\x7fELF":
        why = ("linker script" if b"GROUP" in head or b"GNU ld script" in head
               else "not an ELF file")
        result.skipped.append((file_name, why))
        return None
    try:
        info = _elf.read_elf(real)
    except (OSError, ValueError) as e:
        result.skipped.append((file_name, f"unreadable ELF ({e})"))
        return None
    if info.type != _elf.ET_DYN:
        result.skipped.append((file_name, f"not a shared object (e_type {info.type})"))
        return None
    flags = result.machine.flags(info)
    if flags is None:
        result.skipped.append((file_name, f"for a machine this ldconfig does not know "
                                          f"(class {info.elf_class}, machine {info.machine})"))
        return None
    return flags, info.soname or name, info


def _isa_level(path: str, info: _elf.ELFInfo | None) -> int:
    """The x86 ISA level a library needs (GNU_PROPERTY_X86_ISA_1_NEEDED), as ldconfig
    stores it for glibc-hwcaps entries; 0 when absent or unreadable."""
    if info is None:
        return 0
    try:
        with open(path, "rb") as f:
            data = f.read(1 << 20)
    except OSError:
        return 0
    end = "<" if info.data == _elf.ELFDATA2LSB else ">"
    is64 = info.elf_class == _elf.ELFCLASS64
    try:
        if is64:
            phoff, = struct.unpack_from(end + "Q", data, 32)
            phentsize, phnum = struct.unpack_from(end + "HH", data, 54)
        else:
            phoff, = struct.unpack_from(end + "I", data, 28)
            phentsize, phnum = struct.unpack_from(end + "HH", data, 42)
        word = 8 if is64 else 4
        for i in range(min(phnum, 512)):
            at = phoff + i * phentsize
            if is64:
                p_type, _, p_offset, _, _, p_filesz, _, p_align = struct.unpack_from(
                    end + "IIQQQQQQ", data, at)
            else:
                p_type, p_offset, _, _, p_filesz, _, _, p_align = struct.unpack_from(
                    end + "IIIIIIII", data, at)
            if p_type != _PT_GNU_PROPERTY or p_align != word:
                continue
            note = p_offset
            while note + 12 - p_offset < p_filesz:
                namesz, descsz, n_type = struct.unpack_from(end + "III", data, note)
                if namesz == 4 and n_type == _NT_GNU_PROPERTY_TYPE_0 and \
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
                        if p_kind > _GNU_PROPERTY_X86_ISA_1_NEEDED:
                            return 0
                        if p_kind == _GNU_PROPERTY_X86_ISA_1_NEEDED:
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


# -- order and layout -------------------------------------------------------------------------


def _compare(e1: Entry, e2: Entry) -> int:
    """elf/cache.c compare(): < 0 puts e1 first."""
    res = _ldcache.libcmp(e2.kb, e1.kb)
    if res == 0:
        if e1.flags != e2.flags:
            return 1 if e1.flags < e2.flags else -1
        if (e1.hwcaps is None) != (e2.hwcaps is None):
            return -1 if e1.hwcaps is not None else 1
        if e1.hwcaps is not None and e2.hwcaps is not None and e1.hwcaps != e2.hwcaps:
            return -1 if os.fsencode(e1.hwcaps) < os.fsencode(e2.hwcaps) else 1
        if e1.bits != e2.bits:
            return 1 if e2.bits > e1.bits else -1
        if e1.hwcap != e2.hwcap:
            return 1 if e2.hwcap > e1.hwcap else -1
    return res


def _sorted(entries: list[Entry]) -> list[Entry]:
    # add_to_cache inserts each entry after every entry that does not sort after it: the
    # same as a stable sort of the entries in the order they were found.
    import functools  # noqa: PLC0415 -- only when building a cache

    return sorted(entries, key=functools.cmp_to_key(_compare))


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
    str_offset = 48 + 24 * len(entries)
    out = bytearray()
    ext_offset = (str_offset + len(table) + 3) & ~3
    out += struct.pack(end + "17s3sIIB3xI12x", b"glibc-ld.so.cache", b"1.1", len(entries),
                       len(table), 2 if end == "<" else 3, ext_offset)
    for e in entries:
        if e.hwcaps is None:
            hwcap = e.hwcap
        else:
            if e.isa_level > 0x3FF:
                raise ValueError(f"{e.value}: ISA level is too high ({e.isa_level} > 1023)")
            hwcap = _ldcache.DL_CACHE_HWCAP_EXTENSION | e.isa_level << 32 | index[
                os.fsencode(e.hwcaps)]
        out += struct.pack(end + "iIIIQ", e.flags, str_offset + offsets[os.fsencode(e.key)],
                           str_offset + offsets[os.fsencode(e.value)], 0, hwcap)
    out += table
    out += b"\0" * (ext_offset - len(out))
    gen = generator.encode("utf-8", "surrogateescape")
    count = 2 if used else 1
    hwcaps_offset = ext_offset + 8 + 16 * count
    gen_offset = hwcaps_offset + 4 * len(used)
    out += struct.pack(end + "II", _ldcache.EXTENSION_MAGIC, count)
    out += struct.pack(end + "IIII", _ldcache.EXT_TAG_GENERATOR, 0, gen_offset, len(gen))
    if used:
        out += struct.pack(end + "IIII", _ldcache.EXT_TAG_HWCAPS, 0, hwcaps_offset, 4 * len(used))
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
    kernel = os.path.realpath(_ldpaths.join(root, head or "/"))
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


def describe(flags: int) -> str:
    """The "(libc6,x86-64)" part of a `ldconfig -p` line, without the parentheses."""
    kind = flags & 0xFF
    text = _FLAG_TYPES[kind] if kind < 4 else "unknown"
    required = flags & 0xFF00
    return text + _FLAG_REQUIRED.get(required, f",{required}")


def print_lines(cache: _ldcache.Cache, name: str) -> Iterator[str]:
    """The lines (without newlines) `LC_ALL=C ldconfig -p -C NAME` prints for *cache*."""
    yield f"{len(cache.entries)} libs found in cache `{name}'"
    for e in cache.entries:
        if e.hwcap_name is not None:
            extra = f', hwcap: "{e.hwcap_name}"'
        elif e.hwcap:
            extra = f", hwcap: {e.hwcap:#018x}"
        else:
            extra = ""
        yield f"\t{e.key} ({describe(e.flags)}{extra}) => {e.value}"
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
