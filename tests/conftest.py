"""Shared fixtures: fake roots in tmp_path, and clean resolver state between tests."""

from __future__ import annotations

import os
import shutil
import subprocess

import elfgen
import pytest
from fuzz.support import BASE_PYTHON

from ctypes_shim import _resolve

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


class FakeRoot:
    """A directory tree standing in for /, with helpers to put libraries in it."""

    def __init__(self, path: str) -> None:
        self.path = path

    def host(self, inside: str) -> str:
        return os.path.join(self.path, inside.lstrip("/"))

    def lib(self, inside: str, data: bytes | None = None, **kw: object) -> str:
        """Write an ELF file (this interpreter's ABI unless *data* or kw say otherwise)."""
        if data is None:
            data = elfgen.native(**kw)
        return elfgen.write(self.host(inside), data)

    def text(self, inside: str, content: str) -> str:
        path = self.host(inside)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(content)
        return path

    def link(self, inside: str, target: str) -> None:
        path = self.host(inside)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.symlink(target, path)

    def ldconfig(self) -> None:
        """Write etc/ld.so.cache with the host's real ldconfig (no links made)."""
        ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
        if not os.path.exists(ldconfig):
            if os.environ.get("CTYPES_SHIM_TEST_DISTROLESS") == "require":  # CI: never skip
                pytest.fail("glibc's ldconfig is required in CI to write a reference cache")
            pytest.skip("the host has no ldconfig to write a reference cache")
        os.makedirs(self.host("/etc"), exist_ok=True)
        if not os.path.exists(self.host("/etc/ld.so.conf")):
            self.text("/etc/ld.so.conf", "")
        subprocess.run([ldconfig, "-X", "-r", self.path], check=True)

    def resolver(self, environ: dict[str, str] | None = None,
                 native: _resolve.Native | None = None) -> _resolve.Resolver:
        return _resolve.Resolver(root=self.path, native=native,
                                 environ=environ if environ is not None else {})


@pytest.fixture
def root(tmp_path: object) -> FakeRoot:
    return FakeRoot(str(tmp_path))


@pytest.fixture(autouse=True)
def _fresh_default_resolver() -> object:
    """Each test starts with an empty memo in the process-wide resolver."""
    if _resolve._default is not None:
        _resolve._default.cache_clear()
    yield
    if _resolve._default is not None:
        _resolve._default.cache_clear()



def run_python(code: str, *args: str, env: dict[str, str] | None = None,
               executable: str = BASE_PYTHON, cwd: str | None = None,
               ) -> subprocess.CompletedProcess[str]:
    """Run *code* in a fresh interpreter; the environment is minimal unless given."""
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"}
    base.update(env or {})
    return subprocess.run([executable, *args, "-c", code], env=base, capture_output=True,
                          text=True, timeout=120, cwd=cwd)
