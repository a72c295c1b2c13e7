"""`ctypes-shim check` on the reproduced python3-debian12 root, with real packages from PyPI.

examples/Dockerfile.check builds on python3-debian12 (bookworm packages, from the host's
apt), so this runs in that image only.

psycopg (pure Python), python-magic and soundfile's pure wheel are installed with
`pip install --target /app/deps`, as examples/Dockerfile.check does.  Without their Debian
library packages the check names each missing library and exits 1.  Once the layer of
examples/Dockerfile.check (libpq5, libmagic1, libsndfile1 and their dependencies that the
image lacks, which is apt's closure) is unpacked, it exits 0; glibc's loader inside the
image then loads every library the check said would load.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import chroot
import mkroot
import pytest
from recipe import EXAMPLES, REPO

pytestmark = pytest.mark.distroless

DEPS = "/app/deps"
LIBRARY_PACKAGES = ("libpq5", "libmagic1", "libsndfile1")
# The literal lookups these packages make on Linux, and what each must resolve to.
EXPECTED = {"pq": "libpq.so.5", "magic": "libmagic.so.1", "sndfile": "libsndfile.so.1"}

LOAD = """
import ctypes, json, sys
out = {}
for path in sys.argv[1:]:
    try:
        ctypes.CDLL(path)
        out[path] = True
    except OSError as e:
        out[path] = str(e)
print(json.dumps(out))
"""


def _pip(*args: str) -> None:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:
        pytest.fail(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")


@pytest.fixture(scope="module")
def app_root(
    make_debian12_root: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The image with psycopg, python-magic and soundfile's pure wheel in /app/deps."""
    root = make_debian12_root("check")
    target = str(root / DEPS.lstrip("/"))
    # The image's interpreter is CPython 3.11: pick what a 3.11 build stage would.
    _pip("install", "--target", target, "--python-version", "3.11", "--only-binary=:all:",
         "psycopg", "python-magic")
    wheels = tmp_path_factory.mktemp("wheels")
    _pip("download", "--no-deps", "--only-binary=:all:", "--platform", "any",
         "--python-version", "3.11", "-d", str(wheels), "soundfile")
    (wheel,) = wheels.glob("soundfile-*-none-any.whl")
    _pip("install", "--target", target, "--no-deps", str(wheel))
    return root


def _check(root: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ctypes_shim", "check", "--root", str(root),
                           DEPS, *extra], capture_output=True, text=True, check=False,
                          cwd=str(REPO), timeout=300)


def _results(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for p in report["packages"] for x in p["lookups"]
            for r in x["results"]}


def _closure(packages: tuple[str, ...]) -> list[str]:
    """The packages apt would install for *packages* (Depends, recursively), minus the
    image's own."""
    done = subprocess.run(["apt-cache", "depends", "--recurse", "--no-recommends",
                           "--no-suggests", "--no-conflicts", "--no-breaks", "--no-replaces",
                           "--no-enhances", *packages], capture_output=True, text=True,
                          check=True)
    names = {line for line in done.stdout.splitlines()
             if line and not line.startswith((" ", "<"))}
    return sorted(names - set(mkroot.DEBIAN12.packages))


def _dockerfile_layer() -> list[str]:
    """The packages examples/Dockerfile.check downloads for its library layer."""
    text = (EXAMPLES / "Dockerfile.check").read_text().replace("\\\n", " ")
    (line,) = [x for x in text.splitlines()
               if "apt-get download" in x and not x.lstrip().startswith("#")]
    words = line.split("apt-get download", 1)[1].split("&&", 1)[0].split()
    return sorted(words)


def test_the_example_layer_is_apts_closure() -> None:
    """examples/Dockerfile.check downloads exactly the three library packages and the
    dependencies apt would install that the image lacks."""
    assert set(LIBRARY_PACKAGES) <= set(_dockerfile_layer())
    assert _dockerfile_layer() == _closure(LIBRARY_PACKAGES)


def test_check_fails_without_the_libraries_then_passes_with_the_layer(app_root: Path) -> None:
    """Exit 1 naming pq, magic and sndfile (stock: no ldconfig there); after the layer,
    exit 0 and glibc in the image loads each library the check resolved."""
    done = _check(app_root, "--json")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert {p["package"] for p in report["packages"]} >= {"psycopg", "magic", "soundfile"}
    results = _results(report)
    for name in EXPECTED:
        assert results[name]["shim"] is None and results[name]["loads"] is False, name
        assert results[name]["stock"] is None and results[name]["stock_how"] == (
            "no /sbin/ldconfig")
    assert results["c"]["shim"] == "libc.so.6" and results["c"]["loads"] is True  # psycopg
    failing = {x["names"][0] for p in report["packages"] for x in p["lookups"] if not x["ok"]}
    assert failing == set(EXPECTED)
    text = _check(app_root)
    assert text.returncode == 1
    summary = text.stdout.splitlines()[-1]
    assert summary.startswith("summary: FAIL: ") and all(n in summary for n in EXPECTED)

    mkroot.add_layer(str(app_root), _dockerfile_layer())  # the example's layer
    done = _check(app_root, "--json")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    results = _results(json.loads(done.stdout))
    for name, soname in EXPECTED.items():
        assert results[name]["shim"] == soname and results[name]["loads"] is True, name
        assert results[name]["objects"] > 2  # its DT_NEEDED were walked too
        assert results[name]["stock"] is None  # still no /sbin/ldconfig in the image
    paths = [results[n]["path"] for n in EXPECTED]
    loaded = chroot.run(str(app_root), ["-c", LOAD, *paths])
    assert loaded.rc == 0, loaded.stderr
    assert json.loads(loaded.stdout.strip().splitlines()[-1]) == dict.fromkeys(paths, True)
