"""The right answer for a generated root, worked out without ctypes_shim.

glibc's own programs decide: the host's real `ldconfig -r ROOT -X -C FILE` keys the root's
directories and writes a cache, `ldconfig -p -C FILE` prints it, and stock CPython's rule
picks from that listing (Lib/ctypes/util.py, `_findSoname_ldconfig`: the first line in
cache order matching `\\s+(lib<name>\\.[^\\s]+)\\s+\\(<abi>`).  The loader's default dirs come
from the interpreter's own loader (`ld.so --help`), and pyelftools says whether the chosen
file is one this interpreter could load.  The lookup rule being judged:

1. the root's /etc/ld.so.cache, when glibc can read it: the first fitting entry whose file
   still exists; the answer is its key;
2. else the cache glibc's ldconfig would write now for the root (ld.so.conf dirs, then the
   loader's built-in dirs), first fitting entry;
3. else LD_LIBRARY_PATH (as given), dir by dir: the first dir holding a fitting key wins,
   within it ldconfig's keying and cache order.
The answer is the key when the loader finds that name by itself (a cache entry, or a file
of that name in one of its default dirs), else a path CDLL can load: <dir>/<key> when that
file carries the key, else the file ldconfig keyed.

Nothing here imports ctypes_shim.
"""

from __future__ import annotations

import io
import os
import re
import resource
import shutil
import stat
import subprocess
import sys

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

LDCONFIG = "/sbin/ldconfig" if os.path.exists("/sbin/ldconfig") else shutil.which("ldconfig")
_ENV = {"LC_ALL": "C", "LANG": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
_ENTRY = re.compile(r"^\t(.*) \((.*)\) => (.*)$")
_SECTION = re.compile(r"^(/.*): \(from (.*)\)$")
_KEYED = re.compile(r"^\t(\S+) -> (\S+)")


class Unavailable(RuntimeError):
    """The host has no ldconfig or no glibc loader to ask."""


# -- this interpreter ------------------------------------------------------------------------


def _exe_header() -> ELFFile:
    with open("/proc/self/exe", "rb") as f:
        return ELFFile(io.BytesIO(f.read()))


class Interp:
    """Class, byte order, machine and loader of this interpreter, read by pyelftools."""

    def __init__(self) -> None:
        elf = _exe_header()
        self.elfclass = elf.elfclass
        self.little = elf.little_endian
        self.machine = elf.header["e_machine"]
        self.interp = None
        for seg in elf.iter_segments():
            if seg["p_type"] == "PT_INTERP":
                self.interp = seg.get_interp_name()
        # glibc's ldconfig -p descriptions this interpreter's loader accepts
        # (sysdeps/.../dl-cache.h _dl_cache_check_flags; elf/cache.c print_entry).
        if self.machine == "EM_X86_64":
            self.descr = ("libc6,x86-64",) if self.elfclass == 64 else ("libc6,x32",)
        elif self.machine == "EM_AARCH64":
            self.descr = ("libc6,AArch64",)
        elif self.machine == "EM_386":
            self.descr = ("libc6", "ELF")
        else:  # stock's fallback: any glibc entry
            self.descr = ("libc6",)
        self.abi_pattern = "(?:{})[,)]".format("|".join(re.escape(d) for d in self.descr))
        self._default_dirs: tuple[str, ...] | None = None

    def default_dirs(self) -> tuple[str, ...]:
        """The loader's system search path, as `ld.so --help` prints it."""
        if self._default_dirs is None:
            if not self.interp or not os.path.exists(self.interp):
                raise Unavailable("no glibc loader for this interpreter")
            out = subprocess.run([self.interp, "--help"], capture_output=True, text=True,
                                 env=_ENV, timeout=60, check=False).stdout
            dirs = tuple(line.split()[0] for line in out.splitlines()
                         if line.endswith("(system search path)"))
            if not dirs:
                raise Unavailable(f"{self.interp} --help lists no system search path")
            self._default_dirs = dirs
        return self._default_dirs


INTERP: Interp | None = None


def interp() -> Interp:
    global INTERP  # noqa: PLW0603 -- read once per process
    if INTERP is None:
        INTERP = Interp()
    return INTERP


# -- paths inside the root, as a chroot sees them ----------------------------------------------


def chroot_path(root: str, path: str, depth: int = 0) -> str | None:
    """The host path of *path* inside *root*, every symlink followed as inside a chroot
    (absolute targets start at root, '..' stops at root); None for a loop or too deep."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    done: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        host = os.path.join(root, *done, part)
        try:
            st = os.lstat(host)
        except (OSError, ValueError):
            return os.path.join(root, *done, part, *parts)  # missing: nothing to follow
        if stat.S_ISLNK(st.st_mode):
            hops += 1
            if hops > 40:
                return None
            target = os.readlink(host)
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        done.append(part)
    return os.path.join(root, *done) if done else root


def loadable_as(root: str, path: str, key: str) -> bool:
    """pyelftools: *path* (inside root) is a regular ELF shared object of this
    interpreter's class, byte order and machine, OS ABI SYSV or GNU (what dlopen accepts),
    whose segments lie inside the file, with DT_SONAME *key* (or none, and the file
    name *key*)."""
    host = chroot_path(root, path)
    if host is None:
        return False
    try:
        if not stat.S_ISREG(os.stat(host).st_mode):
            return False
        with open(host, "rb") as f:
            data = f.read(16 * 1024 * 1024)
        elf = ELFFile(io.BytesIO(data))
        me = interp()
        if (elf.elfclass, elf.little_endian, elf.header["e_machine"]) != (
                me.elfclass, me.little, me.machine):
            return False
        if elf.header["e_type"] != "ET_DYN":
            return False
        if elf.header["e_ident"]["EI_OSABI"] not in ("ELFOSABI_SYSV", "ELFOSABI_LINUX"):
            return False
        soname = None
        dynamic = False
        for seg in elf.iter_segments():
            if seg["p_type"] in ("PT_LOAD", "PT_DYNAMIC") and (
                    seg["p_offset"] + seg["p_filesz"] > len(data)):
                return False  # mapping it faults past the end of the file
            if seg["p_type"] == "PT_DYNAMIC":
                dynamic = True
                for tag in seg.iter_tags():
                    if tag.entry.d_tag == "DT_SONAME":
                        soname = tag.soname
        if not dynamic:
            return False
        return (soname or os.path.basename(path)) == key
    except Exception:
        return False


# -- glibc's ldconfig ---------------------------------------------------------------------------


def _need_ldconfig() -> str:
    if LDCONFIG is None:
        raise Unavailable("the host has no ldconfig")
    return LDCONFIG


def print_cache(host_file: str) -> list[tuple[str, str, str]] | None:
    """(key, description, value) of each line `ldconfig -p -C FILE` prints, in cache order;
    None when glibc refuses the file.

    `ldconfig -p` refuses a cache whose extension directory is malformed; the loader does
    not (elf/dl-cache.c reads the extension only for glibc-hwcaps priorities and goes on
    without it), so such a file is printed again with its extension_offset cleared."""
    done = subprocess.run([_need_ldconfig(), "-p", "-C", host_file], capture_output=True,
                          env=_ENV, timeout=60, check=False)
    if done.returncode != 0 and b"Malformed extension data" in done.stderr:
        with open(host_file, "rb") as f:
            data = bytearray(f.read())
        at = data.find(b"glibc-ld.so.cache1.1")
        if at >= 0 and len(data) >= at + 36:
            data[at + 32:at + 36] = bytes(4)  # struct cache_file_new.extension_offset
            copy = host_file + ".noext"
            with open(copy, "wb") as f:
                f.write(data)
            done = subprocess.run([_need_ldconfig(), "-p", "-C", copy], capture_output=True,
                                  env=_ENV, timeout=60, check=False)
            os.unlink(copy)
    if done.returncode != 0:
        return None
    out = []
    for line in done.stdout.decode("utf-8", "surrogateescape").splitlines():
        m = _ENTRY.match(line)
        if m:
            out.append((m.group(1), m.group(2), m.group(3)))
    return out


def _few_fds() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))


def write_cache(root: str, inside: str, *dirs: str, conf: str | None = None,
                ) -> dict[tuple[str, str], str]:
    """Run `ldconfig -v -X -r ROOT -C INSIDE [-f CONF] [DIRS]`; returns what -v reports it
    keyed: (dir, key) -> file name."""
    args = [_need_ldconfig(), "-v", "-X", "-r", root, "-C", inside]
    if conf is not None:
        args += ["-f", conf]
    # A conf that includes itself makes glibc's ldconfig recurse until it runs out of file
    # descriptors (seconds, megabytes of warnings); a low limit ends that at once and
    # changes nothing else: directories are deduplicated.
    done = subprocess.run([*args, *dirs], capture_output=True, env=_ENV, timeout=60,
                          check=False, preexec_fn=_few_fds)
    if not os.path.exists(os.path.join(root, inside.lstrip("/"))):
        raise AssertionError(f"ldconfig wrote no cache: {done.stderr[-500:]!r}")
    keyed: dict[tuple[str, str], str] = {}
    section = None
    for line in done.stdout.decode("utf-8", "surrogateescape").splitlines():
        m = _SECTION.match(line)
        if m:
            section = m.group(1)
            continue
        m = _KEYED.match(line)
        if m and section is not None:
            keyed[(section, m.group(1))] = m.group(2)
    return keyed


def _fitting(entries: list[tuple[str, str, str]], name: str) -> list[tuple[str, str]]:
    """(key, value) of the entries stock's regex would match, in cache order."""
    pattern = re.compile(rf"lib{re.escape(name)}\.[^\s]+$")
    abi = re.compile(interp().abi_pattern)
    out = []
    for key, descr, value in entries:
        if pattern.match(key) and abi.match(descr + ")"):
            out.append((key, value))
    return out


# -- the answer ---------------------------------------------------------------------------------


class Expected:
    """The reference's verdict: `answer` when the case is decided (`decided`), otherwise the
    set of answers that would be right, with None always allowed (`allowed`)."""

    def __init__(self, answer: str | None, source: str, decided: bool = True,
                 allowed: frozenset[str] = frozenset(), note: str = "") -> None:
        self.answer, self.source, self.decided = answer, source, decided
        self.allowed, self.note = allowed, note

    def accepts(self, answer: str | None) -> bool:
        if self.decided:
            return answer == self.answer
        return answer is None or answer in self.allowed

    def __repr__(self) -> str:
        undecided = "" if self.decided else f", undecided: None or {sorted(self.allowed)}"
        note = ", " + self.note if self.note else ""
        return f"Expected({self.answer!r} from {self.source}{undecided}{note})"


def _pick(root: str, candidates: list[tuple[str, str, str]], source: str) -> Expected | None:
    """The first candidate (answer, chosen file, key) decides when pyelftools finds its
    file whole and loadable.  Otherwise (ldconfig keys files dlopen refuses, e.g. OS ABI 9,
    and files whose segments run past their end, which pyelftools cannot read) the case is
    undecided: None, that candidate, or any later loadable one."""
    if not candidates:
        return None
    answer, path, key = candidates[0]
    if loadable_as(root, path, key):
        return Expected(answer, source)
    allowed = frozenset([answer] + [a for a, p, k in candidates[1:] if loadable_as(root, p, k)])
    return Expected(None, source, decided=False, allowed=allowed,
                    note=f"ldconfig keyed {path} as {key} but dlopen would refuse it")


def _exists(root: str, value: str) -> bool:
    """The loader opens a cache entry's value as a path: it must name a file in the root."""
    if not value.startswith("/") or not value.strip("/"):
        return False
    host = chroot_path(root, value)
    return host is not None and os.path.exists(host)


def _answer(root: str, directory: str, key: str, filename: str, by_name: bool) -> str:
    """The key when the loader finds it by itself, else a path CDLL can load: <dir>/<key>
    when that name is the keyed file or another file carrying the key, else the file."""
    named, chosen = chroot_path(root, directory + "/" + key), chroot_path(root, directory + "/"
                                                                          + filename)
    try:
        same = named is not None and chosen is not None and os.path.samefile(named, chosen)
    except OSError:
        same = False
    if same or loadable_as(root, directory + "/" + key, key):
        return key if by_name else directory + "/" + key
    return directory + "/" + filename


def expected(root: str, name: str, environ: dict[str, str], scratch: str = "/.ref") -> Expected:
    """What find_library(name) must answer in *root* under *environ*."""
    me = interp()
    defaults = me.default_dirs()
    candidates: list[tuple[str, str, str]]
    # 1. the root's own cache
    host_cache = chroot_path(root, "/etc/ld.so.cache")
    if host_cache is not None and os.path.isfile(host_cache):
        entries = print_cache(host_cache)
        if entries is not None:
            live = [(k, v) for k, v in _fitting(entries, name) if _exists(root, v)]
            if live:
                return Expected(live[0][0], "ld.so.cache")
    # 2. the cache ldconfig would write now
    fresh = scratch + "-cache"
    keyed = write_cache(root, fresh)
    entries = print_cache(os.path.join(root, fresh.lstrip("/"))) or []
    candidates = []
    for key, value in _fitting(entries, name):
        directory = os.path.dirname(value)
        filename = keyed.get((directory, key), key)
        candidates.append((_answer(root, directory, key, filename, directory in defaults),
                           directory + "/" + filename, key))
    picked = _pick(root, candidates, "fresh cache")
    if picked is not None and picked.decided:
        return picked
    later = _from_ld_library_path(root, name, environ, scratch)
    if picked is None:
        return later
    # undecided: if the shim refuses those files, LD_LIBRARY_PATH answers
    extra = {later.answer} if later.decided else set(later.allowed)
    picked.allowed = picked.allowed | frozenset(a for a in extra if a is not None)
    return picked


def _from_ld_library_path(root: str, name: str, environ: dict[str, str], scratch: str,
                          ) -> Expected:
    """3. LD_LIBRARY_PATH, dir by dir: the first dir holding a fitting key."""
    seen = set()
    pending: Expected | None = None
    for part in re.split("[:;]", environ.get("LD_LIBRARY_PATH", "")):
        directory = part.rstrip("/")
        if not part.startswith("/") or directory in seen:
            continue  # empty (the cwd) and relative parts name no dir inside the root
        seen.add(directory)
        host = chroot_path(root, directory)
        if host is None or not os.path.isdir(host):
            continue
        keyed = write_cache(root, scratch + "-llp", directory, conf=scratch + "-none.conf")
        entries = print_cache(os.path.join(root, scratch.lstrip("/") + "-llp")) or []
        candidates = []
        for key, value in _fitting(entries, name):
            if os.path.dirname(value) != directory:
                continue
            filename = keyed.get((directory, key), key)
            candidates.append((_answer(root, directory, key, filename, False),
                               directory + "/" + filename, key))
        picked = _pick(root, candidates, "LD_LIBRARY_PATH " + directory)
        if picked is None:
            continue
        if pending is None:
            if picked.decided:
                return picked
            pending = picked  # undecided: a later dir answers if its files are refused
            continue
        extra = {picked.answer} if picked.decided else set(picked.allowed)
        pending.allowed = pending.allowed | frozenset(a for a in extra if a is not None)
        if picked.decided:
            break
    return pending if pending is not None else Expected(None, "nothing")


def available() -> str | None:
    """Why the reference cannot run here, or None."""
    if LDCONFIG is None:
        return "no ldconfig on this host"
    try:
        interp().default_dirs()
    except (Unavailable, OSError, ELFError) as e:
        return str(e)
    return None


if __name__ == "__main__":  # python3 tests/fuzz/reference.py ROOT NAME [LD_LIBRARY_PATH]
    env = {"LD_LIBRARY_PATH": sys.argv[3]} if len(sys.argv) > 3 else {}
    print(expected(sys.argv[1], sys.argv[2], env))
