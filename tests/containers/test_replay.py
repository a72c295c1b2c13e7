"""What tests/distroless replays of the examples is what podman builds from them.

tests/distroless applies the steps of Dockerfile.sitecustomize and Dockerfile.pth to a root
by hand (conftest ``_route_root``: the same paths, the Dockerfile's ENV and CMD) and runs
many more cases there than here (LD_LIBRARY_PATH, ``python -I``, Debian's sitecustomize
chained, glibc's own ldconfig). These checks hold that replay to the real build: the image's
config and the files its layers add, read from the built image, not from Dockerfile text.
"""

from __future__ import annotations

import filecmp
from pathlib import Path
from typing import Callable

import engine
import pytest
import recipe as replay  # tests/distroless/recipe.py
from builds import RECIPES, REPO, Recipe, distroless_tag

pytestmark = pytest.mark.containers

ROUTES = {"sitecustomize": "route1", "pth": "route2"}  # tests/distroless's names
REPLAYED = [r for r in RECIPES if r.name in ROUTES]


@pytest.mark.parametrize("recipe", REPLAYED, ids=[r.id for r in REPLAYED])
def test_replay_is_the_built_image(
    recipe: Recipe, build: Callable[..., str], podman: engine.Podman
) -> None:
    """ENV added, ENTRYPOINT, CMD (the replay's gunicorn arguments) and where the shim,
    gunicorn, the template and app.py land: the same in the replay and the built image."""
    route = ROUTES[recipe.name]
    tag = build(recipe)
    config = podman.inspect(tag)["Config"]
    base_env = podman.inspect(distroless_tag(recipe.image))["Config"]["Env"]  # type: ignore[index]
    added = dict(e.split("=", 1) for e in config["Env"] if e not in base_env)  # type: ignore[index, attr-defined]
    assert added == replay.ROUTE_ENV[route]
    # The replay reads the Dockerfile with the build args this build used.
    assert replay.BUILD_ARGS[recipe.image.name] == recipe.build_args
    final = replay.dockerfile(route, recipe.image.name)["final"]
    assert config["Entrypoint"] == final["ENTRYPOINT"] == ["/usr/bin/python3", "-m", "gunicorn"]  # type: ignore[index]
    assert config["Cmd"] == final["CMD"]  # type: ignore[index]
    root = Path(podman("image", "mount", tag).stdout.strip())
    try:
        deps = root / ("app/deps" if route == "route1" else recipe.image.site_dir)
        assert (deps / "ctypes_shim/_activate.py").is_file()
        assert (deps / "gunicorn/__init__.py").is_file()
        if route == "route2":  # a site dir of the image's Python: the .pth activates it
            assert (deps / "ctypes_shim.pth").is_file()
        assert filecmp.cmp(root / "app/app.py", REPO / "examples/app.py", shallow=False)
        template = root / "app/site/sitecustomize.py"
        if route == "route1":
            assert filecmp.cmp(
                template, REPO / "sitecustomize_template/sitecustomize.py", shallow=False
            )
        else:
            assert not template.exists()
    finally:
        podman("image", "unmount", tag, check=False)
