"""Fixtures for the Debian unstable tests: python3.14 and python3.15 in a root of sid packages.

The root is built once per session by sidroot.py (cached .debs, about 5 s warm), then
prepared the way a user would: the ctypes-shim wheel and the test tools ``pip install
--target``-ed into /app/deps/<version> for that interpreter (sitecustomize and explicit
routes, and the in-root pytest run), the sitecustomize template in /app/site, and a venv per
interpreter with the wheel in its site-packages (the .pth route). Everything runs inside it
under ``unshare`` + ``chroot`` (sidchroot.py).

CTYPES_SHIM_TEST_SID=require (CI, as root) turns "cannot run here" into a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # sidroot/sidchroot are plain scripts, not a package

import sidchroot  # noqa: E402
import sidroot  # noqa: E402
from sidlayout import SITE, VERSIONS, deps, python, venv  # noqa: E402

REPO = HERE.parent.parent
_REQUIRE = os.environ.get("CTYPES_SHIM_TEST_SID") == "require"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sid: runs in a root of Debian unstable packages (python3.14/3.15, glibc 2.43)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.parent == HERE:
            item.add_marker(pytest.mark.sid)


def unavailable(reason: str) -> None:
    if _REQUIRE:
        pytest.fail(f"sid tests required but cannot run: {reason}")
    pytest.skip(reason)


# The third-party wheels (pytest, hypothesis, pyelftools, wrapt) for each interpreter, kept
# next to the .debs so that a second run installs them offline.
TOOLS = ("pytest", "hypothesis", "pyelftools", "wrapt")


def _pip(*args: str) -> None:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        unavailable(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")


def _for_version(version: str) -> list[str]:
    """pip options selecting the wheels a build stage of CPython ``version`` would pick."""
    return ["--python-version", version, "--implementation", "cp",
            "--abi", "cp" + version.replace(".", ""), "--platform", "manylinux_2_28_x86_64",
            "--platform", "manylinux2014_x86_64", "--only-binary=:all:"]


def _wheelhouse(version: str) -> str:
    house = os.path.join(sidroot.cache_dir(), "wheels", f"cp{version}")
    done = os.path.join(house, ".complete")
    if not os.path.exists(done):
        _pip("download", "-d", house, *_for_version(version), *TOOLS)
        open(done, "w").close()
    return house


def _pip_target(target: Path, version: str, *reqs: str) -> None:
    """Install wheels for CPython ``version`` into ``target``, offline from the wheelhouse.

    No byte-compiling: the host's .pyc would be for its own Python, not the root's.
    """
    _pip("install", "--no-compile", "--no-index", "--find-links", _wheelhouse(version),
         "--target", str(target), *_for_version(version), *reqs)


@pytest.fixture(scope="session")
def shim_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel under test: $CTYPES_SHIM_TEST_WHEEL, tox's own build ($TOX_PACKAGE), or
    ``pip wheel --no-deps`` of the checkout."""
    for given in (os.environ.get("CTYPES_SHIM_TEST_WHEEL"), os.environ.get("TOX_PACKAGE")):
        if given and given.endswith(".whl") and os.path.exists(given):
            return Path(given)
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q",
                           "wheel", "--no-deps", str(REPO), "-w", str(out)],
                          capture_output=True, text=True, check=False)
    if proc.returncode:
        pytest.fail(f"pip wheel failed:\n{proc.stdout}\n{proc.stderr}")
    (wheel,) = out.glob("ctypes_shim-*.whl")
    return wheel


@pytest.fixture(scope="session")
def sid_root(tmp_path_factory: pytest.TempPathFactory, shim_wheel: Path) -> Path:
    """The sid root with the shim installed for both interpreters; no /etc/ld.so.cache."""
    reason = sidchroot.available()
    if reason:
        unavailable(reason)
    root = tmp_path_factory.mktemp("sid") / "root"
    try:
        sidroot.build(str(root))
    except sidroot.SidrootError as e:
        unavailable(f"cannot build the sid root: {e}")
    for version in VERSIONS:
        # The package with its dependency (wrapt), plus what the in-root pytest run needs
        # (pyelftools is the tests' reference reader, the package's `reference` extra).
        # Same wheels a build stage of that Python would pick.
        _pip_target(root / deps(version).lstrip("/"), version, str(shim_wheel), "pytest",
                    "hypothesis", "pyelftools")
        made = sidchroot.run(str(root), [python(version), "-m", "venv", "--without-pip",
                                         venv(version)])
        assert made.rc == 0, made.stderr
        site = root / venv(version).lstrip("/") / f"lib/python{version}/site-packages"
        _pip_target(site, version, str(shim_wheel))
        assert (site / "ctypes_shim.pth").exists()
    (root / SITE.lstrip("/")).mkdir(parents=True)
    shutil.copy2(REPO / "sitecustomize_template/sitecustomize.py", root / "app/site")
    # The checkout's layout for the in-root pytest run (tests/fuzz/support.py and the
    # reliability tests read REPO/ctypes_shim and REPO/sitecustomize_template).
    src = root / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "distroless", "sid", "containers",
                                    ".hypothesis")
    for name in ("tests", "ctypes_shim", "sitecustomize_template"):
        shutil.copytree(REPO / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "ctypes_shim.pth"):
        shutil.copy2(REPO / name, src / name)
    return root


@pytest.fixture(scope="session")
def cached_root(sid_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the sid root after its own ``ldconfig`` ran, as a package postinst would."""
    root = tmp_path_factory.mktemp("sid-cached") / "root"
    subprocess.run(["cp", "-a", str(sid_root), str(root)], check=True)
    done = sidchroot.run(str(root), ["/sbin/ldconfig"])
    assert done.rc == 0, done.stderr
    assert (root / "etc/ld.so.cache").exists()
    return root
