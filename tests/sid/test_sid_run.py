"""``ctypes-shim run`` (the launcher) against plain ``python`` on python3.14 and python3.15.

A script's __main__ module must hold what the interpreter itself gives it. CPython 3.15
no longer sets ``__cached__`` on __main__ when it runs a file (pythonrun.c); the launcher
(ctypes_shim/_run.py ``_run_file``) still sets it to None while the file runs. The
project's tests/test_run.py finds this too; test_sid_suite.py leaves those cases out on
3.15 and this file keeps the difference visible as a strict xfail.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sidlayout import VERSIONS, deps, python, run_json

SHOW = 'import json, sys\nprint(json.dumps(sorted(vars(sys.modules["__main__"]))))\n'


@pytest.mark.parametrize("version", [
    pytest.param(v, marks=pytest.mark.xfail(strict=True, reason=(
        "python3.15 sets no __cached__ on __main__ for a script; ctypes_shim/_run.py "
        "_run_file sets module.__cached__ = None (a 3.14-and-older detail)")))
    if v == "3.15" else v for v in VERSIONS])
def test_launcher_gives_main_what_python_gives_it(sid_root: Path, version: str) -> None:
    """The names in __main__ of a script: ``python show.py`` and ``python -m ctypes_shim run``."""
    script = sid_root / "tmp/show.py"
    script.write_text(SHOW)
    env = {"PYTHONPATH": deps(version)}
    plain, _ = run_json(sid_root, [python(version), "/tmp/show.py"], env=env)
    launched, stderr = run_json(sid_root, [python(version), "-m", "ctypes_shim", "run",
                                           "/tmp/show.py"], env=env)
    assert "__file__" in plain
    assert (launched, stderr) == (plain, "")
