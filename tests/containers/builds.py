"""The examples this tier builds: which Dockerfile, on which base, with which build args."""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "distroless"))  # mkroot is a plain script

import mkroot  # noqa: E402

REPO = HERE.parents[1]
EXAMPLES = REPO / "examples"
LATER_LAYER = "libyaml-0-2"  # in neither image; added by a COPY layer after the build


def distroless_tag(image: mkroot.Image) -> str:
    return f"gcr.io/distroless/python3-{image.name}:nonroot"


def readme_build_args() -> dict[str, str]:
    """The ``--build-arg`` options of examples/README.md's python3-debian12 command."""
    for line in (EXAMPLES / "README.md").read_text().splitlines():
        words = shlex.split(line) if line.startswith("docker build") else []
        if "--build-arg" in words:
            return dict(
                words[i + 1].split("=", 1) for i, w in enumerate(words) if w == "--build-arg"
            )
    raise AssertionError("examples/README.md has no 'docker build ... --build-arg' line")


@dataclass(frozen=True)
class Recipe:
    """One examples/Dockerfile.* built for one reproduced distroless image."""

    name: str  # the Dockerfile's suffix
    image: mkroot.Image

    @property
    def dockerfile(self) -> Path:
        return EXAMPLES / f"Dockerfile.{self.name}"

    @property
    def build_args(self) -> dict[str, str]:
        """None for the Dockerfile's defaults (debian13); README's line for debian12."""
        if not takes_base_args(self.dockerfile) or self.image is mkroot.DEBIAN13:
            return {}
        return readme_build_args()

    @property
    def tag(self) -> str:
        return f"localhost/ctypes-shim-example-{self.name}:{self.image.name}"

    @property
    def id(self) -> str:
        return f"{self.name}-{self.image.name}"


def takes_base_args(dockerfile: Path) -> bool:
    """The Dockerfile's runtime image is a build ARG (else its FROM names one image)."""
    return re.search(r"^ARG RUNTIME_IMAGE=", dockerfile.read_text(), re.MULTILINE) is not None


def images_of(dockerfile: Path) -> list[mkroot.Image]:
    """The reproduced images a Dockerfile builds on: both when its base is an ARG, else the
    one its FROM lines name."""
    if takes_base_args(dockerfile):
        return list(mkroot.IMAGES.values())
    text = dockerfile.read_text()
    return [im for im in mkroot.IMAGES.values() if distroless_tag(im) in text]


SERVING = [n for n in ("sitecustomize", "pth", "run") if (EXAMPLES / f"Dockerfile.{n}").exists()]
RECIPES = [Recipe(n, im) for n in SERVING for im in images_of(EXAMPLES / f"Dockerfile.{n}")]
