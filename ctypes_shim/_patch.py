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


# Wrappers around find_library are a few deep (ours, an agent's); this bound stops a
# `__wrapped__` cycle or a proxy that makes up a new object on every access.
CHAIN_LIMIT = 32


def locate(function: object) -> "tuple[int, Any] | None":
    """(depth, our replacement) if *function* is it, or wraps it through `__wrapped__`.

    The one rule for "is the shim in place": is_patched, `is_installed()`, the CLI and
    `doctor` all use it.  Agents wrap what they find (wrapt's FunctionWrapper, or
    functools.wraps), and each wrapper's `__wrapped__` is the function it wraps, as
    inspect.unwrap walks it.  Only identity counts: a FunctionWrapper passes `__code__`,
    `__name__` and `__doc__` through to the function it wraps, so those say nothing.
    """
    for depth in range(CHAIN_LIMIT):
        if any(function is r for r in _replacements):
            return depth, function
        try:
            function = function.__wrapped__  # type: ignore[attr-defined]
        except Exception:  # AttributeError at the chain's end; anything from a hostile proxy
            return None
    return None


def is_ours(function: object) -> bool:
    """True if *function* is the shim's find_library, however many wrappers are around it."""
    return locate(function) is not None


def stock(function: object) -> "Any":
    """The stock find_library behind *function*'s chain, or *function* if the shim is not in it."""
    found = locate(function)
    return function if found is None else found[1].__wrapped__


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
    found = locate(current)
    if found is None or found[0] != 0:  # only our own: an agent's wrapper around it stays
        return False
    module.find_library = current.__wrapped__  # type: ignore[union-attr,attr-defined]
    return True
