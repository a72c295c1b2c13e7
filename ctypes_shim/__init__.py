"""ctypes_shim: ctypes.util.find_library for Linux, in pure Python, without processes.

Importing this package is cheap: names are resolved on first access.
"""

__version__ = "0.2.0"
__all__ = ["__version__", "find_library", "install", "is_installed", "uninstall"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._activate import install, is_installed, uninstall
    from ._resolve import find_library


def __getattr__(name: str) -> object:
    # attrs' pattern: import on first access, then store in the module dict so later
    # accesses never come here again.
    if name == "find_library":
        from ._resolve import find_library as value  # noqa: PLC0415
    elif name in ("install", "uninstall", "is_installed"):
        from . import _activate  # noqa: PLC0415

        value = getattr(_activate, name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> "list[str]":
    return __all__
