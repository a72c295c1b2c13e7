"""The differential test on python3.14 and python3.15: the shim against stock, in the sid root.

Stock find_library runs the root's own /sbin/ldconfig -p (glibc 2.43) over a cache that
ldconfig has just written; that is the oracle. The names: every library file in the root
(any name ``lib*.so*``) and every SONAME among them (read with pyelftools, the reference ELF
reader), each cut at every dot after ``lib``: ``libssl.so.3`` gives ``ssl`` and ``ssl.so``,
``libdb-5.3.so`` gives ``db-5`` and ``db-5.3``. Stock's regex matches any cache key that
starts with ``lib<name>.``, so every cut is a name stock can answer.

Zero differences are allowed: the root has no gcc and no objdump, so none of the README's
deliberate differences ("Where we differ from stock") can occur here. Then the cache is
taken away: the shim's scan alone must still give stock's answers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from sidlayout import SITE, VERSIONS, deps, python, run_json

ANSWERS = """
import json, sys
names = json.loads(sys.argv[1])
from ctypes.util import find_library
print(json.dumps({"patched": hasattr(find_library, "__wrapped__"),
                  "answers": {n: find_library(n) for n in names}}))
"""
SKIP_DIRS = ("proc", "dev", "tmp", "src", "app", "venv")
# Names no file in the root carries: both must answer None.
CONTROLS = ("nope-not-here", "CNS", "python3.14", "python3.15")


def _soname(path: str) -> str | None:
    from elftools.common.exceptions import ELFError
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.elffile import ELFFile

    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            for section in elf.iter_sections():
                if isinstance(section, DynamicSection):
                    for tag in section.iter_tags():
                        if tag.entry.d_tag == "DT_SONAME":
                            return str(tag.soname)
    except (ELFError, OSError, ValueError):
        return None
    return None


def cuts(name: str) -> list[str]:
    """``libfoo.so.1`` -> ["foo", "foo.so"]: every X such that the name starts with lib<X>."""
    return [name[3:i] for i in range(4, len(name)) if name[i] == "."]


def library_names(root: Path) -> list[str]:
    """Every name derived from the root's library files and their SONAMEs."""
    found: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root):
        if dirpath == str(root):
            dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        for fn in filenames:
            if not (fn.startswith("lib") and ".so" in fn):
                continue
            found.update(cuts(fn))
            path = os.path.join(dirpath, fn)
            if os.path.isfile(path) and not os.path.islink(path):
                soname = _soname(path)
                if soname and soname.startswith("lib"):
                    found.update(cuts(soname))
    return sorted(found | set(CONTROLS))


def answers(root: Path, version: str, names: list[str], **env: str) -> dict[str, Any]:
    out, stderr = run_json(root, [python(version), "-c", ANSWERS, json.dumps(names)],
                           env={"PYTHONPATH": f"{SITE}:{deps(version)}", **env})
    assert stderr == ""
    return out  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def names(cached_root: Path) -> list[str]:
    got = library_names(cached_root)
    # The root really has libraries of many packages: a handful of names would prove little.
    assert {"c", "ssl", "crypto", "z", "zstd", "ffi", "sqlite3", "db-5", "ncursesw"} <= set(got)
    assert len(got) > 60, got
    return got


def _diff(stock: dict[str, Any], shim: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {n: (stock[n], shim[n]) for n in stock if stock[n] != shim[n]}


@pytest.mark.parametrize("version", VERSIONS)
def test_shim_equals_stock_with_a_fresh_cache(cached_root: Path, names: list[str],
                                              version: str) -> None:
    """Every derived name: the shim's answer is stock's, which reads glibc 2.43's cache."""
    stock = answers(cached_root, version, names, CTYPES_SHIM_DISABLE="1")
    shim = answers(cached_root, version, names)
    assert stock["patched"] is False and shim["patched"] is True
    assert _diff(stock["answers"], shim["answers"]) == {}
    found = {n for n, a in stock["answers"].items() if a is not None}
    assert len(found) > 50 and "c" in found and stock["answers"]["c"] == "libc.so.6"
    assert all(stock["answers"][n] is None for n in CONTROLS)


@pytest.fixture(scope="module")
def without_cache(cached_root: Path, names: list[str]) -> dict[str, dict[str, Any]]:
    """Per interpreter: stock with the fresh cache, then shim and stock with the cache gone."""
    out: dict[str, dict[str, Any]] = {}
    cache = cached_root / "etc/ld.so.cache"
    aside = cached_root / "etc/ld.so.cache.aside"
    for version in VERSIONS:
        stock = answers(cached_root, version, names, CTYPES_SHIM_DISABLE="1")["answers"]
        os.rename(cache, aside)
        try:
            shim = answers(cached_root, version, names)["answers"]
            nothing = answers(cached_root, version, names, CTYPES_SHIM_DISABLE="1")["answers"]
        finally:
            os.rename(aside, cache)
        out[version] = {"stock": stock, "shim": shim, "nothing": nothing}
    return out


@pytest.mark.parametrize("version", VERSIONS)
def test_shim_without_a_cache_equals_stock_with_one(without_cache: dict[str, dict[str, Any]],
                                                    version: str) -> None:
    """The cache removed, the shim's scan alone gives what stock reads from a fresh cache,
    also for names that are only a prefix of a key (``c.so``, ``bz2.so.1``, ``db-5``)."""
    got = without_cache[version]
    assert _diff(got["stock"], got["shim"]) == {}
    prefix_only = [n for n, a in got["stock"].items()
                   if a is not None and not a.startswith(f"lib{n}.so")]
    assert {"c.so", "bz2.so.1", "db-5"} <= set(prefix_only)
    # ...and this is the situation the shim is for: without the cache stock finds nothing.
    assert set(got["nothing"].values()) == {None}
