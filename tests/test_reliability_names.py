"""Hostile names: traversal, NUL, regex metacharacters, huge strings, non-strings, objects
whose dunder methods raise.  The answer is None or the library with that literal name;
nothing raises; a hostile object cannot poison later lookups of ordinary names.

Deliberate deviation: the shim answers None for anything that is not a str, where stock
raises TypeError (for bytes, on a host with gcc) or fails deeper down.
"""

from __future__ import annotations

import json
import pathlib
import string

import elfgen
import pytest
from fuzz.support import default_dir, lib, lookup_traced, resolver, run_json, text
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctypes_shim import _resolve

pytestmark = pytest.mark.filterwarnings("ignore:mypy_extensions:DeprecationWarning")
LIBDIR = default_dir()

HOSTILE_STRINGS = [
    "../../etc/passwd", "/etc/passwd", "..", ".", "./c", "c/../c", "../c", "", " ", "c ", " c",
    "\n", "c\n", "\t", "c\0", "\0", "\0c", ".*", "c|ssl", "(", ")", "[", "]", "\\", "*", "?",
    "c.*", "^c$", "(?i)C", "{1}", "c.so", "c.so.6", "libc", "lib", "libc.so.6", "%s", "{}",
    "$HOME", "~", "-lc", "c;rm -rf /", "c'", 'c"', "é", "\udcff", "\u2028", "\ufeffc",
    "x" * 255, "x" * 256, "x" * 10000, "c" * 1000000,
]


class HashRaises:
    def __hash__(self) -> int:
        raise RuntimeError("hash")


class EqRaises:
    def __eq__(self, other: object) -> bool:
        raise RuntimeError("eq")

    __hash__ = object.__hash__


class ClassRaises:
    @property  # type: ignore[misc]
    def __class__(self) -> type:  # isinstance() consults this
        raise RuntimeError("__class__")


class EvilStr(str):
    """A str whose own methods raise once armed (after it sits in a dict)."""

    armed = False

    def __eq__(self, other: object) -> bool:
        if EvilStr.armed:
            raise RuntimeError("eq")
        return str.__eq__(self, other)

    def __hash__(self) -> int:
        return str.__hash__(self)

    def __len__(self) -> int:
        if EvilStr.armed:
            raise RuntimeError("len")
        return str.__len__(self)


NON_STRINGS = [None, 0, 1, -1, 1.5, True, [], ["c"], ("c",), {"c": 1}, {"c"}, b"c", b"libc.so.6",
               bytearray(b"c"), memoryview(b"c"), object(), pathlib.PurePosixPath("c"), type,
               str, Ellipsis, NotImplemented, HashRaises(), EqRaises(), ClassRaises()]


@pytest.fixture
def root(tmp_path: object) -> str:
    """c, ssl and a library whose name is full of regex metacharacters."""
    r = str(tmp_path)
    lib(r, LIBDIR + "/libc.so.6", soname="libc.so.6")
    lib(r, LIBDIR + "/libssl.so.3", soname="libssl.so.3")
    lib(r, LIBDIR + "/libc|ssl.so.1", soname="libc|ssl.so.1")
    lib(r, LIBDIR + "/lib.*.so.2", soname="lib.*.so.2")
    text(r, "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")
    text(r, LIBDIR + "/libnotlib.so.1", "just text\n")
    lib(r, LIBDIR + "/libexe.so.1", elfgen.native(soname="libexe.so.1", e_type=elfgen.ET_EXEC))
    text(r, LIBDIR + "/libjunk.so", bytes(range(256)) * 4)
    return r


# "c.so": stock matches the key libc.so.6 by its prefix "libc.so.", as a fresh cache does.
EXPECTED = {"c|ssl": "libc|ssl.so.1", ".*": "lib.*.so.2", "c": "libc.so.6", "c.so": "libc.so.6"}


@pytest.mark.parametrize("name", HOSTILE_STRINGS, ids=lambda n: repr(n)[:30])
def test_hostile_strings(root: str, name: str) -> None:
    """Traversal, NUL, whitespace, regex metacharacters, huge names: None, or the library
    whose file is literally lib<name>.so*; never a regex match, never a path outside."""
    r = resolver(root)
    answer, trace = lookup_traced(r, name)
    assert answer == EXPECTED.get(name), trace
    assert r.find(name) == answer
    assert _resolve.Resolver.find(r, name) == answer


@pytest.mark.parametrize("name", ["notlib", "exe", "junk", "passwd"])
def test_files_that_are_not_libraries(root: str, name: str) -> None:
    """Existing files that are text, executables or junk are not answers."""
    assert lookup_traced(resolver(root), name)[0] is None


@pytest.mark.parametrize("index", range(len(NON_STRINGS)),
                         ids=["%d-%s" % (i, type(n).__name__) for i, n in enumerate(NON_STRINGS)])
def test_non_strings_answer_none(root: str, index: int) -> None:
    """Anything but a str is None (stock: TypeError), through find and lookup, also when
    its __hash__, __eq__ or __class__ raises."""
    name = NON_STRINGS[index]
    r = resolver(root)
    assert r.find(name) is None
    assert r.lookup(name) is None
    assert r.lookup(name, []) is None
    assert r.find("c") == "libc.so.6"
    assert r.find(name) is None  # and again, with a warm memo


def test_str_subclass_cannot_poison_the_memo(root: str) -> None:
    """Regression: a str subclass found by find() was stored as a memo key; once its __eq__
    raised, every later find('c') raised RuntimeError out of find_library."""
    r = resolver(root)
    EvilStr.armed = False
    try:
        assert r.find(EvilStr("c")) == "libc.so.6"
        EvilStr.armed = True
        assert r.find("c") == "libc.so.6"
        assert r.find(EvilStr("ssl")) == "libssl.so.3"  # copied to a plain str first
        assert r.find("ssl") == "libssl.so.3"
    finally:
        EvilStr.armed = False
    assert all(type(k) is str for k in r.hits)


def test_hostile_objects_through_the_default_resolver() -> None:
    """The module-level find_library (what the patch calls) never raises either."""
    answers = {repr(n)[:40]: _resolve.find_library(n)  # type: ignore[arg-type]
               for n in NON_STRINGS + HOSTILE_STRINGS[:20]}
    assert {k: v for k, v in answers.items() if v is not None} == {}
    libc = _resolve.find_library("c")
    assert libc is not None
    EvilStr.armed = True
    try:
        assert _resolve.find_library(EvilStr("c")) == libc
    finally:
        EvilStr.armed = False


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.one_of(st.text(max_size=40), st.text(alphabet=string.punctuation + "lib.so0123c",
                                                max_size=12)))
def test_any_text(root: str, name: str) -> None:
    """Any text: None or an answer whose file is literally lib<name>.so*."""
    answer, trace = lookup_traced(resolver(root), name)
    assert answer is None or answer.startswith("lib" + name + ".") or answer.startswith(
        LIBDIR + "/lib" + name + "."), (name, answer, trace)


PATCHED = r"""
import json, pathlib, ctypes_shim
ctypes_shim.install()
import ctypes.util
class HashRaises:
    def __hash__(self): raise RuntimeError("hash")
class ClassRaises:
    @property
    def __class__(self): raise RuntimeError("class")
names = [None, 1, b"c", ["c"], pathlib.PurePosixPath("c"), HashRaises(), ClassRaises(),
         "../../etc/passwd", "c\0", ".*", "c|ssl", "(", "x" * 100000, ""]
out = []
for n in names:
    try:
        out.append(["ok", ctypes.util.find_library(n)])
    except BaseException as e:
        out.append(["raised", repr(e)])
out.append(["c", ctypes.util.find_library("c")])
print(json.dumps(out))
"""


def test_hostile_names_through_patched_ctypes_util() -> None:
    """In a fresh interpreter with the shim installed, ctypes.util.find_library answers None
    for every hostile name and still finds libc afterwards."""
    value, proc = run_json(PATCHED, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert isinstance(value, list)
    assert [v for v in value[:-1] if v != ["ok", None]] == [], json.dumps(value)
    assert value[-1][1] and value[-1][1].startswith("libc.so")
