"""The images the examples build FROM, made here from Debian packages (no registry is reachable).

- ``gcr.io/distroless/python3-<name>:nonroot``: the root tests/distroless/mkroot.py rebuilds,
  imported with the image config distroless gives it (``python3/python.bzl`` and
  ``base/base.bzl`` of GoogleContainerTools/distroless): ENV ``PATH``, ``SSL_CERT_FILE``,
  ``LANG``; ``USER 65532`` and ``WORKDIR /home/nonroot`` for the ``:nonroot`` tag; the
  interpreter as ENTRYPOINT.
- ``python:<X.Y>-slim-<suite>``, the build stage: a Debian root of the same suite with its
  ``python3`` and ``pip`` (so the same Python minor version as the distroless image), made from
  .debs with ``apt-get download`` + ``dpkg-deb -x``. apt resolves the dependencies with an
  empty status file, so it lists every package the root needs. The official image builds its
  own CPython into /usr/local; what the examples use of it is the same: ``pip``, ``python``,
  a shell, ``apt-get`` and ``dpkg-deb``, and its ENV (docker-library/python's Dockerfile:
  ``PATH`` with /usr/local/bin first, ``LANG=C.UTF-8``, ``PYTHON_VERSION`` = the full
  version), with ``CMD ["python3"]``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "distroless"))  # mkroot/chroot are plain scripts

import chroot  # noqa: E402
import mkroot  # noqa: E402

# What a build stage of the examples runs: sh, pip, python, apt-get, dpkg-deb. ``?essential``
# is the Essential: yes set (sh, coreutils, dpkg, tar, ...), as in every Debian image.
HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
BUILD_PACKAGES = ("?essential", "apt", "python3", "python3-pip", "python-is-python3",
                  "ca-certificates")  # fmt: skip


def build_tag(image: mkroot.Image) -> str:
    """The tag of the official image with this Python and suite (python:3.13-slim-trixie)."""
    return f"docker.io/library/python:{image.python}-slim-{image.suite}"


def distroless_config(image: mkroot.Image) -> list[str]:
    """``podman import --change`` lines: distroless's config of the ``:nonroot`` tag."""
    return [
        *(f"ENV {key}={value}" for key, value in mkroot.IMAGE_ENV.items()),
        f"USER {mkroot.NONROOT}",
        f"WORKDIR {mkroot.WORKDIR[mkroot.NONROOT]}",
        f"ENTRYPOINT {json.dumps(list(image.entrypoint))}",
    ]


def build_config(python_version: str) -> list[str]:
    """``podman import --change`` lines: docker-library/python's ENV and CMD."""
    path = "/usr/local/bin:" + mkroot.IMAGE_ENV["PATH"]
    return [
        f"ENV PATH={path}",
        "ENV LANG=C.UTF-8",
        f"ENV PYTHON_VERSION={python_version}",
        'CMD ["python3"]',
    ]


# -- the build-stage root ---------------------------------------------------------------------


def _apt(image: mkroot.Image) -> list[str]:
    """apt-get for ``image``'s suite, seeing nothing as installed, writing no package cache."""
    return [
        *mkroot._apt(image),
        "-o", "Dir::State::status=/dev/null",
        "-o", "Dir::Cache::pkgcache=",
        "-o", "Dir::Cache::srcpkgcache=",
        "-o", "Debug::NoLocking=1",
    ]  # fmt: skip


_RESOLVE_RECIPE = 2  # bump when resolve() changes how it reads apt's answer


def _lists_key(image: mkroot.Image, packages: tuple[str, ...]) -> str:
    """Changes when apt's lists for the suite change (an ``apt-get update`` got new ones)."""
    lists = (
        "/var/lib/apt/lists" if image.host_apt else os.path.join(mkroot._apt_dir(image), "lists")
    )
    h = hashlib.sha256(repr((_RESOLVE_RECIPE, packages)).encode())
    for entry in sorted(os.scandir(lists), key=lambda e: e.name):
        if f"_{image.suite}" in entry.name and entry.is_file():
            st = entry.stat()
            h.update(f"{entry.name} {st.st_size} {st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


def resolve(image: mkroot.Image, packages: tuple[str, ...] = BUILD_PACKAGES) -> list[str]:
    """Every package ``apt-get install --no-install-recommends PACKAGES`` would install into
    an empty ``image.suite`` system (cached per state of apt's lists)."""
    stored = Path(mkroot.cache_dir(), "containers", f"resolve-{image.suite}-"
                  f"{_lists_key(image, packages)}.json")  # fmt: skip
    if stored.exists():
        names: list[str] = json.loads(stored.read_text())
        return names
    # A simulation (not --print-uris, which leaves out what apt's archive cache already has).
    cmd = [*_apt(image), "install", "--simulate", "--no-install-recommends", *packages]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise mkroot.MkrootError(f"{' '.join(cmd)} failed:\n{proc.stderr.strip()}")
    names = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("Inst ")]
    stored.parent.mkdir(parents=True, exist_ok=True)
    stored.write_text(json.dumps(names))
    return names


def _unpack(deb: str, root: str) -> str:
    """``dpkg-deb -x``; returns the control paragraph with dpkg's "installed" status."""
    subprocess.run(["dpkg-deb", "-x", deb, root], check=True)
    control = subprocess.run(
        ["dpkg-deb", "-f", deb], capture_output=True, text=True, check=True
    ).stdout
    first, _, rest = control.partition("\n")
    return f"{first}\nStatus: install ok installed\n{rest.rstrip()}\n"


def _sources(image: mkroot.Image) -> str:
    """/etc/apt/sources.list.d/debian.sources as debian:<suite>-slim ships it."""
    archive, security = mkroot.host_mirrors()
    keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
    return (
        f"Types: deb\nURIs: {archive}\nSuites: {image.suite} {image.suite}-updates\n"
        f"Components: main\nSigned-By: {keyring}\n\n"
        f"Types: deb\nURIs: {security}\nSuites: {image.suite}-security\n"
        f"Components: main\nSigned-By: {keyring}\n"
    )


def build_stage_root(root: Path, image: mkroot.Image) -> str:
    """Make the build-stage root at ``root`` (new); returns the full Python version (3.13.5)."""
    names = resolve(image)
    debs = mkroot.fetch_debs(names, image=image)
    root.mkdir(parents=True)
    # base-files first: trixie's base-files ships the /bin -> usr/bin etc. links.
    status = [_unpack(debs["base-files"], str(root))]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        rest = [debs[n] for n in names if n != "base-files"]
        status += list(pool.map(lambda d: _unpack(d, str(root)), rest))
    dpkg = root / "var/lib/dpkg"
    dpkg.mkdir(parents=True, exist_ok=True)
    (dpkg / "status").write_text("\n".join(status))
    # What maintainer scripts would have done, as far as the examples' build steps need it.
    for name in ("passwd", "group"):  # base-passwd's postinst
        master = root / f"usr/share/base-passwd/{name}.master"
        (root / "etc" / name).write_text(master.read_text())
    mkroot._cacerts(str(root), debs["ca-certificates"])  # update-ca-certificates
    # The host's bundle instead, when it has one: pip in the build then reaches PyPI as the
    # host's pip does, also through a TLS-inspecting proxy whose CA only the host trusts.
    if os.path.exists(HOST_CA_BUNDLE):
        shutil.copyfile(HOST_CA_BUNDLE, root / HOST_CA_BUNDLE.lstrip("/"))
    sources = root / "etc/apt/sources.list.d/debian.sources"
    sources.parent.mkdir(parents=True, exist_ok=True)
    sources.write_text(_sources(image))
    res = chroot.run(str(root), [], entrypoint=["/sbin/ldconfig"])  # libc-bin's trigger
    if res.rc:
        raise mkroot.MkrootError(f"ldconfig in the build root failed: {res.stderr}")
    minimal = os.path.basename(debs[f"python{image.python}-minimal"])
    m = re.match(rf"python{re.escape(image.python)}-minimal_(\d+\.\d+\.\d+)", minimal)
    if not m:
        raise mkroot.MkrootError(f"cannot read the Python version from {minimal}")
    return m[1]
