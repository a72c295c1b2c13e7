"""Fixtures for the container tier: examples/Dockerfile.* built and run by podman.

One podman storage per session (under /var/tmp, removed at the end), one base image per
reproduced distroless image and one build-stage image per Debian suite, and one image per
example recipe and base, built on first use and shared by every test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import engine  # noqa: E402
import images  # noqa: E402
from builds import LATER_LAYER, REPO, Recipe, distroless_tag  # noqa: E402
from images import chroot, mkroot  # noqa: E402

# CTYPES_SHIM_TEST_CONTAINERS=require (CI) turns "cannot run here" into a failure.
_REQUIRE = os.environ.get("CTYPES_SHIM_TEST_CONTAINERS") == "require"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "containers: builds and runs examples/Dockerfile.* with podman (root)"
    )


def unavailable(reason: str) -> None:
    if _REQUIRE:
        pytest.fail(f"container tests required but cannot run: {reason}")
    pytest.skip(reason)


# -- podman and the base images ---------------------------------------------------------------


@pytest.fixture(scope="session")
def podman() -> Iterator[engine.Podman]:
    """A private podman (own storage under /var/tmp); every image and container is removed
    at the end of the session."""
    reason = engine.missing() or chroot.available()
    if reason:
        unavailable(reason)
    workdir = Path(tempfile.mkdtemp(prefix="ctypes-shim-podman-", dir="/var/tmp"))
    pm = engine.Podman(workdir)
    try:
        yield pm
    finally:
        pm.destroy()


@dataclass(frozen=True)
class Bases:
    distroless: str  # gcr.io/distroless/python3-<name>:nonroot
    build: str  # docker.io/library/python:<X.Y>-slim-<suite>


_BASES: dict[str, Bases | str] = {}  # image name -> its bases, or why they could not be made
_BROKEN = "raised"


def bases(podman: engine.Podman, image: mkroot.Image, tmp: Path) -> Bases:
    """Both FROM images for ``image``, imported on first use, and one container started.

    Tried once per session: a later test of the same image fails (or skips) for the same
    reason without trying again.
    """
    if image.name not in _BASES:
        _BASES[image.name] = _BROKEN  # until made: an exception leaves it so
        _BASES[image.name] = _make_bases(podman, image, Path(tempfile.mkdtemp(dir=tmp)))
    made = _BASES[image.name]
    if made is _BROKEN:
        pytest.fail(f"the {image.name} base images failed in an earlier test")
    if isinstance(made, str):
        unavailable(made)
    assert isinstance(made, Bases)
    return made


def _make_bases(podman: engine.Podman, image: mkroot.Image, tmp: Path) -> Bases | str:
    root, build_root = tmp / "distroless", tmp / "build"
    try:
        debs = mkroot.fetch_image_debs(image=image)
        mkroot.build_root(str(root), debs, image)
        version = images.build_stage_root(build_root, image)
    except (mkroot.MkrootError, subprocess.CalledProcessError) as e:
        return f"cannot make the {image.name} roots: {e}"
    distroless = distroless_tag(image)
    podman.import_root(root, [distroless], images.distroless_config(image))
    podman.import_root(build_root, [images.build_tag(image)], images.build_config(version))
    shutil.rmtree(tmp)
    smoke = podman("run", "--rm", "--pull=never", distroless, "-c", "print('ok')", check=False)
    if smoke.returncode or smoke.stdout.strip() != "ok":
        return f"podman cannot start a container: {smoke.stderr.strip()[-2000:]}"
    return Bases(distroless, images.build_tag(image))


@pytest.fixture(scope="session")
def build_context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository as a fresh clone of this working tree has it (tracked and untracked
    files, nothing git ignores: no .git, .tox or caches), as the build context."""
    ctx = tmp_path_factory.mktemp("context")
    proc = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=False,
    )
    if proc.returncode:
        pytest.fail(f"git ls-files failed in {REPO}: {proc.stderr.decode()}")
    for rel in proc.stdout.decode().split("\0"):
        src = REPO / rel
        if rel and src.is_file():
            dest = ctx / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)
    return ctx


@pytest.fixture(scope="session")
def build(
    podman: engine.Podman, build_context: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., str]:
    """``build(recipe, target=None)``: ``podman build`` of the example, once per session;
    returns the tag."""
    done: dict[tuple[str, str | None], str] = {}
    tmp = tmp_path_factory.mktemp("roots")

    def make(recipe: Recipe, target: str | None = None) -> str:
        key = (recipe.id, target)
        if key not in done:
            bases(podman, recipe.image, tmp)
            tag = recipe.tag + (f"-{target}" if target else "")
            podman.build(
                build_context / recipe.dockerfile.relative_to(REPO),
                build_context,
                tag,
                recipe.build_args,
                target,
            )
            done[key] = tag
        return done[key]

    return make


@pytest.fixture(scope="session")
def later_layer(
    podman: engine.Podman, build: Callable[..., str], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[Recipe], str]:
    """``later_layer(recipe)``: the example's image plus one more layer, ``COPY`` of the
    files of LATER_LAYER's .deb (no ldconfig run); returns the tag."""
    done: dict[str, str] = {}

    def make(recipe: Recipe) -> str:
        if recipe.id not in done:
            base = build(recipe)
            ctx = tmp_path_factory.mktemp(f"layer-{recipe.id}")
            (deb,) = mkroot.fetch_debs([LATER_LAYER], image=recipe.image).values()
            subprocess.run(["dpkg-deb", "-x", deb, str(ctx / "layer")], check=True)
            shutil.copy2(HERE / "Containerfile.later-layer", ctx / "Containerfile")
            tag = f"{recipe.tag}-later-layer"
            podman.build(ctx / "Containerfile", ctx, tag, {"BASE": base})
            done[recipe.id] = tag
        return done[recipe.id]

    return make


PROBE = (HERE / "probe.py").read_text()


@pytest.fixture(scope="session")
def probe(podman: engine.Podman) -> Callable[..., dict[str, object]]:
    """``probe(tag, names, *run_options)``: probe.py in a container of the image, started by
    the image's own entrypoint, with ``-m gunicorn`` (the examples) swapped for ``-c PROBE``."""

    def run(tag: str, names: list[str], *options: str) -> dict[str, object]:
        config = podman.inspect(tag)["Config"]
        entrypoint = list(config["Entrypoint"])  # type: ignore[index]
        if entrypoint[-2:] == ["-m", "gunicorn"]:  # an example image
            entrypoint = entrypoint[:-2]
        argv = [*entrypoint, "-c", PROBE, *names]
        res = podman(
            "run", "--rm", "--pull=never", *options,
            "--entrypoint", json.dumps(argv[:1]), tag, *argv[1:],
            check=False,
        )  # fmt: skip
        if res.returncode or not res.stdout.strip():
            pytest.fail(f"probe in {tag} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
        out: dict[str, object] = json.loads(res.stdout.strip().splitlines()[-1])
        return out

    return run
