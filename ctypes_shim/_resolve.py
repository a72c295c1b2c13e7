"""find_library(name) -> soname | path | None, in pure Python, without starting a process.

This module is the hot path: a name found before is one dict lookup, and a first lookup
that /etc/ld.so.cache answers needs only this module, _elf and _ldcache.  Anything else
(no cache, a stale one, LD_LIBRARY_PATH, musl) is _search's, loaded on the first miss.

Order (README "How a name is resolved"):
0. DT_RPATH of the caller, the object holding _ctypes, from which CDLL calls dlopen (and
   of the executable), when the caller has no DT_RUNPATH: glibc searches it before
   everything else.  Most interpreters have none; then this step reads the caller's
   dynamic section once and costs nothing more.
1. /etc/ld.so.cache, read in place of `ldconfig -p`: the first entry, in cache order, whose
   key starts with "lib<name>." and whose flags fit this interpreter, as stock CPython's
   regex picks it.  Entries whose file is gone (a stale cache) are passed over.
2. What a cache freshly written for this root would answer (_search, through _ldscan,
   the rules the cache writer uses), then LD_LIBRARY_PATH as it is at the call, then the
   caller's DT_RUNPATH (glibc searches it after LD_LIBRARY_PATH).
"""

import os
import sys

from . import _elf, _ldcache

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Tuple

    from . import _search
    from ._trace import Step

    Trace = Optional[List[Step]]
    Callers = Tuple[Optional[Tuple[_elf.ELFInfo, str]], Tuple[Tuple[_elf.ELFInfo, str], ...],
                    Optional[Tuple[_elf.ELFInfo, str]]]

_MAX_NAME = 255  # NAME_MAX: no file can be called lib<longer name>.so
_UNREAD = (-1,)  # a stat signature no file has
class Native:
    """What a library must match to load into this interpreter."""

    def __init__(self, info: "_elf.ELFInfo | None", path: "str | None" = None) -> None:
        self.info = info
        self.path = path  # the file it was read from, if any
        self.abi = info.abi if info else None
        self.flags = _elf.cache_flags(info) if info else None
        self.cache_ok = _ldcache.accepted_flags(self.flags)
        interp = os.path.basename(info.interp or "") if info else ""
        self.musl_arch = interp[8:-5] if interp.startswith("ld-musl-") else None
        self.bits = 32 if info and info.elf_class == _elf.ELFCLASS32 else 64

    def cache_flags_fit(self, flags: int) -> bool:
        if self.cache_ok is None:  # unknown machine: what stock's "libc6" regex accepts
            return flags & 0xFF == 3
        return flags in self.cache_ok

    @classmethod
    def detect(cls) -> "Native":
        for path in (sys.executable, "/proc/self/exe"):  # the first is cheaper to open
            try:  # with its dynamic section: the executable's DT_RPATH counts (Caller)
                return cls(_elf.read_elf(path), path)
            except (OSError, ValueError):
                continue
        return cls(None)


class Caller:
    """The object from which CDLL calls dlopen(): the file that holds _ctypes, that is its
    extension module, or libpython or the executable when _ctypes is built in.  glibc
    searches its DT_RPATH, those of the objects that loaded it (*chain*, nearest first;
    glibc's l_loader) and of the *executable*, or else its DT_RUNPATH (elf/dl-load.c,
    _dl_map_object).  Paths are inside the resolver's root; *path* and *executable* None:
    nobody's (a root other than this machine's); *executable* SELF: the program running,
    whose header Native has read already.  *secure*: AT_SECURE (None: this process's,
    read when needed)."""

    SELF = "/proc/self/exe"

    __slots__ = ("chain", "executable", "path", "secure")

    def __init__(self, path: "str | None", chain: "tuple[str, ...]" = (),
                 executable: "str | None" = None, *, secure: "bool | None" = None) -> None:
        self.path = path
        self.chain = chain
        self.executable = executable
        self.secure = secure

    @classmethod
    def detect(cls) -> "Caller":
        """This process's caller.  An extension module was opened by a path, so glibc
        gave it no l_loader: its chain is empty, and the executable comes last."""
        exe = cls.SELF
        module = sys.modules.get("_ctypes")
        path = getattr(module, "__file__", None) if module is not None else None
        if path is None and "_ctypes" in sys.builtin_module_names:
            path = _libpython() or _self_exe()
        elif path is None:
            try:  # where `import _ctypes` would find it, without importing it
                finder = sys.modules["_frozen_importlib_external"].PathFinder
                spec = finder.find_spec("_ctypes")
                path = spec.origin if spec is not None else None
            except Exception:  # an odd sys.path hook: nothing to go by
                path = None
        if isinstance(path, str) and not path.startswith("/"):
            path = os.path.abspath(path)
        return cls(path if isinstance(path, str) else None, executable=exe)


def _self_exe() -> "str | None":
    """The running program's path, as glibc's $ORIGIN for the main map sees it."""
    try:
        return os.readlink(Caller.SELF)
    except OSError:
        return os.path.realpath(sys.executable) if sys.executable else None


def _libpython() -> "str | None":
    """The libpython mapped into this process, if any (a --enable-shared build)."""
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                at = line.find("/")
                if at > 0 and "/libpython" in line:
                    return line[at:].rstrip("\n")
    except OSError:
        pass
    return None


class Resolver:
    """Answers find_library for one root; caches what it reads.

    It takes no lock: every piece of state is replaced whole, never changed in place where
    another thread could see it half-done, so two threads at worst read a file twice.
    That also makes it safe across fork().
    """

    def __init__(self, root: str = "/", native: "Native | None" = None,
                 environ: "Dict[str, str] | None" = None, caller: "Caller | None" = None,
                 ) -> None:
        self.root = root
        self._caller = caller  # None: this process's for "/", nobody's for another root
        self._callers: Callers | None = None
        self._request: object = _UNREAD  # the caller's (ELF header, path), read once
        self.hits: Dict[str, str] = {}  # name -> answer
        self._native = native
        self.environ = environ  # None: os.environ at each call
        # (stat signature, index, why there is none), replaced whole
        self._cache: tuple[tuple[int, ...] | None, _ldcache.CacheIndex | None, str] = (
            _UNREAD, None, "not read yet")
        self._search: _search.Search | None = None

    @property
    def native(self) -> Native:
        if self._native is None:
            self._native = Native.detect()
        return self._native

    @property
    def caller(self) -> Caller:
        if self._caller is None:
            self._caller = Caller.detect() if self.root == "/" else Caller(None)
        return self._caller

    def caller_objects(self) -> "Callers":
        """(requester, chain, executable) as (ELF header, path) pairs, read once; what
        cannot be read is left out (the loader has no path from it either)."""
        if self._callers is None:
            caller = self.caller
            read = self._read_caller
            executable = read(caller.executable)
            if caller.executable == Caller.SELF:
                path = _self_exe()
                executable = (executable[0], path) if executable and path else None
            self._callers = (self._requester(),
                             tuple(o for o in map(read, caller.chain) if o is not None),
                             executable)
        return self._callers

    def _requester(self) -> "tuple[_elf.ELFInfo, str] | None":
        if self._request is _UNREAD:
            self._request = self._read_caller(self.caller.path)
        return self._request  # type: ignore[return-value]

    def _read_caller(self, path: "str | None") -> "tuple[_elf.ELFInfo, str] | None":
        if path == Caller.SELF and self.native.path is not None and self.native.info:
            return self.native.info, path  # Native.detect has read it, dynamic section too
        host = self.host(path) if path is not None else None
        if host is None or path is None:
            return None
        try:
            return _elf.read_elf(host), path
        except (OSError, ValueError):
            return None

    def rpath_first(self) -> bool:
        """Whether some DT_RPATH may be searched before the cache: without one (most
        interpreters), the RPATH step is skipped without loading _search."""
        caller = self.caller
        if caller.chain:  # not for this process: _ctypes has no l_loader
            requester, chain, exe = self.caller_objects()
            return any(o is not None and o[0].rpath for o in (requester, *chain, exe))
        requester = self._requester()  # the one read this step costs: _ctypes's header
        exe = self._read_caller(caller.executable)
        return any(o is not None and o[0].rpath for o in (requester, exe))

    def find(self, name: object) -> "str | None":
        """find_library(name): memoized hits, a fresh look for anything else."""
        try:
            return self.hits[name]  # type: ignore[index]
        except Exception:  # KeyError; TypeError (unhashable); a hostile __hash__ or __eq__
            return self.lookup(name)

    def lookup(self, name: object, trace: "Trace" = None) -> "str | None":
        """Resolve *name* without the memo; never raises."""
        text = _as_name(name)
        if text is None or not plausible(text):
            if trace is not None:
                _note(trace, "input", _shown(name), "rejected", "not a library name")
            return None
        try:
            if self.native.musl_arch is None:
                if self.rpath_first():
                    answer, memo = self.search().find_rpath(text, trace)
                    if answer is not None:
                        if memo:
                            self.hits[text] = answer
                        return answer
                answer = self._from_cache(text, trace)
                if answer is not None:
                    self.hits[text] = answer
                    return answer
            answer, memo = self.search().find(text, trace)
            if answer is not None and memo:
                self.hits[text] = answer
            return answer
        except Exception as e:  # find_library must never be why a process dies
            _debug(f"find_library({text!r}) failed: {e!r}")
            if trace is not None:
                _note(trace, "error", text, "error", repr(e))
            return None

    def search(self) -> "_search.Search":
        """What answers when the cache does not (loaded on first use)."""
        if self._search is None:
            from . import _search  # noqa: PLC0415 -- the first miss pays for it

            self._search = _search.Search(self.root, self.native, self.environ,
                                          self.caller_objects(), self.caller.secure)
        return self._search

    def cache_clear(self) -> None:
        self.hits.clear()
        self._cache = (_UNREAD, None, "not read yet")
        self._search = None

    def search_dirs(self) -> "list[tuple[str, str]]":
        """The directories searched after the cache, in order, with where each came from."""
        return self.search().search_dirs()

    def cache(self) -> "tuple[_ldcache.Cache | None, str]":
        """The parsed ld.so.cache (or None) and, when None, why."""
        index, why = self.cache_index()
        if index is None:
            return None, why
        try:
            return _ldcache.read_cache(self.host(_ldcache.LD_SO_CACHE) or "\0"), ""
        except (OSError, ValueError) as e:
            return None, str(e) or type(e).__name__

    def cache_index(self) -> "tuple[_ldcache.CacheIndex | None, str]":
        """The root's ld.so.cache, read again when the file changes; or None and why."""
        host = self.host(_ldcache.LD_SO_CACHE)
        sig = _ldcache.signature(host) if host is not None else None
        if sig == self._cache[0]:
            return self._cache[1], self._cache[2]
        index, why = None, ""
        if sig is None:
            why = "no such file"
        else:
            try:
                index = _ldcache.CacheIndex(_ldcache.read_bytes(host))  # type: ignore[arg-type]
            except (OSError, ValueError) as e:
                why = str(e) or type(e).__name__
            else:
                if index.byteorder != sys.byteorder:
                    why = f"{index.byteorder}-endian cache on a {sys.byteorder}-endian host"
                    index = None
        self._cache = (sig, index, why)
        return index, why

    def host(self, path: str) -> "str | None":
        """*path*, as seen inside the root, as a path on this machine (None: it leads out)."""
        if self.root == "/":
            return path
        from . import _ldpaths  # noqa: PLC0415

        return _ldpaths.host_path(self.root, path)

    def cache_answer(self, name: str, trace: "Trace") -> "tuple[str, str, int] | None":
        """(key, value, flags) of the cache entry stock would take for *name*, if any."""
        index, why = self.cache_index()
        if index is None:
            if trace is not None:
                _note(trace, "ld.so.cache", _ldcache.LD_SO_CACHE, "unusable", why)
            return None
        # Stock: re.search(r"\s+(lib<name>\.[^\s]+)\s+\(<abi>", `ldconfig -p`), the first
        # match in cache order; so 'libfoo.bar.so.1' answers both 'foo' and 'foo.bar'.
        prefix = "lib" + name + "."
        candidates = [c for c in index.matches(prefix) if _ldcache.key_matches(c[0], prefix)]
        if not candidates and trace is not None:
            _note(trace, "ld.so.cache", _ldcache.LD_SO_CACHE, "none", f"no entry for {prefix}*")
        for key, flags, value_off in candidates:
            try:
                value = index.value(value_off)
            except ValueError:
                if trace is not None:
                    _note(trace, "ld.so.cache", key, "skipped", "corrupt entry",
                                      key=key, flags=flags)
                continue
            if not self.native.cache_flags_fit(flags):
                if trace is not None:
                    _note(trace, "ld.so.cache", value, "skipped",
                                      f"flags {flags:#06x} are for another ABI",
                                      key=key, flags=flags)
                continue
            host = self.host(value)
            if host is None or not os.path.exists(host):
                # The library is gone, or only its soname link is (`ldconfig -X`, a copied
                # file): either way this cache is stale for the name, and the search
                # answers as a fresh cache would.
                if trace is not None:
                    _note(trace, "ld.so.cache", value, "skipped",
                                      "stale entry, file missing", key=key, flags=flags)
                return None
            return key, value, flags
        return None

    def _from_cache(self, name: str, trace: "Trace") -> "str | None":
        found = self.cache_answer(name, trace)
        if found is None:
            return None
        if trace is not None:
            _note(trace, "ld.so.cache", found[1], "taken", found[0], key=found[0],
                              flags=found[2])
            self.search().loaded_copy(found[0], found[1], trace)
        return found[0]


def _note(trace: "List[Any]", *args: "Any", **kw: "Any") -> None:
    from ._trace import Step  # noqa: PLC0415 -- only `find --explain` asks for a trace

    trace.append(Step(*args, **kw))


def _as_name(name: object) -> "str | None":
    """*name* as a plain str, None if it is no str.  A str subclass is copied, so that its
    own __eq__, __hash__ or __len__ never runs in here nor stays in the memo as a key."""
    try:
        if type(name) is str:
            return name
        return str.__str__(name) if isinstance(name, str) else None
    except Exception:  # isinstance() consults __class__, which an object may make raise
        return None


def _shown(name: object) -> str:
    try:
        return repr(name)
    except Exception:
        return object.__repr__(name)


def plausible(name: str) -> bool:
    """Whether *name* can be part of a file name lib<name>.so...: not empty, at most
    NAME_MAX, no '/', NUL or whitespace (stock's regex stops a key at whitespace)."""
    return (0 < len(name) <= _MAX_NAME and "/" not in name and "\0" not in name
            and not any(c.isspace() for c in name))


def _debug(message: str) -> None:
    if os.environ.get("CTYPES_SHIM_DEBUG"):
        sys.stderr.write(f"ctypes_shim: {message}\n")


def _import_before_fork() -> None:
    """Before fork(): finish importing every module a lookup may load lazily.  A child
    forked while another thread is importing one of them would otherwise wait for ever on
    that module's import lock, held by a thread the child does not have; once they are
    all in sys.modules, the child never takes one of those locks.  Importing waits for a
    thread that is importing the same module, so it cannot deadlock here."""
    try:
        import functools  # noqa: F401, PLC0415 -- _ldscan.order() imports it when it runs

        from . import _ldpaths, _ldscan, _loader, _search, _trace  # noqa: F401, PLC0415
    except Exception:  # a broken install: the child will see the same error
        return


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_import_before_fork)

_default: "Resolver | None" = None


def default() -> Resolver:
    """The resolver for this machine's root, created on first use."""
    global _default  # noqa: PLW0603 -- one per process, created lazily
    if _default is None:
        _default = Resolver()  # two threads may both make one; the last one stays
    return _default


def find_library(name: str) -> "str | None":
    """Locate a library the way ctypes.util.find_library does on a full glibc system."""
    return default().find(name)
