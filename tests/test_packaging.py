"""The installed distribution: what the wheel puts on disk, and that tests use it."""

from __future__ import annotations

import os
import sys
from importlib import metadata

import pytest

import ctypes_shim


def installed_files() -> set[str]:
    try:
        files = metadata.files("ctypes-shim")
    except metadata.PackageNotFoundError:
        pytest.skip("ctypes-shim is not installed (running from a checkout)")
    return {str(f) for f in files or ()}


def test_wheel_ships_the_pth_and_typing_marker() -> None:
    """The .pth lands at the top of site-packages; py.typed and every module are there."""
    files = installed_files()
    assert "ctypes_shim.pth" in files
    assert "ctypes_shim/py.typed" in files
    for module in ("__init__", "__main__", "_activate", "_patch", "_resolve", "_elf",
                   "_ldcache", "_ldpaths", "_cli"):
        assert f"ctypes_shim/{module}.py" in files


def test_wheel_ships_the_bootstrap_dir_and_pip_compiles_it() -> None:
    """ctypes_shim/_bootstrap holds only sitecustomize.py (the dir goes on PYTHONPATH, so
    anything else there would become a top-level module), and pip wrote its .pyc."""
    files = installed_files()
    boot = sorted(f for f in files if f.startswith("ctypes_shim/_bootstrap/"))
    pyc = f"ctypes_shim/_bootstrap/__pycache__/sitecustomize.{sys.implementation.cache_tag}.pyc"
    assert boot == [pyc, "ctypes_shim/_bootstrap/sitecustomize.py"]
    top = os.path.dirname(os.path.dirname(os.path.abspath(ctypes_shim.__file__)))
    assert os.path.isfile(os.path.join(top, pyc))


def test_tests_run_against_the_installed_wheel() -> None:
    """Under tox the package comes from site-packages, not from the checkout."""
    if not os.environ.get("TOX_ENV_NAME"):
        pytest.skip("only meaningful under tox")
    assert "site-packages" in ctypes_shim.__file__


def test_version_matches_metadata() -> None:
    """__version__ is the version hatchling put in the metadata."""
    installed_files()
    assert metadata.version("ctypes-shim") == ctypes_shim.__version__
