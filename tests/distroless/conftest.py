"""Fixtures for the distroless tests: real Debian packages unpacked into a root, chrooted.

Every root fixture is parametrized by the image, python3-debian13 (trixie, the current one)
first, then python3-debian12 (bookworm).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # mkroot/chroot are plain scripts, not a package

import chroot  # noqa: E402
import mkroot  # noqa: E402
from recipe import EXAMPLES, LATER_LAYER, LD_LIBRARY_PATH_PKG, REPO, ROUTE_ENV, RouteRoot, pip  # noqa: E402

# CTYPES_SHIM_TEST_DISTROLESS=require (CI runs as root) turns "cannot run here" into a failure.
_REQUIRE = os.environ.get("CTYPES_SHIM_TEST_DISTROLESS") == "require"

# Test instrumentation, not part of the image: Debian's /etc/python3.X/sitecustomize.py does
# ``import apport_python_hook; apport_python_hook.install()`` (ImportError ignored). Ubuntu keeps
# that module in /usr/lib/python3/dist-packages; a stand-in there tells us that Debian's
# sitecustomize really ran, including when ours shadows it.
APPORT_HOOK = "import sys\n\n\ndef install():\n    sys._probe_apport_hook_installed = True\n"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "distroless: runs in a rebuilt gcr.io/distroless/python3-debian13 or -debian12 root"
        " (root, unshare)",
    )


def _unavailable(reason: str) -> None:
    if _REQUIRE:
        pytest.fail(f"distroless tests required but cannot run: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session", params=list(mkroot.IMAGES))
def image(request: pytest.FixtureRequest) -> mkroot.Image:
    """Each reproduced image in turn: debian13, then debian12."""
    return mkroot.IMAGES[request.param]


def fetch_debs(image: mkroot.Image, packages: list[str]) -> dict[str, str]:
    """:func:`mkroot.fetch_debs` from ``image``'s suite; "cannot run here" if apt fails."""
    try:
        return mkroot.fetch_debs(packages, image=image)
    except mkroot.MkrootError as e:
        _unavailable(f"cannot fetch {image.suite} packages: {e}")
        raise


_IMAGE_DEBS: dict[str, dict[str, str]] = {}


def _image_debs(image: mkroot.Image) -> dict[str, str]:
    """The image's .debs (downloaded once into the XDG cache; one apt call per session)."""
    reason = chroot.available()
    if reason:
        _unavailable(reason)
    if image.name not in _IMAGE_DEBS:
        _IMAGE_DEBS[image.name] = fetch_debs(image, [*image.packages, mkroot.CACERTS_PACKAGE])
    return _IMAGE_DEBS[image.name]


def _root_factory(
    image: mkroot.Image, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], Path]:
    debs = _image_debs(image)

    def make(name: str) -> Path:
        root = tmp_path_factory.mktemp(f"{image.name}-{name}") / "root"
        mkroot.build_root(str(root), debs, image)
        hook_dir = root / "usr/lib/python3/dist-packages"
        hook_dir.mkdir(parents=True, exist_ok=True)
        (hook_dir / "apport_python_hook.py").write_text(APPORT_HOOK)
        return root

    return make


@pytest.fixture(scope="session")
def make_root(
    image: mkroot.Image, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], Path]:
    """Factory: a fresh copy of the image filesystem per call (about one second each)."""
    return _root_factory(image, tmp_path_factory)


@pytest.fixture(scope="session")
def make_debian13_root(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Factory: a fresh python3-debian13 root per call, for the tests of that image alone."""
    return _root_factory(mkroot.DEBIAN13, tmp_path_factory)


@pytest.fixture(scope="session")
def make_debian12_root(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Factory: a fresh python3-debian12 root per call, for the tests of that image alone."""
    return _root_factory(mkroot.DEBIAN12, tmp_path_factory)


@pytest.fixture(scope="session")
def plain_root(make_root: Callable[[str], Path]) -> Path:
    """The image as shipped (plus the apport stand-in), never modified by tests."""
    return make_root("plain")


PROBE = (HERE / "probe.py").read_text()


def _probe(
    root: Path,
    request: dict[str, Any],
    *,
    user: int = 0,
    env: dict[str, str] | None = None,
    python_args: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Run probe.py inside ``root`` and return its JSON; fail with its stderr if it printed none."""
    res = chroot.run(
        str(root), [*python_args, "-c", PROBE, json.dumps(request)], user=user, env=env
    )
    if res.rc != 0 or not res.stdout.strip():
        pytest.fail(f"probe failed rc={res.rc}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}")
    result: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    result["stderr"] = res.stderr
    return result


@pytest.fixture(scope="session")
def probe() -> Callable[..., dict[str, Any]]:
    """``probe(root, request, user=0, env=None, python_args=())`` -> the probe's JSON output."""
    return _probe


# ---------------------------------------------------------------------------------------------
# The two activation routes, set up with the same paths and environment as examples/Dockerfile.*


@pytest.fixture(scope="session")
def shim_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ctypes-shim wheel: $CTYPES_SHIM_TEST_WHEEL, or ``pip wheel --no-deps`` of the repo."""
    given = os.environ.get("CTYPES_SHIM_TEST_WHEEL")
    if given:
        return Path(given)
    out = tmp_path_factory.mktemp("wheel")
    pip("wheel", "--no-deps", str(REPO), "-w", str(out))
    (wheel,) = out.glob("ctypes_shim-*.whl")
    return wheel


def _copy_to_opt_x(root: Path, deb: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["dpkg-deb", "-x", deb, tmp], check=True)
        dest = root / "opt/x"
        dest.mkdir(parents=True)
        libs = [*Path(tmp).glob("usr/lib/x86_64-linux-gnu/libjansson.so.4*"),
                *Path(tmp).glob("lib/x86_64-linux-gnu/libjansson.so.4*")]
        assert libs, f"no libjansson.so.4* in {deb}"
        for lib in libs:
            shutil.copy2(lib, dest / lib.name, follow_symlinks=False)


@pytest.fixture(scope="session")
def pip_target(
    shim_wheel: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[Path, mkroot.Image], None]:
    """``pip_target(DEST, image)``: ``pip install --target DEST <wheel> gunicorn`` for the
    image's Python.

    pip runs once per image, into a staging dir that is then copied: resolving against the
    index is most of the cost, and the result is the same for every target.
    """
    staged: dict[str, Path] = {}

    def install(dest: Path, image: mkroot.Image) -> None:
        if image.python not in staged:
            staging = tmp_path_factory.mktemp(f"pip-{image.name}")
            staging.chmod(0o755)  # copytree gives DEST this mode; nonroot must read it
            pip("install", "--target", str(staging), str(shim_wheel), "gunicorn",
                python=image.python)
            staged[image.python] = staging
        shutil.copytree(staged[image.python], dest, symlinks=True, dirs_exist_ok=True)

    return install


def _route_root(
    route: str,
    image: mkroot.Image,
    make_root: Callable[[str], Path],
    pip_target: Callable[[Path, mkroot.Image], None],
) -> RouteRoot:
    root = make_root(route)
    if route == "route1":
        # Dockerfile.sitecustomize: pip install --target /app/deps; template in /app/site.
        pip_target(root / "app/deps", image)
        (root / "app/site").mkdir(parents=True)
        shutil.copy2(
            REPO / "sitecustomize_template/sitecustomize.py", root / "app/site/sitecustomize.py"
        )
    else:
        # Dockerfile.pth: the wheel (with ctypes_shim.pth) in a site dir of the image's python.
        pip_target(root / image.site_dir, image)
    (root / "app").mkdir(exist_ok=True)
    shutil.copy2(EXAMPLES / "app.py", root / "app/app.py")
    rr = RouteRoot(route, root, ROUTE_ENV[route], image.name)
    rr.before_layer = _probe(root, {"names": ["yaml-0"], "use": "shim"}, env=rr.env)
    cache = root / "etc/ld.so.cache"
    rr.cache_before_layer = cache.read_bytes() if cache.exists() else None
    # The later layer: unpacked with no ldconfig run, so debian13's cache goes stale.
    mkroot.add_layer(str(root), [LATER_LAYER], image=image)
    rr.ld_library_path_deb = fetch_debs(image, [LD_LIBRARY_PATH_PKG])[LD_LIBRARY_PATH_PKG]
    _copy_to_opt_x(root, rr.ld_library_path_deb)
    return rr


@pytest.fixture(scope="session")
def route1_root(
    image: mkroot.Image,
    make_root: Callable[[str], Path],
    pip_target: Callable[[Path, mkroot.Image], None],
) -> RouteRoot:
    """Route 1: sitecustomize on PYTHONPATH, shim + gunicorn in /app/deps, then later layers."""
    return _route_root("route1", image, make_root, pip_target)


@pytest.fixture(scope="session")
def route2_root(
    image: mkroot.Image,
    make_root: Callable[[str], Path],
    pip_target: Callable[[Path, mkroot.Image], None],
) -> RouteRoot:
    """Route 2: the wheel in /usr/local/lib/python3.X/dist-packages, activated by its .pth."""
    return _route_root("route2", image, make_root, pip_target)


@pytest.fixture(params=["route1", "route2"])
def route_root(request: pytest.FixtureRequest, image: mkroot.Image) -> RouteRoot:
    """Each activation route in turn, in each image (``image`` makes pytest parametrize it)."""
    rr: RouteRoot = request.getfixturevalue(f"{request.param}_root")
    return rr
