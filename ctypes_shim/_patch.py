"""Swap ctypes.util.find_library for the shim's and back.

The replacement keeps stock's name, docstring, signature and `__wrapped__`.  When wrapt
is already imported (APM agents such as ddtrace instrument through it), the replacement
is a wrapt.FunctionWrapper, so it composes with their wrappers and introspection; we
never import wrapt ourselves, since that costs ~100 ms (it pulls in asyncio).
"""

import functools
import os
import sys

# Imported while ctypes.util is being imported, so: no __future__ (a real module import),
# no typing, and the resolver itself is imported by the first call, not here.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any, Callable

error: "str | None" = None  # why the resolver could not be loaded, if it could not
_replacements: "list[Any]" = []  # every replacement we made; "is it ours" is an identity test


def replacement(stock: "Callable[[str], str | None]") -> "Any":
    """A find_library that answers from the shim's resolver."""
    hits: dict[str, str] = {}
    lookup: Callable[[Any], str | None]

    def load(name: "Any") -> "str | None":
        # The first call that misses the (empty) memo loads the resolver and rebinds
        # both names below to it, so later calls go straight to its memo.
        # A package too broken to load the resolver falls back to stock, as if the shim
        # had never been activated.
        nonlocal hits, lookup
        try:
            from . import _resolve  # noqa: PLC0415

            resolver = _resolve.default()
            hits, lookup = resolver.hits, resolver.lookup
        except Exception as e:
            global error  # noqa: PLW0603 -- module state read by `doctor`
            error = f"loading the resolver failed, stock find_library is back: {e!r}"
            if os.environ.get("CTYPES_SHIM_DEBUG"):
                sys.stderr.write("ctypes_shim: " + error + "\n")
            lookup = stock
            module = sys.modules.get("ctypes.util")
            if module is not None:
                revert(module)
        return lookup(name)

    lookup = load

    def find_library(name: str) -> "str | None":
        try:
            return hits[name]  # the hot path: one dict lookup
        except Exception:  # KeyError; TypeError (unhashable); a hostile __hash__ or __eq__
            return lookup(name)

    new: Any
    if "wrapt" in sys.modules:
        import wrapt  # noqa: PLC0415 -- already imported by someone else: free

        def wrapper(wrapped: object, instance: object, args: "tuple[Any, ...]",
                    kwargs: "dict[str, Any]") -> "str | None":
            return find_library(*args, **kwargs)

        new = wrapt.FunctionWrapper(stock, wrapper)
    else:
        new = functools.wraps(stock)(find_library)
    _replacements.append(new)
    return new


def is_ours(function: object) -> bool:
    return any(function is r for r in _replacements)


def is_patched(module: "ModuleType") -> bool:
    return is_ours(getattr(module, "find_library", None))


def apply(module: "ModuleType") -> None:
    """Patch *module* (ctypes.util) in place; a no-op off Linux or when already patched."""
    if not sys.platform.startswith("linux") or is_patched(module):
        return
    module.find_library = replacement(module.find_library)  # type: ignore[attr-defined]


def revert(module: "ModuleType") -> bool:
    """Put stock find_library back; True if it was ours."""
    current = getattr(module, "find_library", None)
    if not is_ours(current):
        return False
    module.find_library = current.__wrapped__  # type: ignore[union-attr,attr-defined]
    return True
