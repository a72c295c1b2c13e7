"""find_library in rebuilt gcr.io/distroless/python3-debian13 and -debian12 roots (.debs, chroot).

Every test that takes a root runs once per image (see conftest.py ``image``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import chroot
import mkroot
import pytest
from recipe import BUILD_ARGS, EXAMPLES, LD_LIBRARY_PATH_PKG, ROUTE_ENV, build_args_line, dockerfile

TYPE_CHECKING = False
if TYPE_CHECKING:
    from recipe import RouteRoot

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


def test_root_is_the_distroless_layout(plain_root: Path, image: mkroot.Image) -> None:
    """debian13: usrmerge links, ldconfig and a fresh pre-generated cache; debian12: neither.

    Neither has a shell or a compiler; python3 is the image's with the distroless aliases.
    """
    if image.mergedusr:
        for name, target in (("bin", "usr/bin"), ("lib", "usr/lib"), ("lib64", "usr/lib64"),
                             ("sbin", "usr/sbin")):
            assert (plain_root / name).readlink() == Path(target), name
    else:
        for name in ("bin", "lib", "lib64", "sbin"):
            assert (plain_root / name).is_dir() and not (plain_root / name).is_symlink(), name
    assert (plain_root / "lib/x86_64-linux-gnu/libc.so.6").is_file()
    assert (plain_root / "usr/lib/x86_64-linux-gnu/libssl.so.3").is_file()
    absent = ["bin/sh", "usr/bin/sh", "usr/bin/gcc", "usr/bin/ld", "usr/bin/objdump"]
    with_ldconfig = ["sbin/ldconfig", "usr/sbin/ldconfig", "etc/ld.so.cache", "etc/ld.so.conf"]
    for path in absent + ([] if image.ldcache else with_ldconfig):
        assert not (plain_root / path).exists(), path
    for path in with_ldconfig if image.ldcache else []:
        assert (plain_root / path).is_file(), path
    for alias in ("usr/bin/python", "usr/bin/python3"):
        assert (plain_root / alias).readlink() == Path(image.entrypoint[0])
    assert "65532:65532" in (plain_root / "etc/passwd").read_text()
    assert (plain_root / "home/nonroot").stat().st_uid == chroot.NONROOT
    assert (plain_root / "tmp").stat().st_mode & 0o7777 == 0o1777
    assert f'VERSION_ID="{image.version_id}"' in (plain_root / "etc/os-release").read_text()


@USERS
def test_image_structure_tests(plain_root: Path, image: mkroot.Image, user: int) -> None:
    """The image's own structure tests (python3/testdata/{python3,<image>}.yaml) pass here."""
    r = chroot.run(
        str(plain_root), ["-c", "print('Hello World')"], user=user, entrypoint=["/usr/bin/python3"]
    )
    assert (r.rc, r.stdout) == (0, "Hello World\n")
    r = chroot.run(str(plain_root), ["--version"], entrypoint=["/usr/bin/python"], user=user)
    assert r.stdout == f"Python {image.python_full}\n"
    no_shell = "import subprocess, sys; subprocess.check_call(sys.executable + ' -h', shell=True)"
    assert chroot.run(str(plain_root), ["-c", no_shell], user=user).rc == 1
    utf8 = f"open('h\\xe9llo-{user}', 'w'); import sys; print(sys.getfilesystemencoding())"
    r = chroot.run(str(plain_root), ["-c", utf8], user=user, workdir="/tmp")
    assert r.stdout == "utf-8\n", r.stderr
    if image.name == "debian12":
        assert chroot.run(str(plain_root), ["-c", "import distutils.dist"], user=user).rc == 0


@USERS
def test_stock_find_library_in_the_image(
    plain_root: Path, image: mkroot.Image, probe: Callable[..., dict[str, Any]], user: int
) -> None:
    """Stock find_library: debian12 None for every library, though CDLL loads each by SONAME;
    debian13 each SONAME, from the pre-generated cache through the image's /sbin/ldconfig."""
    for soname, libdir, _ in LIBS.values():
        assert (plain_root / libdir.lstrip("/") / soname).exists(), soname
    out = probe(plain_root, {"names": list(LIBS), "symbols": SYMBOLS}, user=user)
    assert out["uid"] == user
    assert out["python"] == image.python_full
    assert out["find_library_module"] == "ctypes.util"
    assert out["debian_sitecustomize_ran"] is True
    expected = {n: soname if image.ldcache else None for n, (soname, _, _) in LIBS.items()}
    assert {name: r["stock"] for name, r in out["results"].items()} == expected
    assert all("stock_error" not in r for r in out["results"].values())
    # What the program cannot find by name it can still load by SONAME.
    assert out["cdll_libc_so_6_getpid"] is True
    r = chroot.run(str(plain_root), ["-c", _LOAD_BY_SONAME, json.dumps(SONAME_SYMBOLS)], user=user)
    assert (r.rc, r.stderr, json.loads(r.stdout)) == (0, "", {})
    # Stock started /sbin/ldconfig for every name (debian12: absent, so it failed quietly and
    # stock tried ld too): exactly the process starts the shim avoids.
    programs = [what for event, what in out["events"] if event == "subprocess.Popen"]
    assert set(programs) == ({"/sbin/ldconfig"} if image.ldcache else {"/sbin/ldconfig", "ld"})
    assert programs.count("/sbin/ldconfig") == len(LIBS)


# ---------------------------------------------------------------------------------------------
# With ctypes_shim, by both activation routes (see conftest.py and examples/)

LATER = {"yaml-0": ("libyaml-0.so.2", "/usr/lib/x86_64-linux-gnu", "yaml_get_version_string")}
ALL = {**LIBS, **LATER}
CALLED = {  # name -> expected return value of the called symbol (None: any non-empty value)
    "z": 891568578,  # crc32(0, b"abc", 3) == zlib.crc32(b"abc")
    "sqlite3": None,
    "lzma": None,
    "bz2": None,
    "crypto": None,
    "gomp": None,
    "yaml-0": None,
}
STOCK_C = {"debian13": "libc.so.6", "debian12": None}  # stock find_library("c") in the image
SEED = (Path(__file__).parent / "seed_sendfile.py").read_text()
DRIVER = (Path(__file__).parent / "gunicorn_driver.py").read_text()


def _expect_resolved(out: dict[str, Any], names: dict[str, tuple[str, str, str]]) -> None:
    for name, (soname, _, sym) in names.items():
        r = out["results"][name]
        assert (name, r["stock"], r["shim"], r.get("loaded"), r.get("symbol")) == (
            name,
            soname,
            soname,
            soname,
            sym,
        ), r
        if name in CALLED:
            assert r["call"] == CALLED[name] or (CALLED[name] is None and r["call"]), r


@USERS
def test_route_resolves_every_library(
    route_root: RouteRoot, probe: Callable[..., dict[str, Any]], user: int
) -> None:
    """Each name resolves to its SONAME, CDLL loads it, its symbol exists; no process is started."""
    out = probe(
        route_root.path,
        {"names": list(ALL), "symbols": {n: s for n, (_, _, s) in ALL.items()}, "use": "shim"},
        user=user,
        env=route_root.env,
    )
    assert out["uid"] == user
    assert out["shim_installed"] is True
    _expect_resolved(out, ALL)
    assert out["results"]["c"]["call"] > 0  # getpid() through the found libc
    assert out["events"] == []
    assert "subprocess" not in out["modules_at_start"]
    # Debian's /etc/python3.X/sitecustomize.py still ran (route 1 shadows it and chains to it).
    assert out["debian_sitecustomize_ran"] is True
    expected_sitecustomize = {
        "route1": "/app/site/sitecustomize.py",
        "route2": f"/usr/lib/python{mkroot.IMAGES[route_root.image].python}/sitecustomize.py",
    }[route_root.route]
    assert out["sitecustomize"] == expected_sitecustomize


@USERS
def test_route_later_layer_needs_no_regeneration(
    route_root: RouteRoot, probe: Callable[..., dict[str, Any]], user: int
) -> None:
    """A library unpacked after the shim was installed (libyaml-0-2) is found with no extra
    step, although debian13's pre-generated cache is now stale; stock finds nothing."""
    before = route_root.before_layer["results"]["yaml-0"]
    assert (before["stock"], before["shim"]) == (None, None)
    cache = route_root.path / "etc/ld.so.cache"
    if route_root.cache_before_layer is None:
        assert not cache.exists()  # debian12: there is none, and nothing made one
    else:
        assert cache.read_bytes() == route_root.cache_before_layer  # nothing regenerated it
        assert b"libyaml" not in route_root.cache_before_layer  # so it is stale
    soname, _, sym = LATER["yaml-0"]
    out = probe(route_root.path, {"names": ["yaml-0"], "symbols": {"yaml-0": sym}, "use": "shim"},
                user=user, env=route_root.env)
    r = out["results"]["yaml-0"]
    assert (r["shim"], r.get("loaded"), r.get("symbol")) == (soname, soname, sym), r
    assert out["events"] == []
    out = probe(route_root.path, {"names": ["yaml-0"]}, user=user,
                env={**route_root.env, "CTYPES_SHIM_DISABLE": "1"})
    assert out["results"]["yaml-0"]["stock"] is None


@USERS
def test_route_ld_library_path(
    route_root: RouteRoot, probe: Callable[..., dict[str, Any]], user: int
) -> None:
    """A library only in LD_LIBRARY_PATH (/opt/x/libjansson.so.4) is found and loads; else not."""
    deb = Path(route_root.ld_library_path_deb).name
    assert deb.startswith(LD_LIBRARY_PATH_PKG + "_")
    # libjansson4_2.14-2_amd64.deb: jansson_version_str() returns "2.14"
    upstream = deb.split("_")[1].split("%3a")[-1].split("-")[0]
    req = {"names": ["jansson"], "symbols": {"jansson": "jansson_version_str"}, "use": "shim"}
    out = probe(
        route_root.path, req, user=user, env={**route_root.env, "LD_LIBRARY_PATH": "/opt/x"}
    )
    r = out["results"]["jansson"]
    assert (r["shim"], r["stock"], r.get("loaded"), r.get("call")) == ("libjansson.so.4",) * 3 + (
        upstream,
    ), r
    assert out["events"] == []
    out = probe(route_root.path, req, user=user, env=route_root.env)
    assert out["results"]["jansson"]["shim"] is None


@USERS
def test_route_isolated_mode(
    route_root: RouteRoot, probe: Callable[..., dict[str, Any]], user: int
) -> None:
    """``python -I`` keeps the .pth route (site dirs still run) and drops the PYTHONPATH route."""
    req = {"names": ["c", "ssl"], "use": "shim"}
    out = probe(route_root.path, req, user=user, env=route_root.env, python_args=("-I",))
    assert out["flags_isolated"] == 1
    if route_root.route == "route2":
        assert out["shim_installed"] is True
        assert [out["results"][n]["stock"] for n in req["names"]] == ["libc.so.6", "libssl.so.3"]
        assert out["events"] == []
    else:
        assert "shim_import_error" in out  # -I ignores PYTHONPATH: /app/deps is not importable
        assert out["results"]["c"]["stock"] == STOCK_C[route_root.image]  # stock's own answer


@USERS
def test_route_kill_switch(
    route_root: RouteRoot, probe: Callable[..., dict[str, Any]], user: int
) -> None:
    """CTYPES_SHIM_DISABLE=1 keeps stock find_library; Debian's sitecustomize still runs."""
    out = probe(
        route_root.path,
        {"names": ["c"]},
        user=user,
        env={**route_root.env, "CTYPES_SHIM_DISABLE": "1"},
    )
    assert out["find_library_module"] == "ctypes.util"
    assert out["results"]["c"]["stock"] == STOCK_C[route_root.image]
    assert out["debian_sitecustomize_ran"] is True


@USERS
def test_seed_gunicorn_sendfile_stock(plain_root: Path, image: mkroot.Image, user: int) -> None:
    """Without the shim, gunicorn's old pattern gets CDLL(None) in debian12: the global scope,
    not libc. In debian13 stock finds libc.so.6 through the pre-generated cache."""
    r = chroot.run(str(plain_root), ["-c", SEED], user=user)
    out = json.loads(r.stdout)
    assert (out["find_library_c"], out["libc_handle_name"]) == (STOCK_C[image.name],) * 2, r.stderr
    # debian12 still sends, by luck: glibc's dlopen(NULL) scope exports sendfile.
    assert (out["sent"], out["received"], out["sha256_match"]) == (1 << 20, 1 << 20, True)


@USERS
def test_seed_gunicorn_sendfile(route_root: RouteRoot, user: int) -> None:
    """gunicorn's old ``CDLL(find_library("c"), use_errno=True).sendfile`` loads libc.so.6."""
    r = chroot.run(str(route_root.path), ["-c", SEED], user=user, env=route_root.env)
    assert r.rc == 0, r.stderr
    out = json.loads(r.stdout)
    assert (out["find_library_c"], out["libc_handle_name"]) == ("libc.so.6", "libc.so.6")
    assert (out["sent"], out["received"], out["sha256_match"]) == (1 << 20, 1 << 20, True)
    assert out["spawned"] == []


def _gunicorn_args(route: str, image: str, worker_class: str) -> list[str]:
    """The Dockerfile's CMD minus ``--bind`` (the driver binds a free port on 127.0.0.1)."""
    cmd = list(dockerfile(route, image)["final"]["CMD"])
    i = cmd.index("--bind")
    del cmd[i : i + 2]
    cmd[cmd.index("--worker-class") + 1] = worker_class
    return cmd


@pytest.mark.parametrize("worker_class", ["sync", "gthread"])
def test_gunicorn_serves_app_as_nonroot(route_root: RouteRoot, worker_class: str) -> None:
    """gunicorn serves examples/app.py, whose workers resolve every library; SIGTERM exits 0."""
    final = dockerfile(route_root.route, route_root.image)["final"]
    # What the driver runs: sys.executable -m gunicorn, /usr/bin/python3 resolved.
    assert final["ENTRYPOINT"] == ["/usr/bin/python3", "-m", "gunicorn"]
    req = {"args": _gunicorn_args(route_root.route, route_root.image, worker_class), "requests": 4}
    r = chroot.run(
        str(route_root.path),
        ["-c", DRIVER, json.dumps(req)],
        user=chroot.NONROOT,
        env=route_root.env,
        timeout=90,
    )
    assert r.rc == 0, r.stderr
    out = json.loads(r.stdout)
    assert "error" not in out, out["log_tail"]
    assert out["rc"] == 0, out["log_tail"]
    assert len(out["responses"]) == 4
    for resp in out["responses"]:
        body = resp["json"]
        assert resp["status"] == 200
        assert body["uid"] == chroot.NONROOT
        assert body["server"].startswith("gunicorn")
        assert body["ctypes_shim"]["installed"] is True
        assert body["spawned"] == []
        sonames = {name: lib["soname"] for name, lib in body["libraries"].items()}
        assert sonames == {name: soname for name, (soname, _, _) in LIBS.items()}
        assert all("error" not in lib and lib.get("symbol") for lib in body["libraries"].values())


@pytest.mark.parametrize("image_name", list(mkroot.IMAGES))
@pytest.mark.parametrize("route", ["route1", "route2"])
def test_dockerfiles_are_the_tested_recipe(route: str, image_name: str) -> None:
    """examples/Dockerfile.* use the paths and ENV these tests set up (conftest._route_root):
    by default for python3-debian13, and with README's --build-arg line for python3-debian12."""
    image = mkroot.IMAGES[image_name]
    df = dockerfile(route, image_name)
    assert df["build"]["FROM"] == f"python:{image.python}-slim-{image.suite}"
    assert df["final"]["FROM"] == f"gcr.io/distroless/python3-{image.name}:nonroot"
    assert df["final"]["ENV"] == ROUTE_ENV[route]
    (pip_step,) = df["build"]["RUN"]
    assert "pip wheel --no-deps /src -w /wheels" in pip_step
    target = {"route1": "/app/deps", "route2": "/install/" + image.site_dir}[route]
    assert f"pip install --target {target} /wheels/ctypes_shim-*.whl gunicorn" in pip_step
    copies = df["build"]["COPY"] + df["final"]["COPY"]
    if route == "route1":
        assert "sitecustomize_template/sitecustomize.py /app/site/sitecustomize.py" in copies
        assert "examples/app.py /app/app.py" in copies
        assert "--from=build /app /app" in copies
    else:
        assert "examples/app.py /install/app/app.py" in copies
        assert "--from=build /install/ /" in copies
    if BUILD_ARGS[image_name]:  # the second recipe is spelled out where users read it
        assert set(BUILD_ARGS[image_name]) <= set(df["global_args"])
        assert build_args_line(image_name) in (EXAMPLES / "README.md").read_text()
