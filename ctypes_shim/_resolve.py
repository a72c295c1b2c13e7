"""find_library(name) -> soname | path | None, in pure Python, without starting a process.

Order (see README "How a name is resolved"):
1. /etc/ld.so.cache, read in place of `ldconfig -p`: the first entry, in cache order, whose
   key starts with "lib<name>." and whose flags fit this interpreter, as stock CPython's
   regex picks it.  Entries whose file is gone (a stale cache) are passed over.
2. On a miss, or with no usable cache: a scan of LD_LIBRARY_PATH (as it is at the call),
   the ld.so.conf dirs and the loader's default dirs for lib<name>.so and lib<name>.so.*,
   keeping ELF shared objects of this interpreter's ABI; the highest version in
   ldconfig's order wins, ties go to the earlier directory.
The answer is the SONAME (the file name where there is none), as stock returns it,
unless the loader could not find that name by itself: then it is a path that
ctypes.CDLL can load.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref

from . import _elf, _ldcache, _ldpaths

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, Optional, Tuple

    Trace = Optional[List[Tuple[str, str, str]]]  # (source, candidate, verdict)
    Index = Dict[str, Tuple[str, ...]]

_MAX_NAME = 255  # NAME_MAX: no file can be called lib<longer name>.so
_MUSL_LIBC_NAMES = frozenset(("c", "m", "pthread", "rt", "dl", "util", "xnet", "crypt"))
_resolvers: weakref.WeakSet[Resolver] = weakref.WeakSet()
_UNREAD = (-1,)  # a stat signature no file has


def stems(filename: str) -> list[str]:
    """The names under which find_library finds *filename*: 'libfoo.so.1' -> ['foo']."""
    if not filename.startswith("lib"):
        return []
    out = []
    at = filename.find(".so", 3)
    while at > 3:
        end = at + 3
        if end == len(filename) or filename[end] == ".":
            out.append(filename[3:at])
        at = filename.find(".so", at + 1)
    return out


class Native:
    """What a library must match to load into this interpreter."""

    def __init__(self, info: _elf.ELFInfo | None) -> None:
        self.info = info
        self.abi = info.abi if info else None
        flags = _elf.cache_flags(info) if info else -1
        if flags == -1:  # unknown machine: accept what stock's "libc6" regex accepts
            self.cache_ok: frozenset[int] | None = None
        elif flags == 0x0903:  # glibc: hard-float ARM also takes untagged libc6 entries
            self.cache_ok = frozenset((0x0903, 0x0003))
        elif flags == 0x0B03:
            self.cache_ok = frozenset((0x0B03, 0x0003))
        elif flags == 0x0003:  # generic glibc check: libc6, or ELF that needs no libc
            self.cache_ok = frozenset((0x0001, 0x0003))
        else:
            self.cache_ok = frozenset((flags,))
        interp = os.path.basename(info.interp or "") if info else ""
        self.musl_arch = interp[8:-5] if interp.startswith("ld-musl-") else None
        self.bits = 32 if info and info.elf_class == _elf.ELFCLASS32 else 64

    def cache_flags_fit(self, flags: int) -> bool:
        if self.cache_ok is None:
            return flags & 0xFF == 3
        return flags in self.cache_ok

    @classmethod
    def detect(cls) -> Native:
        for path in (sys.executable, "/proc/self/exe"):  # the first is cheaper to open
            try:
                return cls(_elf.read_elf(path, dynamic=False))
            except (OSError, ValueError):
                continue
        return cls(None)


class Resolver:
    """Answers find_library for one root; thread-safe, caches what it reads."""

    def __init__(self, root: str = "/", native: Native | None = None,
                 environ: dict[str, str] | None = None) -> None:
        self.root = root
        self.hits: dict[str, str] = {}  # name -> answer; read without the lock
        self._native = native
        self._environ = environ  # None: os.environ at each call
        self._lock = threading.RLock()
        self._cache_sig: tuple[int, ...] | None = _UNREAD
        self._cache: _ldcache.CacheIndex | None = None
        self._cache_error = "not read yet"
        self._conf_sig: tuple[tuple[int, ...] | None, ...] | None = None
        self._conf_seen: list[str] = []
        self._conf: tuple[tuple[str, str], ...] = ()
        # directory -> (stat signature, its listing joined by NULs, or its per-name index)
        self._dirs: dict[str, tuple[tuple[int, ...] | None, str | Index]] = {}
        self._elf: dict[str, tuple[tuple[int, ...], _elf.ELFInfo | str]] = {}
        self._startup_llp: tuple[str, ...] | None = None
        # Misses are remembered against the state of everything they were read from: the
        # cache file, the conf files, every directory searched (or absent), LD_LIBRARY_PATH.
        self._watch: tuple[str, ...] = ()
        self._watch_cwd = False
        self._misses: set[str] = set()
        self._misses_world: tuple[object, ...] = ()
        _resolvers.add(self)

    # -- public --------------------------------------------------------------------------

    @property
    def native(self) -> Native:
        if self._native is None:
            self._native = Native.detect()
        return self._native

    def find(self, name: object) -> str | None:
        """find_library(name): memoized hits, a fresh look for anything else."""
        try:
            return self.hits[name]  # type: ignore[index]
        except Exception:  # KeyError; TypeError (unhashable); a hostile __hash__ or __eq__
            return self.lookup(name)

    def lookup(self, name: object, trace: Trace = None) -> str | None:
        """Resolve *name* without the memo; never raises."""
        text = _as_name(name)
        if text is None or not _plausible(text):
            if trace is not None:
                try:
                    shown = repr(name)
                except Exception:
                    shown = object.__repr__(name)
                trace.append(("input", shown, "rejected: not a library name"))
            return None
        name = text
        try:
            with self._lock:
                if trace is None and name in self._misses and self._world() == self._misses_world:
                    return None  # nothing it depends on has changed since it was missed
                watch, before = self._watch, self._world()
                answer, memo = self._resolve(name, trace)
                if answer is not None and memo:
                    self.hits[name] = answer
                elif answer is None and watch is self._watch:
                    # Remembered against the state from *before* the look: whatever changed
                    # since then makes the next check differ, and the name is looked up again.
                    if before != self._misses_world:
                        self._misses, self._misses_world = set(), before
                    self._misses.add(name)
                return answer
        except Exception as e:  # find_library must never be why a process dies
            _debug(f"find_library({name!r}) failed: {e!r}")
            if trace is not None:
                trace.append(("error", name, repr(e)))
            return None

    def cache_clear(self) -> None:
        with self._lock:
            self.hits.clear()
            self._misses = set()
            self._cache_sig, self._conf_sig = _UNREAD, None
            self._dirs.clear()
            self._elf.clear()

    def search_dirs(self) -> list[tuple[str, str]]:
        """The scan's directories in order, with where each came from, deduplicated."""
        with self._lock:
            return self._search_dirs()[0]

    def cache(self) -> tuple[_ldcache.Cache | None, str]:
        """The parsed ld.so.cache (or None) and, when None, why."""
        with self._lock:
            self._load_cache()
            if self._cache is None:
                return None, self._cache_error
            try:
                host = _ldpaths.join(self.root, self._cache_path())
                return _ldcache.read_cache(host), ""
            except (OSError, ValueError) as e:
                return None, str(e) or type(e).__name__

    # -- the two sources ------------------------------------------------------------------

    def _resolve(self, name: str, trace: Trace) -> tuple[str | None, bool]:
        native = self.native
        if native.musl_arch is None:
            answer = self._from_cache(name, trace)
            if answer is not None:
                return answer, True
        elif name in _MUSL_LIBC_NAMES:
            return self._musl_libc(native.musl_arch, trace), True
        return self._from_scan(name, trace)

    def _from_cache(self, name: str, trace: Trace) -> str | None:
        self._load_cache()
        cache = self._cache
        if cache is None:
            if trace is not None:
                trace.append(("ld.so.cache", self._cache_path(), f"unusable: {self._cache_error}"))
            return None
        # Stock: re.search(r"\s+(lib<name>\.[^\s]+)\s+\(<abi>", `ldconfig -p`), the first
        # match in cache order; so 'libfoo.bar.so.1' answers both 'foo' and 'foo.bar'.
        prefix = "lib" + name + "."
        candidates = [c for c in cache.matches(prefix)
                      if len(c[0]) > len(prefix) and len(c[0].split()) == 1]
        if not candidates and trace is not None:
            trace.append(("ld.so.cache", self._cache_path(), f"no entry for {prefix}*"))
        for key, flags, value_off in candidates:
            try:
                value = cache.value(value_off)
            except ValueError:
                if trace is not None:
                    trace.append(("ld.so.cache", key, "skipped: corrupt entry"))
                continue
            if not self.native.cache_flags_fit(flags):
                if trace is not None:
                    trace.append(("ld.so.cache", value,
                                  f"skipped: flags {flags:#06x} are for another ABI"))
                continue
            host = self._host(value)
            if host is None or not os.path.exists(host):
                if trace is not None:
                    trace.append(("ld.so.cache", value, "skipped: stale entry, file missing"))
                continue
            if trace is not None:
                trace.append(("ld.so.cache", value, f"taken: {key}"))
            return key
        return None

    def _from_scan(self, name: str, trace: Trace) -> tuple[str | None, bool]:
        dirs, env_dirs = self._search_dirs()
        best = None  # (soname as bytes, dir number, dir, filename, soname)
        for number, (directory, origin) in enumerate(dirs):
            for filename in self._dir_names(directory, name):
                path = directory.rstrip("/") + "/" + filename
                info = self._elf_info(path)
                verdict = self._reject(info)
                if verdict is None:
                    assert isinstance(info, _elf.ELFInfo)  # for mypy: _reject said it is one
                    soname = info.soname or filename
                    key = os.fsencode(soname)
                    # Strictly greater: on a tie the earlier directory (or file) stays.
                    if best is None or _ldcache.libcmp(key, best[0]) > 0:
                        if best is not None and trace is not None:
                            trace.append(("scan", best[2] + "/" + best[3],
                                          f"superseded by {soname}"))
                        best = (key, number, directory, filename, soname)
                        verdict = (f"candidate: soname {soname} ({origin})" if info.soname else
                                   f"candidate: no SONAME, file name {soname} ({origin})")
                    else:
                        verdict = f"skipped: {best[4]} sorts first"
                if trace is not None:
                    trace.append(("scan", path, verdict))
        if best is None:
            if trace is not None:
                trace.append(("scan", f"{len(dirs)} dirs",
                              f"no usable lib{name}.so or lib{name}.so.*"))
            return None, True
        _, _, directory, filename, soname = best
        answer = self._loadable(directory, filename, soname, env_dirs)
        if trace is not None:
            trace.append(("scan", directory + "/" + filename, f"taken: {answer}"))
        return answer, directory not in env_dirs

    def _reject(self, info: _elf.ELFInfo | str) -> str | None:
        if isinstance(info, str):
            return "skipped: " + info
        if not _elf.is_shared_object(info):
            return f"skipped: not a shared object (e_type {info.type}, OS ABI {info.osabi})"
        if self.native.abi is not None and info.abi != self.native.abi:
            return f"skipped: wrong architecture (class {info.elf_class}, machine {info.machine})"
        return None

    def _loadable(self, directory: str, filename: str, soname: str,
                  env_dirs: frozenset[str]) -> str:
        """*soname* when the loader finds it by that name, else a path CDLL can open."""
        if soname != filename:
            link = directory.rstrip("/") + "/" + soname
            info = self._elf_info(link)
            if not isinstance(info, _elf.ELFInfo) or (info.soname or soname) != soname:
                return directory.rstrip("/") + "/" + filename  # no soname link on disk
        if directory in self._loader_dirs():
            return soname
        return directory.rstrip("/") + "/" + soname

    def _musl_libc(self, arch: str, trace: Trace) -> str:
        # musl's dlopen() hands out its own libc for lib{c,m,pthread,...}.*; the loader
        # also knows itself by its file name.
        info = self.native.info
        answer = os.path.basename(info.interp or "") if info else f"ld-musl-{arch}.so.1"
        if trace is not None:
            trace.append(("musl", answer, "taken: musl's libc provides this name"))
        return answer

    # -- what the sources read, re-read when it changes -------------------------------------

    def _cache_path(self) -> str:
        return "/etc/ld.so.cache"

    def _load_cache(self) -> None:
        host = _ldpaths.join(self.root, self._cache_path())
        sig = _stat_sig(host)
        if sig == self._cache_sig:
            return
        self._cache_sig, self._cache = sig, None
        if sig is None:
            self._cache_error = "no such file"
            return
        try:
            cache = _ldcache.CacheIndex(_ldcache.read_bytes(host))
        except (OSError, ValueError) as e:
            self._cache_error = str(e) or type(e).__name__
            return
        if cache.byteorder != sys.byteorder:
            self._cache_error = f"{cache.byteorder}-endian cache on a {sys.byteorder}-endian host"
            return
        self._cache = cache

    def _search_dirs(self) -> tuple[list[tuple[str, str]], frozenset[str]]:
        environ = os.environ if self._environ is None else self._environ
        musl = self.native.musl_arch
        env = _ldpaths.ld_library_path(environ.get("LD_LIBRARY_PATH"), musl=musl is not None)
        env_entries = [(os.path.abspath(d) if self.root == "/" else d, "LD_LIBRARY_PATH")
                       for d in env]
        if musl is not None:
            rest = list(_ldpaths.musl_path_dirs(musl, root=self.root))
        else:
            rest = list(self._conf_dirs())
            rest += [(d, "default") for d in _ldpaths.default_dirs(
                bits=self.native.bits, triplet=_ldpaths.multiarch())]
        out: list[tuple[str, str]] = []
        seen: set[tuple[int, int]] = set()
        watch = [_ldpaths.join(self.root, self._cache_path()), *self._conf_seen]
        for directory, origin in env_entries + rest:
            host = self._host(directory)
            try:
                st = os.stat(host)  # type: ignore[arg-type]  # None raises TypeError
            except (OSError, ValueError, TypeError):
                watch.append(host or "\0")  # watched: it may appear
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue  # usrmerge: /lib/x is /usr/lib/x; read and watched once
            seen.add((st.st_dev, st.st_ino))
            watch.append(host)  # type: ignore[arg-type]  # stat() succeeded: a str
            if _isdir(st.st_mode):
                out.append((directory, origin))
        # Relative LD_LIBRARY_PATH dirs move with the cwd.
        self._watch_cwd = any(not d.startswith("/") for d in env)
        unique = tuple(dict.fromkeys(watch))
        if unique != self._watch:
            self._watch = unique
        return out, frozenset(d for d, o in out if o == "LD_LIBRARY_PATH")

    def _world(self) -> tuple[object, ...]:
        """A cheap fingerprint of everything a miss was read from (one stat per path)."""
        environ = os.environ if self._environ is None else self._environ
        state: list[object] = [environ.get("LD_LIBRARY_PATH")]
        if self._watch_cwd:
            state.append(os.getcwd())
        stat = os.stat
        for path in self._watch:
            try:
                st = stat(path)
            except (OSError, ValueError):
                state.append(None)
            else:
                state.append((st.st_mtime_ns, st.st_ino))
        return tuple(state)

    def _conf_dirs(self) -> tuple[tuple[str, str], ...]:
        sig = tuple(_stat_sig(p) for p in self._conf_seen)
        if self._conf_sig is None or sig != self._conf_sig:
            seen: list[str] = []
            self._conf = _ldpaths.conf_dirs(root=self.root, seen=seen)
            self._conf_seen = seen
            self._conf_sig = tuple(_stat_sig(p) for p in seen)
        return self._conf

    def _loader_dirs(self) -> frozenset[str]:
        """Dirs the loader searches by itself: LD_LIBRARY_PATH as it was at start-up, and
        the built-in system dirs (glibc) or the musl path file's dirs."""
        if self._startup_llp is None:
            self._startup_llp = _startup_ld_library_path(self.root, self.native.musl_arch)
        if self.native.musl_arch is not None:
            system = tuple(d for d, _ in _ldpaths.musl_path_dirs(self.native.musl_arch,
                                                                 root=self.root))
        else:
            system = _ldpaths.system_dirs(root=self.root, bits=self.native.bits,
                                          triplet=_ldpaths.multiarch())
        return frozenset(system + self._startup_llp)

    def _dir_names(self, directory: str, name: str) -> tuple[str, ...]:
        """The files in *directory* that answer *name*: lib<name>.so, lib<name>.so.*."""
        host = self._host(directory) or "\0"
        sig = _stat_sig(host)
        cached = self._dirs.get(directory)
        if cached is None or cached[0] != sig:
            try:
                listing = os.listdir(host)
            except (OSError, ValueError):
                listing = []
            # The first lookup searches the listing as one string, in C; a second one
            # builds the per-name index (a Python loop over every file) and keeps it.
            joined = "\0" + "\0".join(listing) + "\0"
            self._dirs[directory] = cached = (sig, joined)
            if sig is None:
                del self._dirs[directory]
            return tuple(f for f in _search_listing(joined, name)
                         if _usable(f) and name in stems(f))
        if isinstance(cached[1], str):
            index = _index_listing(cached[1].split("\0"))
            self._dirs[directory] = cached = (sig, index)
        return cached[1].get(name, ())  # type: ignore[union-attr]

    def _elf_info(self, path: str) -> _elf.ELFInfo | str:
        """The ELF header of *path* (through symlinks), or why it cannot be a library."""
        host = self._host(path)
        if host is None:
            return "symlink leads out of the root"
        sig = _stat_sig(host)
        if sig is None:
            return "missing or unreadable"
        cached = self._elf.get(host)
        if cached is not None and cached[0] == sig:
            return cached[1]
        result: _elf.ELFInfo | str
        try:
            result = _elf.read_elf(host)
        except _elf.ELFInvalid as e:
            result = "linker script" if _is_linker_script(host) else f"not ELF ({e})"
        except OSError as e:
            result = f"unreadable ({e.strerror or e})"
        if len(self._elf) > 100000:  # bound memory in pathological trees
            self._elf.clear()
        self._elf[host] = (sig, result)
        return result

    def _host(self, path: str) -> str | None:
        """*path*, as seen inside the root, as a path on this machine; symlinks inside a
        root other than / are resolved as a chroot would (None if they lead out)."""
        return _ldpaths.host_path(self.root, path)

    def _reinit_after_fork(self) -> None:
        self._lock = threading.RLock()


def _as_name(name: object) -> str | None:
    """*name* as a plain str, None if it is no str.  A str subclass is copied, so that its
    own __eq__, __hash__ or __len__ never runs in here nor stays in the memo as a key."""
    try:
        if type(name) is str:
            return name
        return str.__str__(name) if isinstance(name, str) else None
    except Exception:  # isinstance() consults __class__, which an object may make raise
        return None


def _search_listing(joined: str, name: str) -> list[str]:
    """File names in a NUL-joined listing that start with lib<name>.so."""
    needle = "\0lib" + name + ".so"
    out = []
    at = joined.find(needle)
    while at != -1:
        out.append(joined[at + 1:joined.index("\0", at + 1)])
        at = joined.find(needle, at + 1)
    return out


def _usable(filename: str) -> bool:
    """ldconfig's filter beyond the name: no ';', no dpkg temporaries."""
    return ";" not in filename and not filename.endswith((".dpkg-new", ".dpkg-tmp"))


def _index_listing(listing: list[str]) -> Index:
    """name -> files answering it, for every lib*.so* file of a directory listing."""
    index: dict[str, list[str]] = {}
    for filename in listing:
        if filename.startswith("lib") and _usable(filename):
            for stem in stems(filename):
                index.setdefault(stem, []).append(filename)
    return {k: tuple(v) for k, v in index.items()}


def _plausible(name: str) -> bool:
    return (0 < len(name) <= _MAX_NAME and "/" not in name and "\0" not in name
            and not any(c.isspace() for c in name))


def _isdir(mode: int) -> bool:
    return mode & 0o170000 == 0o040000


def _stat_sig(path: str) -> tuple[int, ...] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _is_linker_script(path: str) -> bool:
    try:
        if os.stat(path).st_mode & 0o170000 != 0o100000:  # never open a FIFO or a device
            return False
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            head = os.pread(fd, 512, 0)
        finally:
            os.close(fd)
    except OSError:
        return False
    return b"GNU ld script" in head or b"GROUP" in head or b"INPUT" in head


def _startup_ld_library_path(root: str, musl: str | None) -> tuple[str, ...]:
    """LD_LIBRARY_PATH as the loader saw it when this process started."""
    if root != "/":
        return ()
    try:
        with open("/proc/self/environ", "rb") as f:
            raw = f.read()
        value = None
        for item in raw.split(b"\0"):
            if item.startswith(b"LD_LIBRARY_PATH="):
                value = os.fsdecode(item[16:])
    except OSError:
        value = os.environ.get("LD_LIBRARY_PATH")
    return tuple(os.path.abspath(d) for d in _ldpaths.ld_library_path(value, musl=musl is not None))


def _debug(message: str) -> None:
    if os.environ.get("CTYPES_SHIM_DEBUG"):
        sys.stderr.write(f"ctypes_shim: {message}\n")


def _after_fork() -> None:
    global _default_lock  # noqa: PLW0603 -- a thread that held it at fork() is gone
    _default_lock = threading.Lock()
    for resolver in list(_resolvers):
        resolver._reinit_after_fork()


os.register_at_fork(after_in_child=_after_fork)

_default: Resolver | None = None
_default_lock = threading.Lock()


def default() -> Resolver:
    """The resolver for this machine's root, created on first use."""
    global _default  # noqa: PLW0603 -- one per process, created lazily
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Resolver()
    return _default


def find_library(name: str) -> str | None:
    """Locate a library the way ctypes.util.find_library does on a full glibc system."""
    return default().find(name)
