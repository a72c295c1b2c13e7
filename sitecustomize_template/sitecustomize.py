"""ctypes_shim: activate, then run the sitecustomize this copy shadows (README: Activation)."""
try:
    import ctypes_shim._bootstrap.sitecustomize  # noqa: F401  (it never raises)
except Exception:  # ctypes_shim not importable: start as if this file were not here
    pass
