"""What find_library answers when /etc/ld.so.cache has no answer: no cache, a stale one,
LD_LIBRARY_PATH, the caller's DT_RPATH and DT_RUNPATH, musl.

For glibc, the answer is what a cache freshly written for the root would give: _ldscan
keys the ld.so.conf and built-in dirs exactly as the cache writer does, and the first
entry in cache order whose key starts with "lib<name>." wins, as stock's regex picks it
from `ldconfig -p`.  Then LD_LIBRARY_PATH (as it is at the call) in the loader's order:
the first directory that holds a match wins, and the caller's DT_RUNPATH after it.  The
caller (the object holding _ctypes, from which CDLL calls dlopen) has its DT_RPATH searched
before the cache (find_rpath), as glibc's dl-load.c does.  Its directories are expanded
by _loader.search_path, the one model of the loader's search, and keyed by _ldscan, like
every other directory.  musl has no cache: LD_LIBRARY_PATH, then the caller's DT_RUNPATH
or DT_RPATH, then /etc/ld-musl-<arch>.path.

Only files whose names begin with "lib<name>." are read (plus glibc < 2.37's legacy
hwcap subdirectories), so a lookup never reads a whole large directory.  Everything read
is remembered against its stat signature; a miss is remembered against the state of
everything it was read from, so a library installed while the process runs is found by
the next call.
"""

import os

from . import _elf, _ldcache, _ldpaths, _ldscan
from ._trace import Step

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Iterable, List, Optional, Tuple

    from ._loader import SearchDir
    from ._resolve import Callers, Native

    Trace = Optional[List[Step]]
    Index = Dict[str, Tuple[str, ...]]
    # the conf files read with their stat signatures, and the dirs they name
    Conf = Tuple[Tuple[Tuple[str, Optional[Tuple[int, ...]]], ...], Tuple[Tuple[str, str], ...]]

# musl's dlopen() hands out its own libc for lib{c,m,pthread,...}.* (ldso/dynlink.c).
_MUSL_LIBC_NAMES = frozenset(("c", "m", "pthread", "rt", "dl", "util", "xnet", "crypt"))
_MAX_MEMO = 100000  # bound what pathological trees can make us remember
_INDEX_AFTER = 2  # a directory's second lookup builds its per-name index


class Search:
    """The part of a Resolver that reads directories; one per Resolver."""

    def __init__(self, root: str, native: "Native", environ: "dict[str, str] | None",
                 callers: "Callers" = (None, (), None), secure: "bool | None" = None) -> None:
        self.root = root
        self.environ = environ  # None: os.environ at each call
        self.callers = callers  # the caller, its loader chain, the executable (_resolve.Caller)
        self.secure = secure  # AT_SECURE; None: this process's, read when needed
        self.native = native
        self.musl = native.musl_arch
        self.machine = _ldscan.Machine(triplet=_ldpaths.multiarch()).for_root(self.root)
        self._conf: Conf | None = None
        self._listings: dict[str, tuple[tuple[int, ...] | None, str | Index, int]] = {}
        self._classified: dict[str, tuple[tuple[int, ...] | None, _ldscan.Classified]] = {}
        self._misses: tuple[tuple[object, ...], tuple[str, ...], frozenset[str]] = (
            (), (), frozenset())
        self._loader_dirs: frozenset[str] | None = None
        self._caller_dirs: tuple[tuple[SearchDir, ...], tuple[SearchDir, ...]] | None = None

    # -- the answer -------------------------------------------------------------------------

    def find(self, name: str, trace: "Trace") -> "tuple[str | None, bool]":
        """(answer, whether it may be remembered) for a name the cache did not answer."""
        if self.musl is not None and name in _MUSL_LIBC_NAMES:
            return self._musl_libc(trace), True
        world, watch, names = self._misses
        if trace is None and name in names and self._world(watch) == world:
            return None, True  # nothing it depends on has changed since it was missed
        before_watch = self._watched()
        before = self._world(before_watch)
        prefix = "lib" + name + "."
        if self.musl is None:
            scan = self._scan(self._conf_lines(), prefix, builtin=True)
            entry = self._first(scan, prefix, trace, "scan")
            if entry is not None:
                return self._answer(entry, trace, "scan"), True
        env = self._env_dirs()
        after, labels = self._caller_lines(self.caller_dirs()[1])
        system = list(_ldpaths.musl_path_dirs(self.musl, root=self.root)) if self.musl else []
        scan = self._scan(env + after + system, prefix, builtin=False)
        source = "scan" if self.musl else "LD_LIBRARY_PATH"
        entry = self._first(scan, prefix, trace, source, first_dir=True, labels=labels)
        if entry is not None:
            env_dirs = {d for d, _ in env}
            return (self._answer(entry, trace, labels.get(entry.directory, (source, ""))[0]),
                    entry.directory not in env_dirs)
        if trace is not None:
            trace.append(Step("scan", f"{len(self.search_dirs())} dirs", "none",
                              f"no usable {prefix}* file"))
        # Remembered against the state from before the look: whatever changed since then
        # (a conf file too, which may name other dirs) makes the next check differ.
        names = self._misses[2] if self._misses[0] == before else frozenset()
        self._misses = (before, before_watch, names | {name})
        return None, True

    def find_rpath(self, name: str, trace: "Trace") -> "tuple[str | None, bool]":
        """(answer, whether it may be remembered) from the DT_RPATH dirs glibc searches
        before anything else for the caller's dlopen(): the first dir holding a match."""
        before = self.caller_dirs()[0]
        if not before:
            return None, True
        prefix = "lib" + name + "."
        lines, labels = self._caller_lines(before)
        entry = self._first(self._scan(lines, prefix, builtin=False), prefix, trace, "DT_RPATH",
                            first_dir=True, labels=labels)
        if entry is not None:
            return self._answer(entry, trace, "DT_RPATH"), True
        if trace is not None:
            trace.append(Step("DT_RPATH", f"{len(before)} dirs", "none",
                              f"no usable {prefix}* file"))
        return None, True

    def loaded_copy(self, soname: str, value: str, trace: "Trace") -> None:
        """For --explain: when the loader, asked for *soname* by the caller, finds a copy
        before the cache's *value* (in DT_RPATH, LD_LIBRARY_PATH or DT_RUNPATH), add a
        step "loaded" naming it: that copy is what CDLL loads."""
        if trace is None or self.musl is not None:
            return
        from . import _loader  # noqa: PLC0415 -- only for --explain

        requester, chain, exe = self.callers
        loader = _loader.Loader(self.root, self.environ, native=self.native.info,
                                secure=self._secure())
        loader.executable = exe
        found = loader.find(soname, requester, chain)
        if found.path is None or found.source in (_loader.CACHE, _loader.SYSTEM):
            return
        trace.append(Step(found.source or "", found.path, "loaded",
                          f"CDLL({soname!r}) loads this copy, found before {value}: "
                          f"{found.via}", key=soname))

    def _first(self, scan: "_ldscan.Scan", prefix: str, trace: "Trace", source: str, *,
               first_dir: bool = False,
               labels: "dict[str, tuple[str, str]] | None" = None) -> "_ldscan.Entry | None":
        """The first entry, in cache order, whose key starts with *prefix* and whose flags
        fit; with *first_dir*, only from the first directory that has one (the loader's
        order for LD_LIBRARY_PATH, DT_RPATH, DT_RUNPATH and musl's path).  *labels* gives
        the trace's source for a directory, and which entry named it."""
        def label(directory: str) -> "tuple[str, str]":
            if not labels:
                return source, ""
            return labels.get(directory) or labels.get(
                directory.split("/glibc-hwcaps/", maxsplit=1)[0], (source, ""))

        if trace is not None:
            for path, why in scan.skipped:
                if path.rpartition("/")[2].startswith(prefix):
                    trace.append(Step(label(path.rpartition("/")[0] or "/")[0], path,
                                      "skipped", why))
        fitting = []
        for entry in scan.entries:
            if not _ldcache.key_matches(entry.key, prefix):
                continue
            src, note = label(entry.directory)
            key: dict[str, Any] = {"key": entry.key, "flags": entry.flags}
            if not self.native.cache_flags_fit(entry.flags):
                if trace is not None:
                    trace.append(Step(src, entry.file, "skipped",
                                      f"flags {entry.flags:#06x} are for another ABI", **key))
                continue
            info = self._info(entry.file)
            if info is not None and (info.abi != self.native.abi
                                     or not _elf.is_shared_object(info)):
                if trace is not None:  # ldconfig keys it, dlopen refuses it
                    trace.append(Step(src, entry.file, "skipped",
                                      f"not loadable here (OS ABI {info.osabi})", **key))
                continue
            fitting.append(entry)
            if trace is not None:
                plain = info is not None and info.soname is None
                trace.append(Step(src, entry.file, "candidate",
                                  (f"no SONAME, file name {entry.key}" if plain else
                                   f"soname {entry.key}") + note, **key))
        if first_dir and fitting:
            rank = {d.path: number for number, d in enumerate(scan.dirs)}
            top = min(rank.get(e.directory, len(rank)) for e in fitting)
            fitting = [e for e in fitting if rank.get(e.directory, len(rank)) == top]
        if trace is not None:
            for entry in fitting[1:]:
                trace.append(Step(label(entry.directory)[0], entry.file, "superseded",
                                  f"{fitting[0].key} sorts first", key=entry.key,
                                  flags=entry.flags))
        return fitting[0] if fitting else None

    def _answer(self, entry: "_ldscan.Entry", trace: "Trace", source: str) -> str:
        """The entry's key when the loader finds that name by itself, else a path CDLL can
        open: the soname link when it exists, the file found when it does not."""
        key, directory = entry.key, entry.directory
        link = directory.rstrip("/") + "/" + key
        found = self._classify_path(link)
        if isinstance(found, str) or found[1] != key:
            answer = entry.file  # no file by the soname's name: what ldconfig would link
        elif self._base(entry) in self.loader_dirs():
            answer = key
        else:
            answer = link
        if trace is not None:
            trace.append(Step(source, entry.file, "taken", answer, key=key, flags=entry.flags))
        return answer

    def _base(self, entry: "_ldscan.Entry") -> str:
        """The directory the loader searches that holds *entry* (glibc-hwcaps and legacy
        hwcap subdirectories are searched as part of their parent)."""
        directory = entry.directory
        if entry.hwcaps is not None:
            return directory.rsplit("/glibc-hwcaps/", 1)[0]
        while "/" in directory.rstrip("/"):
            head, _, last = directory.rpartition("/")
            if self.machine.hwcap_index(last) is None or not self.machine.legacy_hwcaps:
                break
            directory = head
        return directory

    def _musl_libc(self, trace: "Trace") -> str:
        info = self.native.info
        answer = os.path.basename(info.interp or "") if info else f"ld-musl-{self.musl}.so.1"
        if trace is not None:
            trace.append(Step("musl", answer, "taken", "musl's libc provides this name"))
        return answer

    # -- what it reads ------------------------------------------------------------------------

    def _scan(self, lines: "Iterable[tuple[str, str]]", prefix: str, *,
              builtin: bool) -> "_ldscan.Scan":
        return _ldscan.scan(self.root, machine=self.machine, conf_lines=lines,
                            builtin=builtin, listing=lambda host: self._listing(host, prefix),
                            classify=self._classify)

    def search_dirs(self) -> "list[tuple[str, str]]":
        """Where a name the cache does not answer is looked for, in order: the caller's
        DT_RPATH dirs (which come before the cache) first."""
        before, after = (self._caller_lines(d)[0] for d in self.caller_dirs())
        env = self._env_dirs() + after
        if self.musl is not None:
            lines = env + list(_ldpaths.musl_path_dirs(self.musl, root=self.root))
            scan = _ldscan.scan(self.root, machine=self.machine, conf_lines=lines,
                                builtin=False, listing=lambda host: ())
            return [(d.path, d.origin) for d in scan.dirs if self._isdir(d.path)]
        first = _ldscan.scan(self.root, machine=self.machine, conf_lines=before + env,
                             builtin=False, listing=lambda host: ())
        scan = _ldscan.scan(self.root, machine=self.machine, conf_lines=self._conf_lines(),
                            listing=lambda host: ())
        return [(d.path, d.origin) for d in first.dirs if self._isdir(d.path)] + [
            (d.path, "default" if d.origin == "<builtin>:0" else d.origin) for d in scan.dirs
            if self._isdir(d.path)]  # ldconfig keeps a file named in ld.so.conf, and reads nothing

    def _isdir(self, inside: str) -> bool:
        host = _ldpaths.host_path(self.root, inside)
        return host is not None and os.path.isdir(host)

    def configured_dirs(self) -> "list[tuple[str, str]]":
        """Every dir named for the search, in order, before missing and repeated ones are
        dropped: the caller's DT_RPATH's, LD_LIBRARY_PATH's, the caller's DT_RUNPATH's,
        then ld.so.conf's and the built-in ones (glibc) or the musl path file's."""
        before, after = (self._caller_lines(d)[0] for d in self.caller_dirs())
        env = before + self._env_dirs() + after
        if self.musl is not None:
            return env + list(_ldpaths.musl_path_dirs(self.musl, root=self.root))
        return env + list(self._conf_lines()) + [
            (d, "default") for d in self.machine.builtin_dirs(self.root)]

    def _env_dirs(self) -> "list[tuple[str, str]]":
        environ = os.environ if self.environ is None else self.environ
        value = environ.get("LD_LIBRARY_PATH")
        dirs = _ldpaths.ld_library_path(value, musl=self.musl is not None)
        if self.root == "/":
            dirs = tuple(os.path.abspath(d) for d in dirs)
        return [(d, "LD_LIBRARY_PATH") for d in dirs]

    def _conf_lines(self) -> "tuple[tuple[str, str], ...]":
        """ld.so.conf's dirs, parsed again when a file it was read from changes."""
        if self._conf is not None and all(_ldcache.signature(p) == s for p, s in self._conf[0]):
            return self._conf[1]
        seen: list[str] = []
        lines = _ldpaths.conf_dirs(root=self.root, seen=seen)
        self._conf = (tuple((p, _ldcache.signature(p)) for p in dict.fromkeys(seen)), lines)
        return lines

    def _listing(self, host: str, prefix: str) -> "list[_ldscan.Dirent]":
        """The entries of *host* that can key *prefix*: names that begin with it, and the
        legacy hwcap subdirectories glibc < 2.37 also reads."""
        sig = _ldcache.signature(host)
        cached = self._listings.get(host)
        if cached is None or cached[0] != sig:
            names = os.listdir(host)  # OSError: the scan skips the directory
            cached = (sig, "\0" + "\0".join(names) + "\0", 0)
        joined_or_index, uses = cached[1], cached[2] + 1
        if isinstance(joined_or_index, str) and uses >= _INDEX_AFTER:
            joined_or_index = _index(joined_or_index)
        if sig is not None:
            self._bound(self._listings)
            self._listings[host] = (sig, joined_or_index, uses)
        if isinstance(joined_or_index, str):
            found = _search_joined(joined_or_index, "\0" + prefix)
        else:
            stem = prefix[3:].split(".", 1)[0]
            found = [n for n in joined_or_index.get(stem, ()) if n.startswith(prefix)]
        if self.machine.legacy_hwcaps:
            if isinstance(joined_or_index, str):
                present = {n for n in self.machine.hwcap_names()
                           if "\0" + n + "\0" in joined_or_index}
            else:
                present = set(joined_or_index.get("\0hwcaps", ()))
            found += [n for n in self.machine.hwcap_names()
                      if n in present and self.machine.is_hwcap_platform(n)]
        base = host.rstrip("/") + "/"
        return [(n, _ldscan.kind_of(base + n)) for n in found]

    def _classify(self, real: str, name: str,
                  machine: "_ldscan.Machine") -> "_ldscan.Classified":
        sig = _ldcache.signature(real)
        cached = self._classified.get(real)
        if cached is not None and cached[0] == sig and sig is not None:
            return cached[1]
        result = _ldscan.classify_file(real, name, machine)
        self._bound(self._classified)
        self._classified[real] = (sig, result)
        return result

    def _classify_path(self, inside: str) -> "_ldscan.Classified":
        host = _ldpaths.host_path(self.root, inside)
        if host is None:
            return "symlink leads out of the root"
        return self._classify(host, inside.rpartition("/")[2], self.machine)

    def _info(self, inside: str) -> "_elf.ELFInfo | None":
        found = self._classify_path(inside)
        return None if isinstance(found, str) else found[2]

    # -- the caller's DT_RPATH and DT_RUNPATH ---------------------------------------------

    def caller_dirs(self) -> "tuple[tuple[SearchDir, ...], tuple[SearchDir, ...]]":
        """The dirs the caller's dlopen() searches from DT_RPATH (before LD_LIBRARY_PATH
        and the cache) and from DT_RUNPATH (after LD_LIBRARY_PATH), in the loader's order,
        as _loader.search_path expands them; read once.  musl searches both after
        LD_LIBRARY_PATH: they all come second."""
        if self._caller_dirs is None:
            requester, chain, exe = self.callers
            if requester is None and exe is None:
                self._caller_dirs = ((), ())
                return self._caller_dirs
            from . import _loader  # noqa: PLC0415 -- the one model of the loader's search

            places = _loader.search_path(
                requester[0] if requester else None, requester[1] if requester else None,
                root=self.root, environ={}, chain=chain, executable=exe,
                musl_arch=self.musl, secure=self._secure(), bits=self.native.bits)
            own = (_loader.RPATH, _loader.RUNPATH)
            if self.musl is not None:
                self._caller_dirs = ((), tuple(d for d in places if d.source in own))
            else:
                self._caller_dirs = (tuple(d for d in places if d.source == _loader.RPATH),
                                     tuple(d for d in places if d.source == _loader.RUNPATH))
        return self._caller_dirs

    def _secure(self) -> bool:
        if self.secure is None:
            if self.root != "/":
                return False
            from . import _loader  # noqa: PLC0415

            self.secure = _loader.at_secure()
        return self.secure

    def _caller_lines(self, dirs: "Iterable[SearchDir]"
                      ) -> "tuple[list[tuple[str, str]], dict[str, tuple[str, str]]]":
        """(dir, origin) lines for a scan, and for the trace each dir's source and which
        element of whose DT_RPATH/DT_RUNPATH named it.  An empty element is the current
        directory, and a relative one is relative to it (glibc opens them as they are)."""
        lines: list[tuple[str, str]] = []
        labels: dict[str, tuple[str, str]] = {}
        for d in dirs:
            path = d.path
            if not path.startswith("/"):
                path = (os.path.join(os.getcwd(), path) if self.root == "/"
                        else "/" + path).rstrip("/") or "/"
            origin = f"{d.source} of {d.owner}"
            lines.append((path, origin))
            labels.setdefault(path, (d.source, f", {d.source} entry {d.element!r} of {d.owner}"))
        return lines, labels

    def loader_dirs(self) -> "frozenset[str]":
        """Dirs the loader searches by itself: the caller's DT_RPATH and DT_RUNPATH dirs,
        LD_LIBRARY_PATH as it was at start-up, and its built-in system dirs (glibc) or the
        musl path file's dirs."""
        if self._loader_dirs is None:
            if self.musl is not None:
                system = tuple(d for d, _ in _ldpaths.musl_path_dirs(self.musl, root=self.root))
            else:
                system = _ldpaths.loader_dirs(root=self.root, triplet=self.machine.triplet,
                                              bits=self.native.bits)
            before, after = self.caller_dirs()
            own = tuple(p for p, _ in self._caller_lines(before + after)[0])
            self._loader_dirs = frozenset(own + system + _startup_ld_library_path(self.root,
                                                                                  self.musl))
        return self._loader_dirs

    @staticmethod
    def _bound(memo: "dict[str, Any]") -> None:
        if len(memo) > _MAX_MEMO:
            memo.clear()

    # -- what a miss depends on -------------------------------------------------------------

    def _watched(self) -> "tuple[str, ...]":
        """Every path a miss was read from: the cache, the conf files, each dir configured
        (present or not) and its glibc-hwcaps dir if it has one, LD_LIBRARY_PATH's dirs."""
        root = self.root
        paths = [_ldpaths.host_path(root, _ldcache.LD_SO_CACHE) or "\0"]
        lines = list(self._env_dirs())
        lines += self._caller_lines(self.caller_dirs()[0] + self.caller_dirs()[1])[0]
        if self.musl is None:
            lines += list(self._conf_lines())  # first: it reads the conf files
            paths += [p for p, _ in (self._conf or ((), ()))[0]]
            lines += [(d, "") for d in self.machine.builtin_dirs(root)]
        else:
            paths.append(_ldpaths.host_path(root, f"/etc/ld-musl-{self.musl}.path") or "\0")
            lines += list(_ldpaths.musl_path_dirs(self.musl, root=root))
        seen: set[tuple[int, int]] = set()
        for directory, _ in lines:
            host = _ldpaths.host_path(root, directory) or "\0"
            try:
                st = os.stat(host)
            except (OSError, ValueError):
                paths.append(host)  # watched: it may appear
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue  # usrmerge: /lib/x is /usr/lib/x, watched once
            seen.add((st.st_dev, st.st_ino))
            paths.append(host)
            hwcaps = host.rstrip("/") + "/glibc-hwcaps"  # a new one changes its parent
            if os.path.isdir(hwcaps):
                paths.append(hwcaps)
        return tuple(dict.fromkeys(paths))

    def _world(self, watch: "tuple[str, ...]") -> "tuple[object, ...]":
        """A cheap fingerprint of *watch* (one stat per path) and LD_LIBRARY_PATH."""
        environ = os.environ if self.environ is None else self.environ
        value = environ.get("LD_LIBRARY_PATH")
        state: list[object] = [value]
        if value and any(not d.startswith("/") for d in value.replace(";", ":").split(":")):
            state.append(os.getcwd())  # relative dirs move with the cwd
        for path in watch:
            try:
                st = os.stat(path)
            except (OSError, ValueError):
                state.append(None)
            else:
                state.append((st.st_mtime_ns, st.st_ino))
        return tuple(state)


def _search_joined(joined: str, needle: str) -> "list[str]":
    """The names in a NUL-joined listing that begin with *needle* (which starts with NUL)."""
    out = []
    at = joined.find(needle)
    while at != -1:
        end = joined.find("\0", at + 1)
        if end < 0:
            break
        out.append(joined[at + 1:end])
        at = joined.find(needle, end)
    return out


def _index(joined: str) -> "Index":
    """lib<stem>.* names by stem (what lies between "lib" and the next dot), for a listing
    looked up more than once; legacy hwcap names under a key no file name can have."""
    index: dict[str, list[str]] = {}
    for name in joined.split("\0"):
        if name.startswith("lib"):
            dot = name.find(".", 3)
            if dot > 0:
                index.setdefault(name[3:dot], []).append(name)
        elif name and "." not in name:
            index.setdefault("\0hwcaps", []).append(name)
    return {k: tuple(v) for k, v in index.items()}


def _startup_ld_library_path(root: str, musl: "str | None") -> "tuple[str, ...]":
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
