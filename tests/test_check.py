"""`ctypes-shim check`: the ast scan (every call shape, no false positives), the answers in
generated roots, exit codes, JSON, and proof that it never runs what it scans nor starts a
process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import elfgen
import pytest
from fuzz.support import python_env

from ctypes_shim import _check
from ctypes_shim._cli import main


@pytest.fixture(autouse=True)
def _no_ld_library_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LD_LIBRARY_PATH", raising=False)


def names(source: str) -> list[tuple[int, tuple[str, ...] | None, str | None]]:
    """(line, names, guard) of each lookup in *source*."""
    found = _check.scan_source(textwrap.dedent(source), "m.py")
    return [(x.line, x.names, x.guard) for x in found]


# -- call shapes ------------------------------------------------------------------------------


@pytest.mark.parametrize(("source", "expected"), [
    ("import ctypes.util\nctypes.util.find_library('a')", [(2, ("a",), None)]),
    ("import ctypes.util as cu\ncu.find_library('b')", [(2, ("b",), None)]),
    ("from ctypes import util\nutil.find_library('c')", [(2, ("c",), None)]),
    ("from ctypes import util as u\nu.find_library('d')", [(2, ("d",), None)]),
    ("from ctypes.util import find_library\nfind_library('e')", [(2, ("e",), None)]),
    ("from ctypes.util import find_library as fl\nfl('f')", [(2, ("f",), None)]),
    ("import ctypes\nctypes.util.find_library('g')", [(2, ("g",), None)]),
    ("import ctypes as C\nC.util.find_library('g2')", [(2, ("g2",), None)]),
    ("import ctypes.util\n_f = ctypes.util.find_library\n_g = _f\n_g('h')",
     [(4, ("h",), None)]),
    ("from ctypes.util import find_library\nfind_library(name='i')", [(2, ("i",), None)]),
    ("from ctypes.util import find_library\nlib = 'j'\nfind_library(lib)",
     [(3, ("j",), None)]),
    ("def f():\n    from ctypes.util import find_library\n    return find_library('k')",
     [(3, ("k",), None)]),
    ("try:\n    from ctypes.util import find_library\nexcept ImportError:\n    pass\n"
     "x = find_library('l')", [(5, ("l",), None)]),
], ids=lambda v: v if isinstance(v, str) else "")
def test_call_shapes(source: str, expected: list[object]) -> None:
    """Every way of naming ctypes.util.find_library, with a literal argument."""
    assert names(source) == expected


def test_loops_and_comprehensions_are_alternatives() -> None:
    """A for loop or comprehension over literal names feeds the call: one lookup whose
    names are alternatives (sounddevice's shape, a named list, a comprehension)."""
    source = """
        from ctypes.util import find_library as _find_library
        for _libname in ('portaudio', 'bin\\\\libportaudio-2.dll'):
            _libname = _find_library(_libname)
            if _libname is not None:
                break
        found = [_find_library(n) for n in ['k1', 'k2']]
        def g():
            prefixes = ['m1', 'm2']
            for i in prefixes:
                yield _find_library(i)
        """
    assert names(source) == [(4, ("portaudio", "bin\\libportaudio-2.dll"), None),
                             (7, ("k1", "k2"), None), (11, ("m1", "m2"), None)]


def test_literals_passed_to_a_helper() -> None:
    """cairocffi: a helper loops over its parameter; each call of the helper in the file
    with a literal tuple is a lookup at that call's line."""
    source = """
        from ctypes.util import find_library
        def dlopen(ffi, library_names, filenames):
            for library_name in library_names:
                library_filename = find_library(library_name)
        cairo = dlopen(ffi, ('cairo-2', 'cairo', 'libcairo-2'), ('libcairo.so.2',))
        other = dlopen(ffi, library_names=['gdk-3'], filenames=())
        """
    found = _check.scan_source(textwrap.dedent(source), "c.py")
    assert [(x.line, x.names, x.through) for x in found] == [
        (6, ("cairo-2", "cairo", "libcairo-2"), "dlopen() at line 5"),
        (7, ("gdk-3",), "dlopen() at line 5")]


def test_dynamic_names() -> None:
    """Names that are not literals are reported as dynamic, with their source text."""
    source = """
        import os, ctypes.util
        ctypes.util.find_library(os.environ['LIB'])
        ctypes.util.find_library(f"x{1}")
        def f(name):
            return ctypes.util.find_library(name)
        for n in os.listdir('.'):
            ctypes.util.find_library(n)
        n2 = 'a'
        n2 = 'b'
        ctypes.util.find_library(n2)
        """
    found = _check.scan_source(textwrap.dedent(source), "d.py")
    assert [(x.line, x.names) for x in found] == [(3, None), (4, None), (6, None), (8, None),
                                                  (11, None)]
    assert found[0].expr == "ctypes.util.find_library(os.environ['LIB'])"


def test_no_false_positives() -> None:
    """Comments, strings, other objects' find_library methods, a module's own
    find_library, and a parameter that shadows the import are not lookups."""
    source = '''
        from ctypes.util import find_library
        import pyglet, ctypes
        # find_library("comment")
        text = "find_library('string')"
        doc = """ctypes.util.find_library('docstring')"""
        pyglet.lib.loader.find_library("pyglet")
        self_like = object()
        self_like.find_library("method")
        ctypes.find_library("no util")
        def call(find_library):
            return find_library("a parameter")
        '''
    assert names(source) == []
    own = "def find_library(name):\n    return None\nfind_library('own')\n"
    assert names(own) == []
    assert names("import util\nutil.find_library('not ctypes')") == []


@pytest.mark.parametrize(("test", "runs"), [
    ("sys.platform == 'win32'", False),
    ("sys.platform == 'linux'", True),
    ("sys.platform != 'darwin'", True),
    ("sys.platform in ('win32', 'cygwin')", False),
    ("sys.platform.startswith('win')", False),
    ("sys.platform.startswith(('linux', 'freebsd'))", True),
    ("not sys.platform.startswith('linux')", False),
    ("os.name == 'nt'", False),
    ("platform.system() == 'Darwin'", False),
    ("_sys.platform == 'darwin' and x", False),
    ("sys.platform == 'darwin' or x", None),
    ("x == 'win32'", None),
])
def test_platform_guards(test: str, runs: bool | None) -> None:
    """A call under a platform test that is false on Linux (or in the else branch of one
    that is true) is set apart; unknown tests count as running."""
    source = (f"import sys, os, platform\nimport sys as _sys\nimport ctypes.util\n"
              f"if {test}:\n    ctypes.util.find_library('body')\n"
              f"else:\n    ctypes.util.find_library('other')\n")
    (_, _, body_guard), (_, _, else_guard) = names(source)
    assert (body_guard is None) == (runs is not False)
    assert (else_guard is None) == (runs is not True)


def test_elif_chain_of_psycopg() -> None:
    """psycopg's win32 / darwin / else chain: only the else branch runs on Linux."""
    source = """
        import sys, ctypes.util
        if sys.platform == "win32":
            if (libname := ctypes.util.find_library("libpq.dll")) is None:
                pass
        elif sys.platform == "darwin":
            libname = ctypes.util.find_library("libpq.dylib")
        else:
            libname = ctypes.util.find_library("pq")
        """
    assert names(source) == [(4, ("libpq.dll",), 'sys.platform == "win32"'),
                             (7, ("libpq.dylib",), 'sys.platform == "darwin"'),
                             (9, ("pq",), None)]


# -- answers in generated roots ------------------------------------------------------------------


def make_root(base: object) -> str:
    """/app/deps with three packages; libgood loads, libbad needs a missing library."""
    root = str(base)
    elfgen.put(root, "/usr/lib/libgood.so.1", elfgen.native(soname="libgood.so.1",
                                                            needed=("libdep.so.2",)))
    elfgen.put(root, "/usr/lib/libdep.so.2", elfgen.native(soname="libdep.so.2"))
    elfgen.put(root, "/usr/lib/libbad.so.3", elfgen.native(soname="libbad.so.3",
                                                           needed=("libmissing.so.9",)))
    elfgen.put(root, "/app/deps/good/__init__.py",
               "import ctypes.util\nLIB = ctypes.util.find_library('good')\n")
    elfgen.put(root, "/app/deps/bad/sub/mod.py",
               "from ctypes.util import find_library\nfind_library('bad')\n"
               "find_library(NAME)\n")
    elfgen.put(root, "/app/deps/single.py",
               "import sys\nfrom ctypes import util\nif sys.platform == 'darwin':\n"
               "    util.find_library('dylibonly')\n")
    elfgen.put(root, "/app/deps/broken.py", "def (:\n")
    return root


def test_check_report(tmp_path: object) -> None:
    """Per package: shim answer, loadability, the missing dependency; stock is None
    without /sbin/ldconfig in the root; the unparsable file is reported."""
    root = make_root(tmp_path)
    report = _check.check(root, ["/app/deps"])
    assert report["ok"] is False
    by_name = {p["package"]: p for p in report["packages"]}
    assert sorted(by_name) == ["bad", "good", "single"]
    (good,) = by_name["good"]["lookups"]
    assert good["file"] == "/app/deps/good/__init__.py" and good["line"] == 2
    (result,) = good["results"]
    assert (result["shim"], result["path"], result["loads"], result["stock"]) == (
        "libgood.so.1", "/usr/lib/libgood.so.1", True, None)  # /usr/lib: the loader's dir
    assert result["stock_how"] == "no /sbin/ldconfig"
    (bad,) = by_name["bad"]["lookups"]
    assert bad["ok"] is False
    assert bad["results"][0]["problem"] == ("libmissing.so.9 needed by /usr/lib/libbad.so.3: "
                                            "not found")
    assert by_name["bad"]["dynamic"] == [{"file": "/app/deps/bad/sub/mod.py",
                                          "module_file": "bad/sub/mod.py", "line": 3,
                                          "expr": "find_library(NAME)"}]
    assert by_name["single"]["other_platform"][0]["guard"] == "sys.platform == 'darwin'"
    assert [e["file"] for e in report["unreadable"]] == ["/app/deps/broken.py"]
    assert report["summary"] == {"files": 4, "packages": 3, "lookups": 2, "load": 1,
                                 "fail": 1, "dynamic": 1, "other_platform": 1,
                                 "unreadable": 1}


def test_cli_exit_codes_text_and_json(tmp_path: object,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Exit 1 while a literal lookup fails, 0 once the missing library is added; the text
    has a table per package and one summary line; --json carries the same data."""
    root = make_root(tmp_path)
    assert main(["check", "--root", root, "/app/deps"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "bad"
    assert out[1].split() == ["CALL", "SITE", "NAME", "STOCK", "SHIM", "LOADS"]
    assert out[2].split()[:5] == ["bad/sub/mod.py:2", "bad", "not", "found", "libbad.so.3"]
    assert out[2].endswith("NO: libmissing.so.9 needed by /usr/lib/libbad.so.3: not found")
    assert out[-1].startswith("summary: FAIL: bad; 2 lookups in 3 packages (4 files): "
                              "1 load, 1 fail; 1 dynamic, 1 for other platforms")
    elfgen.put(root, "/usr/lib/libmissing.so.9", elfgen.native(soname="libmissing.so.9"))
    assert main(["check", "--root", root, "/app/deps", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["summary"]["fail"] == 0


def test_stock_model_with_ldconfig_and_a_cache(tmp_path: object) -> None:
    """With /sbin/ldconfig in the root, stock's answer is the cache entry its regex picks
    (a stale one too); the tool is never run, only its presence counts."""
    root = make_root(tmp_path)
    os.makedirs(os.path.join(root, "etc"))
    assert main(["ldconfig", "--root", root]) == 0
    assert _check.stock_answer("good", root) == (None, "no /sbin/ldconfig")
    elfgen.put(root, "/sbin/ldconfig", "#!/bin/false\n")
    os.chmod(os.path.join(root, "sbin/ldconfig"), 0o755)
    assert _check.stock_answer("good", root) == ("libgood.so.1", "/sbin/ldconfig -p")
    os.unlink(os.path.join(root, "usr/lib/libgood.so.1"))
    assert _check.stock_answer("good", root) == ("libgood.so.1", "/sbin/ldconfig -p")
    assert _check.stock_answer("nope", root) == (None, "not in /sbin/ldconfig -p")
    elfgen.put(root, "/usr/bin/gcc", "")
    os.chmod(os.path.join(root, "usr/bin/gcc"), 0o755)
    assert _check.stock_answer("nope", root)[1] == (
        "not in /sbin/ldconfig -p; gcc present: stock's later steps not modelled")


def test_bad_paths_are_usage_errors(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    """A PATH that does not exist, or a relative one under --root: exit 2, one line."""
    root = make_root(tmp_path)
    assert main(["check", "--root", root, "/nope"]) == 2
    assert "no such file or directory: '/nope'" in capsys.readouterr().err
    assert main(["check", "--root", root, "app/deps"]) == 2
    assert "must be absolute" in capsys.readouterr().err


def test_default_paths_under_a_root(tmp_path: object) -> None:
    """Without PATH under --root: the root's site dirs of python3.x."""
    root = str(tmp_path)
    os.makedirs(os.path.join(root, "usr/lib/python3/dist-packages"))
    os.makedirs(os.path.join(root, "usr/local/lib/python3.11/dist-packages"))
    os.makedirs(os.path.join(root, "usr/lib/python3.11/site-packages"))
    paths = _check.default_paths(root)
    assert paths[-3:] == ["/usr/lib/python3/dist-packages",
                          "/usr/lib/python3.11/site-packages",
                          "/usr/local/lib/python3.11/dist-packages"]


# -- never runs what it scans, never starts a process ----------------------------------------------


AUDITED = r"""
import json, os, sys
root = sys.argv[1]
events = []
active = [False]
def hook(event, args):
    if active[0]:
        events.append((event, repr(args)[:200]))
sys.addaudithook(hook)
from ctypes_shim import _cli
active[0] = True
code = _cli.main(["check", "--root", root, "/app/deps", "--json"])
active[0] = False
FORBIDDEN = ("subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn", "os.system",
             "os.fork", "os.forkpty", "pty.spawn", "ctypes.dlopen", "ctypes.dlsym",
             "ctypes.call_function", "os.remove", "os.unlink", "os.rename", "os.mkdir",
             "os.chmod", "os.symlink", "os.putenv", "socket.")
WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
bad = [e for e in events if e[0].startswith(FORBIDDEN)]
# "exec" is also every lazy import of the stdlib or the package: none may run scanned code.
bad += [e for e in events if e[0] == "exec" and root in e[1]]
parsed = [e for e in events if e[0] == "compile"]  # ast.parse: one per scanned file
bad += [e for e in events if e[0] == "import" and e[1].startswith(("('good'", "('bad'",
                                                                   "('single'", "('trap'"))]
opened = [e[1] for e in events if e[0] == "open"]
print(json.dumps({"code": code, "bad": bad, "opened": len(opened), "parsed": len(parsed),
                  "trap": os.path.exists(os.path.join(root, "trap-ran")),
                  "modules": sorted(m for m in ("good", "bad", "single", "trap")
                                    if m in sys.modules)}))
"""


def test_check_never_runs_scanned_code_nor_starts_a_process(tmp_path: object) -> None:
    """An audit hook in a child records every event during `check`: no process, exec,
    dlopen, file-system change, import or exec of a scanned module (only ast.parse's
    compile); a scanned module that would leave a mark when imported leaves none."""
    root = make_root(tmp_path)
    elfgen.put(root, "/app/deps/trap.py",
               "open(__file__ + '/../../trap-ran', 'w')\nimport ctypes.util\n"
               "ctypes.util.find_library('good')\n")
    value, proc = _run_audited(root)
    assert proc.returncode == 0, proc.stderr
    assert isinstance(value, dict)
    assert value["code"] == 1  # 'bad' fails: the check really ran
    assert value["bad"] == []
    assert value["opened"] > 5  # the hook saw the reads
    assert value["parsed"] >= 5  # each scanned file was parsed
    assert value["trap"] is False and value["modules"] == []


def _run_audited(root: str) -> tuple[object, subprocess.CompletedProcess[str]]:
    proc = subprocess.run([sys.executable, "-c", AUDITED, root], env=python_env(),
                          capture_output=True, text=True, timeout=120, check=False)
    lines = proc.stdout.strip().splitlines()
    return (json.loads(lines[-1]) if proc.returncode == 0 and lines else None), proc
