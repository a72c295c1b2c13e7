"""Activate ctypes_shim at interpreter start-up, then run the sitecustomize this one shadows.

Put this file's directory first on PYTHONPATH, with ctypes_shim importable after it (e.g.
PYTHONPATH=/app/deps/ctypes_shim/_bootstrap:/app/deps after `pip install --target /app/deps`).
It ships in the wheel, so pip byte-compiles it along with the package (dd-trace ships
ddtrace/bootstrap/sitecustomize.py the same way).  A copied sitecustomize_template/sitecustomize.py
imports this module instead.  It never raises, honours CTYPES_SHIM_DISABLE (through
activate()), and imports nothing but ctypes_shim and ctypes_shim._activate: sys, os and the
import system's own modules are loaded before site runs.
"""

import os
import sys


def _debug(message: str) -> None:
    if os.environ.get("CTYPES_SHIM_DEBUG"):
        sys.stderr.write("ctypes_shim: " + message + "\n")


def _run() -> None:
    # The module site is importing as `sitecustomize`: this file when its directory is on
    # PYTHONPATH, or a copied template that imported it.  The sitecustomize it shadows is the
    # next one on sys.path after that module's directory.
    ours = sys.modules.get("sitecustomize")
    try:
        from ctypes_shim._activate import activate  # noqa: PLC0415

        activate("sitecustomize")
    except Exception as e:  # a broken package must not break start-up
        _debug(f"not activated: {e!r}")
    if ours is None or "chained" in vars(ours):  # run the next one only once
        return
    ours.chained = None  # type: ignore[attr-defined]
    try:
        ours.chained = _chain(os.path.dirname(ours.__file__ or ""))  # type: ignore[attr-defined]
    except Exception as e:  # a failure of ours, not of the chained file: never break start-up
        _debug(f"could not look for the next sitecustomize: {e!r}")


def _chain(here: str) -> "object | None":
    """Run the first sitecustomize on sys.path after *here*, as site would have run it.

    The import system's own PathFinder searches just the entries after ours, instead of a
    second import through all of sys.path; sys.modules["sitecustomize"] stays ours.
    """
    import _frozen_importlib  # loaded before site: importlib._bootstrap  # noqa: PLC0415
    import _frozen_importlib_external  # importlib._bootstrap_external  # noqa: PLC0415

    path = sys.path
    if here in path:  # site made every entry absolute, and __file__ is entry + name
        rest = path[path.index(here) + 1:]  # (site.removeduppaths() left no second copy)
    else:  # an unusual spelling (a symlink, a relative entry): skip every spelling of ours
        real = os.path.realpath(here)
        rest = [p for p in path if os.path.realpath(p or os.curdir) != real]
    spec = _frozen_importlib_external.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return None
    module = _frozen_importlib.module_from_spec(spec)
    ours = sys.modules.get("sitecustomize")
    sys.modules["sitecustomize"] = module  # as during a real import, for code that looks
    # While it runs, our dir is off sys.path: a sitecustomize that imports "the next
    # sitecustomize" itself (dd-trace's bootstrap drops its own dir and imports again) must
    # find the one after it, not ours again.  Only our entry is put back afterwards, so any
    # other change it makes to sys.path stays.
    at = path.index(here) if here in path else -1
    if at >= 0:
        del path[at]
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # what site.execsitecustomize prints; start-up goes on
        if sys.flags.verbose:
            sys.excepthook(*sys.exc_info())
        else:
            sys.stderr.write("Error in sitecustomize; set PYTHONVERBOSE for traceback:\n"
                             f"{type(e).__name__}: {e}\n")
    finally:
        if at >= 0:
            path.insert(min(at, len(path)), here)
        if ours is not None:
            sys.modules["sitecustomize"] = ours
    return module


_run()
