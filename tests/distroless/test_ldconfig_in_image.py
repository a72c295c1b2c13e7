"""The pure-Python ldconfig writer judged by glibc itself, inside the reproduced image.

A library sits in a directory that only ld.so.conf.d names, as a vendor package would put
it, in a later layer. debian12 has no ldconfig and no cache; debian13's pre-generated cache
does not list it. Either way glibc's loader cannot find it by soname. After
`ctypes-shim ldconfig --root ROOT` writes the cache from outside, the loader finds it.
With libc-bin's real /sbin/ldconfig in the image (debian13 ships it; debian12 gets it
unpacked), stock find_library resolves the name through our cache too.
"""

from __future__ import annotations

import glob
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import chroot
import mkroot
import pytest

pytestmark = pytest.mark.distroless

VENDOR_DIR = "/opt/vendor/lib"
SONAME, SYMBOL = "libyaml-0.so.2", "yaml_get_version_string"

LOAD = """
import ctypes, ctypes.util, json, sys
try:
    getattr(ctypes.CDLL(sys.argv[1]), sys.argv[2])
    loaded = True
except OSError:
    loaded = False
print(json.dumps({"loaded": loaded, "stock": ctypes.util.find_library(sys.argv[3])}))
"""


@pytest.fixture
def vendor_root(make_root: Callable[[str], Path], image: mkroot.Image) -> Path:
    """The image plus libyaml moved into /opt/vendor/lib, named in ld.so.conf.d/vendor.conf."""
    root = make_root("ldcache")
    scratch = root.parent / "yaml"
    deb = mkroot.fetch_debs(["libyaml-0-2"], image=image)["libyaml-0-2"]
    mkroot.unpack_deb(deb, str(scratch))
    vendor = root / VENDOR_DIR.lstrip("/")
    vendor.mkdir(parents=True)
    for path in glob.glob(str(scratch / "usr/lib/*/libyaml-0.so.2*")):
        shutil.move(path, str(vendor))  # symlink and real file alike
    (root / "etc/ld.so.conf.d/vendor.conf").write_text(VENDOR_DIR + "\n")
    return root


def load(root: Path, user: int) -> dict[str, object]:
    res = chroot.run(str(root), ["-c", LOAD, SONAME, SYMBOL, "yaml-0"], user=user)
    assert res.rc == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_glibc_finds_the_library_only_through_our_cache(
    vendor_root: Path, image: mkroot.Image
) -> None:
    """No cache or a stale one: dlopen by soname fails. Our cache: dlopen works, as root and
    nonroot, and stock find_library answers through it."""
    assert (vendor_root / "etc/ld.so.cache").exists() is image.ldcache
    assert (vendor_root / "sbin/ldconfig").exists() is image.ldcache
    for user in (0, chroot.NONROOT):
        assert load(vendor_root, user) == {"loaded": False, "stock": None}

    done = subprocess.run([sys.executable, "-m", "ctypes_shim", "ldconfig", "--root",
                           str(vendor_root)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    listing = subprocess.run([sys.executable, "-m", "ctypes_shim", "ldconfig", "-p", "--root",
                              str(vendor_root)], capture_output=True, text=True, check=True)
    assert f"\t{SONAME} (libc6,x86-64) => {VENDOR_DIR}/{SONAME}\n" in listing.stdout
    for user in (0, chroot.NONROOT):
        assert load(vendor_root, user)["loaded"] is True

    # Stock find_library runs /sbin/ldconfig -p: give debian12 libc-bin's real one.
    if not image.ldcache:
        mkroot.add_layer(str(vendor_root), ["libc-bin"], image=image)
    assert (vendor_root / "sbin/ldconfig").exists()
    assert load(vendor_root, 0) == {"loaded": True, "stock": SONAME}
