#!/usr/bin/env python3
"""Rebuild the root filesystem of gcr.io/distroless/python3-debian13 or -debian12 (amd64).

Usage: ``python3 tests/distroless/mkroot.py ROOT [--image debian13|debian12] [--add PKG ...]``
(as root, on a Debian host with apt; stdlib only). No docker: the image's Debian packages
are unpacked with ``dpkg-deb -x``, and the image's own files are written as distroless does.

Where the package lists come from: GoogleContainerTools/distroless. The rules are
rules_distroless ``distroless/private/*.bzl`` and ``apt/private/deb_postfix.bzl``.

python3-debian13 (the current image; trixie, Python 3.13, glibc 2.41), at commit
cd080764af3103b2f49fb5eb23297c72c945e77a (2026-08-21):

- ``static/config.bzl`` STATIC_PACKAGES["debian13"], plus ``static/static.bzl``, which adds
  //common:rootfs, passwd, group, home, tmp, ``static/nsswitch.conf``, os_release and
  cacerts (``common/BUILD.bazel``);
- ``base/config.bzl`` BASE_PACKAGES["debian13"] and ``cc/config.bzl`` CC_PACKAGES["debian13"];
- ``python3/config.bzl`` PYTHON_PACKAGES["debian13"] (which includes libc-bin, so the image
  has ``/sbin/ldconfig``) and ``python3/python.bzl`` (the /usr/bin/python{,3} ->
  /usr/bin/python3.13 links, the entrypoint, ``LANG=C.UTF-8``, and the
  ``:ldconfig_cache_<arch>`` layer);
- ``python3/BUILD``, ``python3/ldconfig.bzl`` and ``python3/ldconfig/ldconfig.sh``
  (PR "Add ldconfig.so.cache to python image", 01927a70, 2026-02-26): /etc/ld.so.cache is
  made by running the image's own ``/sbin/ldconfig`` (no arguments) as the entrypoint of
  a container of the image, and copying only that file out; the build then adds it to the
  image as a layer (mode 0644, root). :func:`pregenerated_cache` does the same in a
  scratch copy of the root. Libraries added by a later layer are not in it.
- ``private/repos/deb/deb.MODULE.bazel``: ``resolve_transitive = False`` (exactly the listed
  packages) and ``mergedusr = repo.startswith("trixie")``: rules_distroless 0.8.0 rewrites
  ./bin, ./lib, ./lib64 to ./usr/... and ./sbin to ./usr/sbin (bazel-contrib/rules_distroless
  PR #200, "Update deb_postfix.bzl to not merge sbin and bin"). Trixie's packages already
  ship everything under /usr, and base-files ships the links /bin -> usr/bin,
  /lib -> usr/lib, /lib64 -> usr/lib64, /sbin -> usr/sbin, so unpacking them as they are
  gives that layout; :func:`build_root` checks that it did.

python3-debian12 (removed upstream in 22b97d10, "Remove python3-debian12"), at commit
0e83cb53cc48d93aec39d3d62f66447e21163b0e (2026-05-11), the last one that still builds it:
the same files with the "debian12" keys, ``python3/python.bzl`` linking python3.11. Bookworm
is not mergedusr, so /lib and /usr/lib are separate directories. libc-bin is not in its
list: that image has no ldconfig and no /etc/ld.so.cache.

Each package also gets /var/lib/dpkg/status.d/<name> (its control file), as rules_distroless
``dpkg_statusd`` does.

Versions: distroless pins them with snapshot.debian.org (``*.lock.json``); here apt's
current candidate is used, so point releases can be newer than those of a given image tag.
Bookworm packages come from the host's apt (the host is Debian 12). Trixie packages come
through a private apt configuration under ``${XDG_CACHE_HOME:-~/.cache}/ctypes-shim/apt/``
(its own lists, cache and sources.list naming the host's mirror, status /dev/null), so the
host's apt state is never touched. The .debs of both are cached in
``${XDG_CACHE_HOME:-~/.cache}/ctypes-shim/debs``; later runs download only what is missing.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

NONROOT = 65532
NOBODY = 65534
# Only read for /etc/ssl/certs/ca-certificates.crt (rules_distroless ``cacerts``); not unpacked.
CACERTS_PACKAGE = "ca-certificates"
DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"

@dataclass(frozen=True)
class Image:
    """One distroless python3 image: its packages, one entry per layer, in stacking order."""

    name: str  # the tag's suffix: gcr.io/distroless/python3-<name>
    suite: str  # Debian codename
    version_id: str  # /etc/os-release VERSION_ID
    python: str  # the interpreter's minor version, /usr/bin/python<python>
    python_full: str  # what ``python --version`` prints (python3/testdata/<name>.yaml)
    layers: tuple[tuple[str, tuple[str, ...]], ...]  # (distroless layer, packages)
    mergedusr: bool  # /bin, /lib, /lib64, /sbin are links into /usr
    ldcache: bool  # ships a pre-generated /etc/ld.so.cache (and libc-bin's ldconfig)
    host_apt: bool  # the host's own apt serves this suite

    @property
    def packages(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p for _, pkgs in self.layers for p in pkgs))

    @property
    def entrypoint(self) -> tuple[str, ...]:
        return (f"/usr/bin/python{self.python}",)

    @property
    def site_dir(self) -> str:
        """A site dir of Debian's interpreter that is empty in the image (route 2 installs here)."""
        return f"usr/local/lib/python{self.python}/dist-packages"

    @property
    def os_release(self) -> str:
        """//common:os_release_<name> (common/variables.bzl OS_RELEASE)."""
        codename = f"Debian GNU/Linux {self.version_id} ({self.suite})"
        return (
            'PRETTY_NAME="Distroless"\n'
            'NAME="Debian GNU/Linux"\n'
            'ID="debian"\n'
            f'VERSION_ID="{self.version_id}"\n'
            f'VERSION="{codename}"\n'
            'HOME_URL="https://github.com/GoogleContainerTools/distroless"\n'
            'SUPPORT_URL="https://github.com/GoogleContainerTools/distroless/blob/master/README.md"\n'
            'BUG_REPORT_URL="https://github.com/GoogleContainerTools/distroless/issues/new"\n'
        )


DEBIAN13 = Image(
    name="debian13",
    suite="trixie",
    version_id="13",
    python="3.13",
    python_full="3.13.5",
    layers=(
        ("static", ("base-files", "netbase", "tzdata", "tzdata-legacy", "media-types")),
        ("base", ("libc6", "libssl3t64", "libzstd1", "zlib1g")),
        ("cc", ("libgomp1", "libstdc++6", "libgcc-s1", "gcc-14-base")),
        (
            "python3",
            (
                "libbz2-1.0",
                "libdb5.3t64",
                "libexpat1",
                "liblzma5",
                "libsqlite3-0",
                "libuuid1",
                "libncursesw6",
                "libtinfo6",
                "zlib1g",
                "libcom-err2",
                "libcrypt1",
                "libc-bin",
                "libgssapi-krb5-2",
                "libk5crypto3",
                "libkeyutils1",
                "libkrb5-3",
                "libkrb5support0",
                "libnsl2",
                "libreadline8t64",
                "libtirpc3t64",
                "libffi8",
                "libpython3.13-minimal",
                "libpython3.13-stdlib",
                "python3.13-minimal",
                "python3.13-venv",
            ),
        ),
    ),
    mergedusr=True,
    ldcache=True,
    host_apt=False,
)

DEBIAN12 = Image(
    name="debian12",
    suite="bookworm",
    version_id="12",
    python="3.11",
    python_full="3.11.2",
    layers=(
        ("static", ("base-files", "netbase", "tzdata", "media-types")),
        ("base", ("libc6", "libssl3")),
        ("cc", ("libgomp1", "libstdc++6", "libgcc-s1", "gcc-12-base")),
        (
            "python3",
            (
                "libbz2-1.0",
                "libdb5.3",
                "libexpat1",
                "liblzma5",
                "libsqlite3-0",
                "libuuid1",
                "libncursesw6",
                "libtinfo6",
                "python3-distutils",
                "zlib1g",
                "libcom-err2",
                "libcrypt1",
                "libgssapi-krb5-2",
                "libk5crypto3",
                "libkeyutils1",
                "libkrb5-3",
                "libkrb5support0",
                "libnsl2",
                "libreadline8",
                "libtirpc3",
                "libffi8",
                "libpython3.11-minimal",
                "libpython3.11-stdlib",
                "python3.11-minimal",
            ),
        ),
    ),
    mergedusr=False,
    ldcache=False,
    host_apt=True,
)

IMAGES = {image.name: image for image in (DEBIAN13, DEBIAN12)}  # the primary image first

# The image config (python3/python.bzl + static/static.bzl), the same for both; chroot.py
# applies it.
IMAGE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt",
    "LANG": "C.UTF-8",
}
WORKDIR = {0: "/", NONROOT: "/home/nonroot"}  # :latest runs as root, :nonroot as 65532

_PASSWD = (
    "root:x:0:0:root:/root:/sbin/nologin\n"
    f"nobody:x:{NOBODY}:{NOBODY}:nobody:/nonexistent:/sbin/nologin\n"
    f"nonroot:x:{NONROOT}:{NONROOT}:nonroot:/home/nonroot:/sbin/nologin\n"
)
_GROUP = f"root:x:0:\nnobody:x:{NOBODY}:\ntty:x:5:\nstaff:x:50:\nnonroot:x:{NONROOT}:\n"
# distroless static/nsswitch.conf, verbatim.
_NSSWITCH = """\
# /etc/nsswitch.conf
#
# Example configuration of GNU Name Service Switch functionality.
# If you have the `glibc-doc-reference' and `info' packages installed, try:
# `info libc "Name Service Switch"' for information about this file.

passwd:         compat
group:          compat
shadow:         compat
gshadow:        files

hosts:          files dns
networks:       files

protocols:      db files
services:       db files
ethers:         db files
rpc:            db files

netgroup:       nis
"""
_USRMERGE_LINKS = {"bin": "usr/bin", "lib": "usr/lib", "lib64": "usr/lib64", "sbin": "usr/sbin"}


class MkrootError(RuntimeError):
    """apt, dpkg-deb or cp failed, or the host cannot build the root."""


def cache_dir() -> str:
    """``${XDG_CACHE_HOME:-~/.cache}/ctypes-shim``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "ctypes-shim")


def image_of(root: str) -> Image:
    """The image a root built here reproduces, from its /usr/lib/os-release VERSION_ID."""
    try:
        with open(os.path.join(root, "usr/lib/os-release")) as f:
            fields = dict(line.split("=", 1) for line in f.read().splitlines() if "=" in line)
    except OSError as e:
        raise MkrootError(f"{root} is not a root built by mkroot.py: {e}") from e
    version_id = fields.get("VERSION_ID", "").strip('"')
    for image in IMAGES.values():
        if image.version_id == version_id:
            return image
    raise MkrootError(f"{root}: no image has VERSION_ID {version_id!r}")


def _run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)  # type: ignore[call-overload]
    except OSError as e:
        raise MkrootError(f"cannot run {cmd[0]}: {e}") from e
    if proc.returncode:
        raise MkrootError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr.strip()}")
    return proc


# -- apt ----------------------------------------------------------------------------------------


def _source_entries(path: str) -> list[tuple[str, list[str]]]:
    """(URI, suites) of each enabled ``deb`` entry of a one-line or deb822 sources file."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return []
    out: list[tuple[str, list[str]]] = []
    if path.endswith(".sources"):
        for para in text.split("\n\n"):
            fields: dict[str, str] = {}
            for line in para.splitlines():
                if line[:1] not in ("#", " ", "\t") and ":" in line:
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.strip()
            if "deb" in fields.get("types", "").split() and fields.get("enabled") != "no":
                for uri in fields.get("uris", "").split():
                    out.append((uri, fields.get("suites", "").split()))
        return out
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if words[:1] != ["deb"]:
            continue
        words = words[1:]
        if words and words[0].startswith("["):
            while words and not words[0].endswith("]"):
                words.pop(0)
            words = words[1:]
        if len(words) >= 2:
            out.append((words[0], [words[1]]))
    return out


def host_mirrors() -> tuple[str, str]:
    """(archive URI, security URI) that the host's apt uses for Debian; deb.debian.org if none."""
    codename = ""
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("VERSION_CODENAME="):
                    codename = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    archive = security = ""
    files = ["/etc/apt/sources.list"]
    files += sorted(glob.glob("/etc/apt/sources.list.d/*.list"))
    files += sorted(glob.glob("/etc/apt/sources.list.d/*.sources"))
    for path in files:
        for uri, suites in _source_entries(path):
            if codename and f"{codename}-security" in suites:
                security = security or uri
            elif codename and codename in suites:
                archive = archive or uri
    return (
        archive or "http://deb.debian.org/debian",
        security or "http://deb.debian.org/debian-security",
    )


def _apt_dir(image: Image) -> str:
    return os.path.join(cache_dir(), "apt", image.suite)


def _apt(image: Image) -> list[str]:
    """``apt-get`` with the configuration that serves ``image``'s suite."""
    # We run as root; without this apt warns that _apt cannot write the download dir.
    cmd = ["apt-get", "-o", "APT::Sandbox::User=root"]
    if image.host_apt:
        return cmd
    d = _apt_dir(image)
    empty = os.path.join(d, "empty.d")
    for sub in ("lists/partial", "cache/archives/partial", "empty.d"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    archive, security = host_mirrors()
    opts = f"[signed-by={DEBIAN_KEYRING}]"
    sources = (
        f"deb {opts} {archive} {image.suite} main\n"
        f"deb {opts} {archive} {image.suite}-updates main\n"
        f"deb {opts} {security} {image.suite}-security main\n"
    )
    sources_list = os.path.join(d, "sources.list")
    try:
        with open(sources_list) as f:
            current = f.read()
    except FileNotFoundError:
        current = ""
    if current != sources:
        with open(sources_list + f".{os.getpid()}", "w") as f:
            f.write(sources)
        os.replace(sources_list + f".{os.getpid()}", sources_list)
    for key, value in (
        ("Dir::State::Lists", os.path.join(d, "lists")),
        ("Dir::Cache", os.path.join(d, "cache")),
        ("Dir::Etc::SourceList", sources_list),
        ("Dir::Etc::SourceParts", empty),
        ("Dir::Etc::Preferences", os.path.join(empty, "none")),
        ("Dir::Etc::PreferencesParts", empty),
        ("Dir::State::status", "/dev/null"),
    ):
        cmd += ["-o", f"{key}={value}"]
    return cmd


def _update(image: Image) -> None:
    """``apt-get update`` of the lists that serve ``image`` (the host's, or the private ones)."""
    _run([*_apt(image), "update", "-qq"])


def _print_uris(image: Image, packages: list[str]) -> dict[str, tuple[str, str, str]]:
    """{package: (url, filename, sha256)} of apt's candidate for each package; downloads nothing."""
    proc = _run([*_apt(image), "download", "--print-uris", *packages])
    out: dict[str, tuple[str, str, str]] = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) != 4 or not parts[3].startswith("SHA256:"):
            continue
        url, filename = parts[0].strip("'"), parts[1]
        out[filename.split("_", 1)[0]] = (url, filename, parts[3][len("SHA256:") :])
    missing = [p for p in packages if p not in out]
    if missing:
        raise MkrootError(f"apt knows no {image.suite} candidate for {missing}")
    return out


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _download(
    image: Image, todo: list[str], uris: dict[str, tuple[str, str, str]], debs_dir: str
) -> None:
    # Download into a scratch dir and move each verified file in, so an interrupted run
    # never leaves a truncated .deb in the cache.
    with tempfile.TemporaryDirectory(dir=debs_dir, prefix=".dl-") as scratch:
        _run([*_apt(image), "download", "-q", *todo], cwd=scratch)
        for p in todo:
            _url, filename, sha = uris[p]
            got = os.path.join(scratch, filename)
            if _sha256(got) != sha:
                raise MkrootError(f"sha256 mismatch for {filename}")
            os.replace(got, os.path.join(debs_dir, filename))


def fetch_debs(
    packages: list[str] | tuple[str, ...],
    debs_dir: str | None = None,
    image: Image = DEBIAN12,
) -> dict[str, str]:
    """{package: path of its .deb} from ``image``'s suite; downloads only what the cache lacks.

    Runs ``apt-get update`` (of the private lists for trixie) when apt knows no candidate
    yet, or when a download fails because the lists are older than the mirror.
    """
    debs_dir = debs_dir or os.path.join(cache_dir(), "debs")
    os.makedirs(debs_dir, exist_ok=True)
    packages = list(dict.fromkeys(packages))
    try:
        uris = _print_uris(image, packages)
    except MkrootError:
        _update(image)
        uris = _print_uris(image, packages)
    todo = [p for p in packages if not os.path.exists(os.path.join(debs_dir, uris[p][1]))]
    if todo:
        try:
            _download(image, todo, uris, debs_dir)
        except MkrootError:
            _update(image)
            uris = _print_uris(image, packages)
            todo = [p for p in packages if not os.path.exists(os.path.join(debs_dir, uris[p][1]))]
            _download(image, todo, uris, debs_dir)
    return {p: os.path.join(debs_dir, uris[p][1]) for p in packages}


# -- the root -----------------------------------------------------------------------------------


def unpack_deb(deb: str, root: str) -> str:
    """Unpack one .deb into ``root`` (``dpkg-deb -x``, no maintainer scripts); add to status.d.

    Returns the package name. This is also how a later image layer (``COPY``/``RUN`` adding a
    library) is simulated: see :func:`add_layer`.
    """
    _run(["dpkg-deb", "-x", deb, root])
    control = _run(["dpkg-deb", "-f", deb]).stdout
    name = next(
        line.split(":", 1)[1].strip()
        for line in control.splitlines()
        if line.startswith("Package:")
    )
    statusd = os.path.join(root, "var/lib/dpkg/status.d")
    os.makedirs(statusd, exist_ok=True)
    with open(os.path.join(statusd, name), "w") as f:
        f.write(control)
    return name


def add_layer(
    root: str,
    packages: list[str] | tuple[str, ...],
    debs_dir: str | None = None,
    image: Image | None = None,
) -> list[str]:
    """Unpack more packages (e.g. ``["libyaml-0-2"]``) into a built root, like a later image layer.

    The packages come from the root's own suite. No ldconfig or trigger runs, as in a
    ``COPY --from=build`` layer: in debian13 the pre-generated cache goes stale.
    Returns the .deb paths.
    """
    image = image or image_of(root)
    debs = fetch_debs(packages, debs_dir, image)
    for p in packages:
        unpack_deb(debs[p], root)
    return [debs[p] for p in packages]


def _write(path: str, text: str, mode: int) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.islink(path):
        os.unlink(path)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def _mkdir(path: str, mode: int, uid: int = 0, gid: int = 0) -> None:
    os.makedirs(path, exist_ok=True)
    os.chown(path, uid, gid)
    os.chmod(path, mode)


def _cacerts(root: str, deb: str) -> None:
    """/etc/ssl/certs/ca-certificates.crt: the package's certs concatenated."""
    with tempfile.TemporaryDirectory() as tmp:
        _run(["dpkg-deb", "-x", deb, tmp])
        parts: list[bytes] = []
        for dirpath, dirnames, filenames in os.walk(os.path.join(tmp, "usr/share/ca-certificates")):
            dirnames.sort()
            for fn in sorted(filenames):
                with open(os.path.join(dirpath, fn), "rb") as f:
                    data = f.read()
                parts.append(data if data.endswith(b"\n") else data + b"\n")
        os.makedirs(os.path.join(root, "etc/ssl/certs"), exist_ok=True)
        with open(os.path.join(root, "etc/ssl/certs/ca-certificates.crt"), "wb") as f:
            f.write(b"".join(parts))
        doc = os.path.join(root, "usr/share/doc/ca-certificates")
        os.makedirs(doc, exist_ok=True)
        shutil.copyfile(
            os.path.join(tmp, "usr/share/doc/ca-certificates/copyright"),
            os.path.join(doc, "copyright"),
        )


def _unpack_all(debs: list[str], root: str) -> None:
    # dpkg-deb is mostly xz decompression; two at a time uses both cores. The packages
    # share directories only, never files, so the order does not matter.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        list(pool.map(lambda d: unpack_deb(d, root), debs))


def _check_mergedusr(root: str) -> None:
    """/bin, /lib, /lib64 and /sbin are base-files' links into /usr, as in the image."""
    for name, target in _USRMERGE_LINKS.items():
        path = os.path.join(root, name)
        if not os.path.islink(path) or os.readlink(path) != target:
            raise MkrootError(
                f"{path} is not a link to {target}: a package shipped files outside /usr, "
                "which rules_distroless's mergedusr would move (not implemented here)"
            )


def _populate(root: str, image: Image, debs: dict[str, str], cacerts_deb: str) -> None:
    """Write the image filesystem into the empty directory ``root``."""
    _mkdir(root, 0o755)
    first = ["base-files"] if image.mergedusr else []  # its /lib etc. links before the rest
    for p in first:
        unpack_deb(debs[p], root)
    _unpack_all([debs[p] for p in image.packages if p not in first], root)
    if image.mergedusr:
        _check_mergedusr(root)
    etc = os.path.join(root, "etc")
    _write(os.path.join(etc, "passwd"), _PASSWD, 0o644)
    _write(os.path.join(etc, "group"), _GROUP, 0o644)
    _write(os.path.join(etc, "nsswitch.conf"), _NSSWITCH, 0o644)
    _write(os.path.join(root, "usr/lib/os-release"), image.os_release, 0o555)
    _cacerts(root, cacerts_deb)
    _mkdir(os.path.join(root, "root"), 0o700)
    _mkdir(os.path.join(root, "home"), 0o755)
    _mkdir(os.path.join(root, "home/nonroot"), 0o700, NONROOT, NONROOT)
    _mkdir(os.path.join(root, "tmp"), 0o1777)
    for alias in ("python", "python3"):
        link = os.path.join(root, "usr/bin", alias)
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(image.entrypoint[0], link)


# Bump when the way the cache is generated changes: a stored cache is then made again.
_LDCACHE_RECIPE = "1: /sbin/ldconfig, no arguments, run by chroot.py in a copy of the root"


def pregenerated_cache(root: str, debs: dict[str, str]) -> bytes:
    """The /etc/ld.so.cache distroless ships for this package set (python3/ldconfig/ldconfig.sh).

    The image's own ``/sbin/ldconfig`` runs with no arguments as the entrypoint, inside a
    scratch copy of ``root`` (``cp -a``) under chroot.py, as ``docker create --entrypoint
    /sbin/ldconfig`` + ``docker start`` do; only its /etc/ld.so.cache is kept (the soname
    links and aux-cache it also writes stay in the copy, as they stay in the container).
    Like distroless, which commits the file, the result is stored in the cache dir, keyed
    by the .deb file names, and reused.
    """
    key = hashlib.sha256(
        "\n".join([_LDCACHE_RECIPE, *sorted(os.path.basename(d) for d in debs.values())]).encode()
    ).hexdigest()[:24]
    stored = os.path.join(cache_dir(), "ldcache", f"{key}.ld.so.cache")
    if os.path.exists(stored):
        with open(stored, "rb") as f:
            return f.read()
    import chroot  # a script next to this one, importing this module

    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(root))) as tmp:
        scratch = os.path.join(tmp, "root")
        _run(["cp", "-a", root, scratch])
        res = chroot.run(scratch, [], entrypoint=["/sbin/ldconfig"])
        if res.rc:
            raise MkrootError(f"/sbin/ldconfig in the image failed ({res.rc}): {res.stderr}")
        with open(os.path.join(scratch, "etc/ld.so.cache"), "rb") as f:
            data = f.read()
    os.makedirs(os.path.dirname(stored), exist_ok=True)
    with open(stored + f".{os.getpid()}", "wb") as f:
        f.write(data)
    os.replace(stored + f".{os.getpid()}", stored)
    return data


def _install_cache(root: str, data: bytes) -> None:
    """The ``:ldconfig_cache_<arch>`` layer (python3/BUILD): etc/ld.so.cache, root, 0644."""
    path = os.path.join(root, "etc/ld.so.cache")
    with open(path, "wb") as f:
        f.write(data)
    os.chown(path, 0, 0)
    os.chmod(path, 0o644)


def fetch_image_debs(debs_dir: str | None = None, image: Image = DEBIAN12) -> dict[str, str]:
    """{package: .deb path} for every package of ``image`` plus ca-certificates (cached)."""
    return fetch_debs([*image.packages, CACERTS_PACKAGE], debs_dir, image)


def build_root(
    root: str, debs: dict[str, str] | None = None, image: Image = DEBIAN12
) -> dict[str, object]:
    """Create ``image``'s filesystem at ``root`` (must not exist, or be an empty directory).

    ``debs`` is what :func:`fetch_image_debs` returned; pass it to build several roots with a
    single apt call. Returns a small report: package -> .deb file name, timings.

    Measured on a 2-core host (debian12: 34 packages, 14 MB of .debs, 53 MB root): unpacking
    takes 0.8 s, the same as ``cp -a`` of a previously built copy, so no template root is
    cached.
    """
    if os.geteuid() != 0:
        raise MkrootError(
            "building the root needs root (file ownership, /home/nonroot owned by 65532)"
        )
    if os.path.exists(root) and os.listdir(root):
        raise MkrootError(f"{root} exists and is not empty")
    t0 = time.monotonic()
    debs = dict(debs or fetch_image_debs(image=image))
    cacerts_deb = debs.pop(CACERTS_PACKAGE)
    t_fetch = time.monotonic() - t0
    _populate(root, image, debs, cacerts_deb)
    t_cache = time.monotonic()
    if image.ldcache:
        _install_cache(root, pregenerated_cache(root, debs))
    return {
        "image": image.name,
        "packages": {p: os.path.basename(d) for p, d in debs.items()},
        "fetch_seconds": round(t_fetch, 2),
        "ldcache_seconds": round(time.monotonic() - t_cache, 2),
        "total_seconds": round(time.monotonic() - t0, 2),
    }


def tree_size(root: str) -> int:
    """Bytes in regular files under ``root`` (hard links once), like ``du --apparent-size``."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, _dirnames, filenames in os.walk(root):
        for fn in filenames:
            st = os.lstat(os.path.join(dirpath, fn))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size if not os.path.islink(os.path.join(dirpath, fn)) else 0
    return total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("root", help="directory to create (must not exist or be empty)")
    ap.add_argument("--image", choices=list(IMAGES), default=DEBIAN13.name)
    ap.add_argument(
        "--add", nargs="+", default=[], metavar="PKG", help="unpack more packages afterwards"
    )
    args = ap.parse_args(argv)
    image = IMAGES[args.image]
    try:
        report = build_root(args.root, image=image)
        if args.add:
            add_layer(args.root, args.add, image=image)
    except MkrootError as e:
        print(f"mkroot: {e}", file=sys.stderr)
        return 1
    print(f"python3-{image.name}: {len(report['packages'])} packages -> {args.root}")  # type: ignore[arg-type]
    print(
        f"apt {report['fetch_seconds']} s, ld.so.cache {report['ldcache_seconds']} s, "
        f"total {report['total_seconds']} s"
    )
    print(f"size {tree_size(args.root) / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
