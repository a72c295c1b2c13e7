"""`python -m ctypes_shim run`: the program runs as under plain python, with the shim, in-process.

Every expectation here is what the same interpreter does when it runs the program itself:
each test runs `python ARGS` and `python -m ctypes_shim run ARGS` side by side and compares.
"""

from __future__ import annotations

import json
import os
import py_compile
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest
from fuzz.support import BASE_PYTHON
from pypi import SPAWN_EVENTS, installed
from test_activate import package_dir

RUN = ("-m", "ctypes_shim", "run")

# What the program sees, with object addresses taken out of reprs.
SHOW = """
import json, re, sys
main = sys.modules["__main__"]
print(json.dumps({
    "argv": sys.argv, "path0": sys.path[0], "name": __name__,
    "main_is_globals": main.__dict__ is globals(),
    "main": {k: re.sub(" at 0x[0-9a-f]+", "", repr(v)) for k, v in vars(main).items()},
}, sort_keys=True))
"""

# What the shim did: an audit hook records any process started by the lookups.
SHIM = """
import json, os, sys
events = []
sys.addaudithook(lambda event, args: events.append(event) if event in SPAWN_EVENTS else None)
import ctypes.util
from ctypes_shim import _activate, _patch
answer = ctypes.util.find_library("c")
print(json.dumps({"route": _activate.route, "patched": _patch.is_patched(ctypes.util),
                  "installed": _activate.is_installed(), "c": answer, "spawned": events,
                  "pid": os.getpid()}))
""".replace("SPAWN_EVENTS", repr(SPAWN_EVENTS))


def env(**extra: str) -> dict[str, str]:
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8",
            "PYTHONPATH": package_dir()}
    base.update(extra)
    return base


def python(*args: str, cwd: Path, stdin: str | None = None,
           environ: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BASE_PYTHON, *args], cwd=cwd, env=environ or env(),
                          capture_output=True, text=True, input=stdin, timeout=120, check=False)


def both(*args: str, cwd: Path, stdin: str | None = None
         ) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    """(python ARGS, python -m ctypes_shim run ARGS), run the same way."""
    return python(*args, cwd=cwd, stdin=stdin), python(*RUN, *args, cwd=cwd, stdin=stdin)


def same(plain: subprocess.CompletedProcess[str],
         launched: subprocess.CompletedProcess[str]) -> None:
    assert (launched.returncode, launched.stdout, launched.stderr) == (
        plain.returncode, plain.stdout, plain.stderr)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A directory with the probe as a module, a script, a symlinked script, a dir and a zip."""
    (tmp_path / "show.py").write_text(SHOW)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub/show.py").write_text(SHOW)
    os.symlink("sub/show.py", tmp_path / "link.py")
    (tmp_path / "app").mkdir()
    (tmp_path / "app/__main__.py").write_text(SHOW)
    with zipfile.ZipFile(tmp_path / "app.pyz", "w") as z:
        z.writestr("__main__.py", SHOW)
    py_compile.compile(str(tmp_path / "show.py"), cfile=str(tmp_path / "compiled.pyc"),
                       doraise=True)
    return tmp_path


FORMS = {
    "module": ("-m", "show", "a", "--flag"),
    "module-attached": ("-mshow", "a"),
    "code": ("-c", SHOW, "a", "-m"),
    "script": ("show.py", "a", "-c", "x"),
    "script-in-subdir": ("sub/show.py", "a"),
    "symlinked-script": ("link.py",),
    "absolute-script": ("ABS/sub/show.py",),
    "end-of-options": ("--", "show.py", "-x"),
    "directory": ("app", "a"),
    "zipapp": ("app.pyz", "a"),
    "compiled-script": ("compiled.pyc", "a"),
    "stdin": ("-", "a"),
}


@pytest.mark.parametrize("form", list(FORMS), ids=list(FORMS))
def test_program_sees_what_python_gives_it(work: Path, form: str) -> None:
    """sys.argv, sys.path[0] and __main__ are what `python ARGS` gives the program."""
    args = tuple(a.replace("ABS", str(work)) for a in FORMS[form])
    plain, launched = both(*args, cwd=work, stdin=SHOW if form == "stdin" else None)
    assert plain.returncode == 0, plain.stderr
    same(plain, launched)
    assert json.loads(launched.stdout)["main_is_globals"]


@pytest.mark.parametrize("flag", ["-I", "-P"])
def test_safe_path_flags_add_no_entry(work: Path, flag: str) -> None:
    """Under -I (and -P, 3.11+) the program's sys.path gets no entry of its own, as in python."""
    if flag == "-P" and sys.version_info < (3, 11):
        pytest.skip("-P is new in Python 3.11")
    code = "import sys, json; print(json.dumps(sys.path))"
    # -I ignores PYTHONPATH, so the launcher puts ctypes_shim's dir first itself: apart from
    # that entry, the program's sys.path must be plain python's.
    launcher = (f"import sys; sys.path.insert(0, {package_dir()!r}); sys.argv[1:1] = ['run'];"
                "from ctypes_shim.__main__ import main; sys.exit(main())")
    plain = python(flag, "-c", code, cwd=work)
    launched = python(flag, "-c", launcher, "-c", code, cwd=work)
    assert plain.returncode == 0, plain.stderr
    assert launched.returncode == 0, launched.stderr
    assert json.loads(launched.stdout)[1:] == json.loads(plain.stdout)


def test_shim_answers_and_no_process_is_started(work: Path) -> None:
    """The program gets the shim's find_library (route "run"); stock would have spawned."""
    plain, launched = both("-c", SHIM, cwd=work)
    assert plain.returncode == 0 and launched.returncode == 0, plain.stderr + launched.stderr
    stock, shim = json.loads(plain.stdout), json.loads(launched.stdout)
    assert stock["spawned"] and not stock["patched"]  # the audit hook sees stock's ldconfig
    assert shim["spawned"] == [] and shim["patched"] and shim["installed"]
    assert shim["route"] == "run"
    assert shim["c"] == "libc.so.6" == stock["c"]


def test_opt_out_still_runs_the_program(work: Path) -> None:
    """CTYPES_SHIM_DISABLE=1: the program runs with stock find_library."""
    out = python(*RUN, "-c", SHIM, cwd=work, environ=env(CTYPES_SHIM_DISABLE="1"))
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert not result["patched"] and result["route"] is None and result["spawned"]


# -- how the program ends -----------------------------------------------------------------------

ENDINGS = {
    "falls-off-the-end": "print('done')",
    "exit-code": "import sys; print('x'); sys.exit(3)",
    "exit-string": "import sys; sys.exit('bye')",
    "exit-none": "raise SystemExit",
    "os-exit": "import os; os._exit(7)",
    "exception": "def f():\n    raise KeyError('k')\nf()",
    "chained": "try:\n    1/0\nexcept ZeroDivisionError as e:\n    raise ValueError('v') from e",
    "syntax-error": "x x",
    "keyboard-interrupt": "raise KeyboardInterrupt",
    "own-excepthook": ("import sys, traceback\n"
                       "sys.excepthook = lambda t, v, tb: print('hook', t.__name__, "
                       "[f.name for f in traceback.extract_tb(tb)])\n"
                       "def g():\n    raise OSError(5, 'io')\ng()"),
    "thread-outlives-main": ("import threading, time\n"
                             "threading.Thread(target=lambda: (time.sleep(0.2), "
                             "print('thread'))).start()\nprint('main')"),
    "atexit": "import atexit; atexit.register(print, 'atexit'); raise RuntimeError('late')",
}


@pytest.mark.parametrize("ending", list(ENDINGS), ids=list(ENDINGS))
@pytest.mark.parametrize("form", ["script", "module", "code"])
def test_exit_status_and_traceback_as_python(tmp_path: Path, ending: str, form: str) -> None:
    """Exit status, stdout and stderr (tracebacks included) are byte-identical to python's."""
    source = ENDINGS[ending]
    (tmp_path / "prog.py").write_text(source + "\n")
    args = {"script": ("prog.py", "x"), "module": ("-m", "prog", "x"),
            "code": ("-c", source, "x")}[form]
    plain, launched = both(*args, cwd=tmp_path)
    same(plain, launched)
    if ending == "keyboard-interrupt":  # python ends by SIGINT after the traceback (3.8+)
        assert launched.returncode == -signal.SIGINT
    elif ending in ("exception", "chained", "syntax-error"):
        assert launched.returncode == 1 and launched.stderr.rstrip().splitlines()[-1]


def test_missing_script_and_module_as_python(tmp_path: Path) -> None:
    """A missing script is python's one line and status 2; a missing module, status 1."""
    for args in (("nope.py",), ("-m", "nope_no_such_module")):
        plain, launched = both(*args, cwd=tmp_path)
        assert plain.returncode in (1, 2)
        # python names itself by argv[0]; both were started as BASE_PYTHON
        same(plain, launched)


@pytest.mark.parametrize("args, message", [
    ((), "give -m MODULE, -c CODE or SCRIPT"),
    (("-m",), "-m needs MODULE"),
    (("-c",), "-c needs CODE"),
    (("--",), "-- needs SCRIPT"),
    (("-u", "app.py"), "unknown option '-u'"),
], ids=["nothing", "m-without-module", "c-without-code", "dashdash-alone", "python-option"])
def test_usage_errors_are_one_line_exit_2(tmp_path: Path, args: tuple[str, ...],
                                          message: str) -> None:
    """Bad usage: one line on stderr, in the CLI's format, exit status 2."""
    for launcher in (RUN, ("-c", "import sys; from ctypes_shim._cli import main; "
                           "sys.exit(main(sys.argv[1:]))", "run")):
        out = python(*launcher, *args, cwd=tmp_path)
        assert out.returncode == 2 and out.stdout == ""
        assert out.stderr.count("\n") == 1 and out.stderr.startswith("ctypes-shim: error: run: ")
        assert message in out.stderr


def test_help_and_cli_listing(tmp_path: Path) -> None:
    """`run --help` explains the forms; `ctypes-shim --help` lists run."""
    out = python(*RUN, "--help", cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.startswith("usage: ctypes-shim run ")
    assert "No process is started" in out.stdout
    listing = python("-m", "ctypes_shim", "--help", cwd=tmp_path)
    assert listing.returncode == 0 and re.search(r"^\s+run\s", listing.stdout, re.M)


def test_run_imports_no_cli(tmp_path: Path) -> None:
    """`run` is dispatched before argparse and the CLI are imported."""
    code = "import json, sys; print(json.dumps(sorted(sys.modules)))"
    out = python(*RUN, "-c", code, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    modules = set(json.loads(out.stdout))
    assert "ctypes_shim._run" in modules
    assert not modules & {"argparse", "ctypes_shim._cli", "ctypes_shim._resolve", "ctypes"}


# -- signals --------------------------------------------------------------------------------


# The handler writes with os.write: print() would be a reentrant call if the signal
# arrived while the main thread was still flushing the pid line.
SLEEPER = ("import os, sys, time\n"
           "if sys.argv[1:] == ['handler']:\n"
           "    import signal\n"
           "    signal.signal(signal.SIGTERM, lambda n, f: (os.write(1, b'term\\n'), "
           "sys.exit(143)))\n"
           "print(os.getpid(), flush=True)\n"
           "time.sleep(60)\n")


@pytest.mark.parametrize("handler", [False, True], ids=["default", "program-handler"])
def test_sigterm_reaches_the_program(tmp_path: Path, handler: bool) -> None:
    """SIGTERM to the launched pid is the program's: it is the program's own process."""
    (tmp_path / "sleeper.py").write_text(SLEEPER)
    results = []
    for launcher in ((), RUN):
        proc = subprocess.Popen([BASE_PYTHON, *launcher, "sleeper.py", *(["handler"] * handler)],
                                cwd=tmp_path, env=env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        pid = int(proc.stdout.readline())
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        results.append((pid == proc.pid, proc.returncode, out, err))
    assert results[1] == results[0]
    assert results[0][:2] == (True, 143 if handler else -signal.SIGTERM)


# -- gunicorn, started through the launcher ---------------------------------------------------

APP = """
import ctypes.util, json, os, sys
events = []
sys.addaudithook(lambda event, args: events.append(event) if event in SPAWN_EVENTS else None)
from ctypes_shim import _activate, _patch

def app(environ, start_response):
    body = json.dumps({"c": ctypes.util.find_library("c"), "spawned": events,
                       "patched": _patch.is_patched(ctypes.util), "route": _activate.route,
                       "master": os.getppid()}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
""".replace("SPAWN_EVENTS", repr(SPAWN_EVENTS))


@pytest.fixture(scope="module")
def gunicorn() -> Path:
    """gunicorn from PyPI, installed with pip --target (tests/pypi.py)."""
    return installed(["gunicorn"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_gunicorn_through_run_serves_and_stops_on_sigterm(tmp_path: Path, gunicorn: Path) -> None:
    """Real HTTP to gunicorn's workers, which answer with the shim; SIGTERM stops the master."""
    (tmp_path / "app.py").write_text(APP)
    port = _free_port()
    proc = subprocess.Popen(
        [BASE_PYTHON, *RUN, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}",
         "app:app"], cwd=tmp_path, env=env(PYTHONPATH=f"{package_dir()}:{gunicorn}"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        answers = []
        deadline = time.monotonic() + 60
        while len(answers) < 4 and time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
                    answers.append(json.loads(r.read()))
            except OSError:
                time.sleep(0.2)
        assert answers, f"gunicorn never answered; rc={proc.poll()}"
        for answer in answers:
            assert answer == {"c": "libc.so.6", "spawned": [], "patched": True,
                              "route": "run", "master": proc.pid}
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Handling signal: term" in err and "Shutting down: Master" in err


def test_console_script_dispatches_run(tmp_path: Path) -> None:
    """The `ctypes-shim` script (entry point ctypes_shim.__main__:main) runs `run` too."""
    script = Path(sys.executable).parent / "ctypes-shim"  # pip's, when installed (tox)
    python_for_plain = sys.executable
    if not script.exists():  # a checkout: what pip writes for [project.scripts]
        script = tmp_path / "ctypes-shim"
        script.write_text(f"#!{BASE_PYTHON}\nimport sys\nfrom ctypes_shim.__main__ import main\n"
                          "if __name__ == '__main__':\n    sys.exit(main())\n")
        script.chmod(0o755)
        python_for_plain = BASE_PYTHON
    (tmp_path / "show.py").write_text(SHOW)
    plain = subprocess.run([python_for_plain, "show.py", "z"], cwd=tmp_path, env=env(),
                           capture_output=True, text=True, timeout=120, check=False)
    out = subprocess.run([str(script), "run", "show.py", "z"], cwd=tmp_path, env=env(),
                         capture_output=True, text=True, timeout=120, check=False)
    assert plain.returncode == 0, plain.stderr
    same(plain, out)
