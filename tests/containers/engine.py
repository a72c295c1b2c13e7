"""podman, run the way it works on a Debian 12 host: vfs storage, runc, cgroupfs, own storage.

``Podman(workdir)`` keeps everything under ``workdir``: image storage (``--root``), runtime
state (``--runroot``), buildah's scratch files (``TMPDIR``) and a ``containers.conf``.
:meth:`Podman.destroy` removes all of it, so a test session leaves no images behind.

Why each option (Debian bookworm's podman 4.3.1):

- ``--runtime runc``: crun 1.8 refuses hosts whose cgroups are in hybrid mode ("cgroups in
  hybrid mode not supported"); runc runs there.
- ``--cgroup-manager cgroupfs``: no systemd session is needed.
- ``--storage-driver overlay`` where the kernel mounts it on the storage directory (podman's
  own check, run once in a scratch store), else ``vfs``, which works on any filesystem but
  makes each layer and each container a full copy: one build here took 70 s with vfs on a
  loaded 2-core machine. ``CTYPES_SHIM_TEST_PODMAN_DRIVER`` forces either.
- ``default_ulimits = []`` in ``containers.conf``: podman asks for ``nofile=1048576`` by
  default, and a container fails to start where the hard limit is lower (20000 here).
- ``--pull=never`` on build and run: base images are made locally (``podman import``); no
  registry is ever asked.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Sequence

CONTAINERS_CONF = "[containers]\ndefault_ulimits = []\n"


class PodmanError(RuntimeError):
    """A podman command failed; the message has its argv, exit status and stderr."""


def missing() -> str | None:
    """None if podman can be tried here, else why not (no podman or runc, not root)."""
    if os.geteuid() != 0:
        return "needs root (rootful podman with vfs storage)"
    for tool in ("podman", "runc"):
        if shutil.which(tool) is None:
            return f"{tool} not found on PATH (apt-get install podman runc)"
    return None


class Podman:
    """One private podman installation under ``workdir``."""

    def __init__(self, workdir: Path, driver: str | None = None) -> None:
        self.workdir = workdir
        for sub in ("storage", "run", "tmp"):
            (workdir / sub).mkdir(parents=True, exist_ok=True)
        conf = workdir / "containers.conf"
        conf.write_text(CONTAINERS_CONF)
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf), "TMPDIR": str(workdir / "tmp")}
        self.driver = (
            driver or os.environ.get("CTYPES_SHIM_TEST_PODMAN_DRIVER") or self._pick_driver()
        )
        self.argv = self._argv("storage", "run", self.driver)

    def _argv(self, storage: str, run: str, driver: str) -> list[str]:
        return [
            "podman",
            "--root", str(self.workdir / storage),
            "--runroot", str(self.workdir / run),
            "--storage-driver", driver,
            "--runtime", "runc",
            "--cgroup-manager", "cgroupfs",
        ]  # fmt: skip

    def _pick_driver(self) -> str:
        """overlay if podman can mount it under ``workdir`` (a scratch store), else vfs."""
        cmd = [*self._argv("probe-storage", "probe-run", "overlay"), "info"]
        try:
            proc = subprocess.run(cmd, capture_output=True, env=self.env, timeout=120, check=False)
        finally:
            for sub in ("probe-storage", "probe-run"):
                shutil.rmtree(self.workdir / sub, ignore_errors=True)
        return "overlay" if proc.returncode == 0 else "vfs"

    def __call__(
        self,
        *args: str,
        input: bytes | None = None,
        timeout: float = 600,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """``podman ARGS``; raises :class:`PodmanError` on a non-zero exit when ``check``."""
        cmd = [*self.argv, *args]
        proc = subprocess.run(
            cmd,
            input=input.decode() if input is not None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env,
            check=False,
        )
        if check and proc.returncode:
            raise PodmanError(
                f"podman {' '.join(args)[:300]} failed ({proc.returncode}):\n"
                f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            )
        return proc

    def import_root(self, root: Path, tags: Sequence[str], changes: Sequence[str]) -> str:
        """``tar -C ROOT -c . | podman import --change ... - TAG``; more tags; the image id."""
        tar = subprocess.Popen(
            ["tar", "-C", str(root), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE
        )
        opts = [f"--change={c}" for c in changes]
        cmd = [*self.argv, "import", "-q", *opts, "-", tags[0]]
        proc = subprocess.run(
            cmd, stdin=tar.stdout, capture_output=True, text=True, env=self.env, check=False
        )
        assert tar.stdout is not None
        tar.stdout.close()
        if tar.wait() or proc.returncode:
            raise PodmanError(f"podman import {tags[0]} failed:\n{proc.stderr[-3000:]}")
        for tag in tags[1:]:
            self("tag", tags[0], tag)
        return proc.stdout.strip()

    def build(
        self,
        containerfile: Path,
        context: Path,
        tag: str,
        build_args: dict[str, str] | None = None,
        target: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """``podman build -f FILE -t TAG [--build-arg K=V ...] [--target T] CONTEXT``."""
        # Layers are cached (and reused by a later build of the same steps) only on overlay,
        # where a commit stores a diff; on vfs each one is a full copy of the tree.
        layers = "--layers=" + ("true" if self.driver == "overlay" else "false")
        args = ["build", "--pull=never", layers, "-f", str(containerfile), "-t", tag]
        for key, value in (build_args or {}).items():
            args += ["--build-arg", f"{key}={value}"]
        if target:
            args += ["--target", target]
        return self(*args, str(context), timeout=1200)

    def inspect(self, image: str) -> dict[str, object]:
        """``podman image inspect``'s object for one image."""
        import json

        data: list[dict[str, object]] = json.loads(self("image", "inspect", image).stdout)
        return data[0]

    def destroy(self) -> None:
        """Remove every container and image of this storage, then the whole directory."""
        self("rm", "--all", "--force", "--time", "0", check=False, timeout=120)
        self("image", "unmount", "--all", check=False, timeout=120)
        self("rmi", "--all", "--force", check=False, timeout=300)
        shutil.rmtree(self.workdir, ignore_errors=True)
