"""`ctypes-shim check`: which native libraries does this Python code look up, and will
each one resolve and load in this root?

The code is read with `ast` only: nothing scanned is imported or run.  A lookup is a call
of ctypes.util.find_library (through `import ctypes.util`, `from ctypes import util`,
`from ctypes.util import find_library`, any `as` alias, or a name assigned one of those)
whose argument is
- a string literal, or a name assigned exactly one string literal in the same function;
- the variable of a `for` loop or comprehension over a literal list or tuple of strings
  (or a name assigned one), which is taken as alternatives: the lookup passes when one of
  them loads, as in sounddevice's loop that stops at the first name found;
- the loop variable over a parameter of the enclosing function, when that function is
  called in the same file with a literal list or tuple there (cairocffi's dlopen()).
Any other argument is reported as dynamic, with its file and line.  Calls guarded by a test
of sys.platform, os.name or platform.system() that is false on Linux are reported apart.

Each name is resolved in the root by the shim (ctypes_shim._resolve.Resolver) and as stock
CPython would there (stock_answer), and the shim's answer is walked with
ctypes_shim._loader: the file, its ABI, and every DT_NEEDED, transitively.
"""

from __future__ import annotations

import ast
import os
import sys

from . import _ldpaths

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Iterator, Sequence

    from . import _elf

MAX_FILES = 200000  # a big site-packages holds about 50,000 .py files
MAX_FILE_BYTES = 8 << 20  # larger .py files are generated data, not code that loads libraries
_LINUX = {"sys.platform": "linux", "os.name": "posix", "platform.system()": "Linux"}
_MODULES = ("sys", "os", "platform")


class Lookup:
    """One find_library call site: *names* (None when dynamic), as found in *file*."""

    __slots__ = ("expr", "file", "guard", "line", "names", "through")

    def __init__(self, file: str, line: int, names: tuple[str, ...] | None, *,
                 expr: str = "", guard: str | None = None, through: str | None = None) -> None:
        self.file = file
        self.line = line
        self.names = names  # one name, several alternatives, or None (dynamic)
        self.expr = expr  # the call's source text, for dynamic ones
        self.guard = guard  # the platform test that keeps this call from running on Linux
        self.through = through  # "dlopen() at line 42": the call the literal was passed to

    def __repr__(self) -> str:
        return f"Lookup({self.file!r}, {self.line}, {self.names!r}, guard={self.guard!r})"


# -- finding the lookups -----------------------------------------------------------------------


def _dotted(node: ast.AST) -> str | None:
    """'a.b.c' for the expression a.b.c, 'platform.system()' for a call without arguments."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return None if inner is None else inner + "." + node.attr
    if isinstance(node, ast.Call) and not node.args and not node.keywords:
        inner = _dotted(node.func)
        return None if inner is None else inner + "()"
    return None


def _str_list(node: ast.AST | None) -> tuple[str, ...] | None:
    if isinstance(node, (ast.List, ast.Tuple)) and node.elts and all(
            isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
        return tuple(e.value for e in node.elts)  # type: ignore[attr-defined]
    return None


_Scope = (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


class _Module:
    """One parsed file: its parents, its scopes' names, and how it names ctypes.util."""

    def __init__(self, tree: ast.Module, text: str) -> None:
        self.text = text
        self.parent: dict[ast.AST, ast.AST] = {}
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                self.parent[child] = node
        self.util_modules: set[str] = set()  # expressions naming the ctypes.util module
        self.module_names: dict[str, str] = {}  # local name -> "sys" / "os" / "platform"
        self.functions: dict[ast.AST, set[str]] = {}  # scope -> its find_library aliases
        self.assigned: dict[ast.AST, dict[str, list[ast.AST]]] = {}  # scope -> name -> values
        self.defs: dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]] = {}
        for node in ast.walk(tree):
            self._bind(node)
        changed = True
        while changed:  # x = ctypes.util.find_library; y = x
            changed = False
            for scope, names in self.assigned.items():
                for name, values in names.items():
                    known = self.functions.setdefault(scope, set())
                    if name not in known and any(
                            self._is_find_library(v) or (isinstance(v, ast.Name)
                                                         and v.id in known)
                            for v in values):
                        self.functions[scope].add(name)
                        changed = True

    def scope(self, node: ast.AST) -> ast.AST:
        up = self.parent.get(node)
        while up is not None and not isinstance(up, _Scope):
            up = self.parent.get(up)
        return up if up is not None else node

    def _bind(self, node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "ctypes.util":
                    self.util_modules.add(alias.asname or "ctypes.util")
                elif alias.name == "ctypes":
                    self.util_modules.add((alias.asname or "ctypes") + ".util")
                elif alias.name in _MODULES:
                    self.module_names[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            for alias in node.names:
                if node.module == "ctypes" and alias.name == "util":
                    self.util_modules.add(alias.asname or "util")
                elif node.module == "ctypes.util" and alias.name == "find_library":
                    self.functions.setdefault(self.scope(node), set()).add(
                        alias.asname or "find_library")
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.NamedExpr)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and node.value is not None:
                    self.assigned.setdefault(self.scope(node), {}).setdefault(
                        target.id, []).append(node.value)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            self.defs.setdefault(node.name, []).append(node)
            self.assigned.setdefault(self.scope(node), {}).setdefault(node.name, []).append(node)

    def _is_find_library(self, node: ast.AST) -> bool:
        name = _dotted(node)
        return name is not None and any(name == m + ".find_library"
                                        for m in self.util_modules)

    def is_lookup(self, call: ast.Call) -> bool:
        """Is *call* a call of ctypes.util.find_library?"""
        if self._is_find_library(call.func):
            return True
        if not isinstance(call.func, ast.Name):
            return False
        name = call.func.id
        scope: ast.AST | None = self.scope(call)
        while scope is not None:  # the nearest scope that binds the name decides
            if name in self.functions.get(scope, ()):
                return True
            if name in self.assigned.get(scope, {}) or name in _params(scope):
                return False
            scope = self.scope(scope) if scope in self.parent else None
        return False

    def source(self, node: ast.AST) -> str:
        text = ast.get_source_segment(self.text, node) or ""
        return " ".join(text.split())[:200]

    def literal_of(self, name: str, at: ast.AST) -> ast.AST | None:
        """The one value assigned to *name* in the scope of *at*, if it is assigned once."""
        values = self.assigned.get(self.scope(at), {}).get(name, [])
        return values[0] if len(values) == 1 else None

    def guard(self, node: ast.AST) -> str | None:
        """The platform test that keeps *node* from running on Linux, if any."""
        child, up = node, self.parent.get(node)
        while up is not None:
            if isinstance(up, (ast.If, ast.IfExp)):
                value = self._on_linux(up.test)
                in_body = child is up.body or (isinstance(up.body, list) and child in up.body)
                in_else = child is up.orelse or (isinstance(up.orelse, list)
                                                 and child in up.orelse)
                if (in_body and value is False) or (in_else and value is True):
                    text = self.source(up.test)
                    return text if in_body else f"not ({text})"
            child, up = up, self.parent.get(up)
        return None

    def _on_linux(self, test: ast.AST) -> bool | None:
        """The value of a platform test on Linux; None when it is not one."""
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            inner = self._on_linux(test.operand)
            return None if inner is None else not inner
        if isinstance(test, ast.BoolOp):
            values = [self._on_linux(v) for v in test.values]
            if isinstance(test.op, ast.And):
                return False if False in values else None if None in values else True
            return True if True in values else None if None in values else False
        if isinstance(test, ast.Compare) and len(test.ops) == 1:
            value = self._platform(test.left)
            right = test.comparators[0]
            if value is None:
                return None
            if isinstance(right, ast.Constant) and isinstance(right.value, str):
                if isinstance(test.ops[0], ast.Eq):
                    return value == right.value
                if isinstance(test.ops[0], ast.NotEq):
                    return value != right.value
            options = _str_list(right)
            if options is not None and isinstance(test.ops[0], (ast.In, ast.NotIn)):
                return (value in options) == isinstance(test.ops[0], ast.In)
            return None
        if (isinstance(test, ast.Call) and isinstance(test.func, ast.Attribute)
                and test.func.attr == "startswith" and len(test.args) == 1):
            value = self._platform(test.func.value)
            arg = test.args[0]
            prefixes = ((arg.value,) if isinstance(arg, ast.Constant)
                        and isinstance(arg.value, str) else _str_list(arg))
            if value is not None and prefixes is not None:
                return value.startswith(prefixes)
        return None

    def _platform(self, node: ast.AST) -> str | None:
        name = _dotted(node)
        if name is None or "." not in name:
            return None
        head, rest = name.split(".", 1)
        module = self.module_names.get(head)
        return _LINUX.get(f"{module}.{rest}") if module else None


def _params(scope: ast.AST) -> set[str]:
    if not isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        return set()
    a = scope.args
    names = [p.arg for p in (*getattr(a, "posonlyargs", []), *a.args, *a.kwonlyargs)]
    names += [p.arg for p in (a.vararg, a.kwarg) if p is not None]
    return set(names)


def scan_source(text: str, file: str) -> list[Lookup]:
    """The find_library lookups in one file's source; SyntaxError if it does not parse."""
    tree = ast.parse(text, filename=file)
    module = _Module(tree, text)
    out: list[Lookup] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and module.is_lookup(node):
            out += _lookups(module, node, file)
    out.sort(key=lambda x: x.line)
    return out


def _lookups(module: _Module, call: ast.Call, file: str) -> list[Lookup]:
    guard = module.guard(call)
    arg: ast.AST | None = call.args[0] if call.args else next(
        (k.value for k in call.keywords if k.arg == "name"), None)
    line = call.lineno
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return [Lookup(file, line, (arg.value,), guard=guard)]
    if isinstance(arg, ast.Name):
        loop = _loop_over(module, call, arg.id)
        if loop is not None:
            names = _str_list(loop)
            if names is None and isinstance(loop, ast.Name):
                names = _str_list(module.literal_of(loop.id, loop))
                if names is None:
                    passed = _passed_in(module, loop)
                    if passed:
                        return [Lookup(file, getattr(n, "lineno", line), _str_list(n), through=(
                            f"{_enclosing(module, call)}() at line {line}"),
                            guard=guard or module.guard(n)) for n in passed]
            if names is not None:
                return [Lookup(file, line, names, guard=guard)]
        else:
            value = module.literal_of(arg.id, call)
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                return [Lookup(file, line, (value.value,), guard=guard)]
    return [Lookup(file, line, None, expr=module.source(call), guard=guard)]


def _loop_over(module: _Module, node: ast.AST, var: str) -> ast.AST | None:
    """The iterable of the innermost for loop or comprehension binding *var* around *node*."""
    child, up = node, module.parent.get(node)
    while up is not None and not isinstance(up, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                 ast.Lambda, ast.Module)):
        if isinstance(up, (ast.For, ast.AsyncFor)) and child is not up.iter and isinstance(
                up.target, ast.Name) and up.target.id == var and child not in up.orelse:
            return up.iter
        if isinstance(up, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            for gen in up.generators:
                if isinstance(gen.target, ast.Name) and gen.target.id == var:
                    return gen.iter
        child, up = up, module.parent.get(up)
    return None


def _enclosing(module: _Module, node: ast.AST) -> str:
    scope = module.scope(node)
    return getattr(scope, "name", "<lambda>")


def _passed_in(module: _Module, name: ast.Name) -> list[ast.AST]:
    """Literal lists or tuples passed, in this file, for the parameter *name* of the
    function around it."""
    scope = module.scope(name)
    if not isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return []
    positional = [p.arg for p in (*getattr(scope.args, "posonlyargs", []), *scope.args.args)]
    if name.id not in positional and name.id not in {p.arg for p in scope.args.kwonlyargs}:
        return []
    out: list[ast.AST] = []
    for node in ast.walk(module.scope(scope) if scope in module.parent else scope):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == scope.name):
            continue
        value: ast.AST | None = None
        if name.id in positional and positional.index(name.id) < len(node.args):
            value = node.args[positional.index(name.id)]
        for keyword in node.keywords:
            if keyword.arg == name.id:
                value = keyword.value
        if _str_list(value) is not None and value is not None:
            out.append(value)
    return out


# -- which files --------------------------------------------------------------------------------


def default_paths(root: str) -> list[str]:
    """sys.path without the standard library (whose only find_library calls are ctypes.util's
    own self-test); under a root, those that exist there, plus the root's site dirs."""
    import sysconfig  # noqa: PLC0415

    paths = sysconfig.get_paths()
    stdlib = {os.path.realpath(paths[k]) for k in ("stdlib", "platstdlib") if k in paths}
    out = [p for p in sys.path if p and not p.endswith(".zip")
           and os.path.realpath(p) not in stdlib and os.path.basename(p) != "lib-dynload"]
    if root == "/":
        return [p for p in dict.fromkeys(out) if os.path.isdir(p)]
    out = [p for p in out if _is_dir(root, p)]
    for top in ("/usr/lib", "/usr/local/lib"):
        host = _ldpaths.host_path(root, top)
        try:
            names = sorted(os.listdir(host)) if host else []
        except OSError:
            names = []
        for name in names:
            if name.startswith("python3"):
                for sub in ("site-packages", "dist-packages"):
                    inside = f"{top}/{name}/{sub}"
                    if _is_dir(root, inside):
                        out.append(inside)
    return list(dict.fromkeys(out))


def _is_dir(root: str, path: str) -> bool:
    host = _ldpaths.host_path(root, path)
    return host is not None and os.path.isdir(host)


def python_files(root: str, paths: Sequence[str]) -> Iterator[tuple[str, str, str, str]]:
    """(package, path inside root, path under its entry, host path) of every .py file under
    *paths*: the package is the first component under the entry ('magic' for
    magic/loader.py)."""
    count = 0
    for entry in paths:
        host = _ldpaths.host_path(root, entry)
        if host is None:
            continue
        if os.path.isfile(host):
            if host.endswith(".py"):
                yield os.path.basename(entry)[:-3], entry, os.path.basename(entry), host
            continue
        for folder, dirs, files in os.walk(host):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
            rel = os.path.relpath(folder, host)
            for name in sorted(files):
                if not name.endswith(".py"):
                    continue
                count += 1
                if count > MAX_FILES:
                    return
                inside_rel = name if rel == "." else rel + "/" + name
                package = inside_rel.split("/", 1)[0]
                if package.endswith(".py"):
                    package = package[:-3]
                yield (package, entry.rstrip("/") + "/" + inside_rel, inside_rel,
                       os.path.join(folder, name))


def read_source(host: str) -> str:
    """A .py file's text, as the interpreter decodes it (PEP 263 coding cookie)."""
    import io  # noqa: PLC0415
    import tokenize  # noqa: PLC0415

    if os.path.getsize(host) > MAX_FILE_BYTES:
        raise ValueError(f"larger than {MAX_FILE_BYTES >> 20} MiB")
    with open(host, "rb") as f:
        data = f.read()
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    return data.decode(encoding)


# -- stock's answer in the root -------------------------------------------------------------


def stock_abi_type() -> str:
    """The ABI that stock's regex requires in `ldconfig -p`'s output (CPython
    Lib/ctypes/util.py _findSoname_ldconfig): by os.uname().machine and pointer size."""
    import struct  # noqa: PLC0415

    machine = os.uname().machine + ("-32" if struct.calcsize("l") == 4 else "-64")
    return {"x86_64-64": "libc6,x86-64", "ppc64-64": "libc6,64bit",
            "sparc64-64": "libc6,64bit", "s390x-64": "libc6,64bit",
            "ia64-64": "libc6,IA-64"}.get(machine, "libc6")


def stock_answer(name: str, root: str) -> tuple[str | None, str]:
    """What stock find_library would return inside *root*, and how that was decided.

    Stock runs /sbin/ldconfig -p, then gcc or cc, then ld, each with objdump.  Without
    /sbin/ldconfig in the root (distroless images) its first step finds nothing; with it,
    the answer is the first entry of the root's cache in cache order whose key starts with
    'lib<name>.' and whose ABI text starts with stock's (stock_abi_type).  The gcc and ld
    steps are not modelled: when the root has one of them the answer says so.
    """
    from . import _ldcache, _ldconfig  # noqa: PLC0415

    tools = [t for t in ("gcc", "cc", "ld") if any(_executable(root, f"{d}/{t}")
                                                 for d in ("/usr/bin", "/bin", "/usr/local/bin"))]
    caveat = f"; {', '.join(tools)} present: stock's later steps not modelled" if tools else ""
    if not _executable(root, "/sbin/ldconfig"):
        return None, "no /sbin/ldconfig" + caveat
    host = _ldpaths.host_path(root, "/etc/ld.so.cache")
    try:
        if host is None:
            raise OSError("too many levels of symbolic links")
        cache = _ldcache.read_cache(host)
    except (OSError, ValueError):
        return None, "/sbin/ldconfig -p fails: no readable /etc/ld.so.cache" + caveat
    prefix, abi = "lib" + name + ".", "(" + stock_abi_type()
    for entry in cache.entries:
        if (entry.key.startswith(prefix) and len(entry.key) > len(prefix)
                and not any(c.isspace() for c in entry.key)
                and ("(" + _ldconfig.describe(entry.flags)).startswith(abi)):
            return entry.key, "/sbin/ldconfig -p"
    return None, "not in /sbin/ldconfig -p" + caveat


def _executable(root: str, path: str) -> bool:
    host = _ldpaths.host_path(root, path)
    return host is not None and os.path.isfile(host) and os.access(host, os.X_OK)


# -- the check ----------------------------------------------------------------------------------


def check(root: str = "/", paths: Sequence[str] | None = None, *,
          environ: dict[str, str] | None = None,
          native: _elf.ELFInfo | None = None) -> dict[str, Any]:
    """Scan *paths* (inside *root*) and resolve every lookup there: the report as data."""
    from . import _loader, _resolve  # noqa: PLC0415

    if environ is None:
        environ = dict(os.environ) if root == "/" else {}
    scan_paths = list(paths) if paths else default_paths(root)
    resolver = _resolve.Resolver(root=root, environ=environ)
    if native is None:
        native = resolver.native.info
    else:
        resolver = _resolve.Resolver(root=root, environ=environ,
                                     native=_resolve.Native(native))
    loader = _loader.Loader(root, environ, native=native)
    packages: dict[str, dict[str, Any]] = {}
    errors: list[dict[str, str]] = []
    files = 0
    answers: dict[str, dict[str, Any]] = {}
    for package, inside, rel, host in python_files(root, scan_paths):
        files += 1
        try:
            found = scan_source(read_source(host), inside)
        except (SyntaxError, ValueError, OSError, UnicodeDecodeError, RecursionError) as e:
            errors.append({"file": inside, "error": f"{type(e).__name__}: {e}"})
            continue
        if not found:
            continue
        entry = packages.setdefault(package, {"package": package, "lookups": [],
                                              "other_platform": [], "dynamic": []})
        for lookup in found:
            site = {"file": inside, "module_file": rel, "line": lookup.line}
            if lookup.guard is not None:
                entry["other_platform"].append({**site, "names": lookup.names,
                                                "expr": lookup.expr, "guard": lookup.guard})
            elif lookup.names is None:
                entry["dynamic"].append({**site, "expr": lookup.expr})
            else:
                results = [answers.get(n) or answers.setdefault(n, _answer(
                    n, root, resolver, loader)) for n in lookup.names]
                entry["lookups"].append({**site, "names": list(lookup.names),
                                         "through": lookup.through,
                                         "ok": any(r["loads"] for r in results),
                                         "results": results})
    report_packages = sorted(packages.values(), key=lambda p: p["package"])
    lookups = [x for p in report_packages for x in p["lookups"]]
    failed = [x for x in lookups if not x["ok"]]
    summary = {"files": files, "packages": len(report_packages), "lookups": len(lookups),
               "load": len(lookups) - len(failed), "fail": len(failed),
               "dynamic": sum(len(p["dynamic"]) for p in report_packages),
               "other_platform": sum(len(p["other_platform"]) for p in report_packages),
               "unreadable": len(errors)}
    return {"root": root, "paths": scan_paths, "interpreter_abi": _abi_text(native),
            "packages": report_packages, "unreadable": errors, "summary": summary,
            "ok": not failed}


def _answer(name: str, root: str, resolver: Any, loader: Any) -> dict[str, Any]:
    shim = resolver.find(name)
    stock, how = stock_answer(name, root)
    result: dict[str, Any] = {"name": name, "stock": stock, "stock_how": how, "shim": shim,
                              "path": None, "loads": False, "problem": None}
    if shim is None:
        result["problem"] = "not found"
        return result
    walk = loader.walk(shim)
    result["path"] = walk.top.path
    result["loads"] = walk.ok
    result["problem"] = walk.problem
    result["objects"] = len(walk.objects)
    return result


def _abi_text(info: _elf.ELFInfo | None) -> str | None:
    if info is None:
        return None
    return (f"ELF {32 if info.elf_class == 1 else 64}-bit "
            f"{'little' if info.data == 1 else 'big'}-endian, e_machine {info.machine}")


def text(report: dict[str, Any]) -> list[str]:
    """The report as a table per package and a one-line summary."""
    lines: list[str] = []

    def show(value: object) -> str:
        return "not found" if value is None else str(value)

    for package in report["packages"]:
        lines.append(f"{package['package']}")
        rows = []
        for lookup in package["lookups"]:
            site = f"{lookup['module_file']}:{lookup['line']}"
            if lookup["through"]:
                site += f" via {lookup['through']}"
            if len(lookup["results"]) > 1:
                site += f", any of {len(lookup['results'])}"
            for i, r in enumerate(lookup["results"]):
                loads = "yes" if r["loads"] else "-" if r["shim"] is None else (
                    f"NO: {r['problem']}")
                name = r["name"]
                rows.append((site if i == 0 else "", name, show(r["stock"]), show(r["shim"]),
                             loads))
        if rows:
            header = ("CALL SITE", "NAME", "STOCK", "SHIM", "LOADS")
            widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
            for row in [header, *rows]:
                cells = [f"{c:<{w}}" for c, w in zip(row, widths)]
                lines.append("  " + "  ".join([*cells, row[4]]).rstrip())
        lines += [f"  dynamic: {d['module_file']}:{d['line']}  {d['expr']}"
                  for d in package["dynamic"]]
        lines += [f"  not on Linux: {d['module_file']}:{d['line']}  {', '.join(d['names'] or [])}"
                  f"{d['expr'] if d['names'] is None else ''} ({d['guard']})"
                  for d in package["other_platform"]]
    for error in report["unreadable"][:20]:
        lines.append(f"unreadable: {error['file']}: {error['error']}")
    s = report["summary"]
    failing = [f"{n}" for p in report["packages"] for x in p["lookups"] if not x["ok"]
               for n in x["names"][:1]]
    verdict = "OK" if report["ok"] else f"FAIL: {', '.join(dict.fromkeys(failing))}"
    lines.append(f"summary: {verdict}; {s['lookups']} lookups in {s['packages']} packages "
                 f"({s['files']} files): {s['load']} load, {s['fail']} fail; "
                 f"{s['dynamic']} dynamic, {s['other_platform']} for other platforms"
                 + (f", {s['unreadable']} files unreadable" if s["unreadable"] else ""))
    return lines
