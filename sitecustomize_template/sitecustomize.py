"""ctypes_shim: activate, then run the sitecustomize this copy shadows (README: Activation)."""
try:
    import ctypes_shim._bootstrap.sitecustomize  # noqa: F401  (it never raises, and chains)
except Exception:  # ctypes_shim is not importable: still run the sitecustomize we shadow
    def _chain():
        import os
        import sys
        from importlib.machinery import PathFinder
        from importlib.util import module_from_spec

        here = os.path.dirname(os.path.abspath(__file__))
        rest = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
        spec = PathFinder.find_spec("sitecustomize", rest)
        if spec is not None and spec.loader is not None:
            try:
                spec.loader.exec_module(module_from_spec(spec))
            except Exception as e:  # what site.execsitecustomize prints
                sys.stderr.write("Error in sitecustomize; set PYTHONVERBOSE for traceback:\n"
                                 "%s: %s\n" % (type(e).__name__, e))

    try:
        _chain()
    except Exception:
        pass
    del _chain
