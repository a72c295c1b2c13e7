"""Real packages from PyPI for the launcher and agent tests, installed as users install them.

`pip install --target DIR` (what the distroless recipe does) into a directory per test
session, with wheels only: a package without a wheel for this interpreter is reported as
such rather than built from source.  pip's own cache (~/.cache/pip) keeps reruns from
downloading again.  CTYPES_SHIM_TEST_PYPI=require (set by .ci/run) turns "cannot install"
into a failure; otherwise the tests skip and say why.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Sequence

import pytest

REQUIRE = os.environ.get("CTYPES_SHIM_TEST_PYPI") == "require"
PY = "%d.%d" % sys.version_info[:2]


def unavailable(reason: str) -> None:
    if REQUIRE:
        pytest.fail(f"CTYPES_SHIM_TEST_PYPI=require, but {reason}", pytrace=False)
    pytest.skip(reason)


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
