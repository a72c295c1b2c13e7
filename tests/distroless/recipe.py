"""The tested recipe: what examples/Dockerfile.* do, as data shared by conftest.py and the tests."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
EXAMPLES = REPO / "examples"
ROUTE_ENV = {
    "route1": {"PYTHONPATH": "/app/site:/app/deps"},  # examples/Dockerfile.sitecustomize
    "route2": {},  # examples/Dockerfile.pth: activated by ctypes_shim.pth in the site dir
}
DOCKERFILES = {
    "route1": EXAMPLES / "Dockerfile.sitecustomize",
    "route2": EXAMPLES / "Dockerfile.pth",
}
# The Dockerfiles' base images are build ARGs whose defaults are the debian13 recipe; these
# --build-arg values (spelled out in examples/README.md) give the debian12 one.
BUILD_ARGS: dict[str, dict[str, str]] = {
    "debian13": {},
    "debian12": {
        "PYTHON_VERSION": "3.11",
        "BUILD_IMAGE": "python:3.11-slim-bookworm",
        "RUNTIME_IMAGE": "gcr.io/distroless/python3-debian12:nonroot",
    },
}
LATER_LAYER = "libyaml-0-2"  # unpacked after the shim is installed: found with no regeneration
LD_LIBRARY_PATH_PKG = "libjansson4"  # in neither image, needs only libc; libjansson.so.4* to /opt/x


@dataclass
class RouteRoot:
    """A rebuilt image root with the shim installed by one route, plus the later layers."""

    route: str
    path: Path
    env: dict[str, str]
    image: str  # "debian13" or "debian12"
    before_layer: dict[str, Any] = field(default_factory=dict)  # probe output before LATER_LAYER
    cache_before_layer: bytes | None = None  # /etc/ld.so.cache before LATER_LAYER (debian13)
    ld_library_path_deb: str = ""  # the LD_LIBRARY_PATH_PKG .deb copied to /opt/x


def build_args_line(image: str) -> str:
    """The ``--build-arg`` options that select ``image``'s recipe ('' for the defaults)."""
    return " ".join(f"--build-arg {k}={v}" for k, v in BUILD_ARGS[image].items())


def dockerfile(route: str, image: str = "debian13") -> dict[str, Any]:
    """FROM, RUN, COPY, ENV, ENTRYPOINT and CMD of each stage of examples/Dockerfile.<route>.

    ``ARG`` defaults and ``image``'s build args are substituted into FROM, RUN, COPY and ENV
    (``${NAME}`` and ``$NAME``) with Docker's scoping: an ARG before the first FROM is visible
    in FROM lines only, unless a stage declares it again.
    """
    text = DOCKERFILES[route].read_text().replace("\\\n", " ")
    given = BUILD_ARGS[image]
    global_args: dict[str, str] = {}
    stages: list[dict[str, Any]] = []
    scope: dict[str, str] = {}

    def expand(value: str, names: dict[str, str]) -> str:
        return re.sub(
            r"\$\{(\w+)\}|\$(\w+)", lambda m: names.get(m[1] or m[2], m[0]), value
        )

    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        instr, _, rest = line.strip().partition(" ")
        instr = instr.upper()
        if instr == "ARG":
            name, _, default = rest.strip().partition("=")
            if not stages:
                global_args[name] = given.get(name, default)
            else:
                scope[name] = given.get(name, default or global_args.get(name, ""))
        elif instr == "FROM":
            stages.append({"FROM": expand(rest.split()[0], global_args), "RUN": [], "COPY": [],
                           "ENV": {}})
            scope = {}
        elif instr in ("RUN", "COPY"):
            stages[-1][instr].append(expand(" ".join(rest.split()), scope))
        elif instr == "ENV":
            key, _, value = rest.partition("=")
            stages[-1]["ENV"][key.strip()] = expand(value.strip(), scope)
        elif instr in ("ENTRYPOINT", "CMD"):
            stages[-1][instr] = json.loads(rest)
    return {"build": stages[0], "final": stages[-1], "global_args": global_args}


def pip(*args: str, python: str = "") -> None:
    """pip of the interpreter running the tests; ``install`` targets the image's ``python``."""
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args]
    if python and python != "{}.{}".format(*sys.version_info[:2]):
        # Same wheels as a build stage of the image's Python would pick (wrapt has a C
        # extension).
        cp = "cp" + python.replace(".", "")
        cmd += [
            "--python-version",
            python,
            "--implementation",
            "cp",
            "--abi",
            cp,
            "--platform",
            "manylinux_2_28_x86_64",
            "--platform",
            "manylinux2014_x86_64",
            "--only-binary=:all:",
        ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        pytest.fail(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
