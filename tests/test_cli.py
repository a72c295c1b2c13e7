"""`python -m ctypes_shim`: find, ldconfig, doctor; exit codes and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import elfgen
import pytest
from fuzz.support import BASE_PYTHON

import ctypes_shim
from ctypes_shim import _cli, _ldcache, _ldconfig, _ldscan
from ctypes_shim._cli import main

LDCONFIG = "/sbin/ldconfig"
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(ctypes_shim.__file__)))

needs_ldconfig = pytest.mark.skipif(not os.path.exists(LDCONFIG),
                                    reason="no /sbin/ldconfig on this machine")


@pytest.fixture(autouse=True)
def _no_ld_library_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fixture roots must not see the test runner's LD_LIBRARY_PATH."""
    monkeypatch.delenv("LD_LIBRARY_PATH", raising=False)


_write = elfgen.put


def make_root(base: object) -> str:
    """/opt/a named in ld.so.conf, holding libraries for every --explain verdict."""
    root = str(base)
    _write(root, "/etc/ld.so.conf", "/opt/a\n")
    a = "/opt/a/"
    _write(root, a + "libfoo.so.1", elfgen.native(soname="libfoo.so.1",
                                                  needed=("libdep.so.1", "libgone.so.9")))
    _write(root, a + "libfoo.so.0", elfgen.native(soname="libfoo.so.0"))  # superseded
    _write(root, a + "libfoo.so.7", elfgen.elf(machine=elfgen.foreign_machine(),
                                               soname="libfoo.so.7"))  # wrong architecture
    _write(root, a + "libfoo.so", "/* GNU ld script */\nGROUP ( libfoo.so.1 )\n")
    _write(root, a + "libdep.so.1", elfgen.native(soname="libdep.so.1"))
    _write(root, a + "libnoso.so.2", elfgen.native())  # no SONAME
    return root


def _one_error_line(err: str) -> str:
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert err.startswith("ctypes-shim: error: ") and "Traceback" not in err, err
    return err[len("ctypes-shim: error: "):-1]


def _subprocess(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8",
           "PYTHONPATH": PACKAGE_PARENT}
    return subprocess.run([sys.executable, "-m", "ctypes_shim", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False,
                          **kw)  # type: ignore[call-overload,no-any-return]


# -- help, version, start-up ----------------------------------------------------------------


@pytest.mark.parametrize("args", [["--help"], ["find", "--help"], ["ldconfig", "--help"],
                                  ["doctor", "--help"]], ids=" ".join)
def test_help_for_every_command(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Every command has --help; it exits 0."""
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: ctypes-shim")
    if args[0] == "ldconfig":
        assert "never creates, changes or removes soname symlinks" in " ".join(out.split())


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """--version prints the package version."""
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"ctypes-shim {ctypes_shim.__version__}\n"


def test_cli_import_is_cheap() -> None:
    """Importing the CLI loads no resolver, ELF reader, json or ctypes: handlers do that."""
    code = ("import sys, ctypes_shim._cli; "
            "print(sorted(m for m in sys.modules if m.startswith('ctypes_shim') "
            "or m in ('json', 'ctypes', 'elftools', '_ctypes')))")
    done = subprocess.run([BASE_PYTHON, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True,
                          env={"PYTHONPATH": PACKAGE_PARENT, "PATH": os.environ["PATH"]})
    assert done.stdout.strip() == "['ctypes_shim', 'ctypes_shim._cli']"


# -- find ----------------------------------------------------------------------------------------


def test_find_prints_each_name_and_exit_1_when_one_is_missing(
        tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    """One line per name; exit 1 because 'nope' is not found."""
    root = make_root(tmp_path)
    assert main(["find", "--root", root, "foo", "nope"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["foo", "/opt/a/libfoo.so.1"]  # not a loader dir: a path
    assert lines[1].split() == ["nope", "not", "found"]
    assert main(["find", "--root", root, "foo", "dep"]) == 0


def test_find_json(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    """--json gives the answers as data, with the same exit code."""
    root = make_root(tmp_path)
    assert main(["find", "--json", "--root", root, "foo", "nope"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["root"] == root
    assert [(r["name"], r["found"], r["result"]) for r in report["results"]] == [
        ("foo", True, "/opt/a/libfoo.so.1"), ("nope", False, None)]


def test_find_explain_every_verdict(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    """--explain: each candidate in order with why it was taken or rejected, and the source."""
    root = make_root(tmp_path)
    assert main(["find", "--explain", "--root", root, "foo", "noso"]) == 0
    out = capsys.readouterr().out
    assert "answered by: scan" in out
    assert "unusable: no such file" in out  # no ld.so.cache in this root
    assert "libfoo.so  skipped: linker script" in out
    assert "libfoo.so.7  skipped: wrong architecture" in out
    assert "libfoo.so.0  superseded: libfoo.so.1 sorts first" in out
    assert "candidate: no SONAME, file name libnoso.so.2" in out
    assert "taken: /opt/a/libfoo.so.1" in out


def test_find_explain_with_a_cache_and_dt_needed(tmp_path: object,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """With our cache: the cache answers; DT_NEEDED shows what this root cannot resolve."""
    root = make_root(tmp_path)
    assert main(["ldconfig", "--root", root]) == 0
    capsys.readouterr()
    assert main(["find", "--explain", "--json", "--root", root, "foo"]) == 0
    result = json.loads(capsys.readouterr().out)["results"][0]
    assert result["source"] == "ld.so.cache" and result["path"] == "/opt/a/libfoo.so.1"
    assert result["result"] == "libfoo.so.1"  # the cache answers with the soname
    assert result["needed"] == [
        {"soname": "libdep.so.1", "path": "/opt/a/libdep.so.1", "via": "ld.so.cache"},
        {"soname": "libgone.so.9", "path": None, "via": None, "error": "not found"}]
    assert result["loads"] is False
    assert result["load_problem"] == "libgone.so.9 needed by /opt/a/libfoo.so.1: not found"
    assert main(["find", "--explain", "--root", root, "foo"]) == 0
    out = capsys.readouterr().out
    assert "libgone.so.9 => NOT FOUND in this root" in out
    assert "libdep.so.1 => /opt/a/libdep.so.1 (ld.so.cache)" in out
    assert "  loads: no: libgone.so.9 needed by /opt/a/libfoo.so.1: not found" in out
    os.unlink(os.path.join(root, "opt/a/libdep.so.1"))
    assert main(["find", "--explain", "--root", root, "dep"]) == 1
    out = capsys.readouterr().out
    assert "/opt/a/libdep.so.1  skipped: stale entry, file missing" in out
    assert "no usable libdep.* file" in out


def test_find_explain_needed_only_in_a_conf_dir(tmp_path: object,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Without a cache the loader never looks in ld.so.conf dirs: --explain says so."""
    root = make_root(tmp_path)
    assert main(["find", "--explain", "--root", root, "foo"]) == 0
    out = capsys.readouterr().out
    assert ("libdep.so.1 => NOT FOUND by the loader: /opt/a/libdep.so.1 is only in a dir "
            "from /etc/ld.so.conf:1, which needs ld.so.cache") in out
    assert "libgone.so.9 => NOT FOUND in this root" in out


def test_find_explain_needs_no_pyelftools(tmp_path: object, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """DT_NEEDED comes from the package's own ELF reader: --explain works without pyelftools."""
    root = make_root(tmp_path)
    monkeypatch.setitem(sys.modules, "elftools", None)  # any import of it would fail
    assert main(["find", "--explain", "--root", root, "foo"]) == 0
    out = capsys.readouterr().out
    assert "libdep.so.1 => NOT FOUND by the loader" in out
    assert "  loads: no: libdep.so.1 needed by /opt/a/libfoo.so.1: not found" in out


def test_compare_is_host_only(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    """Stock find_library cannot look inside a root: --compare with --root is bad usage."""
    assert main(["find", "--compare", "--root", str(tmp_path), "c"]) == 2
    assert "--compare" in _one_error_line(capsys.readouterr().err)


@pytest.mark.host
@needs_ldconfig
def test_compare_shows_stock_side_by_side(capsys: pytest.CaptureFixture[str]) -> None:
    """On the host, --compare adds stock's answer; the shim agrees for libc."""
    assert main(["find", "--compare", "c", "surely-not-a-lib"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "SHIM", "STOCK"]
    assert lines[1].split() == ["c", "libc.so.6", "libc.so.6"]
    assert lines[2].split() == ["surely-not-a-lib", "not", "found", "not", "found"]


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "code", "text"), [
    (["frobnicate"], 2, "invalid choice: 'frobnicate'"),
    ([], 2, "required: COMMAND"),
    (["find"], 2, "required: NAME"),
    (["find", "--root", "/nonexistent/root", "c"], 2, "'/nonexistent/root' is not a directory"),
    (["find", "--root", "", "c"], 2, "root must not be empty"),
    (["find", ""], 2, "not a library name: ''"),
    (["find", "a/b"], 2, "not a library name: 'a/b'"),
    (["find", "two words"], 2, "not a library name: 'two words'"),
    (["find", "x" * 300], 2, "not a library name"),
    (["find", "c", 3], 2, "arguments must be strings, not int"),
    (["find", b"c"], 2, "arguments must be strings, not bytes"),
    (["find", "a\0b"], 2, "must not contain NUL"),
    (["find", "--bogus", "c"], 2, "unrecognized arguments: --bogus"),
    (["ldconfig"], 2, "writing a cache needs --root"),
    (["ldconfig", "-p", "-f", "/etc/x.conf"], 2, "-f and -v only apply when writing"),
    (["ldconfig", "-p", "-C", "/nonexistent/ld.so.cache"], 1,
     "Can't open cache file /nonexistent/ld.so.cache: No such file or directory"),
    (["ldconfig", "-p", "-C", "/"], 1, "Can't open cache file /: Is a directory"),
    (["doctor", "--root", "/nonexistent/root"], 2, "is not a directory"),
], ids=repr)
def test_bad_input_is_one_line(args: list[object], code: int, text: str,
                               capsys: pytest.CaptureFixture[str]) -> None:
    """Bad input: exit 2 (usage) or 1 (cannot do it), one line on stderr, no traceback."""
    assert main(args) == code  # type: ignore[arg-type]
    captured = capsys.readouterr()
    assert text in _one_error_line(captured.err)
    assert captured.out == ""


def test_garbage_and_empty_caches(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    """A file that is not a cache: exit 1, one line.  An empty one prints nothing, like glibc."""
    root = str(tmp_path)
    _write(root, "/etc/ld.so.cache", b"garbage, not a cache\n" * 10)
    _write(root, "/etc/empty.cache", b"")
    _write(root, "/etc/truncated.cache", b"glibc-ld.so.cache1.1" + b"\xff" * 40)
    assert main(["ldconfig", "-p", "--root", root]) == 1
    assert "/etc/ld.so.cache: File is not a cache file" in _one_error_line(
        capsys.readouterr().err)
    assert main(["ldconfig", "-p", "--root", root, "-C", "/etc/truncated.cache"]) == 1
    assert "File is not a cache file" in _one_error_line(capsys.readouterr().err)
    assert main(["ldconfig", "-p", "--root", root, "-C", "/etc/empty.cache"]) == 0
    assert capsys.readouterr() == ("", "")


def test_unexpected_errors_are_one_line(monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """A bug in a handler still gives one line and exit 1, never a traceback."""
    def boom(root: str) -> None:
        raise RuntimeError("boom")

    monkeypatch.delenv("CTYPES_SHIM_DEBUG", raising=False)
    monkeypatch.setattr(_cli, "_doctor", boom)
    assert main(["doctor"]) == 1
    assert _one_error_line(capsys.readouterr().err) == "internal error: RuntimeError('boom')"

    def interrupt(root: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(_cli, "_doctor", interrupt)
    assert main(["doctor"]) == 130
    assert _one_error_line(capsys.readouterr().err) == "interrupted"


# -- ldconfig -p -------------------------------------------------------------------------------


def test_print_our_cache(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    """-p lists a cache exactly as glibc's own `ldconfig -p` lists the same file; --json
    gives the same entries as data."""
    root = make_root(tmp_path)
    assert main(["ldconfig", "--root", root]) == 0
    capsys.readouterr()
    assert main(["ldconfig", "-p", "--root", root]) == 0
    out = capsys.readouterr().out.splitlines()
    glibc = _glibc_print(os.path.join(root, "etc/ld.so.cache"))
    assert out[0] == "4 libs found in cache `/etc/ld.so.cache'"
    assert out[1:] == glibc[1:]  # glibc names the file by the path it was given
    flags = glibc[1].split(" (")[1].split(")")[0]
    assert out[1] == f"\tlibnoso.so.2 ({flags}) => /opt/a/libnoso.so.2"
    assert out[-1] == f"Cache generated by: {_ldconfig.GENERATOR}"
    assert main(["ldconfig", "-p", "--json", "--root", root]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["format"] == "new" and report["generator"] == _ldconfig.GENERATOR
    assert [e["key"] for e in report["entries"]] == ["libnoso.so.2", "libfoo.so.1",
                                                     "libfoo.so.0", "libdep.so.1"]
    assert report["entries"][0]["description"] == flags


def _require_ldconfig() -> None:
    if os.path.exists(LDCONFIG):
        return
    if os.environ.get("CTYPES_SHIM_TEST_DISTROLESS") == "require":  # CI: never skip
        pytest.fail("glibc's ldconfig is required in CI")
    pytest.skip("no /sbin/ldconfig on this machine")


def _glibc_print(cache: str) -> list[str]:
    """glibc's `ldconfig -p -C CACHE`, line by line."""
    _require_ldconfig()
    done = subprocess.run([LDCONFIG, "-p", "-C", cache], capture_output=True, text=True,
                          env={"LC_ALL": "C"}, timeout=60, check=True)
    return done.stdout.splitlines()


def elfgen_flags() -> int:
    """The flags glibc's own ldconfig gives a native generated library, read from the
    cache it writes (sysdeps/generic/dl-cache.h: a 48-byte header, then 24-byte entries
    whose first field is int32 flags)."""
    _require_ldconfig()
    import tempfile  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as root:
        _write(root, "/etc/ld.so.conf", "/opt/x\n")
        _write(root, "/opt/x/libflags.so.1", elfgen.native(soname="libflags.so.1"))
        subprocess.run([LDCONFIG, "-X", "-r", root, "-C", "/glibc.cache"], check=True,
                       capture_output=True, timeout=60)
        with open(os.path.join(root, "glibc.cache"), "rb") as f:
            data = f.read()
    assert data[:20] == b"glibc-ld.so.cache1.1"
    assert int.from_bytes(data[20:24], sys.byteorder) == 1  # nlibs
    return int.from_bytes(data[48:52], sys.byteorder, signed=True)


# -- doctor ------------------------------------------------------------------------------------


def with_libc(root: str) -> str:
    """A libc.so.6 in /usr/lib: a root where find_library('c') answers."""
    _write(root, "/usr/lib/libc.so.6", elfgen.native(soname="libc.so.6"))
    return root


def test_doctor_without_a_cache_is_ok(tmp_path: object,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """No cache is reported, not wrong: find_library scans the dirs then."""
    root = with_libc(make_root(tmp_path))
    assert main(["doctor", "--root", root]) == 0
    out = capsys.readouterr().out
    assert ["/opt/a", "/etc/ld.so.conf:1"] in [line.split() for line in out.splitlines()]
    assert "no ld.so.cache" in out and out.rstrip().endswith("summary: OK")


def test_doctor_fresh_stale_and_missing(tmp_path: object,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """A fresh cache is OK; a deleted library makes it stale, a new one missing: exit 1."""
    root = with_libc(make_root(tmp_path))
    assert main(["ldconfig", "--root", root]) == 0
    assert main(["doctor", "--root", root]) == 0
    assert capsys.readouterr().out.rstrip().endswith("summary: OK")
    os.unlink(os.path.join(root, "opt/a/libdep.so.1"))
    _write(root, "/opt/a/libnew.so.4", elfgen.native(soname="libnew.so.4"))
    assert main(["doctor", "--root", root, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    cache = report["cache"]
    assert cache["stale"] == [{"key": "libdep.so.1", "value": "/opt/a/libdep.so.1"}]
    assert cache["missing"] == [{"key": "libnew.so.4", "value": "/opt/a/libnew.so.4",
                                 "flags": elfgen_flags()}]
    assert report["problems"] == ["ld.so.cache has 1 stale entry (file gone)",
                                  "1 library on disk missing from ld.so.cache"]
    assert report["summary"].startswith("2 problems: ")
    assert main(["doctor", "--root", root]) == 1
    out = capsys.readouterr().out
    assert "    libdep.so.1 => /opt/a/libdep.so.1" in out
    assert f"rewrite the cache with `ctypes-shim ldconfig --root {root}`" in out


def test_doctor_missing_soname_link(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    """The cache names <dir>/<soname>; with only libfoo.so.1.2 on disk the loader fails."""
    root = with_libc(str(tmp_path))
    _write(root, "/etc/ld.so.conf", "/opt/a\n")
    _write(root, "/opt/a/libfoo.so.1.2", elfgen.native(soname="libfoo.so.1"))
    assert main(["ldconfig", "--root", root]) == 0
    assert main(["doctor", "--root", root]) == 1
    out = capsys.readouterr().out
    assert "    /opt/a/libfoo.so.1 (the library is /opt/a/libfoo.so.1.2)" in out
    os.symlink("libfoo.so.1.2", os.path.join(root, "opt/a/libfoo.so.1"))
    assert main(["doctor", "--root", root]) == 0


def test_doctor_unreadable_config_and_cache(tmp_path: object,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A config file that cannot be read, or a garbage cache: wrong, exit 1."""
    root = str(tmp_path)
    os.makedirs(os.path.join(root, "etc/ld.so.conf"))  # a directory cannot be read
    _write(root, "/etc/ld.so.cache", b"not a cache")
    assert main(["doctor", "--root", root, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert any("config file" in p and "Is a directory" in p for p in report["problems"])
    assert any(p.startswith("ld.so.cache cannot be read") for p in report["problems"])


def test_doctor_json_shape(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    """--json carries every section the text shows."""
    root = with_libc(make_root(tmp_path))
    assert main(["doctor", "--json", "--root", root]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) >= {"version", "root", "shim", "interpreter", "architecture", "libc",
                           "search_path", "search_path_skipped", "cache", "problems", "notes",
                           "summary"}
    assert report["search_path"][0] == {"dir": "/opt/a", "origin": "/etc/ld.so.conf:1"}
    assert report["shim"]["package"] == os.path.dirname(ctypes_shim.__file__)
    assert report["interpreter"]["executable"] == sys.executable


@pytest.mark.host
def test_doctor_on_this_machine(capsys: pytest.CaptureFixture[str]) -> None:
    """On the host: libc from os.confstr; the cache's entry count, generator and stale
    entries are what glibc's `ldconfig -p` shows; exit 1 exactly when it found problems."""
    code = main(["doctor", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == (1 if report["problems"] else 0)
    if os.confstr("CS_GNU_LIBC_VERSION"):
        assert report["libc"]["name"] == "glibc"
        assert report["libc"]["version"] == os.confstr("CS_GNU_LIBC_VERSION").split()[1]
    if not os.path.exists("/etc/ld.so.cache"):
        assert report["cache"]["present"] is False
        return
    lines = _glibc_print("/etc/ld.so.cache")
    entries = [line.split(" => ") for line in lines if line.startswith("\t")]
    assert report["cache"]["present"] is True
    assert report["cache"]["entries"] == int(lines[0].split()[0]) == len(entries)
    generated = [line for line in lines if line.startswith("Cache generated by: ")]
    assert report["cache"]["generator"] == (generated[0][20:] if generated else None)
    stale = [{"key": k.strip().split(" (")[0], "value": v} for k, v in entries
             if not os.path.exists(v)]
    assert report["cache"]["stale"] == stale


def test_doctor_on_an_empty_root_is_a_problem(tmp_path: object,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """An empty dir: no search dir, no libc, nothing resolves: two problems, exit 1."""
    assert main(["doctor", "--root", str(tmp_path), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["problems"] == [
        "no directory of the search path exists in this root: nothing resolves",
        "no libc: find_library('c') finds nothing"]
    assert report["search_path"] == []
    assert {d["why"] for d in report["search_path_skipped"]} == {"missing on disk"}
    assert main(["doctor", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "search path: (none)" in out and "summary: 2 problems: " in out


def test_doctor_lists_search_path_entries_it_does_not_read(
        tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    """Conf dirs missing on disk and usrmerge duplicates are shown, each with why."""
    root = with_libc(str(tmp_path))
    _write(root, "/etc/ld.so.conf", "/opt/missing\n/opt/file\n/usr/lib\n")
    _write(root, "/opt/file", "not a directory")
    os.symlink("usr/lib", os.path.join(root, "lib"))  # usrmerge
    assert main(["doctor", "--root", root, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["search_path"] == [{"dir": "/usr/lib", "origin": "/etc/ld.so.conf:3"}]
    skipped = {(d["dir"], d["origin"]): d["why"] for d in report["search_path_skipped"]}
    assert skipped[("/opt/missing", "/etc/ld.so.conf:1")] == "missing on disk"
    assert skipped[("/opt/file", "/etc/ld.so.conf:2")] == "not a directory"
    assert skipped[("/lib", "default")] == "same directory as /usr/lib, read once"
    assert skipped[("/usr/lib", "default")] == "already in the search path"
    assert main(["doctor", "--root", root]) == 0
    out = capsys.readouterr().out
    assert "  not read:\n" in out
    assert ["/opt/missing", "/etc/ld.so.conf:1:", "missing", "on", "disk"] in [
        line.split() for line in out.splitlines()]


def test_paths_under_root_are_inside_the_root(tmp_path: object,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """One convention, said in --help: doctor names the cache and config files as the
    root sees them, as find --explain does."""
    root = with_libc(make_root(tmp_path))
    assert main(["ldconfig", "--root", root]) == 0
    assert main(["doctor", "--root", root, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["cache"]["path"] == "/etc/ld.so.cache"
    assert report["config_files"] == ["/etc/ld.so.conf"]
    assert main(["--help"]) == 0
    assert "is a path inside ROOT" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("names", [["c", "m"], ["c", "averylongname"]], ids=" ".join)
def test_compare_header_lines_up(names: list[str]) -> None:
    """--compare's header sits over its columns, also when every name is shorter than
    NAME or every answer shorter than SHIM."""
    results = [{"name": n, "result": "libc.so.6" if n == "c" else None, "stock": "x"}
               for n in names]
    lines = _cli._find_text(results, compare=True, explain=False)
    assert lines[1].index("libc.so.6") == lines[0].index("SHIM")
    assert lines[1].rindex(" x") + 1 == lines[0].index("STOCK")
    short = _cli._find_text([{"name": "z", "result": "a", "stock": "b"}], compare=True,
                            explain=False)
    assert short == ["NAME  SHIM  STOCK", "z     a     b"]


# -- as a real process ---------------------------------------------------------------------------


def test_subprocess_find_and_errors(tmp_path: object) -> None:
    """`python -m ctypes_shim` as a process: the answers, exit codes, one-line errors."""
    root = make_root(tmp_path)
    done = _subprocess("find", "--root", root, "foo", "dep")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["foo", "/opt/a/libfoo.so.1", "dep", "/opt/a/libdep.so.1"]
    done = _subprocess("frobnicate")
    assert done.returncode == 2 and done.stdout == ""
    assert "invalid choice: 'frobnicate'" in _one_error_line(done.stderr)
    done = _subprocess("ldconfig", "-p", "--root", root)
    assert done.returncode == 1
    assert _one_error_line(done.stderr) == ("Can't open cache file /etc/ld.so.cache: "
                                            "No such file or directory")


def test_subprocess_broken_pipe(tmp_path: object) -> None:
    """`ctypes-shim ldconfig -p | head -1`: the reader goes away; no traceback, exit 1."""
    scan = _ldscan.Scan(str(tmp_path), _ldscan.Machine())
    scan.entries = [_ldscan.Entry(f"libn{i}.so.1", f"/opt/long/path/number/{i}/libn.so.1",
                                    0x0303) for i in range(5000)]
    _write(str(tmp_path), "/big.cache", _ldconfig.build(scan))
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": PACKAGE_PARENT}
    proc = subprocess.Popen([sys.executable, "-m", "ctypes_shim", "ldconfig", "-p", "-C",
                             os.path.join(str(tmp_path), "big.cache")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b"5000 libs found")
    proc.stdout.close()
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=120) == 1
    assert err == b""


def test_generated_cache_matches_glibc(tmp_path: object) -> None:
    """Our writer's cache, printed by glibc's own `ldconfig -p`, lists what glibc's
    ldconfig writes for the same root, in the same order; our reader reads both alike."""
    root = make_root(tmp_path)
    assert main(["ldconfig", "--root", root]) == 0
    ours = _glibc_print(os.path.join(root, "etc/ld.so.cache"))
    subprocess.run([LDCONFIG, "-X", "-r", root, "-C", "/glibc.cache"], check=True,
                   capture_output=True, timeout=60)
    theirs = _glibc_print(os.path.join(root, "glibc.cache"))
    assert [x for x in ours[1:] if not x.startswith("Cache generated by")] == [
        x for x in theirs[1:] if not x.startswith("Cache generated by")]
    assert [x.split()[0] for x in ours[1:-1]] == ["libnoso.so.2", "libfoo.so.1",
                                                  "libfoo.so.0", "libdep.so.1"]
    description = ours[1].split(" (")[1].split(")")[0]
    for path in ("etc/ld.so.cache", "glibc.cache"):
        cache = _ldcache.read_cache(os.path.join(root, path))
        assert [f"\t{e.key} ({description}) => {e.value}" for e in cache.entries] == ours[1:-1]
