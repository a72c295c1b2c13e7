"""Next to real start-up agents from PyPI: OpenTelemetry's and ddtrace's sitecustomize, launchers.

Both agents put a `sitecustomize` on PYTHONPATH.  ddtrace's imports the next one on
sys.path; OpenTelemetry's does not, so the shim's template behind it never runs.  Each
route and order is run in a fresh interpreter that reports: did the shim answer, did
anything start a process during the lookups (an audit hook), did the agent initialize.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import wrapt
from fuzz.support import BASE_PYTHON
from pypi import SPAWN_EVENTS, installed
from test_activate import _pth_source, package_dir

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "sitecustomize_template" / "sitecustomize.py"

# Runs as the program (python -c, or the launcher's -c).  Everything it reports is read
# from the process itself; the expectations are in the tests.
PROBE = """
import json, sys
events = []
sys.addaudithook(lambda event, args: events.append(event) if event in SPAWN_EVENTS else None)
import ctypes.util
from ctypes_shim import _activate, _patch
answers = {name: ctypes.util.find_library(name) for name in ("c", "m")}
out = {"patched": _patch.is_patched(ctypes.util), "installed": _activate.is_installed(),
       "route": _activate.route, "answers": answers, "spawned": events,
       "type": type(ctypes.util.find_library).__name__}
boot = sys.modules.get("ddtrace.bootstrap.sitecustomize")
out["ddtrace_loaded"] = getattr(boot, "loaded", None)
try:
    from opentelemetry import trace
except ImportError:
    out["otel_provider"] = None
else:
    provider = type(trace.get_tracer_provider())
    out["otel_provider"] = provider.__module__ + "." + provider.__name__
print(json.dumps(out))
""".replace("SPAWN_EVENTS", repr(SPAWN_EVENTS))

# The agents' own settings: no exporter or agent to talk to, nothing sent anywhere.
AGENT_ENV = {
    "OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none",
    "OTEL_LOGS_EXPORTER": "none", "OTEL_SERVICE_NAME": "ctypes-shim-test",
    "DD_TRACE_AGENT_URL": "http://127.0.0.1:9", "DD_INSTRUMENTATION_TELEMETRY_ENABLED": "false",
    "DD_REMOTE_CONFIGURATION_ENABLED": "false", "DD_CRASHTRACKING_ENABLED": "false",
    "DD_TRACE_STARTUP_LOGS": "false",
}
SDK_PROVIDER = "opentelemetry.sdk.trace.TracerProvider"
ANSWERS = {"c": "libc.so.6", "m": "libm.so.6"}  # glibc's sonames on every glibc Linux target

# Real agents from PyPI: one interpreter (the tox env `agents`) and the distroless root.
pytestmark = pytest.mark.agents


class Agents:
    """The agents installed with pip --target (tests/pypi.py), next to a copy of the shim."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.otel = installed(["opentelemetry-distro", "opentelemetry-instrumentation"])
        self.ddtrace = installed(["ddtrace"])
        self.otel_site = self.otel / "opentelemetry/instrumentation/auto_instrumentation"
        self.ddtrace_site = self.ddtrace / "ddtrace/bootstrap"
        # /app/site (the template) and /app/deps (the package) of the sitecustomize route.
        self.site = base / "site"
        self.site.mkdir()
        shutil.copy2(TEMPLATE, self.site / "sitecustomize.py")
        self.deps = base / "deps"
        shutil.copytree(Path(package_dir()) / "ctypes_shim", self.deps / "ctypes_shim")
        self.venv_python = self._venv(base / "venv")

    def _venv(self, path: Path) -> str:
        """A venv whose site-packages holds the shim and its .pth: the .pth route."""
        subprocess.run([BASE_PYTHON, "-m", "venv", "--without-pip", str(path)], check=True)
        python = str(path / "bin" / "python")
        purelib = subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            capture_output=True, text=True, check=True).stdout.strip()
        shutil.copytree(self.deps / "ctypes_shim", Path(purelib) / "ctypes_shim")
        shutil.copy(_pth_source(), purelib)
        return python

    def path(self, *names: str) -> str:
        """A PYTHONPATH from names: site, deps, otel, otel_site, ddtrace, ddtrace_site."""
        return os.pathsep.join(str(getattr(self, name)) for name in names)


@pytest.fixture(scope="module")
def agents(tmp_path_factory: pytest.TempPathFactory) -> Agents:
    return Agents(tmp_path_factory.mktemp("agents"))


def run(args: list[str], pythonpath: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    environ = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8",
               "PYTHONPATH": pythonpath, **AGENT_ENV}
    return subprocess.run(args, env=environ, cwd=cwd, capture_output=True, text=True,
                          timeout=300, check=False)


def report(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert proc.returncode == 0, proc.stderr
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def assert_shim_answered(out: dict[str, Any], route: str) -> None:
    assert out["patched"] and out["installed"], out
    assert out["route"] == route, out
    assert out["answers"] == ANSWERS, out
    assert out["spawned"] == [], out  # stock would have run /sbin/ldconfig -p for each name


# id: (PYTHONPATH, how python starts, the route expected, the agent) for each route and order.
ORDERS = {
    "template-then-ddtrace": (("site", "ddtrace_site", "deps", "ddtrace"), "plain",
                              "sitecustomize", "ddtrace"),
    "ddtrace-then-template": (("ddtrace_site", "site", "deps", "ddtrace"), "plain",
                              "sitecustomize", "ddtrace"),
    "template-then-otel": (("site", "otel_site", "deps", "otel"), "plain", "sitecustomize",
                           "otel"),
    "pth-with-ddtrace": (("ddtrace_site", "ddtrace"), "venv", "pth", "ddtrace"),
    "pth-with-otel": (("otel_site", "otel"), "venv", "pth", "otel"),
    "run-behind-ddtrace-sitecustomize": (("ddtrace_site", "deps", "ddtrace"), "run", "run",
                                         "ddtrace"),
    "run-behind-otel-sitecustomize": (("otel_site", "deps", "otel"), "run", "run", "otel"),
}


def assert_agent_initialized(out: dict[str, Any], agent: str) -> None:
    if agent == "ddtrace":
        assert out["ddtrace_loaded"] is True, out
    else:
        assert out["otel_provider"] == SDK_PROVIDER, out


@pytest.mark.parametrize("case", list(ORDERS), ids=list(ORDERS))
def test_route_and_order(agents: Agents, tmp_path: Path, case: str) -> None:
    """The shim answers, no process starts, and the agent initializes."""
    order, start, route, agent = ORDERS[case]
    python = agents.venv_python if start == "venv" else BASE_PYTHON
    launcher = ["-m", "ctypes_shim", "run"] if start == "run" else []
    out = report(run([python, *launcher, "-c", PROBE], agents.path(*order), tmp_path))
    assert_shim_answered(out, route)
    assert_agent_initialized(out, agent)
    if agent == "ddtrace":  # ddtrace imports wrapt, so the replacement is a FunctionWrapper
        assert out["type"] == "FunctionWrapper", out


def test_otel_first_shadows_the_template(agents: Agents, tmp_path: Path) -> None:
    """OTel's sitecustomize first: the template never runs, stock spawns; doctor says so."""
    pythonpath = agents.path("otel_site", "site", "deps", "otel")
    out = report(run([BASE_PYTHON, "-c", PROBE], pythonpath, tmp_path))
    assert_agent_initialized(out, "otel")
    assert not out["patched"] and out["route"] is None
    assert out["spawned"], out  # stock find_library ran ldconfig: the audit hook works here
    doctor = run([BASE_PYTHON, "-m", "ctypes_shim", "doctor", "--json"], pythonpath, tmp_path)
    assert doctor.returncode == 1, doctor.stderr
    result = json.loads(doctor.stdout)
    otel_file = str(agents.otel_site / "sitecustomize.py")
    template = str(agents.site / "sitecustomize.py")
    assert result["sitecustomize"]["shadowed_by"] == otel_file
    assert result["sitecustomize"]["template"] == template
    problem = next(p for p in result["problems"] if "never runs" in p)
    assert otel_file in problem and template in problem
    assert ".pth" in problem and "python -m ctypes_shim run" in problem


def test_doctor_quiet_when_the_earlier_sitecustomize_chains(agents: Agents,
                                                            tmp_path: Path) -> None:
    """ddtrace's sitecustomize first imports the template: a note, not a problem."""
    pythonpath = agents.path("ddtrace_site", "site", "deps", "ddtrace")
    doctor = run([BASE_PYTHON, "-m", "ctypes_shim", "doctor", "--json"], pythonpath, tmp_path)
    result = json.loads(doctor.stdout)
    assert result["shim"]["active"] and result["shim"]["route"] == "sitecustomize"
    assert result["sitecustomize"]["shadowed_by"] == str(agents.ddtrace_site / "sitecustomize.py")
    assert not [p for p in result["problems"] if "sitecustomize" in p], result["problems"]
    assert any("imported the shim's sitecustomize" in n for n in result["notes"])


def test_opentelemetry_instrument_drives_run(agents: Agents, tmp_path: Path) -> None:
    """`opentelemetry-instrument python -m ctypes_shim run ...`: OTel first, then the shim."""
    launcher = str(agents.otel / "bin" / "opentelemetry-instrument")
    out = report(run([BASE_PYTHON, launcher, BASE_PYTHON, "-m", "ctypes_shim", "run",
                      "-c", PROBE], agents.path("deps", "otel"), tmp_path))
    assert_shim_answered(out, "run")
    assert_agent_initialized(out, "otel")


def test_ddtrace_run_drives_run(agents: Agents, tmp_path: Path) -> None:
    """`ddtrace-run python -m ctypes_shim run ...`: ddtrace first, then the shim."""
    launcher = str(agents.ddtrace / "bin" / "ddtrace-run")
    out = report(run([BASE_PYTHON, launcher, BASE_PYTHON, "-m", "ctypes_shim", "run",
                      "-c", PROBE], agents.path("deps", "ddtrace"), tmp_path))
    assert_shim_answered(out, "run")
    assert_agent_initialized(out, "ddtrace")
    assert out["type"] == "FunctionWrapper"


# -- detection through wrappers, with the real wrapt -------------------------------------------

WRAPPED = """
import functools, json, sys
import wrapt
import ctypes.util
import ctypes_shim
from ctypes_shim import _cli, _patch
stock = ctypes.util.find_library
assert ctypes_shim.install()
ours = ctypes.util.find_library
kind = sys.argv[1]
if kind == "agent-function-wrapper":
    ctypes.util.find_library = wrapt.FunctionWrapper(ours, lambda w, i, a, k: w(*a, **k))
elif kind == "agent-functools-wraps":
    ctypes.util.find_library = functools.wraps(ours)(lambda *a, **k: ours(*a, **k))
elif kind == "two-agents":
    inner = wrapt.FunctionWrapper(ours, lambda w, i, a, k: w(*a, **k))
    ctypes.util.find_library = functools.wraps(inner)(lambda *a, **k: inner(*a, **k))
outer = ctypes.util.find_library
print(json.dumps({
    "ours_type": type(ours).__name__,
    "installed": ctypes_shim.is_installed(),
    "depth": _patch.locate(outer)[0] if _patch.locate(outer) else None,
    "stock_found": _cli._stock_find_library() is stock,
    "code_says_stock": getattr(outer, "__code__", None) is stock.__code__,
    "doctor": _cli._doctor("/")["shim"]["find_library"],
    "calls_ours": outer("c") == "libc.so.6",
}))
ctypes_shim.uninstall()
print(json.dumps({"installed": ctypes_shim.is_installed(),
                  "stock_back": ctypes.util.find_library is stock,
                  "still_in_chain": _patch.is_patched(ctypes.util)}))
"""


def _wrapt_path() -> str:
    """The directory holding the wrapt this test suite imports (a dependency of the shim)."""
    return str(Path(wrapt.__file__).resolve().parents[1])


@pytest.mark.parametrize("kind, depth", [
    ("none", 0), ("agent-function-wrapper", 1), ("agent-functools-wraps", 1), ("two-agents", 2),
])
def test_detection_walks_wrapper_chains(tmp_path: Path, kind: str, depth: int) -> None:
    """is_installed(), doctor and find --compare see the shim behind agents' wrappers."""
    proc = subprocess.run(
        [BASE_PYTHON, "-c", WRAPPED, kind], cwd=tmp_path, capture_output=True, text=True,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": package_dir() + os.pathsep
             + _wrapt_path()}, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    first, second = (json.loads(line) for line in proc.stdout.splitlines())
    # wrapt was imported before install(), so the replacement itself is a FunctionWrapper,
    # which passes __code__ through to stock's: __code__ cannot tell ours from stock.
    assert first["ours_type"] == "FunctionWrapper"
    assert first["installed"] and first["depth"] == depth and first["calls_ours"]
    assert first["stock_found"]
    assert first["doctor"]["shim"] and first["doctor"]["wrapped_by"] == depth
    if kind in ("none", "agent-function-wrapper"):
        assert first["code_says_stock"]
    # uninstall() puts stock back only when ours is outermost: it cannot take the shim out
    # from under an agent's wrapper, and detection keeps saying where it still is.
    wrapped = depth > 0
    assert second == {"installed": False, "stock_back": not wrapped, "still_in_chain": wrapped}


def test_stock_wrapped_by_an_agent_is_not_ours() -> None:
    """A wrapper around stock's find_library, however deep, is not the shim."""
    from ctypes_shim import _patch

    def stock(name: str) -> None:
        return None

    chain: Any = stock
    for _ in range(3):
        chain = wrapt.FunctionWrapper(chain, lambda w, i, a, k: w(*a, **k))
    assert _patch.locate(chain) is None
    cyclic: Any = functools.wraps(stock)(lambda name: None)
    cyclic.__wrapped__ = cyclic  # a cycle ends at the bound, not in a hang
    assert _patch.locate(cyclic) is None


# -- doctor with a sitecustomize that does not chain (OpenTelemetry's shape, no PyPI needed) ----

NOT_CHAINING = "import os\nos.environ['SEEN_BY_FIRST'] = '1'\n"


@pytest.mark.parametrize("first", [True, False], ids=["template-first", "template-shadowed"])
def test_doctor_names_a_shadowing_sitecustomize(tmp_path: Path, first: bool) -> None:
    """doctor lists both files in sys.path order; shadowed and inactive is a problem (exit 1)."""
    other = tmp_path / "agent"
    other.mkdir()
    (other / "sitecustomize.py").write_text(NOT_CHAINING)
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy2(TEMPLATE, site / "sitecustomize.py")
    dirs = [site, other] if first else [other, site]
    doctor = run([BASE_PYTHON, "-m", "ctypes_shim", "doctor", "--json"],
                 os.pathsep.join([*map(str, dirs), package_dir()]), tmp_path)
    result = json.loads(doctor.stdout)
    hooks = result["sitecustomize"]
    assert [f["path"] for f in hooks["files"]][:2] == [str(d / "sitecustomize.py") for d in dirs]
    assert [f["shim"] for f in hooks["files"]][:2] == [first, not first]
    assert hooks["template"] == str(site / "sitecustomize.py")
    assert result["shim"]["active"] is first
    if first:
        assert hooks["shadowed_by"] is None
        assert not [p for p in result["problems"] if "sitecustomize" in p]
    else:
        assert hooks["shadowed_by"] == str(other / "sitecustomize.py")
        assert doctor.returncode == 1
        assert any("never runs" in p for p in result["problems"])
        text = run([BASE_PYTHON, "-m", "ctypes_shim", "doctor"],
                   os.pathsep.join([*map(str, dirs), package_dir()]), tmp_path)
        assert f"sitecustomize order: {other / 'sitecustomize.py'} first" in text.stdout
