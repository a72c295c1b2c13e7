"""One rule for every lookup: without a cache the resolver answers what stock CPython
answers with a cache that glibc's real ldconfig has just written for the same root.

The roots are generated (elfgen): several dirs holding real ELF files, soname links, dev
links, links whose name is not the soname, alternatives-style links to a sibling, files
without SONAME, versions split across dirs, dotted and hyphenated stems.  The reference is
independent of the code under test: the host's `ldconfig -X -r ROOT` writes the cache,
`ldconfig -p -C` prints it, and stock's own regex (ctypes/util.py `_findSoname_ldconfig`)
picks the answer from that text.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess

import elfgen
import pytest

from ctypes_shim import _elf, _ldconfig, _ldscan, _resolve

pytestmark = pytest.mark.host

LDCONFIG = shutil.which("ldconfig") or "/sbin/ldconfig"
TRIPLET = "x86_64-linux-gnu"
ABI = {62: "libc6,x86-64", 183: "libc6,AArch64"}.get(elfgen.native_machine(), "libc6")
DIRS = (f"/lib/{TRIPLET}", f"/usr/lib/{TRIPLET}", "/usr/lib", "/opt/a", "/opt/b/lib")
LOADER_DIRS = (f"/lib/{TRIPLET}", f"/usr/lib/{TRIPLET}", "/lib", "/usr/lib")
STEMS = ("foo", "db-5.3", "usb-1.0", "foo-1", "bar", "c", "z3", "ssl", "GLX_mesa", "Xaw",
         "gobject-2.0", "foo.bar")


def _need_ldconfig() -> None:
    if not os.path.exists(LDCONFIG):
        pytest.skip("the host has no ldconfig to write the reference cache")


def put(root: str, path: str, data: bytes | str) -> None:
    host = os.path.join(root, path.lstrip("/"))
    os.makedirs(os.path.dirname(host), exist_ok=True)
    with open(host, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def link(root: str, path: str, target: str) -> None:
    host = os.path.join(root, path.lstrip("/"))
    os.makedirs(os.path.dirname(host), exist_ok=True)
    if not os.path.lexists(host):
        os.symlink(target, host)


def generate(root: str, seed: int) -> list[str]:
    """A random root; returns every file name and SONAME put in it."""
    rnd = random.Random(seed)
    order = ["/opt/a", "/opt/b/lib"]
    rnd.shuffle(order)
    put(root, "/etc/ld.so.conf", "".join(d + "\n" for d in order))
    names: list[str] = []
    for _ in range(rnd.randint(4, 14)):
        stem = rnd.choice(STEMS)
        major, minor = rnd.randint(0, 12), rnd.randint(0, 3)
        d = rnd.choice(DIRS)
        soname = f"lib{stem}.so.{major}"
        real = f"{soname}.{minor}"
        kind = rnd.choice(["plain", "plain", "nolink", "dev", "nosoname", "stemso", "alt",
                           "oddname", "foreign", "script", "hyphen"])
        if kind in ("plain", "nolink", "dev"):
            put(root, f"{d}/{real}", elfgen.native(soname=soname))
            if kind != "nolink":
                link(root, f"{d}/{soname}", real)
            if kind == "dev":
                link(root, f"{d}/lib{stem}.so", soname)
            names += [real, soname, f"lib{stem}.so"]
        elif kind == "nosoname":
            put(root, f"{d}/lib{stem}.so.{major}", elfgen.native())
            names.append(f"lib{stem}.so.{major}")
        elif kind == "stemso":  # libdb-5.3.so: the soname has no version after .so
            put(root, f"{d}/lib{stem}.so", elfgen.native(soname=f"lib{stem}.so"))
            names.append(f"lib{stem}.so")
        elif kind == "alt":  # libfakeroot-0.so -> libfakeroot-tcp.so: a link to a sibling
            other = rnd.choice(STEMS)
            put(root, f"{d}/lib{other}-tcp.so", elfgen.native(soname=f"lib{other}-0.so"))
            link(root, f"{d}/lib{other}-0.so", f"lib{other}-tcp.so")
            link(root, f"{d}/lib{stem}-sysv.so", f"lib{other}-tcp.so")
            names += [f"lib{other}-tcp.so", f"lib{other}-0.so", f"lib{stem}-sysv.so"]
        elif kind == "oddname":  # libXaw7.so.7 with SONAME libXaw.so.7, and its link
            put(root, f"{d}/lib{stem}{major}.so.{major}.0", elfgen.native(soname=soname))
            link(root, f"{d}/{soname}", f"lib{stem}{major}.so.{major}.0")
            names += [f"lib{stem}{major}.so.{major}.0", soname]
        elif kind == "foreign":
            put(root, f"{d}/{real}", elfgen.elf(machine=elfgen.foreign_machine(), soname=soname))
            names.append(real)
        elif kind == "script":
            put(root, f"{d}/lib{stem}.so", "/* GNU ld script */\nGROUP ( libfoo.so.1 )\n")
            names.append(f"lib{stem}.so")
        else:  # libfoo-1.so beside libfoo.so.1.2: hyphenated file names, one soname
            put(root, f"{d}/lib{stem}-{major}.so", elfgen.native(soname=soname))
            put(root, f"{d}/{real}", elfgen.native(soname=soname))
            names += [f"lib{stem}-{major}.so", real]
    return names


def queries(names: list[str]) -> list[str]:
    """Every X such that some name starts with lib<X>., and a few odd forms."""
    out = {"", "lib", "c.so", "ssl.so", "db-5", "usb-1", "nonexistent"}
    for name in names:
        if name.startswith("lib"):
            for at in [m.start() for m in re.finditer(r"\.", name)]:
                if at > 3:
                    out.add(name[3:at])
    return sorted(out)


def stock_answer(listing: str, name: str) -> str | None:
    """ctypes/util.py _findSoname_ldconfig over `ldconfig -p` output."""
    regex = r"\s+(lib%s\.[^\s]+)\s+\(%s" % (re.escape(name), re.escape(ABI))  # noqa: UP031
    m = re.search(regex, listing)
    return m.group(1) if m else None


def key_of(root: str, path: str) -> str:
    """The key ldconfig gives the file at *path*: its SONAME, else its file name."""
    info = _elf.read_elf(os.path.join(root, path.lstrip("/")))
    return info.soname or os.path.basename(path)


def fresh_listing(root: str) -> str:
    """`ldconfig -p` of a cache the host's real ldconfig writes for *root* now."""
    os.makedirs(os.path.join(root, "etc"), exist_ok=True)
    subprocess.run([LDCONFIG, "-X", "-r", root], check=True, capture_output=True)
    return subprocess.run([LDCONFIG, "-p", "-C", os.path.join(root, "etc/ld.so.cache")],
                          check=True, capture_output=True, text=True,
                          env={"LC_ALL": "C", "LANG": "C"}).stdout


SEEDS = [s if s < 10 else pytest.param(s, marks=pytest.mark.slow) for s in range(40)]


@pytest.mark.parametrize("seed", SEEDS)
def test_no_cache_answers_what_a_fresh_cache_answers(tmp_path: object, seed: int) -> None:
    """For every name derivable from the root: the resolver without a cache equals stock
    with a fresh real cache, except where stock's soname cannot be loaded (README)."""
    _need_ldconfig()
    root = str(tmp_path)
    names = generate(root, seed)
    asked = queries(names)
    without = {n: _resolve.Resolver(root=root, environ={}).find(n) for n in asked}
    listing = fresh_listing(root)
    with_cache = _resolve.Resolver(root=root, environ={})
    for name in asked:
        stock = stock_answer(listing, name)
        same_or_loadable(root, name, with_cache.find(name), stock, listing)
        same_or_loadable(root, name, without[name], stock, listing)


def same_or_loadable(root: str, name: str, got: str | None, stock: str | None,
                     listing: str) -> None:
    """*got* is stock's answer, or the one documented difference: stock's soname names no
    file the loader can find by itself, so the shim answers the path of the library that
    has that soname (README, "Where we differ from stock")."""
    if got == stock:
        return
    assert got is not None and got.startswith("/"), (name, got, stock, listing)
    assert key_of(root, got) == stock, (name, got, stock)
    directory = os.path.dirname(got)
    link_missing = not os.path.exists(os.path.join(root, directory.lstrip("/"), stock))
    assert link_missing or directory not in LOADER_DIRS, (name, got, stock)


@pytest.mark.parametrize("seed", SEEDS)
def test_writer_and_scan_key_the_same_entries(tmp_path: object, seed: int) -> None:
    """For each generated root, the entries the cache writer makes and the keys the
    resolver's scan considers come from one function, so they are the same set."""
    root = str(tmp_path)
    names = generate(root, seed)
    written = {(e.key, e.flags) for e in _ldscan.scan(root).entries}
    resolver = _resolve.Resolver(root=root, environ={})
    for name in queries(names):
        trace: list[_resolve.Step] = []
        resolver.lookup(name, trace)
        seen = {(t.key, t.flags) for t in trace if t.source == "scan" and t.key is not None}
        prefix = f"lib{name}."
        assert seen == {(k, f) for k, f in written if k.startswith(prefix) and k != prefix}, (
            name, trace)


def test_our_cache_answers_like_the_real_one(tmp_path: object) -> None:
    """Lookups through our writer's cache give stock's answers over glibc's cache."""
    _need_ldconfig()
    for seed in range(10):
        root = os.path.join(str(tmp_path), str(seed))
        names = generate(root, seed)
        listing = fresh_listing(root)
        data = _ldconfig.build(_ldscan.scan(root))
        with open(os.path.join(root, "etc/ld.so.cache"), "wb") as f:
            f.write(data)
        ours = _resolve.Resolver(root=root, environ={})
        for name in queries(names):
            same_or_loadable(root, name, ours.find(name), stock_answer(listing, name), listing)


def test_file_named_unlike_its_soname_without_the_link(tmp_path: object) -> None:
    """The documented limit of reading only lib<name>.* files: libXaw7.so.7 (SONAME
    libXaw.so.7) with no libXaw.so.7 link is keyed by ldconfig, which would also make the
    link; the scan does not read it.  With the link (as packages ship it) it is found."""
    root = str(tmp_path)
    put(root, "/usr/lib/libXaw7.so.7", elfgen.native(soname="libXaw.so.7"))
    assert ("libXaw.so.7", "/usr/lib/libXaw.so.7") in {
        (e.key, e.value) for e in _ldscan.scan(root).entries}
    assert _resolve.Resolver(root=root, environ={}).find("Xaw") is None
    link(root, "/usr/lib/libXaw.so.7", "libXaw7.so.7")
    assert _resolve.Resolver(root=root, environ={}).find("Xaw") == "libXaw.so.7"
