"""The project's own test suite, run by python3.14 and python3.15 inside the sid root.

pyenv stops at 3.13 here, so tox cannot run 3.14/3.15; Debian unstable's interpreters run
the same files instead: unit, activation (sitecustomize, .pth, -I/-E/-S, reload, purge,
uninstall), lifecycle (fork with the lock held, threads, half-installed packages), names,
parsers, roots and the no-process audit. ctypes_shim comes from the wheel (in
/app/deps/<version>, as tox's ``package = wheel``), the tests from a copy of the checkout.
The root has a fresh cache from its own ldconfig, so tests that read "the host's" cache
read glibc 2.43's.

Left out, with the reason:
- ``slow`` tests: the same on every interpreter, run once by tox (py311);
- ``host`` tests: they compare with the host's gcc and ldconfig; the root has no gcc, and its
  ldconfig is compared by test_sid_ldconfig.py, difference by difference;
- ``agents`` tests: OpenTelemetry and ddtrace from PyPI, on python3.11 only (tox env agents);
- test_packaging.py: checks tox's install of the wheel, not an interpreter;
- test_activate.py::test_bootstrap_is_read_from_its_pyc (runs pip, which the root lacks) and
  test_reliability_roots.py::test_unreadable_files_and_dirs_as_nobody (runs setpriv);
- test_activate.py::test_off_linux_leaves_ctypes_alone: it fakes sys.platform = "darwin",
  and Debian's libpython3.1x-stdlib ships no ctypes/macholib, so stock ctypes.util itself
  fails to import there (ModuleNotFoundError: ctypes.macholib), shim or not;
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from sidchroot import BASE_ENV, run
from sidlayout import VERSIONS, deps, python

DESELECT = ("tests/test_activate.py::test_off_linux_leaves_ctypes_alone",
            # the root has no pip (it installs the wheel) and no setpriv (util-linux)
            "tests/test_activate.py::test_bootstrap_is_read_from_its_pyc",
            "tests/test_reliability_roots.py::test_unreadable_files_and_dirs_as_nobody")
IGNORE = ("tests/test_packaging.py",)


@pytest.mark.parametrize("version", VERSIONS)
def test_suite_passes_on_debian_unstable_python(cached_root: Path, version: str) -> None:
    """pytest -m 'not host and not agents and not slow' of tests/ in the root: exit 0, hundreds run."""
    report = f"/tmp/suite-{version}.xml"
    argv = [python(version), "-P", "-m", "pytest", "-p", "no:cacheprovider", "-q", "-m",
            "not host and not agents and not slow", f"--junitxml={report}", "/src/tests"]
    deselect = DESELECT
    argv += [f"--deselect={d}" for d in deselect] + [f"--ignore=/src/{i}" for i in IGNORE]
    res = run(str(cached_root), argv, env={**BASE_ENV, "PYTHONPATH": deps(version)},
              workdir="/src", timeout=900)
    assert res.rc == 0, f"rc={res.rc}\n{res.stdout[-6000:]}\n{res.stderr[-2000:]}"
    suite = ET.parse(cached_root / report.lstrip("/")).getroot().find("testsuite")
    assert suite is not None
    tests, skipped = int(suite.get("tests", 0)), int(suite.get("skipped", 0))
    failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
    assert failed == 0
    assert tests - skipped > 400, (tests, skipped)
    # The interpreter under test really is sid's, and it ran the wheel, not the checkout.
    probe = run(str(cached_root), [python(version), "-P", "-c",
                                   "import sys, ctypes_shim; print(sys.version.split()[0], "
                                   "ctypes_shim.__file__)"],
                env={**BASE_ENV, "PYTHONPATH": deps(version)}, workdir="/src")
    got_version, where = probe.stdout.split()
    assert got_version.startswith(version + ".")
    assert where.startswith(deps(version) + "/")
