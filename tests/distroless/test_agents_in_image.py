"""OpenTelemetry and ddtrace from PyPI in the reproduced python3-debian12 image, with the shim.

The image has no ldconfig, so stock find_library answers None there: a shim that never ran
shows as None, not only as a process started. It runs in python3-debian12 only, the image
examples/Dockerfile.run and these wheels (installed with python3.11) are for. Each run
reports what tests/test_agents.py's probe reports (did the shim answer, did the lookups
start a process, did the agent start).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import chroot
import pytest
from pypi import SPAWN_EVENTS, installed

pytestmark = pytest.mark.distroless

PYTHON = "/usr/bin/python3.11"  # the image's interpreter (its ENTRYPOINT)
PROBE = """
import json, sys
events = []
sys.addaudithook(lambda event, args: events.append(event) if event in SPAWN_EVENTS else None)
import ctypes.util
from ctypes_shim import _activate, _patch
out = {"patched": _patch.is_patched(ctypes.util), "route": _activate.route,
       "answers": {name: ctypes.util.find_library(name) for name in ("c", "m")},
       "spawned": events}
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
AGENT_ENV = {
    "OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none",
    "OTEL_LOGS_EXPORTER": "none", "DD_TRACE_AGENT_URL": "http://127.0.0.1:9",
    "DD_INSTRUMENTATION_TELEMETRY_ENABLED": "false", "DD_REMOTE_CONFIGURATION_ENABLED": "false",
    "DD_CRASHTRACKING_ENABLED": "false", "DD_TRACE_STARTUP_LOGS": "false",
}
# In-image paths: the template and the shim as in examples/Dockerfile.sitecustomize, each
# agent in its own --target dir.
SITE, DEPS, OTEL, DDTRACE = "/app/site", "/app/deps", "/app/otel", "/app/ddtrace"
OTEL_SITE = OTEL + "/opentelemetry/instrumentation/auto_instrumentation"
DDTRACE_SITE = DDTRACE + "/ddtrace/bootstrap"
SHIM = {"c": "libc.so.6", "m": "libm.so.6"}


@pytest.fixture(scope="module")
def agents_root(make_debian12_root: Callable[[str], Path], shim_wheel: Path) -> Path:
    """The image, plus the shim (pip --target of the wheel), its template, and both agents."""
    if sys.version_info[:2] != (3, 11):
        pytest.skip("the agents' wheels are installed with this interpreter: run under "
                    "python3.11, as the image's (tox -e distroless does)")
    root = make_debian12_root("agents")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    "--no-deps", "--target", str(root / DEPS.lstrip("/")), str(shim_wheel)],
                   check=True, capture_output=True)
    (root / SITE.lstrip("/")).mkdir(parents=True)
    repo = Path(__file__).resolve().parents[2]
    shutil.copy2(repo / "sitecustomize_template/sitecustomize.py",
                 root / SITE.lstrip("/") / "sitecustomize.py")
    for inside, requirements in ((OTEL, ["opentelemetry-distro", "opentelemetry-instrumentation"]),
                                 (DDTRACE, ["ddtrace"])):
        shutil.copytree(installed(requirements), root / inside.lstrip("/"), symlinks=True)
    return root


def probe(root: Path, args: list[str], pythonpath: list[str]) -> dict[str, Any]:
    env = {**chroot.image_env(), **AGENT_ENV, "PYTHONPATH": ":".join(pythonpath)}
    res = chroot.run(str(root), args, env=env, timeout=180)
    assert res.rc == 0, res.stderr
    out: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    return out


CASES = {
    "template-then-otel": ([SITE, OTEL_SITE, DEPS, OTEL], [], "sitecustomize", "otel"),
    "ddtrace-then-template": ([DDTRACE_SITE, SITE, DEPS, DDTRACE], [], "sitecustomize",
                              "ddtrace"),
    "opentelemetry-instrument-run": ([DEPS, OTEL], [OTEL + "/bin/opentelemetry-instrument",
                                                    PYTHON], "run", "otel"),
    "ddtrace-run-run": ([DEPS, DDTRACE], [DDTRACE + "/bin/ddtrace-run", PYTHON], "run",
                        "ddtrace"),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_agent_and_shim_in_image(agents_root: Path, case: str) -> None:
    """In the image: the shim answers, starts no process, and the agent initialized."""
    pythonpath, launcher, route, agent = CASES[case]
    run = ["-m", "ctypes_shim", "run"] if route == "run" else []
    out = probe(agents_root, [*launcher, *run, "-c", PROBE], pythonpath)
    assert out["patched"] and out["route"] == route, out
    assert out["answers"] == SHIM and out["spawned"] == [], out
    if agent == "otel":
        assert out["otel_provider"] == "opentelemetry.sdk.trace.TracerProvider", out
    else:
        assert out["ddtrace_loaded"] is True, out


def test_otel_first_leaves_stock_which_finds_nothing_in_image(agents_root: Path) -> None:
    """OTel's sitecustomize before the template: stock runs and, without ldconfig, finds None."""
    out = probe(agents_root, ["-c", PROBE], [OTEL_SITE, SITE, DEPS, OTEL])
    assert out["otel_provider"] == "opentelemetry.sdk.trace.TracerProvider", out
    assert not out["patched"] and out["route"] is None
    assert out["answers"] == {"c": None, "m": None}, out


# -- examples/Dockerfile.run: gunicorn through the launcher, no shell ----------------------------

DOCKERFILE_RUN = Path(__file__).resolve().parents[2] / "examples" / "Dockerfile.run"
DRIVER = (Path(__file__).parent / "gunicorn_driver.py").read_text()
DRIVER_GUNICORN = '[sys.executable, "-m", "gunicorn",'


def _final_stage() -> dict[str, Any]:
    """ENV, ENTRYPOINT, CMD and COPY lines of Dockerfile.run (the stage after the last FROM)."""
    text = DOCKERFILE_RUN.read_text().replace("\\\n", " ")
    stages: list[dict[str, Any]] = []
    for line in text.splitlines():
        instr, _, rest = line.strip().partition(" ")
        if instr == "FROM":
            stages.append({"ENV": {}, "COPY": [], "RUN": []})
        elif instr in ("ENTRYPOINT", "CMD"):
            stages[-1][instr] = json.loads(rest)
        elif instr == "ENV":
            key, _, value = rest.partition("=")
            stages[-1]["ENV"][key] = value
        elif instr in ("COPY", "RUN"):
            stages[-1][instr].append(" ".join(rest.split()))
    return {"build": stages[0], "final": stages[-1]}


def test_dockerfile_run_serves_gunicorn_as_nonroot(route1_root: Any) -> None:
    """Dockerfile.run's ENTRYPOINT + CMD serve app.py with the shim in every worker."""
    df = _final_stage()
    final = df["final"]
    assert final["ENTRYPOINT"][:5] == [PYTHON, "-m", "ctypes_shim", "run", "-m"]
    # The same /app/deps (shim wheel + gunicorn) and /app/app.py as route 1's root: only the
    # template and its PYTHONPATH entry are left out.
    assert "pip install --target /app/deps /wheels/ctypes_shim-*.whl gunicorn" in \
        df["build"]["RUN"][0]
    assert "examples/app.py /app/app.py" in df["build"]["COPY"]
    assert final["ENV"] == {"PYTHONPATH": DEPS}
    cmd = list(final["CMD"])
    i = cmd.index("--bind")
    del cmd[i:i + 2]  # the driver binds a free port on 127.0.0.1
    assert DRIVER.count(DRIVER_GUNICORN) == 1, "gunicorn_driver.py changed how it starts gunicorn"
    entry = ", ".join(json.dumps(a) for a in final["ENTRYPOINT"][1:])
    driver = DRIVER.replace(DRIVER_GUNICORN, f"[sys.executable, {entry},")
    r = chroot.run(str(route1_root.path), ["-c", driver, json.dumps({"args": cmd, "requests": 4})],
                   user=chroot.NONROOT, env=final["ENV"],
                   timeout=90)
    assert r.rc == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["cmd"][1:6] == ["-m", "ctypes_shim", "run", "-m", "gunicorn"]
    assert "error" not in out and out["rc"] == 0, out["log_tail"]
    assert len(out["responses"]) == 4
    for resp in out["responses"]:
        body = resp["json"]
        assert resp["status"] == 200 and body["uid"] == chroot.NONROOT
        assert body["ctypes_shim"]["installed"] is True and body["spawned"] == []
        assert body["libraries"]["c"]["soname"] == "libc.so.6"
        assert all("error" not in lib for lib in body["libraries"].values())
