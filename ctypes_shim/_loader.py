"""Where the dynamic loader finds a library, and whether everything it needs is found too.

Nothing is loaded and no process is started: the files are read with _elf.read_elf.

glibc (elf/dl-load.c, _dl_map_new_object), for a name without '/':
1. DT_RPATH of the requesting object, then of the object that loaded it, and on up, then
   of the executable; all of it only when the requester has no DT_RUNPATH.  An object with
   a DT_RUNPATH has no DT_RPATH at all (elf/get-dynamic-info.h).
2. LD_LIBRARY_PATH, split on ':' and ';'; ignored in AT_SECURE (setuid) processes.
3. DT_RUNPATH of the requester only.
4. /etc/ld.so.cache.
5. The system search path (_ldpaths.loader_dirs).
In every list (fillin_rpath) an empty element is the current directory, and $ORIGIN,
$LIB and $PLATFORM are replaced (_dl_dst_substitute); an element with a token that has no
value is dropped.  A file is taken when it is an ELF object of the requester's kind
(open_verify): another ELF class or machine is passed over, while a file that is not ELF,
has the other byte order or a foreign OS ABI stops the search with an error.
A name with '/' is opened as it is, after the same token substitution.

musl (ldso/dynlink.c, load_library): LD_LIBRARY_PATH (':' and newline, empty elements
skipped), then DT_RUNPATH, or DT_RPATH without one, of the requester and of each object up
its chain, then the path file (_ldpaths.musl_path_dirs).  Only $ORIGIN is known; any other
token drops the whole list.

Not modelled: glibc-hwcaps and legacy hwcap subdirectories (the plain directory holds a
compatible copy), DF_1_NODEFLIB, LD_PRELOAD, and objects a running process has loaded
already (the interpreter's own libc is also found on disk).
"""

import os
import posixpath
import stat

from . import _elf, _ldcache, _ldpaths

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Mapping, Sequence

RPATH, LD_LIBRARY_PATH, RUNPATH = "DT_RPATH", "LD_LIBRARY_PATH", "DT_RUNPATH"
CACHE, SYSTEM, PATH, LOADED = "ld.so.cache", "system dir", "path", "already loaded"
MAX_OBJECTS = 512  # a desktop application maps about 200 objects; a cycle cannot pass this
LD_SO_CACHE = "/etc/ld.so.cache"
_ET_EXEC = 2
_AT_SECURE = 23  # <elf.h>


class SearchDir:
    """One directory the loader tries, and why: *source* is RPATH, LD_LIBRARY_PATH,
    RUNPATH, SYSTEM or CACHE (then *path* is the cache file); *owner* is the object whose
    DT_RPATH or DT_RUNPATH named it, or the file that listed a system dir."""

    __slots__ = ("element", "owner", "path", "source")

    def __init__(self, path: str, source: str, owner: "str | None" = None, *,
                 element: "str | None" = None) -> None:
        self.path = path
        self.source = source
        self.owner = owner
        self.element = element  # the DT_RPATH/DT_RUNPATH element as written, before
        # substitution (for explaining which one matched); not part of equality

    def __repr__(self) -> str:
        return f"SearchDir({self.path!r}, {self.source!r}, {self.owner!r})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, SearchDir)
                and (self.path, self.source, self.owner) == (other.path, other.source,
                                                             other.owner))

    def __hash__(self) -> int:
        return hash((self.path, self.source, self.owner))


class Found:
    """Where the loader finds *name* for one requester.

    *path* (inside the root) is None when it does not, and *error* says why.  *passed*
    lists the files it looked at and went past, with why; *only_in* is (path, origin) when
    the library sits in an ld.so.conf dir that only a cache entry would make the loader read.
    """

    __slots__ = ("error", "name", "only_in", "owner", "passed", "path", "source")

    def __init__(self, name: str, path: "str | None" = None, source: "str | None" = None, *,
                 owner: "str | None" = None, error: "str | None" = None,
                 passed: "tuple[tuple[str, str], ...]" = (),
                 only_in: "tuple[str, str] | None" = None) -> None:
        self.name = name
        self.path = path
        self.source = source
        self.owner = owner
        self.error = error
        self.passed = passed
        self.only_in = only_in

    @property
    def via(self) -> "str | None":
        """The source, with the object that named the directory: 'DT_RUNPATH of /x/y.so'."""
        if self.source in (RPATH, RUNPATH) and self.owner:
            return f"{self.source} of {self.owner}"
        return self.source

    def __repr__(self) -> str:
        return (f"Found({self.name!r}, path={self.path!r}, source={self.source!r}, "
                f"error={self.error!r})")


class Node:
    """One object of a walk: its path, its DT_NEEDED as found, who loaded it."""

    __slots__ = ("info", "loader", "needed", "path")

    def __init__(self, path: str, info: "_elf.ELFInfo", loader: "Node | None") -> None:
        self.path = path
        self.info = info
        self.loader = loader  # the object whose DT_NEEDED brought this one in; glibc's l_loader
        self.needed: tuple[Found, ...] = ()


class Walk:
    """Everything loading *name* would map, breadth first as glibc's _dl_map_object_deps."""

    __slots__ = ("missing", "name", "objects", "top", "truncated")

    def __init__(self, name: str, top: "Found") -> None:
        self.name = name
        self.top = top
        self.objects: tuple[Node, ...] = ()
        self.missing: tuple[tuple[str, Found], ...] = ()  # (requester, what it could not find)
        self.truncated = False  # more than MAX_OBJECTS objects

    @property
    def ok(self) -> bool:
        return self.top.path is not None and not self.missing and not self.truncated

    @property
    def problem(self) -> "str | None":
        """One line: why loading fails, or None."""
        if self.top.path is None:
            return f"{self.name}: {self.top.error}"
        if self.missing:
            requester, found = self.missing[0]
            more = f" (and {len(self.missing) - 1} more)" if len(self.missing) > 1 else ""
            return f"{found.name} needed by {requester}: {found.error}{more}"
        if self.truncated:
            return f"more than {MAX_OBJECTS} objects"
        return None


# -- dynamic string tokens -------------------------------------------------------------------


def _is_dst(text: str, ref: str) -> int:
    """glibc is_dst(): the length of $REF or ${REF} at the start of *text* (after the '$')."""
    curly = text.startswith("{")
    body = text[1:] if curly else text
    if not body.startswith(ref):
        return 0
    after = body[len(ref):len(ref) + 1]
    if curly and after != "}":
        return 0
    if after and after.isascii() and (after.isalnum() or after == "_"):
        return 0
    return len(ref) + 2 if curly else len(ref)


def dst_lib(*, root: str, bits: int, triplet: "str | None") -> str:
    """$LIB: glibc's DL_DST_LIB, the name of its slibdir under /.  Debian patches it to
    'lib/<triplet>' (its ld.so shows /x/$LIB as /x/lib/x86_64-linux-gnu in LD_DEBUG);
    elsewhere it is 'lib64' on 64-bit, 'lib' on 32-bit.  Debian is recognised by the
    layout of its system dirs."""
    system = _ldpaths.loader_dirs(root=root, bits=bits, triplet=triplet)
    if triplet and system[0] == "/lib/" + triplet:
        return "lib/" + triplet
    return "lib64" if bits == 64 else "lib"


def substitute(element: str, *, origin: "str | None", lib: str, platform: "str | None",
               secure: bool = False, trusted: "Sequence[str]" = (),
               executable: bool = False) -> "str | None":
    """One path element with its tokens replaced, as glibc's _dl_dst_substitute; None when
    a token has no value, and the element is dropped.

    In an AT_SECURE process $ORIGIN only counts at the start of the element (followed by
    '/' or nothing), and for the executable the result must lie in a trusted (system) dir.
    """
    out: list[str] = []
    i, check_trusted = 0, False
    while i < len(element):
        if element[i] != "$":
            out.append(element[i])
            i += 1
            continue
        rest = element[i + 1:]
        length = _is_dst(rest, "ORIGIN")
        value: str | None
        if length:
            at_start = i == 0 and (len(rest) == length or rest[length] == "/")
            value = None if secure and not at_start else origin
            check_trusted = secure and executable
        elif _is_dst(rest, "PLATFORM"):
            length, value = _is_dst(rest, "PLATFORM"), platform
        elif _is_dst(rest, "LIB"):
            length, value = _is_dst(rest, "LIB"), lib
        else:
            out.append("$")  # not a token glibc knows: kept as it is
            i += 1
            continue
        if value is None:
            return None
        out.append(value)
        i += 1 + length
    result = "".join(out)
    if check_trusted and not _is_trusted(result, trusted):
        return None
    return result


def _is_trusted(path: str, trusted: "Sequence[str]") -> bool:
    """glibc is_trusted_path_normalize(): *path*, normalised, lies in a system dir."""
    if not path:
        return False
    norm = posixpath.normpath(path).rstrip("/") + "/"
    return any(norm.startswith(d.rstrip("/") + "/") for d in trusted)


def _musl_substitute(text: str, origin: "str | None") -> "str | None":
    """musl fixup_rpath(): $ORIGIN and ${ORIGIN} only; any other '$' drops the whole list."""
    at = text.find("$")
    while at != -1:
        if not text.startswith(("$ORIGIN", "${ORIGIN}"), at):
            return None
        at = text.find("$", at + 1)
    if "$" in text and origin is None:
        return None
    return text.replace("${ORIGIN}", origin or "").replace("$ORIGIN", origin or "")


# -- the search path of one requester ----------------------------------------------------------


def search_path(info: "_elf.ELFInfo | None", path: "str | None", *, root: str = "/",
                environ: "Mapping[str, str] | None" = None,
                chain: "Sequence[tuple[_elf.ELFInfo, str]]" = (),
                executable: "tuple[_elf.ELFInfo, str] | None" = None,
                musl_arch: "str | None" = None, secure: bool = False,
                platform: "str | None" = None, bits: "int | None" = None
                ) -> "tuple[SearchDir, ...]":
    """The places glibc's (or musl's) loader tries, in order, for a name that the object
    *info* at *path* (inside *root*) asks for: its DT_NEEDED or its dlopen().

    *chain* holds the objects that loaded it, nearest first (glibc's l_loader chain; empty
    for a dlopen()ed object); *executable* is the main program.  *environ* gives
    LD_LIBRARY_PATH as the process saw it at start-up.  *info* None is a requester without
    DT_RPATH or DT_RUNPATH.  glibc's cache comes as one SearchDir whose source is CACHE.
    """
    environ = os.environ if environ is None else environ
    if bits is None:
        ref = info or (executable[0] if executable else None)
        bits = 32 if ref is not None and ref.elf_class == _elf.ELFCLASS32 else 64
    triplet = _ldpaths.multiarch()
    platform = platform if platform is not None else os.uname().machine
    requester = (info, path) if info is not None and path is not None else None
    if musl_arch is not None:
        return _musl_search_path(requester, root=root, environ=environ, chain=chain,
                                 executable=executable, arch=musl_arch, secure=secure)
    system = _ldpaths.loader_dirs(root=root, bits=bits, triplet=triplet)
    lib = dst_lib(root=root, bits=bits, triplet=triplet)

    def expand(text: str, who: "tuple[_elf.ELFInfo, str] | None", source: str,
               sep: str = ":") -> "list[SearchDir]":
        origin = _origin(who[1], root) if who else None
        is_exe = who is not None and executable is not None and who[1] == executable[1]
        out: list[SearchDir] = []
        parts = text.replace(";", ":").split(":") if sep == ":;" else text.split(":")
        for part in parts:
            element = part
            if part:
                value = substitute(part, origin=origin, lib=lib, platform=platform,
                                   secure=secure, trusted=system, executable=is_exe)
                if not value:
                    continue
                element = value.rstrip("/") or "/"
            entry = SearchDir(element, source, who[1] if who and source != LD_LIBRARY_PATH
                              else None, element=part)
            if entry not in out:  # fillin_rpath: a dir already in this list is not added again
                out.append(entry)
        return out

    out: list[SearchDir] = []
    if requester is None or requester[0].runpath is None:
        objects = ([requester] if requester else []) + list(chain)
        if executable is not None and all(o[1] != executable[1] for o in objects):
            objects.append(executable)
        for who in objects:
            if who[0].rpath and who[0].runpath is None:
                out += expand(who[0].rpath, who, RPATH)
    llp = environ.get("LD_LIBRARY_PATH")
    if llp and not secure:
        out += expand(llp, executable, LD_LIBRARY_PATH, sep=":;")
    if requester is not None and requester[0].runpath:
        out += expand(requester[0].runpath, requester, RUNPATH)
    out.append(SearchDir(LD_SO_CACHE, CACHE))
    out += [SearchDir(d, SYSTEM) for d in system]
    return tuple(out)


def _musl_search_path(requester: "tuple[_elf.ELFInfo, str] | None", *, root: str,
                      environ: "Mapping[str, str]",
                      chain: "Sequence[tuple[_elf.ELFInfo, str]]",
                      executable: "tuple[_elf.ELFInfo, str] | None", arch: str,
                      secure: bool) -> "tuple[SearchDir, ...]":
    out: list[SearchDir] = []
    if not secure:
        out += [SearchDir(d, LD_LIBRARY_PATH) for d in _ldpaths.ld_library_path(
            environ.get("LD_LIBRARY_PATH"), musl=True)]
    objects = ([requester] if requester else []) + list(chain)
    if executable is not None and all(o[1] != executable[1] for o in objects):
        objects.append(executable)
    for info, path in objects:
        text = info.runpath if info.runpath is not None else info.rpath
        if not text:
            continue
        origin = _origin(path, root)
        if secure and "$" in text and not (origin or "").startswith("/"):
            continue
        expanded = _musl_substitute(text, origin)
        if expanded is None:
            continue
        source = RUNPATH if info.runpath is not None else RPATH
        out += [SearchDir(d, source, path, element=d) for d in expanded.split(":") if d]
    out += [SearchDir(d, SYSTEM, origin) for d, origin in _ldpaths.musl_path_dirs(arch,
                                                                                  root=root)]
    return tuple(out)


def at_secure() -> bool:
    """Whether this process runs in secure-execution mode (the kernel's AT_SECURE auxv
    entry, which glibc keeps as __libc_enable_secure): set-user-ID, set-group-ID or
    file capabilities.  Without /proc, a differing real and effective id says the same."""
    try:
        with open("/proc/self/auxv", "rb") as f:
            raw = f.read()
    except OSError:
        return os.getuid() != os.geteuid() or os.getgid() != os.getegid()
    import struct  # noqa: PLC0415 -- only here
    import sys  # noqa: PLC0415

    word = 8 if sys.maxsize > 2**32 else 4
    fmt = "QQ" if word == 8 else "II"
    for at in range(0, len(raw) - 2 * word + 1, 2 * word):
        key, value = struct.unpack_from(fmt, raw, at)
        if key == _AT_SECURE:
            return bool(value)
        if key == 0:  # AT_NULL
            break
    return False


def _origin(path: str, root: str) -> str:
    """$ORIGIN of an object opened as *path*: its directory, as the loader named it
    (glibc _dl_new_object does not resolve symlinks for a library)."""
    if not path.startswith("/"):
        path = posixpath.join(os.getcwd() if root == "/" else "/", path)
    return posixpath.dirname(posixpath.normpath(path)) or "/"


# -- finding files -------------------------------------------------------------------------------


class Loader:
    """glibc's or musl's loader for one root: finds names and walks DT_NEEDED.

    *native* is the ELF header of the program doing the loading (the interpreter): its
    PT_INTERP tells glibc from musl, and a dlopen()ed library must match its ABI.
    *executable*, a path inside the root, adds the main program's DT_RPATH.
    """

    def __init__(self, root: str = "/", environ: "Mapping[str, str] | None" = None, *,
                 native: "_elf.ELFInfo | None" = None, executable: "str | None" = None,
                 secure: bool = False, platform: "str | None" = None) -> None:
        self.root = root
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        if native is None:
            from . import _resolve  # noqa: PLC0415 -- Native.detect reads sys.executable

            native = _resolve.Native.detect().info
        self.native = native
        interp = posixpath.basename(native.interp or "") if native else ""
        self.musl_arch = interp[8:-5] if interp.startswith("ld-musl-") else None
        self.secure = secure
        self.platform = platform
        self._elf: dict[str, _elf.ELFInfo | str] = {}
        self._cache: tuple[_ldcache.Cache | None, str] | None = None
        self.executable: tuple[_elf.ELFInfo, str] | None = None
        if executable is not None:
            got = self._read(executable)
            if isinstance(got, _elf.ELFInfo):
                self.executable = (got, executable)

    # -- public --------------------------------------------------------------------------

    def search_path(self, info: "_elf.ELFInfo | None", path: "str | None",
                    chain: "Sequence[tuple[_elf.ELFInfo, str]]" = ()) -> "tuple[SearchDir, ...]":
        """search_path() for this root, environment and executable."""
        return search_path(info, path, root=self.root, environ=self.environ, chain=chain,
                           executable=self.executable, musl_arch=self.musl_arch,
                           secure=self.secure, platform=self.platform,
                           bits=self._bits(info))

    def find(self, name: str, requester: "tuple[_elf.ELFInfo, str] | None" = None,
             chain: "Sequence[tuple[_elf.ELFInfo, str]]" = ()) -> "Found":
        """Where the loader finds *name* asked for by *requester* (None: a dlopen() from
        code without DT_RPATH or DT_RUNPATH, such as CPython's _ctypes on Debian)."""
        abi = requester[0] if requester else self.native
        if "/" in name:
            who = requester or self.executable
            origin = _origin(who[1], self.root) if who else None
            lib = dst_lib(root=self.root, bits=self._bits(abi), triplet=_ldpaths.multiarch())
            path = substitute(name, origin=origin, lib=lib, platform=self.platform
                              or os.uname().machine) if self.musl_arch is None else name
            if path is None:
                return Found(name, error="a token in the name has no value")
            if not path.startswith("/"):
                path = posixpath.join(os.getcwd() if self.root == "/" else "/", path)
            verdict = self._verify(path, abi)
            if verdict[0] == "ok":
                return Found(name, path, PATH)
            return Found(name, error=verdict[1] if verdict[0] != "absent" else
                         f"{path}: no such file", passed=())
        passed: list[tuple[str, str]] = []
        info, path = requester if requester else (None, None)
        for place in self.search_path(info, path, chain):
            if place.source == CACHE:
                candidate = self._from_cache(name, abi)
                if candidate is None:
                    continue
            else:
                candidate = (place.path.rstrip("/") + "/" if place.path else "") + name
            verdict = self._verify(candidate, abi)
            if verdict[0] == "ok":
                return Found(name, candidate, place.source, owner=place.owner,
                             passed=tuple(passed))
            if verdict[0] == "fatal":
                return Found(name, error=verdict[1], passed=tuple(passed))
            if verdict[0] == "skip":
                passed.append((candidate, verdict[1]))
        why = "not found" + ("; passed over " + ", ".join(
            f"{p} ({w})" for p, w in passed) if passed else "")
        return Found(name, error=why, passed=tuple(passed), only_in=self._only_in(name, abi))

    def walk(self, name: str) -> "Walk":
        """dlopen(name) from the interpreter: the object and everything it needs, found
        breadth first; each name is loaded once, as glibc reuses a loaded object whose
        name or soname matches (_dl_lookup_map)."""
        top = self.find(name)
        walk = Walk(name, top)
        if top.path is None:
            return walk
        info = self._read(top.path)
        if not isinstance(info, _elf.ELFInfo):  # find() has just read it as ELF
            return walk
        first = Node(top.path, info, None)
        objects, missing = [first], []
        by_name = {name: first}
        if info.soname:
            by_name[info.soname] = first
        by_file = {self._file_id(top.path): first}
        i = 0
        while i < len(objects):
            node = objects[i]
            i += 1
            found_here = []
            for needed in node.info.needed:
                if needed in by_name:
                    found_here.append(Found(needed, by_name[needed].path, LOADED))
                    continue
                chain = []
                up = node.loader
                while up is not None:
                    chain.append((up.info, up.path))
                    up = up.loader
                found = self.find(needed, (node.info, node.path), chain)
                found_here.append(found)
                if found.path is None:
                    missing.append((node.path, found))
                    continue
                key = self._file_id(found.path)
                child = by_file.get(key)
                if child is None:
                    if len(objects) >= MAX_OBJECTS:
                        walk.truncated = True
                        continue
                    child_info = self._read(found.path)
                    if not isinstance(child_info, _elf.ELFInfo):  # find() has read it as ELF
                        continue
                    child = Node(found.path, child_info, node)
                    objects.append(child)
                    by_file[key] = child
                    if child_info.soname:
                        by_name.setdefault(child_info.soname, child)
                by_name[needed] = child
            node.needed = tuple(found_here)
        walk.objects = tuple(objects)
        walk.missing = tuple(missing)
        return walk

    def cache(self) -> "tuple[_ldcache.Cache | None, str]":
        """The root's ld.so.cache, or None and why."""
        if self._cache is None:
            host = _ldpaths.host_path(self.root, LD_SO_CACHE)
            try:
                if host is None:
                    raise OSError("too many levels of symbolic links")
                cache = _ldcache.read_cache(host)
            except FileNotFoundError:
                self._cache = (None, "no such file")
            except (OSError, ValueError) as e:
                self._cache = (None, str(e) or type(e).__name__)
            else:
                import sys  # noqa: PLC0415

                if cache.byteorder != sys.byteorder:
                    self._cache = (None, f"{cache.byteorder}-endian cache")
                else:
                    self._cache = (cache, "")
        return self._cache

    # -- internals -----------------------------------------------------------------------

    def _bits(self, info: "_elf.ELFInfo | None") -> int:
        ref = info or self.native
        return 32 if ref is not None and ref.elf_class == _elf.ELFCLASS32 else 64

    def _from_cache(self, name: str, abi: "_elf.ELFInfo | None") -> "str | None":
        """_dl_load_cache_lookup: the first entry for *name* whose flags the loader accepts;
        entries of glibc-hwcaps subdirs are left out (see the module docstring)."""
        if self.musl_arch is not None:
            return None
        cache, _ = self.cache()
        if cache is None:
            return None
        from . import _resolve  # noqa: PLC0415 -- the flags rule lives in Native

        fits = _resolve.Native(abi).cache_flags_fit
        for entry in cache.entries:
            if entry.key == name and entry.hwcap == 0 and fits(entry.flags):
                return entry.value
        return None

    def _only_in(self, name: str, abi: "_elf.ELFInfo | None") -> "tuple[str, str] | None":
        if self.musl_arch is not None:
            return None
        for directory, origin in _ldpaths.conf_dirs(root=self.root):
            candidate = directory.rstrip("/") + "/" + name
            if self._verify(candidate, abi)[0] == "ok":
                return candidate, origin
        return None

    def _read(self, path: str) -> "_elf.ELFInfo | str":
        """The ELF header of *path* inside the root, or why it cannot be read: 'absent' for
        what the loader skips silently (ENOENT, EACCES, ENOTDIR), else the error."""
        cached = self._elf.get(path)
        if cached is not None:
            return cached
        host = _ldpaths.host_path(self.root, path)
        result: _elf.ELFInfo | str
        if host is None:
            result = "absent"
        else:
            try:
                st = os.stat(host)
                result = "absent" if stat.S_ISDIR(st.st_mode) else _elf.read_elf(host)
            except _elf.ELFInvalid as e:
                result = f"{path}: cannot load: {e}"
            except OSError:
                result = "absent"
            except ValueError as e:  # NUL in the name
                result = f"{path}: {e}"
        if len(self._elf) > 100000:  # bound memory in pathological trees
            self._elf.clear()
        self._elf[path] = result
        return result

    def _verify(self, path: str, abi: "_elf.ELFInfo | None") -> "tuple[str, str]":
        """glibc open_verify(): ('ok', ''), ('absent', ''), ('skip', why) for a file of
        another class or machine, or ('fatal', why), which ends the search."""
        info = self._read(path)
        if isinstance(info, str):
            return ("absent", "") if info == "absent" else ("fatal", info)
        if abi is not None:
            if info.elf_class != abi.elf_class:
                return "skip", f"ELF class {32 if info.elf_class == 1 else 64}-bit"
            if info.data != abi.data:
                return "fatal", f"{path}: cannot load: other byte order"
            if info.abi != abi.abi:
                return "skip", f"machine {info.machine}"
        if info.osabi not in (_elf.OSABI_SYSV, _elf.OSABI_GNU):
            return "fatal", f"{path}: cannot load: ELF OS ABI {info.osabi}"
        if info.type not in (_elf.ET_DYN, _ET_EXEC):
            return "fatal", f"{path}: cannot load: e_type {info.type}"
        return "ok", ""

    def _file_id(self, path: str) -> "tuple[int, int] | str":
        host = _ldpaths.host_path(self.root, path)
        try:
            st = os.stat(host)  # type: ignore[arg-type]  # None raises TypeError
        except (OSError, TypeError, ValueError):
            return path
        return st.st_dev, st.st_ino


def walk(name: str, *, root: str = "/", environ: "Mapping[str, str] | None" = None,
         native: "_elf.ELFInfo | None" = None) -> "Walk":
    """Loader(root, environ, native=native).walk(name)."""
    return Loader(root, environ, native=native).walk(name)

