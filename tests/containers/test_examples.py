"""examples/Dockerfile.* built by podman, unchanged, on the reproduced distroless images.

Each example is built once per base (python3-debian13 with the Dockerfile's defaults,
python3-debian12 with examples/README.md's ``--build-arg`` line), then run the way a user runs
it: gunicorn from the image's own ENTRYPOINT and CMD as uid 65532, a read-only root, a later
layer that adds a library, and ``CTYPES_SHIM_DISABLE=1``.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from typing import Any, Callable

import engine
import pytest
from builds import EXAMPLES, RECIPES, Recipe, distroless_tag, images_of
from images import mkroot

pytestmark = pytest.mark.containers

# What examples/app.py looks up, and the soname glibc's loader knows each library by in both
# images (Debian's packages: libc6, libssl3/libssl3t64, zlib1g, ... of the distroless lists).
SONAMES = {
    "c": "libc.so.6",
    "m": "libm.so.6",
    "ssl": "libssl.so.3",
    "crypto": "libcrypto.so.3",
    "z": "libz.so.1",
    "sqlite3": "libsqlite3.so.0",
    "ffi": "libffi.so.8",
    "uuid": "libuuid.so.1",
    "expat": "libexpat.so.1",
    "lzma": "liblzma.so.5",
    "bz2": "libbz2.so.1.0",
    "stdc++": "libstdc++.so.6",
    "gcc_s": "libgcc_s.so.1",
    "gomp": "libgomp.so.1",
}
LATER = ("yaml-0", "libyaml-0.so.2")  # the later layer's library (conftest.LATER_LAYER)

RECIPE = pytest.mark.parametrize("recipe", RECIPES, ids=[r.id for r in RECIPES])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _get(port: int) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/")
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def serve(
    podman: engine.Podman, tag: str, *options: str, cmd: list[str] | None = None, requests: int = 6
) -> dict[str, Any]:
    """Start the image detached with a published port (its ENTRYPOINT and CMD, or ``cmd``),
    make ``requests`` GETs, stop it with SIGTERM; responses, exit code and log."""
    port = _free_port()
    cid = podman(
        "run", "-d", "--pull=never", "-p", f"127.0.0.1:{port}:8000", *options, tag, *(cmd or [])
    ).stdout.strip()
    out: dict[str, Any] = {"responses": []}
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                out["responses"].append(_get(port))
                break
            except (OSError, http.client.HTTPException):
                state = podman("inspect", cid, "--format", "{{.State.Running}}").stdout.strip()
                if state != "true" or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
        if out["responses"]:
            out["responses"] += [_get(port) for _ in range(requests - 1)]
    finally:
        podman("stop", "--time", "30", cid, check=False)
        out["exit_code"] = podman("inspect", cid, "--format", "{{.State.ExitCode}}").stdout.strip()
        out["log"] = podman("logs", cid, check=False).stderr[-3000:]
        podman("rm", "--force", cid, check=False)
    return out


def assert_served(out: dict[str, Any], n: int = 6) -> None:
    """Every request got 200 from gunicorn as 65532 with every library found and loaded;
    SIGTERM stopped it cleanly."""
    assert len(out["responses"]) == n, out["log"]
    for status, body in out["responses"]:
        assert status == 200
        assert body["uid"] == mkroot.NONROOT
        assert body["server"].startswith("gunicorn/")
        assert body["ctypes_shim"]["installed"] is True
        assert body["spawned"] == []
        assert {k: v["soname"] for k, v in body["libraries"].items()} == SONAMES
        for name, lib in body["libraries"].items():
            assert "error" not in lib and lib["symbol"], (name, lib)
    assert out["exit_code"] == "0", out["log"]


@RECIPE
def test_gunicorn_serves_every_library_as_nonroot(
    recipe: Recipe, build: Callable[..., str], podman: engine.Podman
) -> None:
    """The image's own ENTRYPOINT and CMD: gunicorn runs as 65532, every request is a 200
    whose body reports all 14 libraries found and loaded; SIGTERM exits 0."""
    tag = build(recipe)
    config = podman.inspect(tag)["Config"]
    assert config["User"] == str(mkroot.NONROOT)  # type: ignore[index]
    assert_served(serve(podman, tag))


@RECIPE
def test_read_only_root(
    recipe: Recipe, build: Callable[..., str], podman: engine.Podman
) -> None:
    """``docker run --read-only``: nothing writable but /dev/shm, which gunicorn's docs name
    for its worker heartbeat files (``--worker-tmp-dir``); the shim writes nothing."""
    tag = build(recipe)
    cmd = [*podman.inspect(tag)["Config"]["Cmd"], "--worker-tmp-dir", "/dev/shm"]  # type: ignore[index]
    # podman's --read-only also mounts tmpfs on /tmp, /var/tmp and /run; docker's does not.
    assert_served(serve(podman, tag, "--read-only", "--read-only-tmpfs=false", cmd=cmd))


@RECIPE
def test_later_layer_found_without_regeneration(
    recipe: Recipe, later_layer: Callable[[Recipe], str], probe: Callable[..., dict[str, Any]]
) -> None:
    """A library a later COPY layer adds is found and loads, with nothing regenerated; stock
    find_library (the kill switch) does not find it."""
    tag = later_layer(recipe)
    names = [*SONAMES, LATER[0]]
    shim = probe(tag, names)
    assert shim["shim_installed"] is True
    assert shim["uid"] == mkroot.NONROOT
    assert shim["libs"] == {**SONAMES, LATER[0]: LATER[1]}
    assert shim["load_errors"] == {}
    stock = probe(tag, [LATER[0]], "--env", "CTYPES_SHIM_DISABLE=1")
    assert stock["libs"] == {LATER[0]: None}


@RECIPE
def test_kill_switch_gives_stock_behaviour(
    recipe: Recipe,
    build: Callable[..., str],
    probe: Callable[..., dict[str, Any]],
) -> None:
    """CTYPES_SHIM_DISABLE=1: the shim is not installed and every answer is what stock
    find_library gives in the plain distroless image (debian12: None for all; debian13: its
    pre-generated cache)."""
    tag = build(recipe)
    disabled = probe(tag, list(SONAMES), "--env", "CTYPES_SHIM_DISABLE=1")
    plain = probe(distroless_tag(recipe.image), list(SONAMES))
    assert disabled["shim_installed"] is False
    assert plain["shim_installed"] is False
    assert disabled["libs"] == plain["libs"]
    if recipe.image is mkroot.DEBIAN12:  # no ldconfig, no cache, no gcc
        assert set(plain["libs"].values()) == {None}
    else:
        assert plain["libs"] == SONAMES


CHECK = EXAMPLES / "Dockerfile.check"


@pytest.mark.skipif(not CHECK.exists(), reason="no examples/Dockerfile.check")
@pytest.mark.parametrize(
    "image", images_of(CHECK) if CHECK.exists() else [], ids=lambda im: im.name
)
def test_check_example(
    image: mkroot.Image, build: Callable[..., str], podman: engine.Podman
) -> None:
    """Dockerfile.check: its ``check`` stage (ctypes-shim check on the image's filesystem)
    passes, and the image imports psycopg, python-magic and soundfile."""
    recipe = Recipe("check", image)
    build(recipe, "check")  # raises if the check stage exits non-zero
    tag = build(recipe)
    res = podman("run", "--rm", "--pull=never", tag)
    assert res.stdout.strip() == "ok", res.stderr
