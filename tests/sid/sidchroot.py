"""Run a program inside a root built by sidroot.py, under ``unshare`` + chroot.

``unshare --mount --pid --fork --kill-child --root=ROOT --mount-proc=/proc PROGRAM`` gives a
private mount table, a PID namespace with its own /proc, and chroot(ROOT) before exec; the
environment is exactly the one given. /dev inside the root holds real device nodes (null,
zero, full, random, urandom, tty; made once with mknod by :func:`prepare_dev`), the
/proc/self/fd links and a /dev/shm directory, as a container's /dev has. Unlike
tests/distroless/chroot.py, no host Python runs between unshare and the program: that
halves the cost of each of the few hundred short runs these tests make.
"""

from __future__ import annotations

import functools
import os
import shutil
import stat
import subprocess
import sys
from typing import NamedTuple

# name -> (major, minor) of the character devices a container's /dev has (devices.txt).
_DEV_NODES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8),
              "urandom": (1, 9), "tty": (5, 0)}
_DEV_LINKS = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
              "stderr": "/proc/self/fd/2"}
BASE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8", "HOME": "/root"}


class Result(NamedTuple):
    rc: int
    stdout: str
    stderr: str


@functools.lru_cache(maxsize=None)
def available() -> str | None:
    """None if :func:`run` can work here, else why not."""
    if sys.platform != "linux":
        return f"needs Linux, not {sys.platform}"
    if os.geteuid() != 0:
        return "needs root (unshare --mount --pid, chroot, mknod)"
    for tool in ("unshare", "dpkg-deb", "apt-get"):
        if shutil.which(tool) is None:
            return f"{tool} not found on PATH"
    try:
        proc = subprocess.run(["unshare", "--mount", "--pid", "--fork", "--kill-child",
                               "--root=/", "--mount-proc=/proc", "true"],
                              capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unshare failed: {e}"
    if proc.returncode:
        return (f"unshare --mount --pid --root failed (EPERM in a container? util-linux "
                f"older than 2.35?): {proc.stderr.strip()}")
    return None


def prepare_dev(root: str) -> None:
    """Give ``root`` a container's /dev and an empty /proc (idempotent)."""
    dev = os.path.join(root, "dev")
    os.makedirs(os.path.join(root, "proc"), exist_ok=True)
    os.makedirs(os.path.join(dev, "shm"), exist_ok=True)
    os.chmod(os.path.join(dev, "shm"), 0o1777)
    for name, (major, minor) in _DEV_NODES.items():
        path = os.path.join(dev, name)
        if not os.path.lexists(path):
            os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
            os.chmod(path, 0o666)
    for name, target in _DEV_LINKS.items():
        if not os.path.lexists(os.path.join(dev, name)):
            os.symlink(target, os.path.join(dev, name))


def command(root: str, argv: list[str], *, workdir: str = "/") -> list[str]:
    """The host argv that runs ``argv`` (absolute program path inside ``root``)."""
    return ["unshare", "--mount", "--pid", "--fork", "--kill-child",
            f"--root={os.path.abspath(root)}", f"--wd={workdir}", "--mount-proc=/proc",
            "--", *argv]


def run(root: str, argv: list[str], *, env: dict[str, str] | None = None, workdir: str = "/",
        timeout: float = 120) -> Result:
    """Run ``argv`` as root inside ``root``; ``env`` is the whole environment (default BASE_ENV)."""
    prepare_dev(root)
    proc = subprocess.run(command(root, argv, workdir=workdir),
                          env=BASE_ENV if env is None else env,
                          capture_output=True, text=True, timeout=timeout, check=False)
    return Result(proc.returncode, proc.stdout, proc.stderr)


if __name__ == "__main__":
    # Manual use: python3 tests/sid/sidchroot.py ROOT /usr/bin/python3.15 -c 'print(1)'
    if len(sys.argv) < 3:
        sys.exit("usage: sidchroot.py ROOT PROGRAM [ARGS ...]")
    prepare_dev(sys.argv[1])
    sys.exit(subprocess.call(command(sys.argv[1], sys.argv[2:]), env=BASE_ENV))
