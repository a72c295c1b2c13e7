"""The fuzz job's bounded smoke, for CI (`tox -e fuzz`, about a minute): a few thousand
cases of every parser kind and a few hundred whole roots, all from fixed seeds, plus checks
that the job itself and its reference still work.  The long run is documented in
tests/fuzz/run.py and the README.

Run as `pytest tests/fuzz/smoke.py` (it is not named test_*, so the per-interpreter tox
envs do not run it six times).
"""

from __future__ import annotations

import os
import subprocess
import sys

import elfgen
import pytest

from . import reference, run

HERE = os.path.dirname(os.path.abspath(__file__))
# kind -> cases; a root case runs glibc's ldconfig two to four times, so there are fewer
SMOKE = {"elf": 4000, "cache": 4000, "conf": 600, "root": 300}
ISSUE_10 = ("seed 1, root cases 36 140 157 178 221 of 300 (39 120 144 169 fixed: truncated "
            "files are skipped as glibc's readelflib.c does): 36, a file named otherwise "
            "(libother.so.1) whose SONAME is libgood.so.9 and no soname link, the README's "
            "documented limit; 140, inside one LD_LIBRARY_PATH dir the shim takes ldconfig's "
            "first key (libgood.so.7) where the reference models `ld -l` (libgood.so -> .3); "
            "157, a corrupt cache entry is skipped where glibc lists it; 178, 221, mutated ELF "
            "files read differently (SONAME / keyed or not) from glibc")


def _require_reference() -> None:
    why = reference.available()
    if why is not None:  # the fuzz env runs in CI only: a missing ldconfig is a failure
        pytest.fail("the fuzz reference needs glibc's ldconfig and loader: " + why)


def _smoke(kind: str, seed: int = 1) -> None:
    counts, failures = run.run_range(seed, 0, SMOKE[kind], [kind], stop_on_fail=False)
    assert failures == [], f"{len(failures)} failures, the first: {failures[0][:3000]}"
    assert sum(counts.values()) == SMOKE[kind], counts  # every case ran and was checked


@pytest.mark.parametrize("kind", ["elf", "cache", "conf"])
def test_parsers(kind: str) -> None:
    """Hostile ELF files, caches and ld.so.conf trees: only the parser's own error, bounded
    reads; unmutated inputs read back as generated."""
    _smoke(kind)


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=ISSUE_10)  # a crash still fails
def test_roots() -> None:
    """Whole generated roots: the resolver's answer is what glibc's ldconfig and stock's
    rule give for the same root (tests/fuzz/reference.py)."""
    _require_reference()
    run.DEFAULT_DIR = run.default_dir()
    _smoke("root")


def test_reference_on_a_known_root(tmp_path: object) -> None:
    """The reference itself, on a root whose answers are known: a soname in a default dir,
    a path for a conf dir (no cache: the loader would not find it), LD_LIBRARY_PATH only
    for what the cache's dirs lack, the first LD_LIBRARY_PATH dir first, None otherwise."""
    _require_reference()
    root = str(tmp_path)
    default = run.default_dir()
    elfgen.put(root, "/etc/ld.so.conf", "/opt/conf\n")
    elfgen.put(root, default + "/libd.so.1", elfgen.native(soname="libd.so.1"))
    elfgen.put(root, "/opt/conf/libc9.so.2", elfgen.native(soname="libc9.so.2"))
    elfgen.put(root, "/env/libd.so.7", elfgen.native(soname="libd.so.7"))
    elfgen.put(root, "/a/libe.so.1", elfgen.native(soname="libe.so.1"))
    elfgen.put(root, "/b/libe.so.2", elfgen.native(soname="libe.so.2"))
    elfgen.put(root, "/opt/conf/libx.so.3", elfgen.elf(bits=32, machine=elfgen.EM_386,
                                                       soname="libx.so.3"))
    env = {"LD_LIBRARY_PATH": "/env:/a::/b"}
    got = {n: reference.expected(root, n, env) for n in ("d", "c9", "e", "x", "nope")}
    assert {n: (e.answer, e.decided) for n, e in got.items()} == {
        "d": ("libd.so.1", True), "c9": ("/opt/conf/libc9.so.2", True),
        "e": ("/a/libe.so.1", True), "x": (None, True), "nope": (None, True)}


def test_run_py_as_a_script(tmp_path: object) -> None:
    """`python3 tests/fuzz/run.py` runs, reports, and replays a case."""
    done = subprocess.run([sys.executable, os.path.join(HERE, "run.py"), "--cases", "60",
                           "--only", "elf,cache", "--seed", "7"], capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "fuzz: 60 cases run (seed 7" in done.stdout and "fuzz: 0 failures" in done.stdout
    done = subprocess.run([sys.executable, os.path.join(HERE, "run.py"), "--replay", "5",
                           "--only", "cache"], capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
