"""ctypes.util.find_library inside a rebuilt gcr.io/distroless/python3-debian12 root (real packages, real chroot)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import chroot
import pytest

pytestmark = pytest.mark.distroless

USERS = pytest.mark.parametrize("user", [0, chroot.NONROOT], ids=["root", "nonroot"])

# name -> (SONAME, directory it ships in, a symbol it exports)
LIBS: dict[str, tuple[str, str, str]] = {
    "c": ("libc.so.6", "/lib/x86_64-linux-gnu", "getpid"),
    "m": ("libm.so.6", "/lib/x86_64-linux-gnu", "cos"),
    "ssl": ("libssl.so.3", "/usr/lib/x86_64-linux-gnu", "SSL_new"),
    "crypto": ("libcrypto.so.3", "/usr/lib/x86_64-linux-gnu", "OpenSSL_version_num"),
    "z": ("libz.so.1", "/lib/x86_64-linux-gnu", "crc32"),
    "sqlite3": ("libsqlite3.so.0", "/usr/lib/x86_64-linux-gnu", "sqlite3_libversion"),
    "ffi": ("libffi.so.8", "/usr/lib/x86_64-linux-gnu", "ffi_call"),
    "uuid": ("libuuid.so.1", "/usr/lib/x86_64-linux-gnu", "uuid_generate"),
    "expat": ("libexpat.so.1", "/lib/x86_64-linux-gnu", "XML_ParserCreate"),
    "lzma": ("liblzma.so.5", "/lib/x86_64-linux-gnu", "lzma_version_string"),
    "bz2": ("libbz2.so.1.0", "/lib/x86_64-linux-gnu", "BZ2_bzlibVersion"),
    "stdc++": ("libstdc++.so.6", "/usr/lib/x86_64-linux-gnu", "_ZSt9terminatev"),
    "gcc_s": ("libgcc_s.so.1", "/lib/x86_64-linux-gnu", "_Unwind_Backtrace"),
    "gomp": ("libgomp.so.1", "/usr/lib/x86_64-linux-gnu", "omp_get_max_threads"),
}
SYMBOLS = {name: sym for name, (_, _, sym) in LIBS.items()}
SONAME_SYMBOLS = {soname: sym for soname, _, sym in LIBS.values()}

# CDLL(soname) + symbol lookup for {soname: symbol}; prints {soname: error} for failures.
_LOAD_BY_SONAME = """
import ctypes, json, sys
errors = {}
for soname, sym in json.loads(sys.argv[1]).items():
    try:
        getattr(ctypes.CDLL(soname), sym)
    except (OSError, AttributeError) as e:
        errors[soname] = str(e)
print(json.dumps(errors))
"""


def test_root_is_the_distroless_layout(plain_root: Path) -> None:
    """No usrmerge, no ldconfig, no ld.so.cache, no shell; python3 is 3.11 with the distroless aliases."""
    assert not (plain_root / "lib").is_symlink()
    assert (plain_root / "lib/x86_64-linux-gnu/libc.so.6").is_file()
    assert (plain_root / "usr/lib/x86_64-linux-gnu/libssl.so.3").is_file()
    for absent in ("sbin/ldconfig", "usr/sbin/ldconfig", "etc/ld.so.cache", "bin/sh", "usr/bin/sh",
                   "usr/bin/gcc", "usr/bin/ld", "usr/bin/objdump"):
        assert not (plain_root / absent).exists(), absent
    for alias in ("usr/bin/python", "usr/bin/python3"):
        assert (plain_root / alias).readlink() == Path("/usr/bin/python3.11")
    assert "65532:65532" in (plain_root / "etc/passwd").read_text()
    assert (plain_root / "home/nonroot").stat().st_uid == chroot.NONROOT
    assert (plain_root / "tmp").stat().st_mode & 0o7777 == 0o1777


@USERS
def test_image_structure_tests(plain_root: Path, user: int) -> None:
    """The image's own container-structure tests (python3/testdata/{python3,debian12}.yaml) pass here."""
    r = chroot.run(str(plain_root), ["-c", "print('Hello World')"], user=user, entrypoint=["/usr/bin/python3"])
    assert (r.rc, r.stdout) == (0, "Hello World\n")
    r = chroot.run(str(plain_root), ["--version"], entrypoint=["/usr/bin/python"], user=user)
    assert r.stdout == "Python 3.11.2\n"
    no_shell = "import subprocess, sys; subprocess.check_call(sys.executable + ' -h', shell=True)"
    assert chroot.run(str(plain_root), ["-c", no_shell], user=user).rc == 1
    utf8 = f"open('h\\xe9llo-{user}', 'w'); import sys; print(sys.getfilesystemencoding())"
    r = chroot.run(str(plain_root), ["-c", utf8], user=user, workdir="/tmp")
    assert r.stdout == "utf-8\n", r.stderr
    assert chroot.run(str(plain_root), ["-c", "import distutils.dist"], user=user).rc == 0


@USERS
def test_stock_find_library_returns_none(
    plain_root: Path, probe: Callable[..., dict[str, Any]], user: int
) -> None:
    """Stock find_library returns None for every library although the files are there and CDLL loads them."""
    for soname, libdir, _ in LIBS.values():
        assert (plain_root / libdir.lstrip("/") / soname).exists(), soname
    out = probe(plain_root, {"names": list(LIBS), "symbols": SYMBOLS}, user=user)
    assert out["uid"] == user
    assert out["python"] == "3.11.2"
    assert out["find_library_module"] == "ctypes.util"
    assert out["debian_sitecustomize_ran"] is True
    assert {name: r["stock"] for name, r in out["results"].items()} == dict.fromkeys(LIBS)
    assert all("stock_error" not in r for r in out["results"].values())
    # What the program cannot find by name it can still load by SONAME.
    assert out["cdll_libc_so_6_getpid"] is True
    r = chroot.run(str(plain_root), ["-c", _LOAD_BY_SONAME, json.dumps(SONAME_SYMBOLS)], user=user)
    assert (r.rc, r.stderr, json.loads(r.stdout)) == (0, "", {})
    # Stock tried to start /sbin/ldconfig and ld (both absent, so it failed quietly): exactly
    # the process starts the shim must avoid.
    assert {what for event, what in out["events"] if event == "subprocess.Popen"} == {"/sbin/ldconfig", "ld"}
