"""The pure-Python ldconfig: cache writer, `-p` printer, and how both compare with glibc's."""

from __future__ import annotations

import errno
import os
import shutil
import struct
import subprocess
import sys

import elfgen
import pytest

from ctypes_shim import _ldcache, _ldconfig, _ldpaths, _ldscan
from ctypes_shim._cli import main

LDCONFIG = "/sbin/ldconfig"
HOST_LIBDIR = "/lib/x86_64-linux-gnu"
HOST_LIBS = ("libc.so.6", "libm.so.6", "ld-linux-x86-64.so.2", "libz.so.1")

needs_ldconfig = pytest.mark.skipif(not os.path.exists(LDCONFIG),
                                    reason="no /sbin/ldconfig on this machine")
needs_x86_64 = pytest.mark.skipif(os.uname().machine != "x86_64" or sys.maxsize < 2**32,
                                  reason="fixture flags and builtin dirs are x86_64's")
needs_host_libs = pytest.mark.skipif(
    not all(os.path.exists(f"{HOST_LIBDIR}/{n}") for n in HOST_LIBS),
    reason=f"needs Debian x86_64 libraries in {HOST_LIBDIR}")


# -- fixture roots ------------------------------------------------------------------------------


_write = elfgen.put


def _link(root: str, path: str, target: str) -> None:
    full = os.path.join(root, path.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    os.symlink(target, full)


def _lib(soname: str | None = None, **kw: object) -> bytes:
    return elfgen.elf(soname=soname, **kw)  # type: ignore[arg-type]


def make_root(base: str, *, host_libs: bool = True, hwcaps: bool = True,
              legacy: bool = True) -> str:
    """A root exercising ldconfig's rules: conf include trees, dir=TYPE lines, duplicate dirs,
    versions, SONAME-less files, symlink rules, linker scripts, several machines, hwcaps."""
    root = os.path.join(base, "root")
    os.makedirs(os.path.join(root, "etc"))
    _write(root, "/etc/ld.so.conf",
           "include /etc/ld.so.conf.d/*.conf\n/opt/a\n  /opt/b/  # trailing\n# comment\n"
           "/opt/dup\nhwcap 0 x\n/opt/typed=libc6\n/nonexistent\n/\n/opt/sp ace\n")
    _write(root, "/etc/ld.so.conf.d/10-x.conf", "/opt/c\ninclude sub/*.conf\n")
    _write(root, "/etc/ld.so.conf.d/05-y.conf", "/opt/d\n/opt/a\n")
    _write(root, "/etc/ld.so.conf.d/sub/1.conf", "/opt/e\n")
    _write(root, "/etc/ld.so.conf.d/README", "/opt/not-a-conf-file\n")
    a = "/opt/a/"
    _write(root, a + "libfoo.so.1", _lib("libfoo.so.1"))
    _write(root, a + "libfoo.so.10.2", _lib("libfoo.so.10"))
    _link(root, a + "libfoo.so.10", "libfoo.so.10.2")  # soname link
    _link(root, a + "libfoo.so", "libfoo.so.10")  # dev link: its own key
    _write(root, a + "libfoo.so.9", _lib("libfoo.so.9"))
    _write(root, a + "libnosoname.so", _lib())
    _write(root, a + "libnosoname.so.3", _lib())
    _write(root, a + "libbar.so", "/* GNU ld script */\nGROUP ( libbar.so.1 )\n")
    _write(root, a + "libjunk.so.1", "x" * 100)
    _write(root, a + "libtiny.so.1", "\x7fELF")
    _link(root, a + "libother.so.5", "libfoo.so.9")  # neither soname nor dev link: a file
    _link(root, a + "libdangle.so.1", "nowhere.so")
    _link(root, a + "libabs.so.2", "/opt/b/libb.so.2.0")  # absolute: resolved inside root
    _write(root, a + "libexec.so.1", _lib("libexec.so.1", e_type=elfgen.ET_EXEC))
    _write(root, a + "libi386.so.1", _lib("libi386.so.1", bits=32, machine=elfgen.EM_386))
    _write(root, a + "libi386c.so.1", _lib("libi386c.so.1", bits=32, machine=elfgen.EM_386,
                                          needed=("libc.so.6",)))
    _write(root, a + "libi386i.so.1", _lib("libi386i.so.1", bits=32, machine=elfgen.EM_386,
                                          interp="/lib/ld-linux.so.2"))
    _write(root, a + "libx32.so.1", _lib("libx32.so.1", bits=32, machine=elfgen.EM_X86_64))
    _write(root, a + "libarm64.so.1", _lib("libarm64.so.1", machine=elfgen.EM_AARCH64))
    _write(root, a + "libppc.so.1", _lib("libppc.so.1", machine=elfgen.EM_PPC64, endian="big"))
    _write(root, a + "libnodyn.so.1", _lib(None, dynamic=False, e_type=elfgen.ET_EXEC))
    _write(root, a + "libpre.so.1.#prelink#.abcdef", _lib("libpre.so.1"))
    _write(root, a + "libpre2.so.1.#prelink#", _lib("libpre2.so.1"))
    _write(root, a + "notalib.so.1", _lib("notalib.so.1"))
    _write(root, a + "ld-fake.so.1", _lib("ld-fake.so.1"))
    _write(root, a + "ld.so.9", _lib("ld.so.9"))
    _write(root, a + "libsame.so.1", _lib("libsame.so.1"))
    _write(root, a + "libnum.so.01", _lib("libnum.so.01"))
    _write(root, a + "libnum.so.1", _lib("libnum.so.1"))
    _write(root, a + "lib\u00e9.so.1", _lib("lib\u00e9.so.1"))
    os.mkfifo(os.path.join(root, "opt/a/libfifo.so.1"))  # (a *link* to a FIFO hangs ldconfig)
    os.makedirs(os.path.join(root, "opt/a/libdir.so.1"))
    _write(root, "/opt/b/libb.so.2.0", _lib("libb.so.2"))
    _write(root, "/opt/b/libsame.so.1", _lib("libsame.so.1"))
    _write(root, "/opt/b/libsame.so.1.5", _lib("libsame.so.1"))
    _write(root, "/opt/b/libflag.so.1", _lib("libflag.so.1"))
    _write(root, "/opt/b/libflag.so.1.2", _lib("libflag.so.1", bits=32, machine=elfgen.EM_386))
    _write(root, "/opt/typed/libtyped.so.1", _lib("libtyped.so.1", bits=32,
                                                  machine=elfgen.EM_386))
    _write(root, "/opt/c/libc1.so.1", _lib("libc1.so.1"))
    _write(root, "/opt/d/libd1.so.1", _lib("libd1.so.1"))
    _write(root, "/opt/e/libe1.so.1", _lib("libe1.so.1"))
    _write(root, "/opt/sp ace/libspace.so.1", _lib("libspace.so.1"))
    _link(root, "/opt/dup", "/opt/a")  # the same dir twice: first spelling wins
    if hwcaps:
        _write(root, a + "glibc-hwcaps/x86-64-v3/libfoo.so.10.2", _lib("libfoo.so.10"))
        _write(root, a + "glibc-hwcaps/x86-64-v2/libfoo.so.10.2", _lib("libfoo.so.10"))
        _write(root, a + "glibc-hwcaps/x86-64-v2/libhw2.so.1", _lib("libhw2.so.1"))
        os.makedirs(os.path.join(root, "opt/a/glibc-hwcaps/empty-unused"))
        os.makedirs(os.path.join(root, "opt/a/glibc-hwcaps/.hidden"))
        _write(root, a + "glibc-hwcaps/regular", "x")
        _link(root, a + "glibc-hwcaps/linked", "/opt/c")
    if legacy:
        _write(root, a + "tls/libtls.so.1", _lib("libtls.so.1"))
        _write(root, a + "tls/libfoo.so.1", _lib("libfoo.so.1"))
        _write(root, a + "tls/x86_64/libtlsx.so.1", _lib("libtlsx.so.1"))
        _link(root, a + "haswell", "/opt/d")
        _write(root, a + "i686/sse2/libsse.so.1", _lib("libsse.so.1"))
        _write(root, "/opt/x86_64/libx8664dir.so.1", _lib("libx8664dir.so.1"))
        with open(os.path.join(root, "etc/ld.so.conf"), "a") as f:
            f.write("/opt/x86_64\n")
    # usrmerged builtin dirs, with absolute links that only make sense inside the root
    os.makedirs(os.path.join(root, "usr/lib/x86_64-linux-gnu"))
    os.makedirs(os.path.join(root, "usr/lib64"))
    _link(root, "/lib", "usr/lib")
    _link(root, "/lib64", "/usr/lib64")
    _write(root, "/usr/lib/libsame.so.1", _lib("libsame.so.1"))
    if host_libs:
        libdir = os.path.join(root, "usr/lib/x86_64-linux-gnu")
        for name in ("libc.so.6", "libm.so.6", "ld-linux-x86-64.so.2"):
            shutil.copy2(f"{HOST_LIBDIR}/{name}", libdir)
        shutil.copy2(os.path.realpath(f"{HOST_LIBDIR}/libz.so.1"), libdir + "/libz.so.1.2")
        _link(root, "/usr/lib/x86_64-linux-gnu/libz.so.1", "libz.so.1.2")
        _link(root, "/usr/lib/x86_64-linux-gnu/libz.so", "/lib/x86_64-linux-gnu/libz.so.1")
        _write(root, "/usr/lib/x86_64-linux-gnu/libc.so",
               "/* GNU ld script\n*/\nGROUP ( /lib/x86_64-linux-gnu/libc.so.6 )\n")
        if hwcaps:
            shutil.copy2(libdir + "/libz.so.1.2", _write(
                root, "/usr/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libz.so.1.2", b""))
    return root


def _real_ldconfig(root: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([LDCONFIG, "-X", "-r", root, *args], capture_output=True,
                          env={"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                          timeout=60, check=False)


def _real_print(root: str | None, cache: str) -> bytes:
    args = [LDCONFIG, "-p", "-C", cache] + (["-r", root] if root else [])
    out = subprocess.run(args, capture_output=True, env={"LC_ALL": "C"}, timeout=60, check=True)
    return out.stdout


def _ours_print(capsysbinary: pytest.CaptureFixture[bytes], *args: str) -> bytes:
    assert main(["ldconfig", "-p", *args]) == 0
    return capsysbinary.readouterr().out


def _compare_with_real(root: str, conf: str | None = None) -> _ldscan.Scan:
    """Our file equals ldconfig's byte for byte once its generator is swapped in, and the
    real `ldconfig -p` lists the same lines for both, generator line aside."""
    extra = ["-f", conf] if conf else []
    real = _real_ldconfig(root, "-C", "/etc/real.cache", *extra)
    assert real.returncode == 0, real.stderr
    scan = _ldscan.scan(root, conf)
    with open(os.path.join(root, "etc/real.cache"), "rb") as f:
        real_bytes = f.read()
    generator = _ldcache.parse_cache(real_bytes).generator
    assert generator and generator.startswith("ldconfig ")
    assert _ldconfig.build(scan, generator=generator) == real_bytes
    with open(os.path.join(root, "etc/ours.cache"), "wb") as f:
        f.write(_ldconfig.build(scan))
    ours_p = _real_print(root, "/etc/ours.cache").split(b"\n")
    real_p = _real_print(root, "/etc/real.cache").split(b"\n")
    assert ours_p[1:-2] == real_p[1:-2]  # entries; line 0 names the file, -2 the generator
    assert ours_p[-2] == f"Cache generated by: {_ldconfig.GENERATOR}".encode()
    verbose = _real_ldconfig(root, "-v", "-C", "/etc/verbose.cache", *extra)
    assert verbose.stdout.decode("utf-8", "surrogateescape").splitlines() == scan.verbose
    return scan


# -- against glibc's ldconfig ------------------------------------------------------------------


@pytest.mark.host
@needs_ldconfig
@needs_x86_64
@needs_host_libs
def test_fixture_root_matches_real_ldconfig(tmp_path: object) -> None:
    """Dirs, names, flags, order, hwcaps and layout all match `ldconfig -X -r ROOT`."""
    root = make_root(str(tmp_path))
    scan = _compare_with_real(root)
    keys = [(e.key, e.value) for e in scan.entries]
    assert ("libfoo.so", "/opt/a/libfoo.so") in keys  # dev link kept as its own key
    assert ("libx32.so.1", "/opt/a/libx32.so.1") in keys  # other ABIs keep their flags
    assert not any(e.key in ("libarm64.so.1", "libppc.so.1", "libexec.so.1") for e in
                   scan.entries)  # machines x86 ldconfig does not know; ET_EXEC
    hw = [e for e in scan.entries if e.hwcaps]
    assert {e.hwcaps for e in hw} == {"x86-64-v2", "x86-64-v3", "linked"}
    flags = {e.key: e.flags for e in scan.entries}
    assert (flags["libi386.so.1"], flags["libi386c.so.1"], flags["libtyped.so.1"]) == (1, 3, 3)
    assert flags["libx32.so.1"] == 0x803


@pytest.mark.host
@needs_ldconfig
@needs_x86_64
def test_fixture_root_without_host_libs_matches(tmp_path: object) -> None:
    """Only generated ELF files, no hwcaps at all: still byte-identical."""
    _compare_with_real(make_root(str(tmp_path), host_libs=False, hwcaps=False, legacy=False))


@pytest.mark.host
@needs_ldconfig
@needs_x86_64
def test_alternative_config_file_matches(tmp_path: object) -> None:
    """-f CONF (inside the root) replaces ld.so.conf; relative includes start at its dir."""
    root = make_root(str(tmp_path), host_libs=False)
    _write(root, "/etc/other/my.conf", "/opt/e\ninclude more/*.conf\n/opt/b\n")
    _write(root, "/etc/other/more/x.conf", "/opt/c\n")
    scan = _compare_with_real(root, "/etc/other/my.conf")
    assert [d.path for d in scan.dirs][:3] == ["/opt/e", "/opt/c", "/opt/b"]


@pytest.mark.host
@needs_ldconfig
@needs_x86_64
def test_host_root_matches_real_ldconfig(tmp_path: object) -> None:
    """This machine's own libraries: the same file `ldconfig -X -C FILE` writes."""
    cache = str(tmp_path / "host.cache")  # type: ignore[operator]
    real = subprocess.run([LDCONFIG, "-X", "-C", cache], capture_output=True, timeout=120,
                          check=False)
    assert real.returncode == 0, real.stderr
    with open(cache, "rb") as f:
        real_bytes = f.read()
    generator = _ldcache.parse_cache(real_bytes).generator
    assert _ldconfig.build(_ldscan.scan("/"), generator=generator) == real_bytes


@pytest.mark.host
@needs_ldconfig
@needs_x86_64
def test_isa_level_of_hwcaps_entries(tmp_path: object) -> None:
    """A glibc-hwcaps library marked x86-64-v3 gets ISA level 2 in its hwcap, as glibc's."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("no gcc to build a library with GNU_PROPERTY_X86_ISA_1_NEEDED")
    root = str(tmp_path / "root")  # type: ignore[operator]
    src = _write(root, "/src/lib.c", "int answer(void) { return 42; }\n")
    lib = os.path.join(root, "opt/x/glibc-hwcaps/x86-64-v3/libanswer.so.1")
    os.makedirs(os.path.dirname(lib))
    built = subprocess.run([gcc, "-shared", "-fPIC", "-march=x86-64-v3", "-mneeded",
                            "-Wl,-soname,libanswer.so.1", "-o", lib, src],
                           capture_output=True, timeout=120, check=False)
    if built.returncode != 0:
        pytest.skip(f"gcc cannot build an ISA-marked library: {built.stderr[-200:]!r}")
    _write(root, "/opt/x/libanswer.so.1", _lib("libanswer.so.1"))
    _write(root, "/etc/ld.so.conf", "/opt/x\n")
    scan = _compare_with_real(root)
    assert scan.entries[0].isa_level == 2
    data = _ldconfig.build(scan)
    assert _ldcache.parse_cache(data).entries[0].hwcap == 0x4000_0002_0000_0000


@pytest.mark.host
@needs_ldconfig
@needs_x86_64
@pytest.mark.parametrize("fmt", ["new", "compat", "old"])
def test_print_matches_real_for_every_format(tmp_path: object, fmt: str,
                                             capsysbinary: pytest.CaptureFixture[bytes]
                                             ) -> None:
    """`ldconfig -p` of a cache real ldconfig wrote in each format, byte for byte."""
    # glibc 2.36 aborts writing old/compat caches that hold hwcap entries: keep them out.
    hw = fmt == "new"
    root = make_root(str(tmp_path), host_libs=False, hwcaps=hw, legacy=hw)
    real = _real_ldconfig(root, "-c", fmt, "-C", f"/etc/{fmt}.cache")
    assert real.returncode == 0, real.stderr
    expected = _real_print(root, f"/etc/{fmt}.cache")
    ours = _ours_print(capsysbinary, "--root", root, "-C", f"/etc/{fmt}.cache")
    assert ours == expected
    cache = _ldcache.read_cache(os.path.join(root, f"etc/{fmt}.cache"))
    assert cache.format == fmt
    if hw:
        assert b'hwcap: "x86-64-v3"' in ours and b"hwcap: 0x8000000000000000" in ours


@pytest.mark.host
@needs_ldconfig
def test_print_host_cache_is_byte_identical(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """`ctypes-shim ldconfig -p` == `LC_ALL=C /sbin/ldconfig -p` for this machine's cache."""
    if not os.path.exists("/etc/ld.so.cache"):
        pytest.skip("this machine has no /etc/ld.so.cache")
    expected = subprocess.run([LDCONFIG, "-p"], capture_output=True, env={"LC_ALL": "C"},
                              timeout=60, check=True).stdout
    assert _ours_print(capsysbinary) == expected


@pytest.mark.host
@needs_x86_64
@needs_host_libs
def test_real_loader_uses_our_cache(tmp_path: object) -> None:
    """glibc's own loader, chrooted into a root whose cache we wrote, dlopen()s a soname
    that lives in a dir named only in ld.so.conf, and prefers its glibc-hwcaps copy."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("no gcc to build the test program")
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    root = str(tmp_path / "root")  # type: ignore[operator]
    prog_c = _write(root, "/src/prog.c", (
        "#include <dlfcn.h>\n#include <stdio.h>\n"
        "int main(int argc, char **argv) {\n"
        "  void *h = dlopen(argv[1], RTLD_NOW);\n"
        "  if (!h) { printf(\"FAIL %s\\n\", dlerror()); return 1; }\n"
        "  int (*f)(void) = (int (*)(void)) dlsym(h, \"answer\");\n"
        "  printf(\"OK %d\\n\", f ? f() : -1);\n  return 0;\n}\n"))
    lib_c = _write(root, "/src/lib.c", "int answer(void) { return ANSWER; }\n")
    os.makedirs(os.path.join(root, "bin"))
    os.makedirs(os.path.join(root, "opt/answer/glibc-hwcaps/x86-64-v2"))
    builds = [
        [gcc, "-o", os.path.join(root, "bin/prog"), prog_c],
        [gcc, "-shared", "-fPIC", "-DANSWER=42", "-Wl,-soname,libanswer.so.1", "-o",
         os.path.join(root, "opt/answer/libanswer.so.1.0"), lib_c],
        [gcc, "-shared", "-fPIC", "-DANSWER=43", "-Wl,-soname,libanswer.so.1", "-o",
         os.path.join(root, "opt/answer/glibc-hwcaps/x86-64-v2/libanswer.so.1.0"), lib_c],
    ]
    for cmd in builds:
        done = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
        if done.returncode != 0:
            pytest.skip(f"gcc failed: {done.stderr[-300:]!r}")
    os.makedirs(os.path.join(root, "lib/x86_64-linux-gnu"))
    for name in ("libc.so.6", "ld-linux-x86-64.so.2"):
        shutil.copy2(f"{HOST_LIBDIR}/{name}", os.path.join(root, "lib/x86_64-linux-gnu"))
    _link(root, "/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
    _link(root, "/opt/answer/libanswer.so.1", "libanswer.so.1.0")  # we make no links
    _write(root, "/etc/ld.so.conf", "/opt/answer\n")

    def run() -> str:
        try:
            done = subprocess.run(["chroot", root, "/bin/prog", "libanswer.so.1"],
                                  capture_output=True, timeout=60, check=False)
        except OSError as e:
            pytest.fail(f"cannot run chroot: {e}")
        # 0: dlopen worked, 1: it printed why not.  A crash or no output is a failure: a
        # cache that crashes the loader must not pass as a skip.
        assert done.returncode in (0, 1) and done.stdout, (
            f"the chrooted program crashed (exit {done.returncode}): {done.stderr[-300:]!r}")
        return done.stdout.decode().strip()

    assert run().startswith("FAIL")  # without a cache the loader cannot know /opt/answer
    assert main(["ldconfig", "--root", root]) == 0
    hwcaps = "x86-64-v2" in subprocess.run(
        [os.path.join(HOST_LIBDIR, "ld-linux-x86-64.so.2"), "--help"], capture_output=True,
        text=True, timeout=60, check=False).stdout.split("Legacy")[0]
    assert run() == ("OK 43" if hwcaps else "OK 42")
    shutil.rmtree(os.path.join(root, "opt/answer/glibc-hwcaps"))
    assert main(["ldconfig", "--root", root]) == 0
    assert run() == "OK 42"


# -- the writer's own rules ---------------------------------------------------------------------


@needs_x86_64
def test_missing_ld_so_conf_falls_back_to_conf_d(tmp_path: object) -> None:
    """An image with libc6 but no libc-bin has only ld.so.conf.d/*.conf: those are read."""
    root = str(tmp_path)
    _write(root, "/etc/ld.so.conf.d/x86_64-linux-gnu.conf", "/opt/only-here\n")
    _write(root, "/opt/only-here/libonly.so.1", _lib("libonly.so.1"))
    scan = _ldscan.scan(root)
    assert [(e.key, e.value) for e in scan.entries] == [("libonly.so.1",
                                                         "/opt/only-here/libonly.so.1")]
    assert scan.dirs[0].origin == "/etc/ld.so.conf.d/x86_64-linux-gnu.conf:1"


@needs_x86_64
def test_builtin_dirs_and_order(tmp_path: object) -> None:
    """Conf dirs first, then /lib/<triplet>, /usr/lib/<triplet>, /lib, /usr/lib."""
    root = str(tmp_path)
    for d in ("/opt/x", "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib",
              "/usr/lib", "/lib64", "/usr/lib64"):
        os.makedirs(os.path.join(root, d.lstrip("/")), exist_ok=True)
    _write(root, "/etc/ld.so.conf", "/opt/x\n")
    scan = _ldscan.scan(root, machine=_ldscan.Machine("x86_64", triplet="x86_64-linux-gnu"))
    assert [d.path for d in scan.dirs] == ["/opt/x", "/lib/x86_64-linux-gnu",
                                           "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib"]
    assert [d.origin for d in scan.dirs][1:] == ["<builtin>:0"] * 4


def test_libcmp_matches_glibc() -> None:
    """Digit runs compare as numbers and above any other character."""
    cases = [(b"libfoo.so.10", b"libfoo.so.9", 1), (b"libfoo.so.1", b"libfoo.so.1", 0),
             (b"libz3.so.4", b"libz3.so", 1), (b"libfoo.so.01", b"libfoo.so.1", 0),
             (b"liba.so", b"libb.so", -1), (b"libfoo.so.1a", b"libfoo.so.1", 97),
             (b"lib1", b"liba", 1),
             # glibc compares plain char: signed on x86 (the psABIs), unsigned on ARM,
             # AArch64, POWER, s390x and RISC-V
             (b"\xe9", b"a", -1 if os.uname().machine in ("x86_64", "i686", "i386") else 1)]
    for a, b, sign in cases:
        got = _ldcache.libcmp(a, b)
        assert (got > 0) - (got < 0) == (sign > 0) - (sign < 0), (a, b, got)


@needs_ldconfig
def test_high_bytes_sort_as_glibc_sorts_them(tmp_path: object) -> None:
    """Keys with bytes over 0x7f: our writer orders them as glibc's own ldconfig does."""
    root = str(tmp_path)
    _write(root, "/etc/ld.so.conf", "/opt/x\n")
    names = [b"liba.so.1", b"lib\xe9.so.1", b"libz.so.1", b"lib\xff.so.2", b"lib0.so.1"]
    for n in names:
        _write(root, os.fsdecode(b"/opt/x/" + n), _lib())  # no SONAME: the name is the key
    subprocess.run([LDCONFIG, "-X", "-r", root, "-C", "/glibc.cache"], check=True,
                   capture_output=True, timeout=60)
    assert main(["ldconfig", "--root", root]) == 0

    def keys(cache: str) -> list[bytes]:
        out = subprocess.run([LDCONFIG, "-p", "-C", os.path.join(root, cache)], check=True,
                             capture_output=True, timeout=60).stdout
        return [line.split()[0] for line in out.splitlines() if line.startswith(b"\t")]

    theirs = keys("glibc.cache")
    assert sorted(theirs) == sorted(names)
    assert keys("etc/ld.so.cache") == theirs


@pytest.mark.parametrize(("name", "ok"), [
    ("libc.so.6", True), ("libfoo.socket", True), ("ld-linux.so.2", True), ("ld.so.1", True),
    ("ld64.so.2", True), ("libfoo.a", False), ("foo.so.1", False), ("ld.so", False)])
def test_is_dso(name: str, ok: bool) -> None:
    """_dl_is_dso's name filter."""
    assert _ldscan.is_dso(name) is ok


def test_string_table_shares_suffixes() -> None:
    """elf/stringtable.c: a string that ends another one points into it."""
    table, offsets = _ldconfig._string_table([b"libz.so.1", b"/lib/libz.so.1", b"z.so.1",
                                              b"b.so.1", b"libz.so.1"])
    assert table == b"/lib/libz.so.1\0b.so.1\0"
    assert offsets == {b"/lib/libz.so.1": 0, b"libz.so.1": 5, b"z.so.1": 8, b"b.so.1": 15}


@pytest.mark.parametrize(("flags", "text"), [
    (0x0303, "libc6,x86-64"), (0x0803, "libc6,x32"), (0x0003, "libc6"), (0x0001, "ELF"),
    (0x0A03, "libc6,AArch64"), (0x0903, "libc6,hard-float"), (0x0503, "libc6,64bit"),
    (0x1003, "libc6,double-float"), (0x1203, "libc6,4608"), (0x0007, "unknown")])
def test_describe_flags(flags: int, text: str) -> None:
    """print_entry's flag descriptions in glibc 2.36 (which has no LoongArch names)."""
    assert _ldconfig.describe(flags, (2, 36)) == text


@pytest.mark.parametrize(("flags", "text"), [
    (0x0303, "libc6,x86-64"), (0x0001, "unknown or unsupported flag"),
    (0x0007, "unknown or unsupported flag")])
def test_describe_flags_since_glibc_2_37(flags: int, text: str) -> None:
    """glibc 2.37 (8ee878592c) prints any type but libc6 as one phrase."""
    assert _ldconfig.describe(flags, (2, 37)) == text


def test_chroot_path_resolves_like_a_chroot(tmp_path: object) -> None:
    """Absolute links restart at the root and '..' stops there."""
    root = str(tmp_path)
    os.makedirs(os.path.join(root, "usr/lib"))
    _link(root, "/lib", "/usr/lib")
    _link(root, "/up", "../../../../usr")
    _link(root, "/loop", "/loop")
    real = os.path.realpath(root)
    assert _ldpaths.chroot_path(root, "/lib/x") == real + "/usr/lib/x"
    assert _ldpaths.chroot_path(root, "/up/lib") == real + "/usr/lib"
    assert _ldpaths.chroot_path(root, "/../../etc") == real + "/etc"
    assert _ldpaths.chroot_path(root, "/loop/x") is None


def test_path_hwcap_of_legacy_subdirs() -> None:
    """tls is bit 63, x86 platforms 48.., hwcap names 0..2, read from the path's end."""
    m = _ldscan.Machine("x86_64", hwcap_mask=7, triplet="x86_64-linux-gnu", glibc=(2, 36))
    assert m.path_hwcap("/usr/lib/tls/x86_64") == (1 << 63) + (1 << 1)
    assert m.path_hwcap("/opt/i686/sse2") == (1 << 49) + 1
    assert m.path_hwcap("/usr/lib") == 0
    assert m.is_hwcap_platform("haswell") and not m.is_hwcap_platform("glibc-hwcaps")
    assert not _ldscan.Machine("x86_64", hwcap_mask=0, glibc=(2, 36)).is_hwcap_platform("sse2")
    # glibc 2.37 removed legacy hwcaps: ldconfig no longer reads such subdirectories
    assert not _ldscan.Machine("x86_64", hwcap_mask=7, glibc=(2, 37)).is_hwcap_platform("tls")


def test_build_layout(tmp_path: object) -> None:
    """Header, entries, strings, extension directory: what our reader and glibc expect."""
    root = str(tmp_path)
    _write(root, "/etc/ld.so.conf", "/opt/a\n")
    _write(root, "/opt/a/libfoo.so.1", elfgen.native(soname="libfoo.so.1"))
    _write(root, "/opt/a/glibc-hwcaps/v9/libfoo.so.1", elfgen.native(soname="libfoo.so.1"))
    data = _ldconfig.build(_ldscan.scan(root), generator="gen")
    nlibs, len_strings, flags, ext = struct.unpack_from("=IIB3xI", data, 20)
    assert data[:20] == b"glibc-ld.so.cache1.1" and nlibs == 2 and ext % 4 == 0
    assert flags == (2 if sys.byteorder == "little" else 3)
    assert 48 + 24 * nlibs + len_strings <= ext < 48 + 24 * nlibs + len_strings + 4
    cache = _ldcache.parse_cache(data)
    assert cache.generator == "gen" and cache.format == "new"
    assert [(e.key, e.value, e.hwcap_name) for e in cache.entries] == [
        ("libfoo.so.1", "/opt/a/glibc-hwcaps/v9/libfoo.so.1", "v9"),
        ("libfoo.so.1", "/opt/a/libfoo.so.1", None)]


def test_empty_root_builds_an_empty_cache(tmp_path: object) -> None:
    """No libraries at all: a valid cache with no entries and the generator, as ldconfig's."""
    data = _ldconfig.build(_ldscan.scan(str(tmp_path)), generator="g")
    assert len(data) == 48 + 8 + 16 + 1
    assert _ldcache.parse_cache(data).entries == ()


# -- writing -----------------------------------------------------------------------------------


def _simple_root(base: object) -> str:
    root = str(base)
    _write(root, "/etc/ld.so.conf", "/opt/a\n")
    _write(root, "/opt/a/libfoo.so.1", elfgen.native(soname="libfoo.so.1"))
    return root


def test_write_is_atomic_and_readable(tmp_path: object) -> None:
    """The cache replaces the old file, mode 0644, with no temporary file left behind."""
    root = _simple_root(tmp_path)
    _write(root, "/etc/ld.so.cache", b"old")
    assert main(["ldconfig", "--root", root]) == 0
    path = os.path.join(root, "etc/ld.so.cache")
    assert os.stat(path).st_mode & 0o777 == 0o644
    assert [e.key for e in _ldcache.read_cache(path).entries] == ["libfoo.so.1"]
    assert sorted(os.listdir(os.path.join(root, "etc"))) == ["ld.so.cache", "ld.so.conf"]


def test_failed_write_keeps_the_old_cache(tmp_path: object, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A write that fails half-way leaves the previous cache whole and no temporary file."""
    root = _simple_root(tmp_path)
    _write(root, "/etc/ld.so.cache", b"old")

    def fail(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(_ldconfig.os, "fsync", fail)
    assert main(["ldconfig", "--root", root]) == 1
    with open(os.path.join(root, "etc/ld.so.cache"), "rb") as f:
        assert f.read() == b"old"
    assert sorted(os.listdir(os.path.join(root, "etc"))) == ["ld.so.cache", "ld.so.conf"]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Input/output error" in err and "Traceback" not in err


def test_read_only_root_is_one_line_exit_1(tmp_path: object, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """EROFS (or EACCES) creating the file: one line on stderr, exit code 1."""
    import tempfile

    root = _simple_root(tmp_path)

    def refuse(*args: object, **kw: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    assert main(["ldconfig", "--root", root]) == 1
    err = capsys.readouterr().err
    assert err == (f"ctypes-shim: error: cannot write {os.path.realpath(root)}/etc/ld.so.cache:"
                   " Read-only file system\n")


@pytest.mark.host
def test_really_read_only_root(tmp_path: object) -> None:
    """A read-only bind mount (in a private mount namespace): exit 1, one line."""
    unshare = shutil.which("unshare")
    if unshare is None or os.geteuid() != 0:
        pytest.skip("needs unshare and root for a read-only bind mount")
    root = _simple_root(tmp_path)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = (f"mount --bind {root} {root} && mount -o remount,bind,ro {root} {root} && "
              f"exec {sys.executable} -m ctypes_shim ldconfig --root {root}")
    done = subprocess.run([unshare, "--mount", "sh", "-c", script], capture_output=True,
                          text=True, timeout=120, check=False,
                          env={**os.environ, "PYTHONPATH": repo})
    if "mount" in done.stderr and "ctypes-shim" not in done.stderr:
        pytest.skip(f"cannot make a read-only mount here: {done.stderr.strip()}")
    assert done.returncode == 1
    assert done.stderr.endswith("Read-only file system\n") and done.stderr.count("\n") == 1
    assert not os.path.exists(os.path.join(root, "etc/ld.so.cache"))


def test_refuses_a_cache_dir_that_leads_out_of_the_root(tmp_path: object,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    """ROOT/etc -> ../outside: the kernel would write outside the root; we refuse."""
    outside = tmp_path / "outside"  # type: ignore[operator]
    outside.mkdir()
    root = str(tmp_path / "root")  # type: ignore[operator]
    _write(root, "/opt/a/libfoo.so.1", elfgen.native(soname="libfoo.so.1"))
    os.symlink("../outside", os.path.join(root, "etc"))
    assert main(["ldconfig", "--root", root]) == 1
    assert os.listdir(str(outside)) == []
    err = capsys.readouterr().err
    assert "refusing to write /etc/ld.so.cache" in err and err.count("\n") == 1


def test_refuses_a_cache_file_link_out_of_the_root(tmp_path: object,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """ROOT/etc/ld.so.cache -> /some/host/file: refused, the target is left alone."""
    victim = tmp_path / "victim"  # type: ignore[operator]
    victim.write_bytes(b"host file")
    root = _simple_root(tmp_path / "root")  # type: ignore[operator]
    os.symlink(str(victim), os.path.join(root, "etc/ld.so.cache"))
    assert main(["ldconfig", "--root", root]) == 1
    assert victim.read_bytes() == b"host file"
    assert "refusing" in capsys.readouterr().err


def test_replaces_a_cache_link_inside_the_root(tmp_path: object) -> None:
    """A link that stays inside the root is replaced by the file, as ldconfig's rename does."""
    root = _simple_root(tmp_path)
    _write(root, "/var/other", b"keep")
    os.symlink("../var/other", os.path.join(root, "etc/ld.so.cache"))
    assert main(["ldconfig", "--root", root]) == 0
    assert not os.path.islink(os.path.join(root, "etc/ld.so.cache"))
    with open(os.path.join(root, "var/other"), "rb") as f:
        assert f.read() == b"keep"


def test_alternative_cache_file_inside_root(tmp_path: object) -> None:
    """-C FILE names a path inside the root."""
    root = _simple_root(tmp_path)
    os.makedirs(os.path.join(root, "var/cache"))
    assert main(["ldconfig", "--root", root, "-C", "/var/cache/my.cache"]) == 0
    assert os.path.exists(os.path.join(root, "var/cache/my.cache"))
    assert not os.path.exists(os.path.join(root, "etc/ld.so.cache"))


def test_missing_cache_dir_is_an_error(tmp_path: object,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """No ROOT/etc: one line, exit 1 (ldconfig does not create it either)."""
    root = str(tmp_path)
    assert main(["ldconfig", "--root", root]) == 1
    assert "can't open cache file directory /etc" in capsys.readouterr().err


def test_warns_about_soname_links_it_does_not_make(tmp_path: object,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """The cache names <dir>/<soname>; when that link is missing we say so (and make none)."""
    root = str(tmp_path)
    _write(root, "/etc/ld.so.conf", "/opt/a\n")
    _write(root, "/opt/a/libfoo.so.1.2.3", elfgen.native(soname="libfoo.so.1"))
    assert main(["ldconfig", "--root", root]) == 0
    err = capsys.readouterr().err
    assert err == ("ctypes-shim: warning: /opt/a/libfoo.so.1 does not exist (ldconfig would "
                   "link it to libfoo.so.1.2.3; ctypes-shim makes no links)\n")
    assert not os.path.lexists(os.path.join(root, "opt/a/libfoo.so.1"))


def test_verbose_lists_dirs_and_libraries(tmp_path: object,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """-v prints what `ldconfig -v -X` prints."""
    root = _simple_root(tmp_path)
    assert main(["ldconfig", "--root", root, "-v"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == ["/opt/a: (from /etc/ld.so.conf:1)", "\tlibfoo.so.1 -> libfoo.so.1"]


def test_write_json(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    """--json reports what was written."""
    import json

    root = _simple_root(tmp_path)
    assert main(["ldconfig", "--root", root, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["entries"] == 1 and report["written"].endswith("/etc/ld.so.cache")
    assert report["dirs"][0] == {"path": "/opt/a", "origin": "/etc/ld.so.conf:1",
                                 "hwcaps": None}


@pytest.mark.parametrize(("where", "version"), [
    ("/usr/lib/x86_64-linux-gnu/libc.so.6", (2, 41)), ("/lib64/libc.so.6", (2, 41))])
def test_glibc_version_of_a_root(tmp_path: object, where: str, version: tuple[int, int]) -> None:
    """The rules follow the glibc in the root, read from its libc.so.6's version string."""
    root = str(tmp_path)
    _write(root, where, b"\x7fELF junk\0GNU C Library (Debian GLIBC 2.41-12) stable release "
                        b"version 2.41.\0more")
    if where.startswith("/usr/lib/"):
        os.symlink("usr/lib", os.path.join(root, "lib"))  # usrmerge, as in debian13
    assert _ldscan.glibc_version(root) == version
    assert _ldscan.Machine(triplet="x86_64-linux-gnu").for_root(root).glibc == version
