"""ld.so.conf parsing, LD_LIBRARY_PATH splitting and default dirs, on fake roots."""

from __future__ import annotations

import os

from conftest import FakeRoot

from ctypes_shim import _ldpaths


def test_conf_with_sorted_include_globs_comments_and_hwcap(root: FakeRoot) -> None:
    """Includes expand in sorted order at their place; comments and hwcap lines vanish."""
    root.text("/etc/ld.so.conf", "/first # comment\ninclude /etc/ld.so.conf.d/*.conf\n"
                                 "hwcap 0 nosegneg\n  /last/ \n\n# only a comment\n")
    root.text("/etc/ld.so.conf.d/b.conf", "/b1\n/b2\n")
    root.text("/etc/ld.so.conf.d/a.conf", "/a1\n")
    root.text("/etc/ld.so.conf.d/c.txt", "/ignored\n")
    dirs = _ldpaths.parse_ld_so_conf(root=root.path)
    assert [d for d, _ in dirs] == ["/first", "/a1", "/b1", "/b2", "/last"]
    assert dirs[1][1] == "/etc/ld.so.conf.d/a.conf:1"


def test_relative_include_is_relative_to_the_including_file(root: FakeRoot) -> None:
    """ldconfig resolves a relative include against the including file's directory."""
    root.text("/etc/ld.so.conf", "include sub/*.conf\n")
    root.text("/etc/sub/x.conf", "/x\n")
    assert [d for d, _ in _ldpaths.parse_ld_so_conf(root=root.path)] == ["/x"]


def test_include_cycles_and_missing_files_are_tolerated(root: FakeRoot) -> None:
    """A file including itself (directly or not) is read once; a missing include is silent."""
    root.text("/etc/ld.so.conf", "/top\ninclude /etc/loop.conf\ninclude /etc/missing.conf\n")
    root.text("/etc/loop.conf", "/loop\ninclude /etc/ld.so.conf\ninclude /etc/loop.conf\n")
    assert [d for d, _ in _ldpaths.parse_ld_so_conf(root=root.path)] == ["/top", "/loop"]


def test_conf_d_is_read_when_ld_so_conf_is_missing(root: FakeRoot) -> None:
    """Images with libc6 but no libc-bin have ld.so.conf.d/*.conf and no ld.so.conf."""
    root.text("/etc/ld.so.conf.d/x86_64-linux-gnu.conf", "/usr/local/lib/x86_64-linux-gnu\n")
    seen: list[str] = []
    assert [d for d, _ in _ldpaths.conf_dirs(root=root.path, seen=seen)] == [
        "/usr/local/lib/x86_64-linux-gnu"]
    assert root.host("/etc/ld.so.conf") in seen  # its appearance must be noticed


def test_no_conf_at_all(root: FakeRoot) -> None:
    """No configuration means no extra dirs, not an error."""
    assert _ldpaths.conf_dirs(root=root.path) == ()


def test_ld_library_path_glibc_and_musl() -> None:
    """glibc: ':' and ';' separate, empty means '.'; musl skips empty parts."""
    assert _ldpaths.ld_library_path("/a::/b;/c:") == ("/a", ".", "/b", "/c", ".")
    assert _ldpaths.ld_library_path("/a::/b\n/c:", musl=True) == ("/a", "/b", "/c")
    assert _ldpaths.ld_library_path("") == ()
    assert _ldpaths.ld_library_path(None) == ()


def test_ldconfig_dirs_follow_the_roots_glibc(root: FakeRoot) -> None:
    """ldconfig's built-in dirs: Debian's multiarch list where the root's libc.so.6 lies in
    a multiarch dir; upstream's /lib64 expansion where it lies in /lib64."""
    t = "x86_64-linux-gnu"
    root.lib(f"/lib/{t}/libc.so.6", soname="libc.so.6")
    assert _ldpaths.ldconfig_dirs(root=root.path, triplet=t, bits=64, machine="x86_64") == (
        f"/lib/{t}", f"/usr/lib/{t}", "/lib", "/usr/lib")
    os.remove(root.host(f"/lib/{t}/libc.so.6"))
    root.lib("/lib64/libc.so.6", soname="libc.so.6")
    assert _ldpaths.ldconfig_dirs(root=root.path, triplet=t, bits=64, machine="x86_64") == (
        "/lib", "/lib64", "/libx32", "/usr/lib", "/usr/lib64", "/usr/libx32")
    assert _ldpaths.ldconfig_dirs(root=root.path, triplet=None, bits=32) == ("/lib", "/usr/lib")


def test_musl_path_file(root: FakeRoot) -> None:
    """musl: the path file's dirs; defaults when it is missing; none when it is empty."""
    assert [d for d, _ in _ldpaths.musl_path_dirs("x86_64", root=root.path)] == [
        "/lib", "/usr/local/lib", "/usr/lib"]
    root.text("/etc/ld-musl-x86_64.path", "/opt/a:/opt/b\n/opt/c\n")
    assert [d for d, _ in _ldpaths.musl_path_dirs("x86_64", root=root.path)] == [
        "/opt/a", "/opt/b", "/opt/c"]
    root.text("/etc/ld-musl-x86_64.path", "")
    assert _ldpaths.musl_path_dirs("x86_64", root=root.path) == ()


def test_loader_dirs_follow_the_layout(root: FakeRoot) -> None:
    """Debian's loader searches the multiarch dirs and no lib64; others search lib64 too."""
    root.lib("/lib64/libc.so.6", soname="libc.so.6")
    assert _ldpaths.loader_dirs(root=root.path, bits=64, triplet="x86_64-linux-gnu") == (
        "/lib64", "/usr/lib64", "/lib", "/usr/lib")
    os.remove(root.host("/lib64/libc.so.6"))
    root.lib("/usr/lib/x86_64-linux-gnu/libc.so.6", soname="libc.so.6")
    assert _ldpaths.loader_dirs(root=root.path, bits=64, triplet="x86_64-linux-gnu") == (
        "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib")


def test_hwcap_lines_are_ignored_in_any_case(root: FakeRoot) -> None:
    """ldconfig compares 'hwcap' case-insensitively."""
    root.text("/etc/ld.so.conf", "HWCAP 1 foo\n/real\n")
    assert [d for d, _ in _ldpaths.parse_ld_so_conf(root=root.path)] == ["/real"]
