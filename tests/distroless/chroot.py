"""Run a command inside a root built by mkroot.py, roughly as ``docker run`` would.

``unshare --mount --net --pid --fork`` gives a private mount table, a network namespace whose
only interface is loopback (brought up with ``ip link set lo up``, nothing else reachable) and
a fresh PID namespace with its own /proc. Inside, a small host-side Python helper (this file,
``--inner``) mounts a tmpfs on ROOT/dev with bind mounts of the host's null, zero, full, random,
urandom and tty nodes plus /dev/shm, bind-mounts an /etc/hosts with ``localhost`` (docker does
the same), then ``chroot(ROOT)``, ``chdir(WORKDIR)``, drops to the requested uid/gid
(``chroot --userspec=65532:65532`` semantics, no supplementary groups) and ``execve``s the
image's interpreter with a clean environment (the image's ENV plus HOME). Nothing of the host
is visible inside except those device nodes. All mounts vanish with the namespace.

Usage from Python: ``run(root, ["-c", "print(1)"], user=65532)`` runs
``/usr/bin/python3.13 -c 'print(1)'`` (the image's entrypoint; python3.11 in debian12) and
returns (rc, stdout, stderr).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from typing import NamedTuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mkroot import IMAGE_ENV, NONROOT, WORKDIR, image_of

ROOT_USER = 0
_DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty")
_HOSTS = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"


class Result(NamedTuple):
    rc: int
    stdout: str
    stderr: str


@functools.lru_cache(maxsize=None)
def available() -> str | None:
    """None if :func:`run` can work here, else the reason why not (for ``pytest.skip``)."""
    if sys.platform != "linux":
        return f"needs Linux, not {sys.platform}"
    if os.geteuid() != 0:
        return "needs root (unshare --mount/--net, chroot, bind mounts)"
    for tool in ("unshare", "ip", "mount", "dpkg-deb", "apt-get"):
        if shutil.which(tool) is None:
            return f"{tool} not found on PATH"
    try:
        proc = subprocess.run(
            [
                "unshare",
                "--mount",
                "--net",
                "--pid",
                "--fork",
                "--kill-child",
                "ip",
                "link",
                "set",
                "lo",
                "up",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unshare failed: {e}"
    if proc.returncode:
        return f"unshare --mount --net --pid failed (EPERM in a container?): {proc.stderr.strip()}"
    return None


def image_env(user: int = ROOT_USER) -> dict[str, str]:
    """The environment a container of the image starts with: image ENV + HOME, as docker sets."""
    return {**IMAGE_ENV, "HOME": "/root" if user == ROOT_USER else "/home/nonroot"}


def command(
    root: str,
    args: list[str] | tuple[str, ...],
    *,
    user: int = ROOT_USER,
    env: dict[str, str] | None = None,
    workdir: str | None = None,
    entrypoint: list[str] | tuple[str, ...] | None = None,
) -> list[str]:
    """The host argv that runs ``entrypoint + args`` inside ``root``; see :func:`run`."""
    root = os.path.abspath(root)
    if entrypoint is None:
        entrypoint = image_of(root).entrypoint
    spec = {
        "root": root,
        "argv": [*entrypoint, *args],
        "uid": user,
        "gid": user,
        "env": {**image_env(user), **(env or {})},
        "workdir": workdir or WORKDIR.get(user, "/"),
    }
    return [
        "unshare",
        "--mount",
        "--net",
        "--pid",
        "--fork",
        "--kill-child",
        f"--mount-proc={root}/proc",
        "--",
        sys.executable,
        "-I",
        os.path.abspath(__file__),
        "--inner",
        json.dumps(spec),
    ]


def run(
    root: str,
    args: list[str] | tuple[str, ...],
    *,
    user: int = ROOT_USER,
    env: dict[str, str] | None = None,
    workdir: str | None = None,
    input: str | None = None,
    timeout: float = 60,
    entrypoint: list[str] | tuple[str, ...] | None = None,
) -> Result:
    """Run ``entrypoint *args`` in ``root`` as ``user`` (0 or 65532); rc is returned.

    The entrypoint defaults to the image's, ``/usr/bin/python3.13`` (debian13) or
    ``/usr/bin/python3.11`` (debian12).
    """
    cmd = command(root, args, user=user, env=env, workdir=workdir, entrypoint=entrypoint)
    proc = subprocess.run(
        cmd, input=input, capture_output=True, text=True, timeout=timeout, check=False
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def _sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True)


def _inner(spec: dict[str, object]) -> None:
    """Runs as PID 1 of the new namespaces, still on the host filesystem; ends in execve."""
    root = str(spec["root"])
    _sh("ip", "link", "set", "lo", "up")
    dev = os.path.join(root, "dev")
    _sh("mount", "-t", "tmpfs", "-o", "mode=755,nosuid", "tmpfs", dev)
    for node in _DEV_NODES:
        target = os.path.join(dev, node)
        open(target, "w").close()
        _sh("mount", "--bind", f"/dev/{node}", target)
    os.makedirs(os.path.join(dev, "shm"))
    _sh("mount", "-t", "tmpfs", "-o", "mode=1777,nosuid,nodev", "tmpfs", os.path.join(dev, "shm"))
    for name, target in (
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ):
        os.symlink(target, os.path.join(dev, name))
    # docker bind-mounts /etc/hosts; the file lives on the /dev tmpfs so nothing is left behind.
    hosts_src = os.path.join(dev, ".hosts")
    with open(hosts_src, "w") as f:
        f.write(_HOSTS)
    hosts = os.path.join(root, "etc/hosts")
    if not os.path.exists(hosts):
        open(hosts, "w").close()
    _sh("mount", "--bind", "-o", "ro", hosts_src, hosts)
    os.chroot(root)
    os.chdir(str(spec["workdir"]))
    gid, uid = int(spec["gid"]), int(spec["uid"])  # type: ignore[call-overload]
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    argv = [str(a) for a in spec["argv"]]  # type: ignore[attr-defined]
    os.execve(argv[0], argv, dict(spec["env"]))  # type: ignore[call-overload]


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--inner":
        _inner(json.loads(sys.argv[2]))
    else:
        # Manual use: python3 chroot.py ROOT [--nonroot] [python args...]
        argv = sys.argv[1:]
        if not argv:
            sys.exit("usage: chroot.py ROOT [--nonroot] [python args ...]")
        who = NONROOT if "--nonroot" in argv[1:2] else ROOT_USER
        rest = argv[2:] if who == NONROOT else argv[1:]
        sys.exit(subprocess.call(command(argv[0], rest, user=who)))
