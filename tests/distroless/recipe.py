"""The tested recipe: what examples/Dockerfile.* do, as data shared by conftest.py and the tests."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
EXAMPLES = REPO / "examples"
SITE_DIR = "usr/local/lib/python3.11/dist-packages"  # a site dir of Debian's python3.11 (route 2)
ROUTE_ENV = {
    "route1": {"PYTHONPATH": "/app/site:/app/deps"},  # examples/Dockerfile.sitecustomize
    "route2": {},  # examples/Dockerfile.pth: activated by ctypes_shim.pth in the site dir
}
DOCKERFILES = {
    "route1": EXAMPLES / "Dockerfile.sitecustomize",
    "route2": EXAMPLES / "Dockerfile.pth",
}
LATER_LAYER = "libyaml-0-2"  # unpacked after the shim is installed: found with no regeneration
LD_LIBRARY_PATH_PKG = (
    "libzstd1"  # its libzstd.so.1* copied to /opt/x, reachable only via LD_LIBRARY_PATH
)


@dataclass
class RouteRoot:
    """A rebuilt image root with the shim installed by one route, plus the later layers."""

    route: str
    path: Path
    env: dict[str, str]
    before_layer: dict[str, Any] = field(default_factory=dict)  # probe output before LATER_LAYER


def dockerfile(route: str) -> dict[str, Any]:
    """FROM, RUN, COPY, ENV, ENTRYPOINT and CMD of each stage of examples/Dockerfile.<route>."""
    text = DOCKERFILES[route].read_text().replace("\\\n", " ")
    stages: list[dict[str, Any]] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        instr, _, rest = line.strip().partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            stages.append({"FROM": rest.split()[0], "RUN": [], "COPY": [], "ENV": {}})
        elif instr in ("RUN", "COPY"):
            stages[-1][instr].append(" ".join(rest.split()))
        elif instr == "ENV":
            key, _, value = rest.partition("=")
            stages[-1]["ENV"][key.strip()] = value.strip()
        elif instr in ("ENTRYPOINT", "CMD"):
            stages[-1][instr] = json.loads(rest)
    return {"build": stages[0], "final": stages[-1]}
