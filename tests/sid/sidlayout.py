"""Where things are inside the sid root, and how tests run a program there."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sidchroot

VERSIONS = ("3.14", "3.15")
SITE = "/app/site"  # the sitecustomize template, first on PYTHONPATH


def deps(version: str) -> str:
    """Inside the root: the --target dir with ctypes_shim, its dependencies and pytest."""
    return f"/app/deps/{version}"


def venv(version: str) -> str:
    """Inside the root: a venv whose site-packages holds the wheel (and so its .pth)."""
    return f"/venv/{version}"


def python(version: str) -> str:
    return f"/usr/bin/python{version}"


def run_json(root: object, argv: list[str], env: dict[str, str] | None = None,
             timeout: float = 120) -> tuple[Any, str]:
    """Run ``argv`` in ``root``; parse the last stdout line as JSON; return it and stderr."""
    res = sidchroot.run(str(root), argv, env={**sidchroot.BASE_ENV, **(env or {})},
                        timeout=timeout)
    if res.rc != 0 or not res.stdout.strip():
        pytest.fail(f"{argv[:3]} failed rc={res.rc}\nstdout:\n{res.stdout}\n"
                    f"stderr:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1]), res.stderr


