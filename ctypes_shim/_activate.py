"""Start-up activation: patch ctypes.util.find_library when, and only if, it is imported.

sitecustomize and the .pth import this module at every interpreter start, so it imports
nothing beyond sys and os (both already loaded) and never raises.  Instead of importing
ctypes, it puts a finder on sys.meta_path that wraps the loader of ctypes.util, the way
wrapt's post-import hooks do, so the patch is applied right after the module body runs:
on first import, on re-import after removal from sys.modules, and on importlib.reload.
"""

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # no typing at start-up
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType
    from typing import Any

TARGET = "ctypes.util"
route: "str | None" = None  # how: "sitecustomize", "pth", "install" or "run" (ctypes_shim._run)
error: "str | None" = None  # why the last activation or patch failed, if it did


def disabled() -> bool:
    """True when CTYPES_SHIM_DISABLE is set to anything but "" or "0"."""
    return os.environ.get("CTYPES_SHIM_DISABLE", "") not in ("", "0")


def _debug(message: str) -> None:
    if os.environ.get("CTYPES_SHIM_DEBUG"):
        sys.stderr.write("ctypes_shim: " + message + "\n")


class _Loader:
    """Delegates to the real loader of ctypes.util, then patches the fresh module."""

    def __init__(self, loader: "Any") -> None:
        self.loader = loader

    def create_module(self, spec: "ModuleSpec") -> "ModuleType | None":
        module: ModuleType | None = self.loader.create_module(spec)
        return module

    def exec_module(self, module: "ModuleType") -> None:
        self.loader.exec_module(module)
        _patch_module(module)

    def __getattr__(self, name: str) -> "Any":  # get_source, get_code, is_package, ...
        return getattr(self.loader, name)


class CtypesUtilFinder:
    """A meta-path finder that finds nothing by itself; see the module docstring."""

    def __init__(self) -> None:
        self._busy: set[int] = set()  # thread ids inside find_spec: other hooks may recurse into us

    def find_spec(self, fullname: str, path: "Sequence[str] | None" = None,
                  target: "ModuleType | None" = None) -> "ModuleSpec | None":
        if fullname != TARGET or disabled():
            return None
        import _thread  # builtin, imported already by site  # noqa: PLC0415

        me = _thread.get_ident()
        if me in self._busy:
            return None
        self._busy.add(me)
        try:
            spec = None
            for finder in sys.meta_path:
                find_spec = getattr(finder, "find_spec", None)
                if finder is self or isinstance(finder, CtypesUtilFinder) or find_spec is None:
                    continue
                spec = find_spec(fullname, path, target)
                if spec is not None:
                    break
        finally:
            self._busy.discard(me)
        loader = getattr(spec, "loader", None)
        if spec is None or loader is None or not hasattr(loader, "exec_module"):
            return None  # let the import system carry on without us
        if not isinstance(loader, _Loader):
            spec.loader = _Loader(loader)
        found: ModuleSpec = spec
        return found


def _patch_module(module: "ModuleType") -> None:
    global error  # noqa: PLW0603 -- module state read by `doctor`
    try:
        from ctypes_shim import _patch  # noqa: PLC0415 -- ctypes.util is loading anyway

        _patch.apply(module)
    except Exception as e:  # leave stock find_library in place rather than break an import
        error = f"patching ctypes.util failed: {e!r}"
        _debug(error)


def _finders() -> "list[CtypesUtilFinder]":
    return [f for f in sys.meta_path if isinstance(f, CtypesUtilFinder)]


def activate(how: str = "install") -> bool:
    """Install the hook (and patch ctypes.util now if it is already imported).

    Returns True when the shim is active.  Never raises: start-up must not fail.
    """
    global route, error  # noqa: PLW0603
    try:
        if disabled():
            _debug("disabled by CTYPES_SHIM_DISABLE")
            return False
        if not sys.platform.startswith("linux"):
            _debug("not Linux: leaving ctypes.util alone")
            return False
        if not _finders():
            sys.meta_path.insert(0, CtypesUtilFinder())
        if route is None:
            route = how
        module = sys.modules.get(TARGET)
        if module is not None:
            _patch_module(module)
        return True
    except Exception as e:
        error = f"activation failed: {e!r}"
        _debug(error)
        return False


def install() -> bool:
    """Activate the shim from code; returns True when active (False when opted out)."""
    return activate("install")


def uninstall() -> bool:
    """Remove the hook and put stock find_library back; returns True if anything changed."""
    global route  # noqa: PLW0603
    changed = False
    for finder in _finders():
        sys.meta_path.remove(finder)
        changed = True
    module = sys.modules.get(TARGET)
    if module is not None:
        from ctypes_shim import _patch  # noqa: PLC0415

        changed = _patch.revert(module) or changed
    route = None
    return changed


def is_installed() -> bool:
    """True when the hook is in place and ctypes.util, if imported, is patched.

    Patched means that ctypes.util.find_library is the shim's, or wraps it: agents wrap
    what they find (see _patch.locate, the one rule for this).
    """
    if not _finders():
        return False
    module = sys.modules.get(TARGET)
    if module is None:
        return True
    from ctypes_shim import _patch  # noqa: PLC0415

    return _patch.is_patched(module)
