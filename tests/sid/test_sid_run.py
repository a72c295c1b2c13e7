"""``ctypes-shim run`` (the launcher) against plain ``python`` on python3.14 and python3.15.

A script's __main__ module must hold what the interpreter itself gives it. CPython 3.15
no longer sets ``__cached__`` on __main__ when it runs a file (pythonrun.c), and neither
does the launcher there (ctypes_shim/_run.py ``_run_file``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sidlayout import VERSIONS, deps, python, run_json

SHOW = 'import json, sys\nprint(json.dumps(sorted(vars(sys.modules["__main__"]))))\n'


@pytest.mark.parametrize("version", VERSIONS)
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
