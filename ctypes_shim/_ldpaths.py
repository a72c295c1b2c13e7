"""The loader's search path: LD_LIBRARY_PATH, ld.so.conf and its includes, default dirs.

glibc: ldconfig reads /etc/ld.so.conf (elf/ldconfig.c parse_conf), the loader searches
LD_LIBRARY_PATH, the cache and its built-in system dirs (elf/dl-load.c).  musl reads
/etc/ld-musl-<arch>.path (ldso/dynlink.c).  Every function takes *root*: paths returned
are as seen inside root, files are read below it.
"""

from __future__ import annotations

import os
import stat
import sys

MAX_CONF_FILES = 10000  # bound the work an include glob matching "everything" can cause
MAX_INCLUDE_DEPTH = 64  # a chain of nested includes must not hit Python's recursion limit
ELOOP_HOPS = 40  # the kernel's limit on symlinks in one path (MAXSYMLINKS)
_TRIPLETS = {  # os.uname().machine, pointer bits -> Debian multiarch triplet
    ("x86_64", 64): "x86_64-linux-gnu", ("x86_64", 32): "i386-linux-gnu",
    ("i686", 32): "i386-linux-gnu", ("i386", 32): "i386-linux-gnu",
    ("aarch64", 64): "aarch64-linux-gnu", ("armv7l", 32): "arm-linux-gnueabihf",
    ("armv8l", 32): "arm-linux-gnueabihf", ("ppc64le", 64): "powerpc64le-linux-gnu",
    ("s390x", 64): "s390x-linux-gnu", ("riscv64", 64): "riscv64-linux-gnu",
    ("ppc64", 64): "powerpc64-linux-gnu", ("mips64", 64): "mips64el-linux-gnuabi64",
    ("loongarch64", 64): "loongarch64-linux-gnu",
}


def join(root: str, path: str) -> str:
    """*path* (absolute, as seen inside *root*) as a path on this machine."""
    if root == "/":
        return path
    return root.rstrip("/") + "/" + path.lstrip("/")


def chroot_path(root: str, path: str, base: str | None = None) -> str | None:
    """*path* (as seen inside *root*) as a path on this machine, resolving symlinks the way
    the kernel does after chroot(root): '..' stops at the root and absolute link targets
    start again at the root.  *base*, an already resolved host dir, is where a relative
    *path* starts.  None after 40 symlinks (ELOOP)."""
    top = os.path.realpath(root)
    if top == "/":
        top = ""  # so that top + "/x" is "/x"
    current = base if base is not None else top
    parts = [p for p in reversed(path.split("/")) if p not in ("", ".")]
    if path.startswith("/"):
        current = top
    hops = 0
    while parts:
        part = parts.pop()
        if part == "..":
            if current != top:
                current = current.rsplit("/", 1)[0]
            continue
        candidate = current + "/" + part
        try:
            is_link = stat.S_ISLNK(os.lstat(candidate).st_mode)
        except OSError:  # missing or not a directory: the caller's stat will say so
            is_link = False
        except ValueError:  # NUL in the name
            return None
        if not is_link:
            current = candidate
            continue
        hops += 1
        if hops > ELOOP_HOPS:
            return None
        target = os.readlink(candidate)
        if target.startswith("/"):
            current = top
        parts.extend(p for p in reversed(target.split("/")) if p not in ("", "."))
    return current or "/"


def host_path(root: str, path: str) -> str | None:
    """*path*, as seen inside *root*, as a path on this machine: as is for the real root,
    else through chroot_path()."""
    return path if root == "/" else chroot_path(root, path)


def multiarch() -> str | None:
    """The interpreter's multiarch triplet, e.g. 'x86_64-linux-gnu'."""
    triplet = getattr(sys.implementation, "_multiarch", None)
    if triplet:
        return str(triplet)
    bits = 64 if sys.maxsize > 2**32 else 32
    return _TRIPLETS.get((os.uname().machine, bits))


def default_dirs(*, bits: int = 64, triplet: str | None = None) -> tuple[str, ...]:
    """The default dirs the scan reads: multiarch, lib64 (64-bit), lib, for every layout.

    The loader itself searches only some of them; see system_dirs().
    """
    dirs = []
    if triplet:
        dirs += ["/lib/" + triplet, "/usr/lib/" + triplet]
    if bits == 64:
        dirs += ["/lib64", "/usr/lib64"]
    return (*dirs, "/lib", "/usr/lib")


def system_dirs(*, root: str = "/", bits: int = 64,
                triplet: str | None = None) -> tuple[str, ...]:
    """The dirs glibc's loader searches without a cache (its "system search path").

    Debian's ld.so searches /lib/<triplet>, /usr/lib/<triplet>, /lib, /usr/lib and not
    /lib64; distributions without multiarch dirs search /lib64 and /usr/lib64 (64-bit).
    """
    if triplet and any(os.path.isdir(join(root, d + triplet)) for d in ("/lib/", "/usr/lib/")):
        return ("/lib/" + triplet, "/usr/lib/" + triplet, "/lib", "/usr/lib")
    return default_dirs(bits=bits, triplet=None)


def ld_library_path(value: str | None, *, musl: bool = False) -> tuple[str, ...]:
    """Split LD_LIBRARY_PATH the way the loader does.

    glibc splits on ':' and ';' and reads an empty component as the current directory;
    musl splits on ':' and newline and skips empty components.
    """
    if not value:
        return ()
    parts = value.replace("\n" if musl else ";", ":").split(":")
    if musl:
        return tuple(p for p in parts if p)
    return tuple(p or "." for p in parts)


def parse_ld_so_conf(path: str = "/etc/ld.so.conf", *, root: str = "/",
                     seen: list[str] | None = None) -> tuple[tuple[str, str], ...]:
    """The directories an ld.so.conf names, in order, with where each came from.

    `include` lines are glob patterns (relative ones against the including file's
    directory), expanded in sorted order; cycles and missing files are ignored, as
    ldconfig does.  The files read are appended to *seen* (for change detection).
    """
    out: list[tuple[str, str]] = []
    _parse_conf(path, root, out, set(), seen if seen is not None else [])
    return tuple(out)


def _parse_conf(path: str, root: str, out: list[tuple[str, str]], visited: set[object],
                seen: list[str], *, depth: int = 0) -> None:
    if len(visited) >= MAX_CONF_FILES or depth > MAX_INCLUDE_DEPTH:
        return
    host = join(root, path)
    try:
        st = os.stat(host)
        if (st.st_dev, st.st_ino) in visited:  # a cycle, or a file reached twice
            return
        visited.add((st.st_dev, st.st_ino))
        seen.append(host)
        text = _read_text(host, st)
    except (OSError, ValueError):
        return
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        if words[0] == "include" and len(words) > 1:
            for word in words[1:]:
                pattern = word if word.startswith("/") else os.path.join(
                    os.path.dirname(path), word)
                # Expand each pattern once: every match was parsed the first time, and
                # N files that each include their own directory again cost N**2 otherwise.
                if "\0include " + pattern in visited:
                    continue
                visited.add("\0include " + pattern)  # NUL: no file has this name
                for match in _glob(root, pattern, seen):
                    _parse_conf(match, root, out, visited, seen, depth=depth + 1)
        elif words[0].lower() == "hwcap":  # ldconfig compares with strncasecmp
            continue  # obsolete; ldconfig warns and ignores it
        else:
            directory = line.rstrip("/") or "/"
            out.append((directory, f"{path}:{lineno}"))


def _glob(root: str, pattern: str, seen: list[str]) -> list[str]:
    """Sorted matches of an absolute *pattern* inside *root*, as paths inside root."""
    host = join(root, pattern)
    folder, leaf = os.path.split(host)
    seen.append(folder)  # a file added there changes the answer
    prefix = len(root.rstrip("/")) if root != "/" else 0
    try:
        if "[" in host or any(c in folder for c in "*?"):
            import glob  # noqa: PLC0415 -- rare patterns only; glob imports re (~10 ms)

            matches = glob.glob(host)
        else:  # the common "/etc/ld.so.conf.d/*.conf": no need for glob and re
            matches = [os.path.join(folder, n) for n in os.listdir(folder)
                       if _wildmatch(leaf, n) and (leaf.startswith(".") or n[:1] != ".")]
    except (OSError, ValueError, RecursionError):
        return []
    return sorted(m[prefix:] for m in matches)


def _wildmatch(pattern: str, name: str) -> bool:
    """fnmatch for '*' and '?' only, without regular expressions."""
    p = n = 0
    star, mark = -1, 0
    while n < len(name):
        if p < len(pattern) and pattern[p] in ("?", name[n]):
            p, n = p + 1, n + 1
        elif p < len(pattern) and pattern[p] == "*":
            star, mark, p = p, n, p + 1
        elif star != -1:
            p, mark = star + 1, mark + 1
            n = mark
        else:
            return False
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern)


def conf_dirs(*, root: str = "/", seen: list[str] | None = None) -> tuple[tuple[str, str], ...]:
    """ld.so.conf's dirs; /etc/ld.so.conf.d/*.conf when ld.so.conf itself is missing.

    An image holding libc6 but not libc-bin (every distroless image) has
    /etc/ld.so.conf.d/<triplet>.conf but no /etc/ld.so.conf.
    """
    seen = seen if seen is not None else []
    if os.path.exists(join(root, "/etc/ld.so.conf")):
        return parse_ld_so_conf("/etc/ld.so.conf", root=root, seen=seen)
    seen.append(join(root, "/etc/ld.so.conf"))
    out: list[tuple[str, str]] = []
    visited: set[object] = set()
    for match in _glob(root, "/etc/ld.so.conf.d/*.conf", seen):
        _parse_conf(match, root, out, visited, seen)
    return tuple(out)


def _read_text(host: str, st: os.stat_result | None = None) -> str:
    """Up to 1 MiB of a config file.  Anything but a regular file is OSError: open() blocks
    on a FIFO without a writer, and opening a device can act on it."""
    if not stat.S_ISREG((st or os.stat(host)).st_mode):
        raise OSError(f"{host}: not a regular file")
    with open(host, "rb") as f:
        return f.read(1024 * 1024).decode("utf-8", "surrogateescape")


def musl_path_dirs(arch: str, *, root: str = "/") -> tuple[tuple[str, str], ...]:
    """musl's system dirs: /etc/ld-musl-<arch>.path, or its defaults when that is missing."""
    path = f"/etc/ld-musl-{arch}.path"
    try:
        text = _read_text(join(root, path))
    except FileNotFoundError:
        return tuple((d, "musl default") for d in ("/lib", "/usr/local/lib", "/usr/lib"))
    except (OSError, ValueError):
        return ()  # musl: a path file it cannot read means no system dirs at all
    return tuple((d, path) for d in text.replace("\n", ":").split(":") if d)
