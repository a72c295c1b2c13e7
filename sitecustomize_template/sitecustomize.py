"""Activate ctypes_shim, then run the sitecustomize this file shadows.

Copy this file into a directory that comes first on PYTHONPATH (e.g. /app/site) with
ctypes_shim importable (e.g. PYTHONPATH=/app/site:/app/deps).  It never raises: a missing
or broken ctypes_shim leaves the interpreter as it was.  CTYPES_SHIM_DISABLE=1 opts out.
"""


def _activate_and_chain():
    import os
    import sys

    debug = os.environ.get("CTYPES_SHIM_DEBUG")
    try:
        from ctypes_shim._activate import activate

        activate("sitecustomize")
    except Exception as e:
        if debug:
            sys.stderr.write("ctypes_shim: not activated: %r\n" % (e,))

    # Run the sitecustomize we shadow (Debian ships one): hide our directory, import the
    # next one, then put everything back (dd-trace's bootstrap does the same).
    here = os.path.dirname(os.path.abspath(__file__))
    ours = sys.modules.pop("sitecustomize", None)
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    try:
        import sitecustomize  # noqa: F401 -- the next one on sys.path, if any
    except ImportError as e:
        if e.name != "sitecustomize":
            sys.stderr.write("Error in sitecustomize; set PYTHONVERBOSE for traceback:\n"
                             "%s: %s\n" % (type(e).__name__, e))
    except Exception as e:  # what site.execsitecustomize would print
        sys.stderr.write("Error in sitecustomize; set PYTHONVERBOSE for traceback:\n"
                         "%s: %s\n" % (type(e).__name__, e))
    finally:
        sys.path[:] = saved
        chained = sys.modules.pop("sitecustomize", None)
        if ours is not None:
            sys.modules["sitecustomize"] = ours
            ours.chained = chained


_activate_and_chain()
del _activate_and_chain
