"""_loader: glibc's (and musl's) library search in generated roots, checked against glibc's
source rules and, on the host, against glibc's own loader in ldd's trace mode."""

from __future__ import annotations

import glob
import os
import shutil
import struct
import subprocess

import elfgen
import pytest

from ctypes_shim import _elf, _loader, _resolve

DT_NEEDED, DT_RPATH, DT_RUNPATH = 1, 15, 29


def with_paths(*, soname: str | None = None, needed: tuple[str, ...] = (),
               rpath: str | None = None, runpath: str | None = None, **kw: object) -> bytes:
    """A native ELF library with DT_RPATH and/or DT_RUNPATH: elfgen writes the strings as
    extra DT_NEEDED entries, whose tags are then turned into DT_RPATH / DT_RUNPATH."""
    extra = [(t, s) for t, s in ((DT_RPATH, rpath), (DT_RUNPATH, runpath)) if s is not None]
    data = bytearray(elfgen.native(soname=soname, needed=needed + tuple(s for _, s in extra),
                                   **kw))
    bits = 64 if data[4] == 2 else 32
    end = "<" if data[5] == 1 else ">"
    if bits == 64:
        phoff, = struct.unpack_from(end + "Q", data, 32)
        phentsize, phnum = struct.unpack_from(end + "HH", data, 54)
        dyn_size, tag_fmt = 16, end + "q"
    else:
        phoff, = struct.unpack_from(end + "I", data, 28)
        phentsize, phnum = struct.unpack_from(end + "HH", data, 42)
        dyn_size, tag_fmt = 8, end + "i"
    dyn_off = phoff + phentsize * phnum  # elfgen puts the dynamic section right after
    for i, (tag, _) in enumerate(extra):
        at = dyn_off + dyn_size * (len(needed) + i)
        assert struct.unpack_from(tag_fmt, data, at)[0] == DT_NEEDED
        struct.pack_into(tag_fmt, data, at, tag)
    return bytes(data)


def loader(root: str, **kw: object) -> _loader.Loader:
    kw.setdefault("environ", {})
    return _loader.Loader(root, native=_resolve.Native.detect().info, **kw)  # type: ignore[arg-type]


def where(walk: _loader.Walk) -> dict[str, tuple[str | None, str | None]]:
    """soname -> (path, source) for every DT_NEEDED of every object of the walk."""
    return {f.name: (f.path, f.source) for node in walk.objects for f in node.needed}


# -- the ELF reader's new fields ----------------------------------------------------------------


def test_generated_paths_read_back() -> None:
    """The helper's DT_RPATH/DT_RUNPATH come back from _elf as written; absent is None."""
    info = _elf.parse_elf(with_paths(soname="libx.so.1", needed=("liby.so.2",),
                                     rpath="/r1:$ORIGIN/r2", runpath="/u"))
    assert (info.soname, info.needed, info.rpath, info.runpath) == (
        "libx.so.1", ("liby.so.2",), "/r1:$ORIGIN/r2", "/u")
    plain = _elf.parse_elf(elfgen.native(soname="libz.so.1"))
    assert (plain.rpath, plain.runpath) == (None, None)


@pytest.mark.slow  # the same on every interpreter: tox runs it in py311
@pytest.mark.host
def test_needed_rpath_runpath_agree_with_pyelftools() -> None:
    """On every shared library of the host (and pyenv's extension modules, which carry
    DT_RUNPATH), _elf's DT_NEEDED, DT_RPATH and DT_RUNPATH equal pyelftools'."""
    elffile = pytest.importorskip("elftools.elf.elffile")
    paths = sorted(set(glob.glob("/usr/lib/x86_64-linux-gnu/*.so*")
                       + glob.glob("/usr/lib/*/*.so*")
                       + glob.glob(os.path.join(os.path.dirname(os.__file__),
                                                "lib-dynload", "*.so"))))
    checked = with_paths_seen = 0
    for path in paths:
        if not os.path.isfile(path) or os.path.islink(path):
            continue
        try:
            ours = _elf.read_elf(path)
        except (OSError, ValueError):
            continue
        needed: list[str] = []
        rpath = runpath = None
        try:
            with open(path, "rb") as f:
                for segment in elffile.ELFFile(f).iter_segments():
                    if segment["p_type"] != "PT_DYNAMIC":
                        continue
                    for tag in segment.iter_tags():
                        if tag.entry.d_tag == "DT_NEEDED":
                            needed.append(tag.needed)
                        elif tag.entry.d_tag == "DT_RPATH":
                            rpath = tag.rpath
                        elif tag.entry.d_tag == "DT_RUNPATH":
                            runpath = tag.runpath
        except Exception:  # pyelftools cannot read it: nothing to compare
            continue
        assert (ours.needed, ours.rpath, ours.runpath) == (tuple(needed), rpath, runpath), path
        checked += 1
        with_paths_seen += rpath is not None or runpath is not None
    assert checked > 50
    assert with_paths_seen > 0  # pyenv's lib-dynload modules have DT_RUNPATH


# -- token substitution (glibc elf/dl-load.c _dl_dst_substitute) -------------------------------


@pytest.mark.parametrize(("element", "kw", "expected"), [
    ("$ORIGIN/../lib", {}, "/opt/app/../lib"),
    ("${ORIGIN}/x", {}, "/opt/app/x"),
    ("$ORIGINAL/x", {}, "$ORIGINAL/x"),  # not a token: followed by an identifier character
    ("${ORIGIN", {}, "${ORIGIN"),  # no closing brace: not a token
    ("/a/$LIB/b", {}, "/a/lib/x86_64-linux-gnu/b"),
    ("/a/${PLATFORM}/b", {}, "/a/x86_64/b"),
    ("/a/$PLATFORM", {"platform": None}, None),  # a token without a value drops the element
    ("$ORIGIN/x", {"origin": None}, None),
    ("/a/$HOME/b", {}, "/a/$HOME/b"),  # unknown tokens stay as they are
    ("$ORIGIN/x", {"secure": True}, "/opt/app/x"),  # at the start: allowed when AT_SECURE
    ("/y/$ORIGIN", {"secure": True}, None),  # elsewhere: dropped
    ("$ORIGIN/x", {"secure": True, "executable": True, "trusted": ["/usr/lib"]}, None),
    ("$ORIGIN/../lib/x", {"secure": True, "executable": True, "origin": "/usr/bin",
                          "trusted": ["/usr/lib"]}, "/usr/bin/../lib/x"),
], ids=repr)
def test_substitute(element: str, kw: dict[str, object], expected: str | None) -> None:
    """$ORIGIN, ${ORIGIN}, $LIB, $PLATFORM as glibc replaces them, AT_SECURE rules included."""
    args: dict[str, object] = {"origin": "/opt/app", "lib": "lib/x86_64-linux-gnu",
                               "platform": "x86_64"}
    args.update(kw)
    assert _loader.substitute(element, **args) == expected  # type: ignore[arg-type]


def test_dst_lib_follows_the_layout(root: object) -> None:
    """$LIB is lib/<triplet> where the root has Debian's multiarch dirs, lib64 elsewhere."""
    path = root.path  # type: ignore[attr-defined]
    root.lib("/lib64/libc.so.6", soname="libc.so.6")  # type: ignore[attr-defined]
    assert _loader.dst_lib(root=path, bits=64, triplet="x86_64-linux-gnu") == "lib64"
    assert _loader.dst_lib(root=path, bits=32, triplet=None) == "lib"
    os.remove(os.path.join(path, "lib64/libc.so.6"))
    root.lib("/usr/lib/x86_64-linux-gnu/libc.so.6", soname="libc.so.6")  # type: ignore[attr-defined]
    assert (_loader.dst_lib(root=path, bits=64, triplet="x86_64-linux-gnu")
            == "lib/x86_64-linux-gnu")


def non_debian(root: object) -> None:
    """Make *root* an upstream (non-multiarch) glibc layout: its libc in /lib64."""
    root.lib("/lib64/libc.so.6", soname="libc.so.6")  # type: ignore[attr-defined]


# -- the search order ---------------------------------------------------------------------------


def test_search_path_order_rpath_env_runpath_cache_system(root: object) -> None:
    """glibc's order: the requester's DT_RPATH, its loaders' DT_RPATH, the executable's,
    LD_LIBRARY_PATH, then DT_RUNPATH, the cache and the system dirs."""
    non_debian(root)
    r = root.path  # type: ignore[attr-defined]
    exe = _elf.parse_elf(with_paths(rpath="/exe-rpath"))
    parent = _elf.parse_elf(with_paths(rpath="/parent-rpath"))
    me = _elf.parse_elf(with_paths(rpath="$ORIGIN/own:/own2:/own2/"))
    dirs = _loader.search_path(me, "/opt/me/libme.so", root=r,
                               environ={"LD_LIBRARY_PATH": "/e1;/e2::"},
                               chain=[(parent, "/opt/p/libp.so")],
                               executable=(exe, "/usr/bin/python3"), bits=64)
    assert [(d.path, d.source, d.owner) for d in dirs] == [
        ("/opt/me/own", "DT_RPATH", "/opt/me/libme.so"),
        ("/own2", "DT_RPATH", "/opt/me/libme.so"),  # a repeated dir is listed once
        ("/parent-rpath", "DT_RPATH", "/opt/p/libp.so"),
        ("/exe-rpath", "DT_RPATH", "/usr/bin/python3"),
        ("/e1", "LD_LIBRARY_PATH", None), ("/e2", "LD_LIBRARY_PATH", None),
        ("", "LD_LIBRARY_PATH", None),  # an empty element: the current directory
        ("/etc/ld.so.cache", "ld.so.cache", None),
        ("/lib64", "system dir", None), ("/usr/lib64", "system dir", None),
        ("/lib", "system dir", None), ("/usr/lib", "system dir", None)]


def test_runpath_turns_every_rpath_off_and_is_not_inherited(root: object) -> None:
    """With DT_RUNPATH, no DT_RPATH is read (own, loaders', executable's); DT_RUNPATH comes
    after LD_LIBRARY_PATH; a loader's DT_RUNPATH is not used for its dependencies."""
    r = root.path  # type: ignore[attr-defined]
    parent = _elf.parse_elf(with_paths(rpath="/parent-rpath", runpath="/parent-runpath"))
    me = _elf.parse_elf(with_paths(rpath="/ignored", runpath="/mine"))
    dirs = _loader.search_path(me, "/x/libme.so", root=r, environ={"LD_LIBRARY_PATH": "/e"},
                               chain=[(parent, "/p/libp.so")], bits=64)
    assert [(d.path, d.source) for d in dirs][:3] == [
        ("/e", "LD_LIBRARY_PATH"), ("/mine", "DT_RUNPATH"), ("/etc/ld.so.cache", "ld.so.cache")]
    child = _elf.parse_elf(elfgen.native())  # no paths of its own
    dirs = _loader.search_path(child, "/y/libc.so", root=r, environ={},
                               chain=[(parent, "/p/libp.so")], bits=64)
    assert [d.source for d in dirs][:1] == ["ld.so.cache"]  # parent: RUNPATH, so no RPATH


def test_secure_ignores_ld_library_path(root: object) -> None:
    """AT_SECURE: LD_LIBRARY_PATH is not read."""
    me = _elf.parse_elf(elfgen.native())
    dirs = _loader.search_path(me, "/x/l.so", root=root.path,  # type: ignore[attr-defined]
                               environ={"LD_LIBRARY_PATH": "/e"}, secure=True, bits=64,
                               )
    assert "LD_LIBRARY_PATH" not in [d.source for d in dirs]


def test_musl_order_and_tokens(root: object) -> None:
    """musl: LD_LIBRARY_PATH first (empty elements skipped), then RUNPATH (or RPATH) up the
    chain, then its path file; any token but $ORIGIN drops the whole list."""
    r = root.path  # type: ignore[attr-defined]
    me = _elf.parse_elf(with_paths(runpath="$ORIGIN/a:/b"))
    parent = _elf.parse_elf(with_paths(rpath="/p"))
    lib = _elf.parse_elf(with_paths(rpath="$LIB/x:/y"))
    dirs = _loader.search_path(me, "/m/libme.so", root=r, environ={"LD_LIBRARY_PATH": "/e::"},
                               chain=[(parent, "/p/lp.so"), (lib, "/q/lq.so")],
                               musl_arch="x86_64")
    assert [(d.path, d.source) for d in dirs] == [
        ("/e", "LD_LIBRARY_PATH"), ("/m/a", "DT_RUNPATH"), ("/b", "DT_RUNPATH"),
        ("/p", "DT_RPATH"), ("/lib", "system dir"), ("/usr/local/lib", "system dir"),
        ("/usr/lib", "system dir")]


# -- finding files in generated roots -------------------------------------------------------------


def test_missing_wrong_arch_and_only_in_ld_library_path(root: object) -> None:
    """A DT_NEEDED that is missing, one whose only copy is another machine's, and one
    reachable only through LD_LIBRARY_PATH."""
    non_debian(root)
    fr = root
    r = fr.path  # type: ignore[attr-defined]
    fr.lib("/usr/lib/libtop.so.1", soname="libtop.so.1",  # type: ignore[attr-defined]
           needed=("libgone.so.1", "libarm.so.1", "libenv.so.1"))
    fr.lib("/usr/lib/libarm.so.1", elfgen.elf(machine=elfgen.foreign_machine(),  # type: ignore[attr-defined]
                                              soname="libarm.so.1"))
    fr.lib("/opt/env/libenv.so.1", soname="libenv.so.1")  # type: ignore[attr-defined]
    walk = loader(r).walk("libtop.so.1")
    assert walk.top.path == "/usr/lib/libtop.so.1" and walk.top.source == "system dir"
    assert not walk.ok
    missing = {f.name: f for _, f in walk.missing}
    assert set(missing) == {"libgone.so.1", "libarm.so.1", "libenv.so.1"}
    assert missing["libgone.so.1"].error == "not found"
    assert missing["libarm.so.1"].passed == (("/usr/lib/libarm.so.1",
                                              f"machine {elfgen.foreign_machine()}"),)
    assert walk.problem == ("libgone.so.1 needed by /usr/lib/libtop.so.1: not found "
                            "(and 2 more)")
    fr.lib("/usr/lib64/libarm.so.1", soname="libarm.so.1")  # type: ignore[attr-defined]
    fr.lib("/usr/lib64/libgone.so.1", soname="libgone.so.1")  # type: ignore[attr-defined]
    walk = loader(r, environ={"LD_LIBRARY_PATH": "/opt/env"}).walk("libtop.so.1")
    assert walk.ok, walk.problem
    assert where(walk) == {"libgone.so.1": ("/usr/lib64/libgone.so.1", "system dir"),
                           "libarm.so.1": ("/usr/lib64/libarm.so.1", "system dir"),
                           "libenv.so.1": ("/opt/env/libenv.so.1", "LD_LIBRARY_PATH")}


def test_rpath_of_the_loader_chain_and_origin(root: object) -> None:
    """A grandchild is found through its grandparent's DT_RPATH; $ORIGIN is the dir the
    object was found in; DT_RUNPATH does not reach a dependency's dependencies."""
    fr = root
    r = fr.path  # type: ignore[attr-defined]
    fr.lib("/app/lib/libtop.so", with_paths(soname="libtop.so", needed=("libmid.so",),  # type: ignore[attr-defined]
                                            rpath="$ORIGIN/private"))
    fr.lib("/app/lib/private/libmid.so", soname="libmid.so", needed=("libleaf.so",))  # type: ignore[attr-defined]
    fr.lib("/app/lib/private/libleaf.so", soname="libleaf.so")  # type: ignore[attr-defined]
    walk = loader(r).walk("/app/lib/libtop.so")
    assert walk.ok, walk.problem
    assert where(walk) == {"libmid.so": ("/app/lib/private/libmid.so", "DT_RPATH"),
                           "libleaf.so": ("/app/lib/private/libleaf.so", "DT_RPATH")}
    assert walk.objects[2].needed == () and walk.objects[1].needed[0].owner == (
        "/app/lib/libtop.so")  # the grandparent's DT_RPATH found the leaf
    fr.lib("/app/lib/libtop.so", with_paths(soname="libtop.so", needed=("libmid.so",),  # type: ignore[attr-defined]
                                            runpath="$ORIGIN/private"))
    walk = loader(r).walk("/app/lib/libtop.so")
    assert where(walk)["libmid.so"] == ("/app/lib/private/libmid.so", "DT_RUNPATH")
    assert [f.name for _, f in walk.missing] == ["libleaf.so"]


def test_cache_and_conf_dirs(root: object) -> None:
    """Without a cache the loader never reads ld.so.conf dirs (the miss says where the
    file is); with a cache written by glibc's ldconfig it finds it there."""
    fr = root
    r = fr.path  # type: ignore[attr-defined]
    fr.text("/etc/ld.so.conf", "/opt/vendor\n")  # type: ignore[attr-defined]
    fr.lib("/opt/vendor/libv.so.3", soname="libv.so.3")  # type: ignore[attr-defined]
    fr.lib("/usr/lib/libuser.so.1", soname="libuser.so.1", needed=("libv.so.3",))  # type: ignore[attr-defined]
    walk = loader(r).walk("libuser.so.1")
    (_, miss), = walk.missing
    assert miss.only_in == ("/opt/vendor/libv.so.3", "/etc/ld.so.conf:1")
    fr.ldconfig()  # type: ignore[attr-defined]
    walk = loader(r).walk("libuser.so.1")
    assert where(walk) == {"libv.so.3": ("/opt/vendor/libv.so.3", "ld.so.cache")}
    assert loader(r).walk("libuser.so.1").top.source == "ld.so.cache"


def test_cycle_and_bound(root: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """Objects that need each other are loaded once; a chain longer than the bound stops."""
    fr = root
    r = fr.path  # type: ignore[attr-defined]
    fr.lib("/usr/lib/liba.so.1", soname="liba.so.1", needed=("libb.so.1",))  # type: ignore[attr-defined]
    fr.lib("/usr/lib/libb.so.1", soname="libb.so.1", needed=("liba.so.1", "libb.so.1"))  # type: ignore[attr-defined]
    walk = loader(r).walk("liba.so.1")
    assert walk.ok and [o.path for o in walk.objects] == ["/usr/lib/liba.so.1",
                                                          "/usr/lib/libb.so.1"]
    assert [f.source for f in walk.objects[1].needed] == ["already loaded", "already loaded"]
    for i in range(6):
        fr.lib(f"/usr/lib/libn{i}.so", soname=f"libn{i}.so",  # type: ignore[attr-defined]
               needed=(f"libn{i + 1}.so",) if i < 5 else ())
    monkeypatch.setattr(_loader, "MAX_OBJECTS", 3)
    walk = loader(r).walk("libn0.so")
    assert walk.truncated and not walk.ok and len(walk.objects) == 3


def test_a_file_that_is_not_elf_stops_the_search(root: object) -> None:
    """open_verify: a non-ELF file under the name ends the search with an error, even
    when a good copy sits in a later dir; a wrong-class copy is passed over."""
    non_debian(root)
    fr = root
    r = fr.path  # type: ignore[attr-defined]
    fr.text("/lib64/libs.so.1", "/* GNU ld script */\n")  # type: ignore[attr-defined]
    fr.lib("/usr/lib/libs.so.1", soname="libs.so.1")  # type: ignore[attr-defined]
    found = loader(r).find("libs.so.1")
    assert found.path is None and found.error is not None
    assert found.error.startswith("/lib64/libs.so.1: cannot load: ")
    other = 32 if _resolve.Native.detect().bits == 64 else 64
    fr.lib("/lib64/libs.so.1", elfgen.elf(bits=other, machine=elfgen.native_machine(),  # type: ignore[attr-defined]
                                          soname="libs.so.1"))
    found = loader(r).find("libs.so.1")
    assert found.path == "/usr/lib/libs.so.1"
    assert found.passed == (("/lib64/libs.so.1", f"ELF class {other}-bit"),)


# -- against glibc itself ---------------------------------------------------------------------


def _gcc_lib(out: str, soname: str, needed: tuple[str, ...] = (), *, flags: tuple[str, ...] = ()
             ) -> None:
    libs = [f"-l:{n}" for n in needed]
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", out, "-x", "c", "-",
                    f"-Wl,-soname,{soname}", "-L", os.path.dirname(out), *flags,
                    "-Wl,--no-as-needed", *libs],
                   input=f"int f_{soname.split('.', maxsplit=1)[0]}(void) {{ return 1; }}\n",
                   text=True, check=True, capture_output=True)


def _glibc_list(path: str, env: dict[str, str]) -> dict[str, str | None]:
    """What ldd prints (LD_TRACE_LOADED_OBJECTS=1 ld.so PATH): soname -> path, None for
    'not found'."""
    done = subprocess.run(["/lib64/ld-linux-x86-64.so.2", path],
                          env={**env, "LD_TRACE_LOADED_OBJECTS": "1"},
                          capture_output=True, text=True, check=False)
    out: dict[str, str | None] = {}
    for line in done.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] == "=>":
            out[parts[0]] = None if parts[2] == "not" else parts[2]
    assert out, (done.returncode, done.stdout, done.stderr)  # the listing was read
    return out


@pytest.mark.host
def test_agrees_with_glibc_on_real_libraries(tmp_path: object) -> None:
    """gcc-built libraries with DT_RPATH (chain), DT_RUNPATH with $ORIGIN, LD_LIBRARY_PATH
    and a missing one: _loader finds what glibc's loader finds in ldd's trace mode."""
    if not shutil.which("gcc") or not os.path.exists("/lib64/ld-linux-x86-64.so.2"):
        pytest.skip("needs gcc and glibc's x86-64 loader")
    if _resolve.Native.detect().musl_arch is not None:
        pytest.skip("a musl interpreter")
    base = str(tmp_path)
    for d in ("top", "top/priv", "env", "run", "gone"):
        os.makedirs(os.path.join(base, d))
    _gcc_lib(f"{base}/gone/libgone.so.1", "libgone.so.1")
    _gcc_lib(f"{base}/env/libenv.so.1", "libenv.so.1")
    _gcc_lib(f"{base}/top/priv/libleaf.so.1", "libleaf.so.1")
    _gcc_lib(f"{base}/run/libr.so.1", "libr.so.1")
    _gcc_lib(f"{base}/top/priv/libmid.so.1", "libmid.so.1", ("libleaf.so.1",),
             flags=(f"-L{base}/top/priv",))
    _gcc_lib(f"{base}/top/libtop.so.1", "libtop.so.1",
             ("libmid.so.1", "libenv.so.1", "libr.so.1", "libgone.so.1"),
             flags=(f"-L{base}/top/priv", f"-L{base}/env", f"-L{base}/run", f"-L{base}/gone",
                    "-Wl,--disable-new-dtags", "-Wl,-rpath,$ORIGIN/priv"))
    os.rename(f"{base}/run/libr.so.1", f"{base}/top/priv/libr.so.1")
    os.unlink(f"{base}/gone/libgone.so.1")
    env = {"LD_LIBRARY_PATH": f"{base}/env", "PATH": os.environ.get("PATH", "/usr/bin")}
    expected = _glibc_list(f"{base}/top/libtop.so.1", env)
    walk = _loader.Loader("/", env, native=_resolve.Native.detect().info).walk(
        f"{base}/top/libtop.so.1")
    ours = {f.name: f.path for node in walk.objects for f in node.needed}
    for soname in ("libmid.so.1", "libleaf.so.1", "libenv.so.1", "libr.so.1", "libgone.so.1"):
        assert ours[soname] == expected[soname], soname
    assert expected["libgone.so.1"] is None and expected["libleaf.so.1"] is not None
    assert ours["libc.so.6"] is not None
    assert os.path.realpath(ours["libc.so.6"]) == os.path.realpath(
        expected["libc.so.6"])  # type: ignore[arg-type]
