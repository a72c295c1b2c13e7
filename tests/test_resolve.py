"""The resolver on fake roots: sources, matching, version order, answers, caching."""

from __future__ import annotations

import os

import elfgen
import pytest
from conftest import FakeRoot

from ctypes_shim import _elf, _ldcache, _resolve

LIB = "/usr/lib"  # a default dir for every glibc interpreter


@pytest.mark.parametrize(("a", "b"), [
    ("libfoo.so.10", "libfoo.so.9"),
    ("libfoo.so.1", "libfoo.so"),
    ("libz3.so.4", "libz3.so"),
    ("libfoo.so.1.10", "libfoo.so.1.9"),
    ("libb.so", "liba.so"),
])
def test_libcmp_order(a: str, b: str) -> None:
    """Versions compare as ldconfig's _dl_cache_libcmp does: numbers numerically."""
    assert _ldcache.libcmp(a.encode(), b.encode()) > 0


@pytest.mark.parametrize(("name", "answer"), [
    ("gobject-2", "libgobject-2.0.so.0"),  # stock's regex: any key that starts lib<name>.
    ("gobject-2.0", "libgobject-2.0.so.0"),
    ("foo", "libfoo.so.so.1"),
    ("foo.so", "libfoo.so.so.1"),
    ("foo.so.so", "libfoo.so.so.1"),
    ("gobject", None),  # 'libgobject-2.0.' does not start with 'libgobject.'
    ("foo.so.so.1", None),  # nothing after the prefix
])
def test_names_match_key_prefixes(root: FakeRoot, name: str, answer: str | None) -> None:
    """A name answers every key that starts with lib<name>. and has more after it."""
    root.lib(f"{LIB}/libgobject-2.0.so.0", soname="libgobject-2.0.so.0")
    root.lib(f"{LIB}/libfoo.so.so.1", soname="libfoo.so.so.1")
    assert root.resolver().find(name) == answer


def test_highest_version_wins_across_dirs(root: FakeRoot) -> None:
    """With no cache, the highest soname in ldconfig order wins, wherever it lives."""
    root.lib(f"{LIB}/libfoo.so.9", soname="libfoo.so.9")
    root.lib("/lib/libfoo.so.10", soname="libfoo.so.10")
    root.lib(f"{LIB}/libfoo.so.2", soname="libfoo.so.2")
    assert root.resolver().find("foo") == "libfoo.so.10"


def test_development_symlink_answers_its_soname(root: FakeRoot) -> None:
    """libbar.so -> libbar.so.1 answers 'libbar.so.1', never the dev link's name."""
    root.lib(f"{LIB}/libbar.so.1.2.3", soname="libbar.so.1")
    root.link(f"{LIB}/libbar.so.1", "libbar.so.1.2.3")
    root.link(f"{LIB}/libbar.so", "libbar.so.1")
    assert root.resolver().find("bar") == "libbar.so.1"


def test_linker_script_is_passed_over(root: FakeRoot) -> None:
    """A GNU ld script named libc.so never answers; the real libc.so.6 does."""
    root.text(f"{LIB}/libc.so", "/* GNU ld script */\nGROUP ( /lib/libc.so.6 )\n")
    root.lib(f"{LIB}/libc.so.6", soname="libc.so.6")
    trace: list[_resolve.Step] = []
    assert root.resolver().lookup("c", trace) == "libc.so.6"
    assert [(t.source, t.outcome) for t in trace if t.subject == f"{LIB}/libc.so"] == [
        ("scan", "skipped")]


def test_wrong_architecture_is_passed_over(root: FakeRoot) -> None:
    """A library for another machine never answers, even with a higher version."""
    root.lib(f"{LIB}/libarch.so.9",
             elfgen.elf(machine=elfgen.foreign_machine(), soname="libarch.so.9"))
    resolver = root.resolver()
    assert resolver.find("arch") is None
    root.lib(f"{LIB}/libarch.so.1", soname="libarch.so.1")
    assert resolver.find("arch") == "libarch.so.1"


@pytest.mark.parametrize("kw", [{"e_type": elfgen.ET_EXEC}, {"osabi": 9}, {"dynamic": False}],
                         ids=["executable", "foreign-os-abi", "no-dynamic"])
def test_not_a_shared_object(root: FakeRoot, kw: dict[str, int]) -> None:
    """Executables, other OS ABIs and objects without PT_DYNAMIC are not libraries."""
    root.lib(f"{LIB}/libexe.so.1", soname="libexe.so.1", **kw)
    assert root.resolver().find("exe") is None


def test_truncated_library_is_passed_over(root: FakeRoot) -> None:
    """A truncated file does not hide a good older version."""
    root.lib(f"{LIB}/libcut.so.2", elfgen.native(soname="libcut.so.2")[:40])
    root.lib(f"{LIB}/libcut.so.1", soname="libcut.so.1")
    assert root.resolver().find("cut") == "libcut.so.1"


def test_no_soname_answers_the_file_name(root: FakeRoot) -> None:
    """Without DT_SONAME the file name is the key, as in ldconfig (stock returns None)."""
    root.lib(f"{LIB}/libnosoname.so")
    assert root.resolver().find("nosoname") == "libnosoname.so"


def test_missing_soname_link_answers_a_loadable_path(root: FakeRoot) -> None:
    """Only libq.so.7.1 (SONAME libq.so.7) on disk: 'libq.so.7' would not load, the path does."""
    root.lib(f"{LIB}/libq.so.7.1", soname="libq.so.7")
    assert root.resolver().find("q") == f"{LIB}/libq.so.7.1"


def test_dir_outside_the_loader_path_answers_a_path(root: FakeRoot) -> None:
    """A lib in an ld.so.conf dir, with no cache, is found but only loadable by path."""
    root.text("/etc/ld.so.conf", "/opt/vendor/lib\n")
    root.lib("/opt/vendor/lib/libvendor.so.3", soname="libvendor.so.3")
    assert root.resolver().find("vendor") == "/opt/vendor/lib/libvendor.so.3"


def test_ld_library_path_is_read_at_each_call(root: FakeRoot) -> None:
    """LD_LIBRARY_PATH set after start-up is honoured, and the answer is a path."""
    root.lib("/opt/x/libonlyenv.so.1", soname="libonlyenv.so.1")
    environ: dict[str, str] = {}
    resolver = root.resolver(environ=environ)
    assert resolver.find("onlyenv") is None
    environ["LD_LIBRARY_PATH"] = "/nonexistent::/opt/x"
    assert resolver.find("onlyenv") == "/opt/x/libonlyenv.so.1"
    del environ["LD_LIBRARY_PATH"]
    assert resolver.find("onlyenv") is None  # not memoized: it depended on the variable


def test_library_installed_later_is_found_by_the_next_call(root: FakeRoot) -> None:
    """A miss is re-checked when a searched directory changes."""
    os.makedirs(root.host(LIB))
    resolver = root.resolver()
    assert resolver.find("late") is None
    root.lib(f"{LIB}/liblate.so.1", soname="liblate.so.1")
    assert resolver.find("late") == "liblate.so.1"


def test_hits_are_memoized(root: FakeRoot) -> None:
    """A found name is answered from memory afterwards, without touching the disk."""
    path = root.lib(f"{LIB}/libmemo.so.1", soname="libmemo.so.1")
    resolver = root.resolver()
    assert resolver.find("memo") == "libmemo.so.1"
    os.unlink(path)
    assert resolver.hits["memo"] == "libmemo.so.1"
    assert resolver.find("memo") == "libmemo.so.1"
    resolver.cache_clear()
    assert resolver.find("memo") is None


def test_names_match_exactly(root: FakeRoot) -> None:
    """'c' is not 'crypt'; names with dots and regex characters are taken literally."""
    root.lib(f"{LIB}/libcrypt.so.1", soname="libcrypt.so.1")
    root.lib(f"{LIB}/libgobject-2.0.so.0", soname="libgobject-2.0.so.0")
    root.lib(f"{LIB}/libstdc++.so.6", soname="libstdc++.so.6")
    resolver = root.resolver()
    assert resolver.find("c") is None
    assert resolver.find("crypt") == "libcrypt.so.1"
    assert resolver.find("gobject-2.0") == "libgobject-2.0.so.0"
    assert resolver.find("stdc++") == "libstdc++.so.6"
    assert resolver.find("stdc..") is None
    assert resolver.find("libcrypt") is None  # stock: no 'liblibcrypt.*'


@pytest.mark.parametrize("name", ["", "/usr/lib/libc.so.6", "../../etc/passwd", "c\0",
                                  "a b", "x" * 300, b"c", None, 42, ["c"], object()],
                         ids=repr)
def test_bad_names_answer_none(root: FakeRoot, name: object) -> None:
    """Paths, empty, NUL, whitespace, too long, and non-str inputs: None, never an error."""
    root.lib(f"{LIB}/libc.so.6", soname="libc.so.6")
    assert root.resolver().find(name) is None


def test_symlink_out_of_root_is_not_followed(root: FakeRoot, tmp_path_factory: object) -> None:
    """Inside a root, an absolute symlink resolves within the root, as in a chroot."""
    root.link(f"{LIB}/libout.so.1", "/etc/hostname-nonexistent")
    root.lib("/srv/libin.so.1", soname="libin.so.1")
    root.link(f"{LIB}/libin.so.1", "/srv/libin.so.1")  # absolute: means ROOT/srv/...
    resolver = root.resolver()
    assert resolver.find("out") is None
    assert resolver.find("in") == "libin.so.1"


# -- ld.so.cache as a source ----------------------------------------------------------------

def test_cache_answers_first_and_in_cache_order(root: FakeRoot) -> None:
    """A cache entry is stock's answer: the first matching key in cache order."""
    root.text("/etc/ld.so.conf", "/opt/conf\n")
    root.lib("/opt/conf/libcc.so.2", soname="libcc.so.2")
    root.lib(f"{LIB}/libcc.so.1", soname="libcc.so.1")
    root.ldconfig()
    trace: list[_resolve.Step] = []
    resolver = root.resolver()
    assert resolver.lookup("cc", trace) == "libcc.so.2"  # loadable through the cache
    assert trace[-1].source == "ld.so.cache"


def test_stale_cache_falls_back_to_the_scan(root: FakeRoot) -> None:
    """Entries whose files are gone are passed over; libraries added later are scanned."""
    old = root.lib(f"{LIB}/libgone.so.1", soname="libgone.so.1")
    root.ldconfig()
    os.unlink(old)
    root.lib(f"{LIB}/libnew.so.4", soname="libnew.so.4")
    resolver = root.resolver()
    trace: list[_resolve.Step] = []
    assert resolver.lookup("gone", trace) is None
    assert [(t.source, t.outcome, t.detail) for t in trace if t.subject == f"{LIB}/libgone.so.1"
            ] == [("ld.so.cache", "skipped", "stale entry, file missing")]
    assert resolver.find("new") == "libnew.so.4"


def test_cache_entries_for_another_abi_are_passed_over(root: FakeRoot) -> None:
    """i386 entries in a cache never answer a 64-bit interpreter (and vice versa)."""
    if _elf.read_elf("/proc/self/exe").machine != elfgen.EM_X86_64:
        pytest.skip("the host ldconfig must know i386 and this interpreter must be x86_64")
    root.lib(f"{LIB}/libmulti.so.5", elfgen.elf(bits=32, machine=elfgen.EM_386,
                                                soname="libmulti.so.5", needed=("libc.so.6",)))
    root.lib("/usr/lib64/libmulti.so.4", soname="libmulti.so.4")
    root.text("/etc/ld.so.conf", "/usr/lib64\n")
    root.ldconfig()
    assert root.resolver().find("multi") == "libmulti.so.4"


def test_cache_replaced_while_running_is_reread(root: FakeRoot) -> None:
    """A rewritten cache is noticed at the next miss."""
    root.text("/etc/ld.so.conf", "/opt/a\n")
    root.ldconfig()
    resolver = root.resolver()
    assert resolver.find("fresh") is None
    root.lib("/opt/a/libfresh.so.1", soname="libfresh.so.1")
    root.ldconfig()
    assert resolver.find("fresh") == "libfresh.so.1"


@pytest.mark.parametrize("data", [b"", b"garbage" * 10, b"glibc-ld.so.cache1.1" + b"\xff" * 30],
                         ids=["empty", "garbage", "bad-header"])
def test_unusable_cache_falls_back_to_the_scan(root: FakeRoot, data: bytes) -> None:
    """A broken cache file is ignored, not fatal."""
    root.lib(f"{LIB}/libok.so.1", soname="libok.so.1")
    elfgen.write(root.host("/etc/ld.so.cache"), data)
    assert root.resolver().find("ok") == "libok.so.1"


# -- musl ------------------------------------------------------------------------------------

def musl_native() -> _resolve.Native:
    return _resolve.Native(_elf.parse_elf(elfgen.native(interp="/lib/ld-musl-x86_64.so.1")))


def test_musl_libc_names_answer_the_loader(root: FakeRoot) -> None:
    """musl's libc provides c, m, pthread, dl...; dlopen knows it by the loader's name."""
    resolver = root.resolver(native=musl_native())
    assert resolver.find("c") == "ld-musl-x86_64.so.1"
    assert resolver.find("pthread") == "ld-musl-x86_64.so.1"


def test_musl_uses_its_path_file_and_no_cache(root: FakeRoot) -> None:
    """musl: /etc/ld-musl-<arch>.path decides the dirs; ld.so.cache is never read."""
    root.lib("/opt/m/libzz.so.1", soname="libzz.so.1")
    root.lib("/usr/lib/libzz.so.2", soname="libzz.so.2")
    root.text("/etc/ld-musl-x86_64.path", "/opt/m\n")
    resolver = root.resolver(native=musl_native())
    assert resolver.find("zz") == "libzz.so.1"
    os.unlink(root.host("/etc/ld-musl-x86_64.path"))
    resolver.cache_clear()
    assert resolver.find("zz") == "libzz.so.2"  # defaults: /lib:/usr/local/lib:/usr/lib
