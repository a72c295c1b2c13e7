"""The lookup rule, stated: name guard, ties between sources, the ABI filter, the cache lookup.

Every expected value here is a literal or comes from glibc itself (the host's real ldconfig
writing a cache for the generated root, `ldconfig -p` printing it, stock CPython's regex
over that listing), never from the code under test.  The rule (README "How a name is
resolved"):

1. the root's /etc/ld.so.cache: the first entry, in cache order, whose key starts with
   "lib<name>." and whose flags fit this interpreter, skipping entries whose file is gone;
2. else the entries glibc's ldconfig would write now for the ld.so.conf dirs and the
   loader's built-in dirs, first match as in 1;
3. else LD_LIBRARY_PATH, dir by dir: the first dir holding a matching key wins.
The answer is the key when the loader finds that name by itself, else a path CDLL loads.
"""

from __future__ import annotations

import os
import re
import sys

import elfgen
import pytest
from conftest import FakeRoot
from fuzz import cases, reference

from ctypes_shim import _ldscan

X86_64 = os.uname().machine == "x86_64" and sys.maxsize > 2**32
needs_x86_64 = pytest.mark.skipif(not X86_64, reason="the flags and dirs here are x86_64's")


def _ldconfig_or_skip() -> None:
    why = reference.available()
    if why is None:
        return
    if os.environ.get("CTYPES_SHIM_TEST_DISTROLESS") == "require":  # CI: never skip
        pytest.fail("glibc's ldconfig and loader are required in CI: " + why)
    pytest.skip(why)


def default_dir() -> str:
    """The loader's /usr/lib/<triplet> (from `ld.so --help`), where system libraries go."""
    _ldconfig_or_skip()
    dirs = [d for d in reference.interp().default_dirs() if d.startswith("/usr/lib/")]
    return dirs[0] if dirs else "/usr/lib"


def put_cache(root: FakeRoot, data: bytes) -> None:
    """/etc/ld.so.cache built by hand, as glibc's sysdeps/generic/dl-cache.h lays it out."""
    elfgen.put(root.path, "/etc/ld.so.cache", data)


# -- audit: which files a lookup touches ---------------------------------------------------------

_AUDIT: list[tuple[str, str]] | None = None
_HOOKED = False


def _hook(event: str, args: tuple[object, ...]) -> None:
    if _AUDIT is not None and event in ("open", "os.listdir", "os.scandir"):
        _AUDIT.append((event, repr(args[0])[:200] if args else ""))


def touched(fn: object) -> tuple[object, list[tuple[str, str]]]:
    """fn()'s value and every file open / directory listing it made (an audit hook)."""
    global _AUDIT, _HOOKED  # noqa: PLW0603 -- one hook per process, switched on here
    if not _HOOKED:
        sys.addaudithook(_hook)
        _HOOKED = True
    _AUDIT = []
    try:
        value = fn()  # type: ignore[operator]
        return value, _AUDIT
    finally:
        _AUDIT = None


def assert_rejected(r: object, name: str) -> None:
    """The trace (what `find --explain` shows) holds one step: the input, rejected."""
    trace: list[object] = []
    assert r.lookup(name, trace) is None  # type: ignore[attr-defined]
    assert [(s.source, s.subject, s.outcome) for s in trace] == [  # type: ignore[attr-defined]
        ("input", repr(name), "rejected")]


# -- the name guard -----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "filename"), [
    ("a b", "liba b.so.1"),
    ("c\n", "libc\n.so.1"),
    ("c\t", "libc\t.so.1"),
    ("\u2028x", "lib\u2028x.so.1"),
], ids=["space", "newline", "tab", "line-separator"])
def test_names_with_whitespace_are_refused_without_opening_a_file(
        root: FakeRoot, name: str, filename: str) -> None:
    """A file literally called lib<name>.so.1 exists, with that SONAME, in a default dir and
    in the cache: a name with whitespace is still None (stock's regex cannot match such a
    key: `[^\\s]+`), and the lookup opens and lists nothing."""
    directory = default_dir()
    root.lib(f"{directory}/{filename}", soname=filename)
    put_cache(root, cases.build_cache([(0x0303, filename, f"{directory}/{filename}", 0)]))
    r = root.resolver()
    answer, events = touched(lambda: r.lookup(name))
    assert answer is None
    assert events == []
    assert r.find(name) is None
    assert_rejected(r, name)


def test_names_over_name_max_are_refused_without_opening_a_file(root: FakeRoot) -> None:
    """NAME_MAX is 255: a 255-character name is looked up (its cache entry, whose key no
    file could carry, answers); a 256-character one is None, nothing opened or listed."""
    directory = default_dir()
    root.lib(f"{directory}/libreal.so.1", soname="libreal.so.1")
    long255, long256 = "n" * 255, "m" * 256
    put_cache(root, cases.build_cache([
            (0x0303, f"lib{long256}.so.1", f"{directory}/libreal.so.1", 0),
            (0x0303, f"lib{long255}.so.1", f"{directory}/libreal.so.1", 0)]))
    r = root.resolver()
    if X86_64:
        assert r.lookup(long255) == f"lib{long255}.so.1"
    answer, events = touched(lambda: r.lookup(long256))
    assert answer is None
    assert events == []
    assert_rejected(r, long256)


def test_the_longest_file_name_is_found(root: FakeRoot) -> None:
    """lib + 249 characters + .so is 255 bytes, the longest name a directory can hold: found
    by its 249-character name from the disk alone."""
    directory = default_dir()
    name = "k" * 249
    root.lib(f"{directory}/lib{name}.so")  # no SONAME: the file name is the key
    assert root.resolver().find(name) == f"lib{name}.so"


@pytest.mark.parametrize("name", ["a/b", "../lib/b", "/b", "a\0b"],
                         ids=["slash", "dotdot", "absolute", "nul"])
def test_names_with_a_slash_or_nul_are_refused_without_opening_a_file(
        root: FakeRoot, name: str) -> None:
    """The cache holds a key lib<name>.so.1 (keys are any string: glibc never checks) for
    an existing library: a name with '/' or NUL is still None, and nothing is opened."""
    directory = default_dir()
    root.lib(f"{directory}/libreal.so.1", soname="libreal.so.1")
    put_cache(root, cases.build_cache([(0x0303, f"lib{name}.so.1".replace("\0", "\x01"),
                                    f"{directory}/libreal.so.1", 0)]))
    os.makedirs(root.host(f"{directory}/liba"), exist_ok=True)
    root.lib(f"{directory}/liba/b.so.1", soname="liba/b.so.1")  # lib + "a/b" + .so.1 on disk
    r = root.resolver()
    answer, events = touched(lambda: r.lookup(name))
    assert answer is None
    assert events == []
    assert_rejected(r, name)


# -- ties between the sources -------------------------------------------------------------------


def _fresh_cache_answer(root: FakeRoot, name: str, environ: dict[str, str]) -> str | None:
    """The same lookup after glibc's ldconfig wrote the root's cache."""
    root.ldconfig()
    return root.resolver(environ).lookup(name)


def test_tie_conf_dir_beats_default_dir(root: FakeRoot) -> None:
    """The same soname in an ld.so.conf dir and in /usr/lib/<triplet>: ldconfig lists the
    conf dir first, so its copy wins.  Without a cache the loader would load the other copy
    for the bare soname, so the answer is the conf copy's path; with glibc's cache written,
    the soname (the loader then takes the conf copy itself)."""
    directory = default_dir()
    root.text("/etc/ld.so.conf", "/opt/conf\n")
    root.lib("/opt/conf/libtie.so.1", soname="libtie.so.1")
    root.lib(f"{directory}/libtie.so.1", soname="libtie.so.1")
    assert root.resolver().lookup("tie") == "/opt/conf/libtie.so.1"
    assert _fresh_cache_answer(root, "tie", {}) == "libtie.so.1"
    listing = reference.print_cache(root.host("/etc/ld.so.cache")) or []
    assert [v for k, _, v in listing] == ["/opt/conf/libtie.so.1", f"{directory}/libtie.so.1"]


def test_tie_two_conf_dirs_the_earlier_wins(root: FakeRoot) -> None:
    """The same soname in two ld.so.conf dirs: the one named first."""
    root.text("/etc/ld.so.conf", "/opt/b\n/opt/a\n")
    root.lib("/opt/a/libtie.so.1", soname="libtie.so.1")
    root.lib("/opt/b/libtie.so.1", soname="libtie.so.1")
    assert root.resolver().lookup("tie") == "/opt/b/libtie.so.1"


def test_higher_version_in_a_default_dir_beats_a_conf_dir(root: FakeRoot) -> None:
    """Cache order is by soname first (descending _dl_cache_libcmp), dirs only break ties."""
    directory = default_dir()
    root.text("/etc/ld.so.conf", "/opt/conf\n")
    root.lib("/opt/conf/libver.so.9", soname="libver.so.9")
    root.lib(f"{directory}/libver.so.10", soname="libver.so.10")
    assert root.resolver().lookup("ver") == "libver.so.10"
    assert _fresh_cache_answer(root, "ver", {}) == "libver.so.10"


def test_tie_default_dir_beats_ld_library_path(root: FakeRoot) -> None:
    """The same soname in LD_LIBRARY_PATH and /usr/lib/<triplet>: the cache's dirs come
    first (step 2 before 3), and the loader finds that copy by its soname."""
    directory = default_dir()
    root.lib("/env/libt.so.1", soname="libt.so.1")
    root.lib(f"{directory}/libt.so.1", soname="libt.so.1")
    env = {"LD_LIBRARY_PATH": "/env"}
    assert root.resolver(env).lookup("t") == "libt.so.1"


def test_default_dir_beats_a_higher_version_in_ld_library_path(root: FakeRoot) -> None:
    """libt.so.2 only in LD_LIBRARY_PATH, libt.so.1 in a default dir: the default dir's
    (what a fresh cache answers; LD_LIBRARY_PATH is only searched when that misses)."""
    directory = default_dir()
    root.lib("/env/libt.so.2", soname="libt.so.2")
    root.lib(f"{directory}/libt.so.1", soname="libt.so.1")
    env = {"LD_LIBRARY_PATH": "/env"}
    assert root.resolver(env).lookup("t") == "libt.so.1"


def test_ld_library_path_first_dir_holding_a_match_wins(root: FakeRoot) -> None:
    """LD_LIBRARY_PATH=/a::/b, /a holds libt.so.1 and /b libt.so.2: /a's, as the loader
    takes it (it searches the dirs in order), though /b's version is higher."""
    root.lib("/a/libt.so.1", soname="libt.so.1")
    root.lib("/b/libt.so.2", soname="libt.so.2")
    assert root.resolver({"LD_LIBRARY_PATH": "/a::/b"}).lookup("t") == "/a/libt.so.1"


def test_ld_library_path_answers_what_the_cache_dirs_lack(root: FakeRoot) -> None:
    """Only LD_LIBRARY_PATH holds the library: its path (it was set after start-up, as far
    as the loader of this process knows), also with glibc's cache written."""
    root.lib(f"{default_dir()}/libother.so.1", soname="libother.so.1")
    root.lib("/env/libonly.so.3", soname="libonly.so.3")
    env = {"LD_LIBRARY_PATH": "/env"}
    assert root.resolver(env).lookup("only") == "/env/libonly.so.3"
    assert _fresh_cache_answer(root, "only", env) == "/env/libonly.so.3"


def test_ld_library_path_within_a_dir_highest_version(root: FakeRoot) -> None:
    """Within the first LD_LIBRARY_PATH dir that matches: ldconfig's order (libt.so.10 over
    libt.so.9), never a later dir's."""
    root.lib("/a/libt.so.9", soname="libt.so.9")
    root.lib("/a/libt.so.10", soname="libt.so.10")
    root.lib("/b/libt.so.11", soname="libt.so.11")
    assert root.resolver({"LD_LIBRARY_PATH": "/a:/b"}).lookup("t") == "/a/libt.so.10"


# -- the ABI filter, on caches glibc wrote ----------------------------------------------------


@needs_x86_64
def test_abi_filter_on_a_cache_written_by_glibc(root: FakeRoot) -> None:
    """i386 (libc6), ELF-only i386, x32 and x86-64 copies, all keyed by glibc's ldconfig;
    the higher versions are the foreign ones.  An x86-64 interpreter takes only the
    `libc6,x86-64` entry, as stock's regex does."""
    directory = default_dir()
    root.lib(f"{directory}/libabi.so.5", elfgen.elf(bits=32, machine=elfgen.EM_386,
                                                    soname="libabi.so.5", needed=("libc.so.6",)))
    root.lib(f"{directory}/libabi.so.4", elfgen.elf(bits=32, machine=elfgen.EM_386,
                                                    soname="libabi.so.4"))
    root.lib(f"{directory}/libabi.so.3", elfgen.elf(bits=32, machine=elfgen.EM_X86_64,
                                                    soname="libabi.so.3"))
    root.lib(f"{directory}/libabi.so.2", soname="libabi.so.2")
    root.ldconfig()
    listing = reference.print_cache(root.host("/etc/ld.so.cache"))
    # glibc 2.37 (8ee878592c) makes every ELF object libc6: the i386 one without libc too
    glibc = _ldscan.glibc_version("/") or (2, 37)
    assert [(k, d) for k, d, _ in listing or []] == [
        ("libabi.so.5", "libc6"), ("libabi.so.4", "ELF" if glibc < (2, 37) else "libc6"),
        ("libabi.so.3", "libc6,x32"), ("libabi.so.2", "libc6,x86-64")]
    assert root.resolver().lookup("abi") == "libabi.so.2"


@needs_x86_64
@pytest.mark.parametrize(("flags", "why"), [
    (0x0A03, "AArch64"), (0x0903, "ARM hard-float"), (0x0503, "64bit (ppc64)"),
    (0x0803, "x32"), (0x0003, "i386 libc6"), (0x0001, "ELF"), (0x0313, "x86-64 + bit 4"),
    (0x0302, "libc5 type"),
])
def test_abi_filter_on_a_hand_built_cache(root: FakeRoot, flags: int, why: str) -> None:
    """A cache laid out as glibc's sysdeps/generic/dl-cache.h describes, whose first
    matching entry has foreign flags and an existing file: passed over for the x86-64 one
    (flags exactly 0x0303, _dl_cache_check_flags)."""
    directory = default_dir()
    root.lib(f"{directory}/libabi.so.9", soname="libabi.so.9")
    root.lib(f"{directory}/libabi.so.1", soname="libabi.so.1")
    put_cache(root, cases.build_cache([(flags, "libabi.so.9", f"{directory}/libabi.so.9", 0),
                                   (0x0303, "libabi.so.1", f"{directory}/libabi.so.1", 0)]))
    assert root.resolver().lookup("abi") == "libabi.so.1", why


# -- the cache lookup: every name, judged by stock's regex over glibc's listing ---------------


def _stock(listing: list[tuple[str, str, str]], name: str) -> str | None:
    """CPython's _findSoname_ldconfig over `ldconfig -p` lines, this interpreter's ABI."""
    text = "".join("\t{} ({}) => {}\n".format(*e) for e in listing)
    abi = reference.interp().abi_pattern
    m = re.search(rf"\s+(lib{re.escape(name)}\.[^\s]+)\s+\({abi}", text)
    return m.group(1) if m else None


STEMS = (".dot", "foo", "foob", "fo", "foo-1", "foo.bar", "foo-1.0", "db-5.3", "usb-1.0", "z3", "z",
         "c", "c++", "stdc++", "gobject-2.0", "a.b.c")


@needs_x86_64
def test_every_prefix_of_every_key_against_stock(root: FakeRoot) -> None:
    """Keys that are prefixes of each other (libfoo./libfoob./libfo.), dotted and hyphenated
    stems, files without SONAME: for every lib<X>. prefix of every key, and for odd names,
    the answer is what stock's regex picks from `ldconfig -p`, also after the resolver has
    seen enough lookups to index the cache (three rounds).  The dirs are then dropped from
    ld.so.conf, so only the cache can answer."""
    default_dir()  # the reference is there
    for i, stem in enumerate(STEMS):
        root.lib(f"/opt/d/lib{stem}.so.{i}", soname=f"lib{stem}.so.{i}")
        root.lib(f"/opt/c/lib{stem}.so", soname=None)
    root.text("/etc/ld.so.conf", "/opt/c\n/opt/d\n")
    root.ldconfig()
    root.text("/etc/ld.so.conf", "")  # now only the cache knows /opt/c and /opt/d
    listing = reference.print_cache(root.host("/etc/ld.so.cache"))
    assert listing and len(listing) == 2 * len(STEMS)
    names = {"", "lib", "c.so", "foo.so", "db-5", "usb-1", "foo-1.0.so", "z3.so", "x", "fooo"}
    for key, _, _ in listing:
        for at in range(3, len(key)):
            if key[at] == ".":
                names.add(key[3:at])
    r = root.resolver()
    wrong = {}
    for _ in range(3):
        for name in sorted(names):
            want = _stock(listing, name) if name else None
            got = r.lookup(name)
            if got != want:
                wrong[name] = (got, want)
    assert wrong == {}


@needs_x86_64
def test_stale_entries_are_passed_over_in_cache_order(root: FakeRoot) -> None:
    """glibc's cache lists libst.so.3 then libst.so.2; once libst.so.3's file is deleted
    the next live entry answers."""
    directory = default_dir()
    root.lib(f"{directory}/libst.so.3", soname="libst.so.3")
    root.lib(f"{directory}/libst.so.2", soname="libst.so.2")
    root.ldconfig()
    r = root.resolver()
    assert r.lookup("st") == "libst.so.3"
    os.unlink(root.host(f"{directory}/libst.so.3"))
    assert r.lookup("st") == "libst.so.2"
