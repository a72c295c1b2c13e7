"""The loader's search path: LD_LIBRARY_PATH, ld.so.conf and its includes, default dirs.

glibc: ldconfig reads /etc/ld.so.conf (elf/ldconfig.c parse_conf), the loader searches
LD_LIBRARY_PATH, the cache and its built-in system dirs (elf/dl-load.c).  musl reads
/etc/ld-musl-<arch>.path (ldso/dynlink.c).  Every function takes *root*: paths returned
are as seen inside root, files are read below it.
"""

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


def kernel_path(root: str, path: str) -> str:
    """*path* appended to *root* as the host kernel would open it, following symlinks out
    of the root.  Only for refusing a write that would escape the root; every read goes
    through host_path()."""
    if root == "/":
        return path
    return root.rstrip("/") + "/" + path.lstrip("/")


def chroot_path(root: str, path: str, base: "str | None" = None) -> "str | None":
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


def host_path(root: str, path: str) -> "str | None":
    """*path*, as seen inside *root*, as a path on this machine: what a process chrooted
    into *root* would open.  Every file the package reads below a root goes through here,
    so an absolute symlink inside the root never leads to the host's file.  As is for
    the real root; None after too many symlinks."""
    return path if root == "/" else chroot_path(root, path)


def multiarch() -> "str | None":
    """The interpreter's multiarch triplet, e.g. 'x86_64-linux-gnu'."""
    triplet = getattr(sys.implementation, "_multiarch", None)
    if triplet:
        return str(triplet)
    bits = 64 if sys.maxsize > 2**32 else 32
    return _TRIPLETS.get((os.uname().machine, bits))


def libc_path(*, root: str = "/", triplet: "str | None" = None) -> "str | None":
    """Where the root's libc.so.6 lies (a path inside *root*), or None: the multiarch dirs
    first, then /lib64, /usr/lib64, /lib, /usr/lib."""
    dirs = ((f"/lib/{triplet}", f"/usr/lib/{triplet}") if triplet else ()) + (
        "/lib64", "/usr/lib64", "/lib", "/usr/lib")
    for directory in dirs:
        host = host_path(root, directory + "/libc.so.6")
        if host is not None and os.path.exists(host):
            return directory + "/libc.so.6"
    return None


def multiarch_layout(*, root: str = "/", triplet: "str | None" = None) -> bool:
    """Whether the glibc of *root* is built with Debian's multiarch dirs.

    Decided by where the root's libc.so.6 lies; a root without one (a bare test tree)
    follows the glibc this interpreter runs on.
    """
    if not triplet:
        return False
    found = libc_path(root=root, triplet=triplet)
    if found is not None:
        return found.startswith((f"/lib/{triplet}/", f"/usr/lib/{triplet}/"))
    if root != "/":
        return multiarch_layout(triplet=triplet)
    return True  # no libc.so.6 anywhere we know: a Debian-style default


def ldconfig_dirs(*, root: str = "/", triplet: "str | None" = None, bits: int = 64,
                  machine: "str | None" = None) -> "tuple[str, ...]":
    """The dirs ldconfig caches after ld.so.conf's (elf/ldconfig.c add_system_dir(SLIBDIR),
    add_system_dir(LIBDIR)): Debian's are /lib/<triplet>, /usr/lib/<triplet>, /lib, /usr/lib
    (`ldconfig -v` lists them as `<builtin>`); upstream x86_64 expands /lib64 to /lib,
    /lib64 and /libx32."""
    if multiarch_layout(root=root, triplet=triplet):
        return (f"/lib/{triplet}", f"/usr/lib/{triplet}", "/lib", "/usr/lib")
    if (machine or os.uname().machine) == "x86_64" and bits == 64:
        return ("/lib", "/lib64", "/libx32", "/usr/lib", "/usr/lib64", "/usr/libx32")
    if bits == 64:
        return ("/lib", "/lib64", "/usr/lib", "/usr/lib64")
    return ("/lib", "/usr/lib")


def loader_dirs(*, root: str = "/", triplet: "str | None" = None,
                bits: int = 64) -> "tuple[str, ...]":
    """The dirs glibc's loader searches by itself, after the cache (its "system search
    path", `ld.so --help`): Debian's ld.so searches /lib/<triplet>, /usr/lib/<triplet>,
    /lib, /usr/lib and not /lib64.  Other builds put their SLIBDIR in /lib64 (Fedora) or
    /usr/lib (Arch): all four of those count."""
    if multiarch_layout(root=root, triplet=triplet):
        return (f"/lib/{triplet}", f"/usr/lib/{triplet}", "/lib", "/usr/lib")
    return ("/lib64", "/usr/lib64", "/lib", "/usr/lib") if bits == 64 else ("/lib", "/usr/lib")


def ld_library_path(value: "str | None", *, musl: bool = False) -> "tuple[str, ...]":
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
                     seen: "list[str] | None" = None) -> "tuple[tuple[str, str], ...]":
    """The directories an ld.so.conf names, in order, with where each came from.

    `include` lines are glob patterns (relative ones against the including file's
    directory), expanded in sorted order; cycles and missing files are ignored, as
    ldconfig does.  The files read are appended to *seen* (for change detection).
    """
    out: list[tuple[str, str]] = []
    _parse_conf(path, root, out, set(), seen if seen is not None else [])
    return tuple(out)


def _parse_conf(path: str, root: str, out: "list[tuple[str, str]]", visited: "set[object]",
                seen: "list[str]", *, depth: int = 0) -> None:
    if len(visited) >= MAX_CONF_FILES or depth > MAX_INCLUDE_DEPTH:
        return
    host = host_path(root, path)
    try:
        st = os.stat(host)  # type: ignore[arg-type]  # None raises TypeError
        if (st.st_dev, st.st_ino) in visited:  # a cycle, or a file reached twice
            return
        visited.add((st.st_dev, st.st_ino))
        seen.append(host)  # type: ignore[arg-type]
        text = _read_text(host, st)  # type: ignore[arg-type]
    except (OSError, ValueError, TypeError):
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


def _glob(root: str, pattern: str, seen: "list[str]") -> "list[str]":
    """Sorted matches of an absolute *pattern* inside *root*, as paths inside root, one
    path component at a time, each directory resolved as in a chroot (host_path)."""
    parts = [p for p in pattern.split("/") if p not in ("", ".")]
    current = [""]
    for number, part in enumerate(parts):
        last = number == len(parts) - 1
        found: list[str] = []
        for inside in current:
            if last:  # a file added there changes the answer
                seen.append(host_path(root, inside or "/") or "\0")
            if not any(c in part for c in "*?["):
                found.append(inside + "/" + part)
                continue
            host = host_path(root, inside or "/")
            if host is None:  # (os.listdir(None) would list the current directory)
                continue
            try:
                names = os.listdir(host)
            except (OSError, ValueError):
                continue
            found += [inside + "/" + n for n in names
                      if _match(part, n) and (part.startswith(".") or n[:1] != ".")]
            if len(found) > MAX_CONF_FILES:
                break
        current = found[:MAX_CONF_FILES]
    return sorted(p for p in current if _lexists(root, p))


def _lexists(root: str, inside: str) -> bool:
    host = host_path(root, inside)
    return host is not None and os.path.lexists(host)


def _match(pattern: str, name: str) -> bool:
    if "[" in pattern:
        import fnmatch  # noqa: PLC0415 -- rare patterns only; fnmatch imports re (~10 ms)

        return fnmatch.fnmatchcase(name, pattern)
    return _wildmatch(pattern, name)


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


def conf_dirs(*, root: str = "/", seen: "list[str] | None" = None) -> "tuple[tuple[str, str], ...]":
    """ld.so.conf's dirs; /etc/ld.so.conf.d/*.conf when ld.so.conf itself is missing.

    An image holding libc6 but not libc-bin (every distroless image) has
    /etc/ld.so.conf.d/<triplet>.conf but no /etc/ld.so.conf.
    """
    seen = seen if seen is not None else []
    host = host_path(root, "/etc/ld.so.conf")
    if host is not None and os.path.exists(host):
        return parse_ld_so_conf("/etc/ld.so.conf", root=root, seen=seen)
    seen.append(host or "\0")
    out: list[tuple[str, str]] = []
    visited: set[object] = set()
    for match in _glob(root, "/etc/ld.so.conf.d/*.conf", seen):
        _parse_conf(match, root, out, visited, seen)
    return tuple(out)


def _read_text(host: str, st: "os.stat_result | None" = None) -> str:
    """Up to 1 MiB of a config file.  Anything but a regular file is OSError: open() blocks
    on a FIFO without a writer, and opening a device can act on it."""
    if not stat.S_ISREG((st or os.stat(host)).st_mode):
        raise OSError(f"{host}: not a regular file")
    with open(host, "rb") as f:
        return f.read(1024 * 1024).decode("utf-8", "surrogateescape")


def musl_path_dirs(arch: str, *, root: str = "/") -> "tuple[tuple[str, str], ...]":
    """musl's system dirs: /etc/ld-musl-<arch>.path, or its defaults when that is missing."""
    path = f"/etc/ld-musl-{arch}.path"
    try:
        host = host_path(root, path)
        if host is None:
            raise OSError(f"{path}: too many levels of symbolic links")
        text = _read_text(host)
    except FileNotFoundError:
        return tuple((d, "musl default") for d in ("/lib", "/usr/local/lib", "/usr/lib"))
    except (OSError, ValueError):
        return ()  # musl: a path file it cannot read means no system dirs at all
    return tuple((d, path) for d in text.replace("\n", ":").split(":") if d)
