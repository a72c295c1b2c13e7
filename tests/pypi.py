"""Real packages from PyPI for the launcher and agent tests, installed as users install them.

`pip install --target DIR --only-binary=:all:` (what the distroless recipe does): a package
without a wheel for this interpreter is reported as such rather than built from source.
The installed directory is kept in ${XDG_CACHE_HOME:-~/.cache}/ctypes-shim/pypi/, one per
interpreter, requirement set and ISO week, so a rerun within the week costs nothing
(installing ddtrace, with its bytecode, takes about a minute on a busy 2-core machine);
tests only read it.  CTYPES_SHIM_TEST_PYPI=require (set by .ci/run) turns "cannot
install" into a failure; otherwise the tests skip and say why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import pytest

REQUIRE = os.environ.get("CTYPES_SHIM_TEST_PYPI") == "require"
PY = "{}.{}".format(*sys.version_info[:2])


def unavailable(reason: str) -> None:
    if REQUIRE:
        pytest.fail(f"CTYPES_SHIM_TEST_PYPI=require, but {reason}", pytrace=False)
    pytest.skip(reason)


CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ctypes-shim" / "pypi"
KEEP_DAYS = 14  # older installs of the same set are removed


def installed(requirements: Sequence[str]) -> Path:
    """A --target directory with *requirements* for this interpreter (cached, see above)."""
    key = "py{}{}-".format(*sys.version_info[:2]) + "+".join(sorted(requirements))
    dest = CACHE / f"{key}-{time.strftime('%G-W%V')}"
    if (dest / ".complete").is_file():
        return dest
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=CACHE))
    try:
        pip_target(tmp, requirements)
        (tmp / ".complete").write_text(" ".join(requirements) + "\n")
        try:
            os.rename(tmp, dest)  # atomic; fails if a concurrent session got there first
        except OSError:
            if not (dest / ".complete").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for old in CACHE.glob(f"{key}-*"):
        if old != dest and time.time() - old.stat().st_mtime > KEEP_DAYS * 86400:
            shutil.rmtree(old, ignore_errors=True)
    return dest


def pip_target(dest: Path, requirements: Sequence[str]) -> Path:
    """`pip install --target dest --only-binary=:all: requirements...` with this interpreter."""
    cmd = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-q",
           "--only-binary=:all:", "--target", str(dest), *requirements]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        unavailable(f"`{' '.join(cmd)}` could not run: {e}")
        raise
    if proc.returncode:
        lines = [line for line in proc.stderr.splitlines()
                 if line.strip() and not line.startswith("WARNING:")]
        unavailable(f"no wheels of {' '.join(requirements)} could be installed for Python "
                    f"{PY} from PyPI (pip --only-binary=:all:): {' | '.join(lines[-3:])}")
    return dest


# The audit events of every way CPython starts a process (the audit events table).
SPAWN_EVENTS = ("subprocess.Popen", "os.posix_spawn", "os.fork", "os.forkpty", "os.exec",
                "os.spawn", "os.system")
