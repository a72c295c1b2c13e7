"""Fixtures for the distroless tests: real Debian 12 packages unpacked into a root, run in a chroot."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # mkroot/chroot are plain scripts, not a package

import chroot  # noqa: E402
import mkroot  # noqa: E402

# Set CTYPES_SHIM_TEST_DISTROLESS=require (CI runs as root) to turn "cannot run here" into a failure.
_REQUIRE = os.environ.get("CTYPES_SHIM_TEST_DISTROLESS") == "require"

# Test instrumentation, not part of the image: Debian's /etc/python3.11/sitecustomize.py does
# ``import apport_python_hook; apport_python_hook.install()`` (ImportError ignored). Ubuntu keeps
# that module in /usr/lib/python3/dist-packages; a stand-in there tells us that Debian's
# sitecustomize really ran, including when ours shadows it.
APPORT_HOOK = "import sys\n\n\ndef install():\n    sys._probe_apport_hook_installed = True\n"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "distroless: runs in a rebuilt gcr.io/distroless/python3-debian12 root (needs root, unshare)"
    )


def _unavailable(reason: str) -> None:
    if _REQUIRE:
        pytest.fail(f"distroless tests required but cannot run: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def image_debs() -> dict[str, str]:
    """The image's .debs (downloaded once into the XDG cache)."""
    reason = chroot.available()
    if reason:
        _unavailable(reason)
    try:
        return mkroot.fetch_image_debs()
    except mkroot.MkrootError as e:
        _unavailable(f"cannot fetch the image packages: {e}")
        raise


@pytest.fixture(scope="session")
def make_root(image_debs: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Factory: a fresh copy of the image filesystem per call (about one second each)."""

    def make(name: str) -> Path:
        root = tmp_path_factory.mktemp(name) / "root"
        mkroot.build_root(str(root), image_debs)
        hook_dir = root / "usr/lib/python3/dist-packages"
        hook_dir.mkdir(parents=True, exist_ok=True)
        (hook_dir / "apport_python_hook.py").write_text(APPORT_HOOK)
        return root

    return make


@pytest.fixture(scope="session")
def plain_root(make_root: Callable[[str], Path]) -> Path:
    """The image as shipped (plus the apport stand-in), never modified by tests."""
    return make_root("plain")


PROBE = (HERE / "probe.py").read_text()


def _probe(root: Path, request: dict[str, Any], *, user: int = 0, env: dict[str, str] | None = None,
           python_args: tuple[str, ...] = ()) -> dict[str, Any]:
    """Run probe.py inside ``root`` and return its JSON; fail with its stderr if it did not print any."""
    res = chroot.run(str(root), [*python_args, "-c", PROBE, json.dumps(request)], user=user, env=env)
    if res.rc != 0 or not res.stdout.strip():
        pytest.fail(f"probe failed rc={res.rc}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}")
    result: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    result["stderr"] = res.stderr
    return result


@pytest.fixture(scope="session")
def probe() -> Callable[..., dict[str, Any]]:
    """``probe(root, request, user=0, env=None, python_args=())`` -> the probe's JSON output."""
    return _probe
