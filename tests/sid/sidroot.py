#!/usr/bin/env python3
"""Build a root of Debian unstable ("sid") packages: python3.14, python3.15 and glibc's ldconfig.

Usage: ``python3 tests/sid/sidroot.py ROOT [--update]`` (as root, on a Debian host with apt and
dpkg-deb; stdlib only).

apt runs with a private configuration (``APT_CONFIG``): its own package lists, cache and
sources.list (suite ``sid`` on the mirror URI the host's sources already use),
``Dir::State::status /dev/null`` and no host ``apt.conf.d``. The host's sources, lists,
status and archives are never read or written. Debian unstable's ``Release`` file can be
older than its ``Valid-Until`` on a mirror snapshot, so the private config does not check it;
the signature is still checked (``signed-by`` the host's Debian archive keyring).

Package set: apt's own resolution of :data:`WANTED` against sid with ``Dir::State::status
/dev/null`` (nothing installed) and ``--no-install-recommends``: the listed packages and their
``Depends``/``Pre-Depends``, nothing Essential that they do not depend on. On 2026-12-01 that was
32 packages (libc6 and libc-bin 2.43-7, python3.14 3.14.10-1, python3.15 3.15.2-1,
libssl3t64 3.6.5-1, tzdata, media-types, debconf, ...; 25 MB of .debs, a 90 MB root).

Then ``dpkg-deb -x`` of each .deb (no maintainer scripts) into ROOT, after making the usrmerge
links ``/bin /sbin /lib /lib64 -> usr/...`` that sid's base-files would ship, so a package that
still ships ``/lib/...`` lands in ``/usr/lib/...`` as on a real sid system. No ldconfig runs:
the root starts without ``/etc/ld.so.cache``, like a distroless image.

Cache: the .debs in ``${XDG_CACHE_HOME:-~/.cache}/ctypes-shim/debs/sid``, apt's private state
in ``.../ctypes-shim/apt-sid``. ``apt-get update`` runs only when that state has no lists yet
(or with ``--update``), so a second build downloads nothing.
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
from concurrent.futures import ThreadPoolExecutor

SUITE = "sid"
ARCH = "amd64"
# What the tests need: the two interpreters; libc-bin for ldconfig (glibc's cache writer, and
# what stock find_library runs as /sbin/ldconfig -p, so stock can be the oracle).
WANTED: tuple[str, ...] = ("python3.14", "python3.15", "libc-bin")
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
USRMERGE = (("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib"), ("lib64", "usr/lib64"))
INTERPRETERS = ("python3.14", "python3.15")

_PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    "nonroot:x:65532:65532:nonroot:/home/nonroot:/usr/sbin/nologin\n"
)
_GROUP = "root:x:0:\nnogroup:x:65534:\nnonroot:x:65532:\n"


class SidrootError(RuntimeError):
    """apt or dpkg-deb failed, or the host cannot build the root."""


def cache_dir() -> str:
    """``${XDG_CACHE_HOME:-~/.cache}/ctypes-shim`` (shared with tests/distroless)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "ctypes-shim")


def debs_dir() -> str:
    return os.path.join(cache_dir(), "debs", SUITE)


def _run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    try:
        proc: subprocess.CompletedProcess[str] = subprocess.run(  # type: ignore[call-overload]
            cmd, capture_output=True, text=True, check=False, **kw)
    except OSError as e:
        raise SidrootError(f"cannot run {cmd[0]}: {e}") from e
    if proc.returncode:
        raise SidrootError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr.strip()}")
    return proc


def _host_sources() -> list[tuple[str, str | None]]:
    """(URI, Signed-By) of each ``deb`` source on the host, one-line and deb822 formats."""
    found: list[tuple[str, str | None]] = []
    for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]:
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except OSError:
            continue
        for line in lines:
            words = line.split("#", 1)[0].split()
            if not words or words[0] != "deb":
                continue
            opts: dict[str, str] = {}
            rest = words[1:]
            if rest and rest[0].startswith("["):
                text = " ".join(rest).split("]", 1)
                for opt in text[0].strip("[ ").split():
                    key, _, value = opt.partition("=")
                    opts[key] = value
                rest = text[1].split()
            if rest:
                found.append((rest[0], opts.get("signed-by")))
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        try:
            with open(path) as f:
                stanzas = f.read().split("\n\n")
        except OSError:
            continue
        for stanza in stanzas:
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line or line[0].isspace():
                    continue
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
            if "deb" in fields.get("types", "").split() and fields.get("enabled") != "no":
                for uri in fields.get("uris", "").split():
                    found.append((uri, fields.get("signed-by")))
    return found


def mirror() -> tuple[str, str | None]:
    """The host's Debian mirror (URI ending in ``/debian``) and the keyring it is signed by."""
    for uri, signed_by in _host_sources():
        if uri.rstrip("/").endswith("/debian"):
            keyring = KEYRING if signed_by is None and os.path.exists(KEYRING) else signed_by
            return uri.rstrip("/"), keyring
    raise SidrootError("no Debian mirror (a URI ending in /debian) in the host's apt sources")


def _apt_config(state: str) -> str:
    """Write the private apt configuration under ``state``; return its path (for APT_CONFIG)."""
    uri, signed_by = mirror()
    for sub in ("lists/partial", "cache/archives/partial", "etc/apt.conf.d", "etc/preferences.d",
                "etc/sources.list.d"):
        os.makedirs(os.path.join(state, sub), exist_ok=True)
    opt = f" [signed-by={signed_by}]" if signed_by else ""
    with open(os.path.join(state, "etc/sources.list"), "w") as f:
        f.write(f"deb{opt} {uri} {SUITE} main\n")
    settings = {
        "Dir::State::Lists": os.path.join(state, "lists"),
        "Dir::State::status": "/dev/null",
        "Dir::Cache": os.path.join(state, "cache"),
        "Dir::Etc::SourceList": os.path.join(state, "etc/sources.list"),
        "Dir::Etc::SourceParts": os.path.join(state, "etc/sources.list.d"),
        "Dir::Etc::Parts": os.path.join(state, "etc/apt.conf.d"),
        "Dir::Etc::Preferences": os.path.join(state, "etc/preferences"),
        "Dir::Etc::PreferencesParts": os.path.join(state, "etc/preferences.d"),
        "APT::Architecture": ARCH,
        "APT::Architectures": ARCH,
        "APT::Sandbox::User": "root",
        "Acquire::Languages": "none",
        # A mirror snapshot of unstable outlives its Release file's Valid-Until (a week).
        "Acquire::Check-Valid-Until": "false",
        # Nothing is installed or locked: the status file is /dev/null.
        "Debug::NoLocking": "true",
    }
    # Keep a proxy the host's apt is configured with (read only, through apt-config).
    for key in ("Acquire::http::Proxy", "Acquire::https::Proxy"):
        try:
            value = subprocess.run(["apt-config", "dump", "--format", "%v", key],
                                   capture_output=True, text=True, check=False).stdout.strip()
        except OSError:
            value = ""
        if value:
            settings[key] = value
    path = os.path.join(state, "apt.conf")
    with open(path, "w") as f:
        f.writelines(f'{k} "{v}";\n' for k, v in settings.items())
    return path


def _apt(conf: str, *args: str, cwd: str | None = None) -> str:
    env = {**os.environ, "APT_CONFIG": conf, "LC_ALL": "C"}
    return _run(["apt-get", *args], env=env, cwd=cwd).stdout


def _uris(conf: str, packages: tuple[str, ...]) -> list[tuple[str, str, int, str]]:
    """apt's resolution: (url, file name, size, ``ALGO:hex``) of every package to fetch."""
    out = _apt(conf, "install", "--print-uris", "-qq", "--no-install-recommends", *packages)
    rows = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0].startswith("'"):
            rows.append((parts[0].strip("'"), parts[1], int(parts[2]), parts[3]))
    if not rows:
        raise SidrootError(f"apt resolved nothing for {packages}:\n{out}")
    return rows


def _verify(path: str, size: int, digest: str) -> bool:
    algo, _, want = digest.partition(":")
    name = {"MD5Sum": "md5", "SHA1": "sha1", "SHA256": "sha256", "SHA512": "sha512"}.get(algo)
    if name is None or os.path.getsize(path) != size:
        return False
    h = hashlib.new(name)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest() == want


def fetch(update: bool = False) -> dict[str, object]:
    """Resolve, download what the cache lacks; return {"debs": [paths], "downloaded": n}."""
    state = os.path.join(cache_dir(), "apt-sid")
    conf = _apt_config(state)
    if update or not glob.glob(os.path.join(state, "lists", "*_Packages*")):
        _apt(conf, "update", "-qq")
    rows = _uris(conf, WANTED)
    dest = debs_dir()
    os.makedirs(dest, exist_ok=True)
    todo = [r for r in rows if not os.path.exists(os.path.join(dest, r[1]))]
    if todo:
        # Download into a scratch dir and move each verified file in, so an interrupted
        # run never leaves a truncated .deb in the cache.
        with tempfile.TemporaryDirectory(dir=dest, prefix=".dl-") as scratch:
            names = [f"{fn.split('_')[0]}={fn.split('_')[1].replace('%3a', ':')}"
                     for _url, fn, _size, _digest in todo]
            _apt(conf, "download", "-q", *names, cwd=scratch)
            for _url, fn, size, digest in todo:
                got = os.path.join(scratch, fn)
                if not os.path.exists(got) or not _verify(got, size, digest):
                    raise SidrootError(f"{fn}: missing or wrong size/hash after apt-get download")
                os.replace(got, os.path.join(dest, fn))
    return {"debs": [os.path.join(dest, r[1]) for r in rows], "downloaded": len(todo)}


def _unpack(deb: str, root: str) -> None:
    _run(["dpkg-deb", "-x", deb, root])


def build(root: str, update: bool = False) -> dict[str, object]:
    """Create the root at ``root`` (must not exist or be empty); returns a small report."""
    if os.geteuid() != 0:
        raise SidrootError("building the root needs root (file ownership from dpkg-deb -x)")
    for tool in ("apt-get", "apt-config", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise SidrootError(f"{tool} not found on PATH")
    if os.path.exists(root) and os.listdir(root):
        raise SidrootError(f"{root} exists and is not empty")
    t0 = time.monotonic()
    fetched = fetch(update)
    t_fetch = time.monotonic() - t0
    os.makedirs(root, mode=0o755, exist_ok=True)
    for link, target in USRMERGE:
        os.makedirs(os.path.join(root, target), exist_ok=True)
        os.symlink(target, os.path.join(root, link))
    debs = fetched["debs"]
    assert isinstance(debs, list)
    # dpkg-deb is mostly xz/zstd decompression: one per core. Packages share only dirs.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        list(pool.map(lambda d: _unpack(d, root), debs))
    etc = os.path.join(root, "etc")
    with open(os.path.join(etc, "passwd"), "w") as f:
        f.write(_PASSWD)
    with open(os.path.join(etc, "group"), "w") as f:
        f.write(_GROUP)
    for path, mode in (("tmp", 0o1777), ("root", 0o700), ("home/nonroot", 0o700),
                       ("proc", 0o555), ("dev", 0o755)):
        os.makedirs(os.path.join(root, path), exist_ok=True)
        os.chmod(os.path.join(root, path), mode)
    os.chown(os.path.join(root, "home/nonroot"), 65532, 65532)
    missing = [p for p in INTERPRETERS if not os.path.exists(os.path.join(root, "usr/bin", p))]
    if missing or not os.path.exists(os.path.join(root, "usr/sbin/ldconfig")):
        raise SidrootError(f"the root lacks {missing or 'ldconfig'} after unpacking")
    return {
        "packages": len(debs),
        "downloaded": fetched["downloaded"],
        "fetch_seconds": round(t_fetch, 2),
        "total_seconds": round(time.monotonic() - t0, 2),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("root", help="directory to create (must not exist or be empty)")
    ap.add_argument("--update", action="store_true", help="refresh the private package lists")
    args = ap.parse_args(argv)
    try:
        report = build(args.root, args.update)
    except SidrootError as e:
        print(f"sidroot: {e}", file=sys.stderr)
        return 1
    print(f"{report['packages']} packages ({report['downloaded']} downloaded) -> {args.root}")
    print(f"apt {report['fetch_seconds']} s, total {report['total_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
