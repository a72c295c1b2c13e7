"""All three activation routes in Debian unstable's python3.14 and python3.15.

The root has no /etc/ld.so.cache, no gcc and no objdump, like a distroless image, so stock
find_library answers None there and the shim must answer through its scan. On 3.15, the
routes must also work with PEP 810 lazy imports: ``-X lazy_imports=all|normal``,
``PYTHON_LAZY_IMPORTS=all`` and ``lazy import`` / ``lazy from ... import`` in user code.
(3.14 ignores the unknown -X option and variable; they are run there too, to show no harm.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sidlayout import SITE, VERSIONS, deps, python, run_json, venv

# libc6 and libssl3t64 of sid ship these sonames (as files or soname links).
EXPECTED = {"c": "libc.so.6", "ssl": "libssl.so.3", "z": "libz.so.1"}

REPORT = f"NAMES = {sorted(EXPECTED)!r}\n" + """
import json, sys
act = sys.modules.get("ctypes_shim._activate")
print(json.dumps({
    "patched": hasattr(find_library, "__wrapped__"),
    "route": getattr(act, "route", None),
    "lazy": sys.get_lazy_imports() if hasattr(sys, "get_lazy_imports") else None,
    "answers": {n: find_library(n) for n in NAMES},
}))
"""

# How user code gets find_library; the `lazy` forms are 3.15 syntax.
FORMS = {
    "import": "import ctypes.util\nfind_library = ctypes.util.find_library\n",
    "from": "from ctypes.util import find_library\n",
    "lazy-import": "lazy import ctypes.util\nfind_library = ctypes.util.find_library\n",
    "lazy-from": "lazy from ctypes.util import find_library\n",
}
# (extra interpreter args, extra environment, what sys.get_lazy_imports() says on 3.15)
LAZY_MODES = {
    "default": ((), {}, "normal"),
    "X-all": (("-X", "lazy_imports=all"), {}, "all"),
    "X-normal": (("-X", "lazy_imports=normal"), {}, "normal"),
    "env-all": ((), {"PYTHON_LAZY_IMPORTS": "all"}, "all"),
}
ROUTES = ("sitecustomize", "pth", "install")


def route_argv(route: str, version: str) -> tuple[str, dict[str, str], str]:
    """(interpreter, environment, code run before the user's) for an activation route."""
    if route == "sitecustomize":
        return python(version), {"PYTHONPATH": f"{SITE}:{deps(version)}"}, ""
    if route == "pth":
        return f"{venv(version)}/bin/python", {}, ""
    prelude = "import ctypes_shim\nassert ctypes_shim.install() is True\n"
    return python(version), {"PYTHONPATH": deps(version)}, prelude


def cases() -> list[object]:
    out = []
    for version in VERSIONS:
        for route in ROUTES:
            for form in FORMS:
                if form.startswith("lazy") and version == "3.14":
                    continue
                for mode in LAZY_MODES:
                    out.append(pytest.param(version, route, form, mode,
                                            id=f"{version}-{route}-{form}-{mode}"))
    return out


@pytest.mark.parametrize(("version", "route", "form", "mode"), cases())
def test_route_answers_where_stock_cannot(sid_root: Path, version: str, route: str, form: str,
                                          mode: str) -> None:
    """Each route patches find_library, however user code imports it, under every lazy mode."""
    exe, env, prelude = route_argv(route, version)
    args, lazy_env, lazy_state = LAZY_MODES[mode]
    out, stderr = run_json(sid_root, [exe, *args, "-c", prelude + FORMS[form] + REPORT],
                           env={**env, **lazy_env})
    assert out == {
        "patched": True,
        "route": route,
        "lazy": lazy_state if version == "3.15" else None,
        "answers": EXPECTED,
    }
    assert stderr == ""


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("route", ROUTES)
def test_opt_out_leaves_stock_which_finds_nothing_here(sid_root: Path, version: str,
                                                       route: str) -> None:
    """CTYPES_SHIM_DISABLE=1 on every route: stock answers None (no ldconfig cache, no gcc)."""
    exe, env, _prelude = route_argv(route, version)
    prelude = ""
    if route == "install":
        prelude = "import ctypes_shim\nassert ctypes_shim.install() is False\n"
    out, stderr = run_json(sid_root, [exe, "-c", prelude + FORMS["from"] + REPORT],
                           env={**env, "CTYPES_SHIM_DISABLE": "1"})
    assert out["patched"] is False and out["route"] is None
    assert out["answers"] == dict.fromkeys(EXPECTED)
    assert stderr == ""


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("flag", "patched"), [("-I", True), ("-E", True), ("-S", False)])
def test_pth_route_under_interpreter_flags(sid_root: Path, version: str, flag: str,
                                           patched: bool) -> None:
    """The .pth runs under -I and -E (site dirs still load), not under -S (no site at all)."""
    exe, env, _ = route_argv("pth", version)
    out, _stderr = run_json(sid_root, [exe, flag, "-c", FORMS["import"] + REPORT], env=env)
    assert out["patched"] is patched
    assert out["answers"] == (EXPECTED if patched else dict.fromkeys(EXPECTED))


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("flag", ["-I", "-E", "-S"])
def test_sitecustomize_route_is_off_under_flags_that_drop_it(sid_root: Path, version: str,
                                                            flag: str) -> None:
    """-I and -E ignore PYTHONPATH and -S skips site: the template never runs, stock stays."""
    exe, env, _ = route_argv("sitecustomize", version)
    out, stderr = run_json(sid_root, [exe, flag, "-c", FORMS["import"] + REPORT], env=env)
    assert out["patched"] is False
    assert stderr == ""


@pytest.mark.parametrize("version", VERSIONS)
def test_debian_sitecustomize_still_runs_behind_the_template(sid_root: Path,
                                                              version: str) -> None:
    """Debian's /usr/lib/python3.1x/sitecustomize.py is the one the template shadows."""
    shadowed = sid_root / f"usr/lib/python{version}/sitecustomize.py"
    assert shadowed.is_symlink() or shadowed.exists()  # a link to /etc/python3.1x/ in sid
    code = ("import json, sys; m = sys.modules['sitecustomize']; "
            "print(json.dumps(getattr(getattr(m, 'chained', None), '__file__', None)))")
    out, stderr = run_json(sid_root, [python(version), "-c", code],
                           env={"PYTHONPATH": f"{SITE}:{deps(version)}"})
    assert out == f"/usr/lib/python{version}/sitecustomize.py"
    assert stderr == ""
