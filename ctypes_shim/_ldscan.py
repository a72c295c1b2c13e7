"""What glibc's ldconfig would put in ld.so.cache for a root: which directories it reads,
in which order; which files in each it keys, under which key and flags; and the order of
the entries.

The cache writer (`_ldconfig`) and the resolver's scan both call this module, so a name
is found by the same rules with a cache and without one.  It follows elf/ldconfig.c
(`main`, `parse_conf`, `add_dir_1`, `add_glibc_hwcaps_subdirectories`, `search_dir`),
elf/readlib.c (`process_file`) and elf/cache.c (`compare`), in the version of glibc that
runs in the root: glibc 2.37 stopped reading legacy hwcap subdirectories (tls, x86_64,
...), `dir=TYPE` lines and non-libc6 types; 2.39 started skipping the temporary files of
package managers (`libfoo.so.1;abc` from RPM, `libfoo.so.1.dpkg-new` and `.dpkg-tmp`).
Paths are as seen inside the root; files are read as they would be after chroot(root).
"""

import os
import stat
import sys

from . import _elf, _ldcache, _ldpaths

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Iterable, Tuple, Union

    Classified = Union[Tuple[int, str, "_elf.ELFInfo | None"], str]  # (flags, soname, info) | why
    Dirent = Tuple[str, str]  # (name, kind): kind is "lnk", "reg", "dir" or "other"

FLAG_ANY, FLAG_LIBC4, FLAG_ELF, FLAG_ELF_LIBC5, FLAG_ELF_LIBC6 = -1, 0, 1, 2, 3
_LIB_TYPES = {"libc4": FLAG_LIBC4, "libc5": FLAG_ELF_LIBC5, "libc6": FLAG_ELF_LIBC6,
              "glibc2": FLAG_ELF_LIBC6}  # "dir=TYPE" lines in ld.so.conf (glibc < 2.37)
_X86 = frozenset(("x86_64", "i386", "i486", "i586", "i686"))
# sysdeps/x86/dl-procinfo.c as ldconfig sees it (it covers both i386 and x86-64):
# hwcap names (bits 0..2), platform names (bits 48..51); "tls" is bit 63 everywhere.
_X86_HWCAPS = ("sse2", "x86_64", "avx512_1")
_X86_PLATFORMS = ("i586", "i686", "haswell", "xeon_phi")
_TLS_HWCAP_BIT = 63
# What changed in ldconfig since glibc 2.36 (bminor/glibc history of elf/ldconfig.c):
GLIBC_2_37 = (2, 37)  # b78ff5a25d: no legacy hwcaps; 8ee878592c: only libc6, no dir=TYPE
GLIBC_2_39 = (2, 39)  # 2aa0974d25, cfb5a97a93: skip_dso_based_on_name (package managers)


def glibc_release(root: str = "/") -> "tuple[str, str | None] | None":
    """The version of the glibc in *root* as it names itself ("2.41"), and the libc.so.6 it
    was read from (a path inside *root*; None for the running glibc, which "/" asks)."""
    if root == "/":
        try:
            text = os.confstr("CS_GNU_LIBC_VERSION") or ""
        except (OSError, ValueError):
            text = ""
        if text.startswith("glibc "):
            return text[6:], None
    path = _ldpaths.libc_path(root=root, triplet=_ldpaths.multiarch())
    host = _ldpaths.host_path(root, path) if path is not None else None
    found = _release_in(host) if host is not None else None
    return (found, path) if found else None


def glibc_version(root: str = "/") -> "tuple[int, int] | None":
    """(major, minor) of the glibc in *root* (glibc_release)."""
    release = glibc_release(root)
    if release is None:
        return None
    parts = release[0].split(".")
    try:
        return int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()) or 0)
    except (IndexError, ValueError):
        return None


def _release_in(path: str) -> "str | None":
    """The "release version X.Y" that glibc's libc.so.6 prints about itself."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        with open(path, "rb") as f:
            data = f.read(16 * 1024 * 1024)
    except OSError:
        return None
    needle = b"stable release version "
    at = data.find(needle)
    if at < 0:
        needle = b"release version "
        at = data.find(needle)
    if at < 0:
        return None
    end = data.find(b"\0", at)
    words = data[at + len(needle):end].decode("ascii", "replace").split()
    text = words[0].rstrip(".") if words else ""
    return text if text[:1].isdigit() else None


class Machine:
    """The ldconfig whose rules we follow: built for this machine (*uname*), from the glibc
    of the root (*glibc*, a (major, minor) pair; None: the root's, found on first use)."""

    def __init__(self, uname: "str | None" = None, hwcap_mask: "int | None" = None,
                 triplet: "str | None" = None, glibc: "tuple[int, int] | None" = None) -> None:
        self.uname = uname or os.uname().machine
        self.x86 = self.uname in _X86
        if hwcap_mask is None:  # ldconfig honours LD_HWCAP_MASK (set_hwcap)
            try:
                hwcap_mask = int(os.environ.get("LD_HWCAP_MASK", "7"), 0)
            except ValueError:
                hwcap_mask = 0
        self.hwcap_mask = hwcap_mask
        self.triplet = triplet if triplet is not None else _ldpaths.multiarch()
        self.glibc = glibc
        self.bits = 64 if sys.maxsize > 2**32 else 32

    def for_root(self, root: str) -> "Machine":
        """This machine with the glibc version of *root* filled in."""
        if self.glibc is not None:
            return self
        return Machine(self.uname, self.hwcap_mask, self.triplet,
                       glibc_version(root) or glibc_version("/") or GLIBC_2_37)

    @property
    def legacy_hwcaps(self) -> bool:
        """Whether ldconfig reads tls/, x86_64/, ... subdirectories (glibc < 2.37)."""
        return self.glibc is not None and self.glibc < GLIBC_2_37

    def builtin_dirs(self, root: str = "/") -> "tuple[str, ...]":
        return _ldpaths.ldconfig_dirs(root=root, triplet=self.triplet, bits=self.bits,
                                      machine=self.uname)

    @property
    def only_libc6(self) -> bool:
        """Whether every library is libc6 and ld.so.conf has no dir=TYPE (glibc >= 2.37)."""
        return self.glibc is None or self.glibc >= GLIBC_2_37

    def flags(self, info: "_elf.ELFInfo") -> "int | None":
        """The cache flags of a shared object, or None when this ldconfig skips it."""
        return _elf.cache_flags(info, self.uname, self.glibc)

    def hwcap_index(self, name: str) -> "int | None":
        """The legacy hwcap bit a subdirectory name stands for (path_hwcap)."""
        if self.x86:
            if name in _X86_HWCAPS:
                return _X86_HWCAPS.index(name)
            if name in _X86_PLATFORMS:
                return 48 + _X86_PLATFORMS.index(name)
        return _TLS_HWCAP_BIT if name == "tls" else None

    def hwcap_names(self) -> "tuple[str, ...]":
        """Every subdirectory name is_hwcap_platform() may accept."""
        return (*_X86_HWCAPS, *_X86_PLATFORMS, "tls") if self.x86 else ("tls",)

    def is_hwcap_platform(self, name: str) -> bool:
        if not self.legacy_hwcaps:
            return False
        if self.x86 and name in _X86_HWCAPS:
            return bool(1 << _X86_HWCAPS.index(name) & self.hwcap_mask)
        return self.hwcap_index(name) is not None

    def path_hwcap(self, path: str) -> int:
        if not self.legacy_hwcaps:
            return 0
        hwcap = 0
        while "/" in path:
            path, _, last = path.rpartition("/")
            bit = self.hwcap_index(last)
            if bit is None:
                break
            hwcap += 1 << bit
        return hwcap



class Dir:
    """One directory ldconfig processes (struct dir_entry)."""

    __slots__ = ("flag", "hwcaps", "id", "origin", "path")

    def __init__(self, path: str, origin: str, flag: int, hwcaps: "str | None",
                 ident: "tuple[int, int]") -> None:
        self.path = path  # as configured, inside the root; what cache values start with
        self.origin = origin  # "file:line" or "<builtin>:0"
        self.flag = flag  # FLAG_ANY, or the TYPE of a "dir=TYPE" line
        self.hwcaps = hwcaps  # the glibc-hwcaps subdirectory name, for those
        self.id = ident  # (st_dev, st_ino)


class Entry:
    """One cache entry to be (struct cache_entry)."""

    __slots__ = ("bits", "directory", "file", "flags", "hwcap", "hwcaps", "isa_level", "kb",
                 "key", "value")

    def __init__(self, key: str, value: str, flags: int, *, hwcap: int = 0,
                 hwcaps: "str | None" = None, isa_level: int = 0,
                 file: "str | None" = None) -> None:
        self.key = key
        self.value = value
        self.file = file or value  # the file found; value names its soname link, which
        # ldconfig would create and we do not
        self.directory = self.file.rpartition("/")[0] or "/"  # the dir as configured
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

    def __init__(self, root: str, machine: "Machine", *,
                 listing: "Callable[[str], Iterable[Dirent]] | None" = None,
                 classify: "Callable[[str, str, Machine], Classified] | None" = None) -> None:
        self.root = root
        self.machine = machine
        # The two reads of a scan; the resolver passes ones that remember what they read
        # and that list only the files whose names could answer its question.
        self.listing = listing or dirents
        self.classify = classify or classify_file
        self.dirs: list[Dir] = []
        self.entries: list[Entry] = []
        self.hwcaps_names: set[str] = set()  # interned even when unused, as ldconfig does
        self.skipped: list[tuple[str, str]] = []  # (path inside root, why)
        self.verbose: list[str] = []  # the stdout of `ldconfig -v -X`, line by line
        self.conf_files: list[str] = []  # host paths of the config files read or looked for

    def missing_links(self) -> "list[Entry]":
        """Entries whose value, the soname link ldconfig would create, does not exist."""
        out = []
        for e in self.entries:
            host = _ldpaths.host_path(self.root, e.value)
            if e.value != e.file and not (host and os.path.exists(host)):
                out.append(e)
        return out

    def _add_dir(self, d: "Dir") -> bool:
        for other in self.dirs:
            if other.id == d.id:
                other.flag = d.flag  # "use the newer information"
                return False
        self.dirs.append(d)
        return True





def dirents(host: str) -> "list[Dirent]":
    """A directory's entries with their d_type, as readdir gives them to ldconfig."""
    out = []
    with os.scandir(host) as it:
        for de in it:
            try:
                if de.is_symlink():
                    kind = "lnk"
                elif de.is_file(follow_symlinks=False):
                    kind = "reg"
                elif de.is_dir(follow_symlinks=False):
                    kind = "dir"
                else:
                    kind = "other"
            except OSError:
                continue
            out.append((de.name, kind))
    return out


def kind_of(host: str) -> str:
    """The d_type of one path (for listings built from names alone)."""
    try:
        mode = os.lstat(host).st_mode
    except (OSError, ValueError):
        return "other"
    if stat.S_ISLNK(mode):
        return "lnk"
    if stat.S_ISREG(mode):
        return "reg"
    return "dir" if stat.S_ISDIR(mode) else "other"


# -- names ------------------------------------------------------------------------------


def is_dso(name: str) -> bool:
    """_dl_is_dso: lib*.so*, ld-*.so*, ld.so.*, ld64.so.*."""
    return (name.startswith(("lib", "ld-")) and ".so" in name) or name.startswith(
        ("ld.so.", "ld64.so."))


def is_temporary(name: str, machine: "Machine") -> bool:
    """Files ldconfig never looks at: prelink's temporaries, and since glibc 2.39 those
    of RPM (';' in the name) and dpkg (.dpkg-new, .dpkg-tmp)."""
    if name.endswith(".#prelink#") or (len(name) >= 17 and name[-17:-6] == ".#prelink#."):
        return True
    if machine.glibc is None or machine.glibc >= GLIBC_2_39:
        return ";" in name or name.endswith((".dpkg-new", ".dpkg-tmp"))
    return False


# -- the scan -------------------------------------------------------------------------------


def scan(root: str = "/", conf: "str | None" = None, *, machine: "Machine | None" = None,
         listing: "Callable[[str], Iterable[Dirent]] | None" = None,
         classify: "Callable[[str, str, Machine], Classified] | None" = None,
         conf_lines: "Iterable[tuple[str, str]] | None" = None, builtin: bool = True) -> "Scan":
    """Find the libraries ldconfig would cache for *root*, in cache order.

    *conf* is the config file inside the root; by default /etc/ld.so.conf, or
    /etc/ld.so.conf.d/*.conf when that file is missing (an image with libc6 but without
    libc-bin has only the latter; glibc's ldconfig would read neither).  *conf_lines*,
    the dirs such a file names, saves reading it again; without *builtin* only those
    dirs are read (LD_LIBRARY_PATH's, musl's path).
    """
    result = Scan(root, (machine or Machine()).for_root(root), listing=listing,
                  classify=classify)
    if conf_lines is not None:
        lines = tuple(conf_lines)
    elif conf is None:
        lines = _ldpaths.conf_dirs(root=root, seen=result.conf_files)
    else:
        lines = _ldpaths.parse_ld_so_conf(conf, root=root, seen=result.conf_files)
    for line, origin in lines:
        _add_conf_dir(result, line, origin)
    for directory in result.machine.builtin_dirs(root) if builtin else ():
        _add_conf_dir(result, directory, "<builtin>:0")
    i = 0
    while i < len(result.dirs):  # search_dir appends legacy hwcap subdirs as it goes
        _search_dir(result, result.dirs[i])
        i += 1
    result.entries = order(result.entries)
    return result


def _add_conf_dir(result: "Scan", line: str, origin: str) -> None:
    flag = FLAG_ANY
    path = line
    if "=" in line and not result.machine.only_libc6:  # "dir=TYPE", until glibc 2.36
        path, kind = line.split("=", 1)
        flag = _LIB_TYPES.get(kind, FLAG_ANY)
        path = path.rstrip(" \t\n\v\f\r").rstrip("/")
    if path in ("", "/"):  # ldconfig strips every trailing '/': nothing left
        return
    host = _ldpaths.host_path(result.root, path)
    try:
        st = os.stat(host)  # type: ignore[arg-type]  # None raises TypeError
    except (OSError, TypeError, ValueError):
        return
    d = Dir(path, origin, flag, None, (st.st_dev, st.st_ino))
    if result._add_dir(d):
        _add_hwcaps_subdirs(result, d, host)  # type: ignore[arg-type]


def _add_hwcaps_subdirs(result: "Scan", parent: "Dir", host: str) -> None:
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


def _search_dir(result: "Scan", d: "Dir") -> None:
    """search_dir: key the files of one directory, one winner per soname."""
    machine, root = result.machine, result.root
    hwcap = machine.path_hwcap(d.path) if d.hwcaps is None else 0
    if d.hwcaps is not None:
        head = f'{d.path}: (hwcap: "{d.hwcaps}")'
    elif hwcap:
        head = f"{d.path}: (hwcap: {hwcap:#018x})"
    else:
        head = f"{d.path}:"
    result.verbose.append(f"{head} (from {d.origin})")
    dir_host = _ldpaths.host_path(root, d.path)
    if dir_host is None:  # (os.scandir(None) would list the current directory)
        return
    try:
        listing = result.listing(dir_host)
    except (OSError, ValueError):
        return
    libs: list[_Lib] = []  # ldconfig prepends; we append and walk it backwards
    for name, kind in listing:
        is_link, is_reg, is_dir = kind == "lnk", kind == "reg", kind == "dir"
        if not (is_link or is_reg or is_dir):
            continue  # FIFOs, sockets, devices
        if not is_dso(name) and (is_reg or d.hwcaps is not None
                                 or not machine.is_hwcap_platform(name)):
            continue
        if is_temporary(name, machine):
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
        found = result.classify(real, name, machine)
        if isinstance(found, str):
            result.skipped.append((file_name, found))
            continue
        flag, soname, info = found
        if is_link and name != soname and not (name.endswith(".so") and soname.startswith(name)):
            is_link = False  # a link that is neither the soname nor its dev link: a file
        if is_link:
            soname = name
        if flag == FLAG_ELF and d.flag in (FLAG_ELF_LIBC5, FLAG_ELF_LIBC6):
            flag = d.flag
        isa_level = (_elf.x86_isa_level(real, info) if d.hwcaps is not None and machine.x86
                     and info is not None else 0)
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


def classify_file(real: str, name: str, machine: "Machine") -> "Classified":
    """process_file + process_elf_file: (flags, soname, info), or why the file is skipped."""
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except (OSError, ValueError) as e:
        return f"cannot open: {getattr(e, 'strerror', None) or e}"
    try:
        st = os.fstat(fd)
        head = os.pread(fd, 512, 0) if stat.S_ISREG(st.st_mode) else b""
    except OSError as e:
        return f"unreadable: {e.strerror}"
    finally:
        os.close(fd)
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_size < (64 if sys.maxsize > 2**32 else 52):  # sizeof (ElfW(Ehdr))
        if not st.st_size:
            return "empty"
        if head[:4] != b"\x7fELF"[:len(head)]:  # (ldconfig is silent about these)
            return "linker script" if _is_linker_script(head) else "not an ELF file"
        return "too small"
    magic = int.from_bytes(head[:2], sys.byteorder)
    if magic in (0o413, 0o314) and not machine.only_libc6:  # a.out: libc4 (glibc <= 2.36)
        soname = name
        at = soname.find(".so.")
        if at >= 0:
            dot = soname.find(".", at + 4)
            soname = soname if dot < 0 else soname[:dot]
        return FLAG_LIBC4, soname, None
    if head[:4] != b"\x7fELF":
        return "linker script" if _is_linker_script(head) else "not an ELF file"
    try:
        info = _elf.read_elf(real)
    except (OSError, ValueError) as e:
        return f"unreadable ELF ({e})"
    if info.type != _elf.ET_DYN:
        return f"not a shared object (e_type {info.type})"
    if info.truncated:
        return "truncated"
    flags = machine.flags(info)
    if flags is None:
        return (f"wrong architecture (class {info.elf_class}, machine {info.machine}): "
                "for a machine this ldconfig does not know")
    return flags, info.soname or name, info


def _is_linker_script(head: bytes) -> bool:
    """A GNU ld script (elf/readlib.c looks for GROUP and "GNU ld script"; INPUT(...)
    scripts such as Debian's libcurses.so are named too, for --explain)."""
    return b"GROUP" in head or b"GNU ld script" in head or b"INPUT" in head


# -- order ------------------------------------------------------------------------------------


def order(entries: "list[Entry]") -> "list[Entry]":
    """The entries in cache order.  add_to_cache inserts each entry after every entry that
    does not sort after it: the same as a stable sort of the entries in the order found."""
    import functools  # noqa: PLC0415 -- loaded by ctypes.util's patch anyway

    return sorted(entries, key=functools.cmp_to_key(_compare))


def _compare(e1: "Entry", e2: "Entry") -> int:
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


