"""`python -m ctypes_shim` and `ctypes-shim`: find, ldconfig, doctor, check (and run: _run).

Each command imports what it needs inside its handler, so start-up and `--help` stay cheap.
Exit codes scripts can trust: 0 ok; 1 not found, problems found, or an operation failed
(unreadable cache, read-only root); 2 bad usage or bad input.  Errors are one line on
stderr, `ctypes-shim: error: ...`, never a traceback (set CTYPES_SHIM_DEBUG=1 to get one
for an internal error).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Iterable, Sequence

    from . import _trace
    from ._resolve import Resolver

PROG = "ctypes-shim"
EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad usage or bad input: exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse prints usage + exits; we want one line
        raise UsageError(message)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line in *argv* (default: sys.argv[1:]); return the exit code."""
    args_list = sys.argv[1:] if argv is None else list(argv)
    if args_list[:1] == ["run"]:
        # Outside the handlers below: the program's own SystemExit, exceptions and
        # KeyboardInterrupt must reach the interpreter as if it ran alone.
        from . import _run  # noqa: PLC0415

        return _run.main(args_list[1:])
    try:
        for arg in args_list:
            if not isinstance(arg, str):
                raise UsageError(f"arguments must be strings, not {type(arg).__name__}")
            if "\0" in arg:
                raise UsageError("arguments must not contain NUL characters")
        args = _parser().parse_args(args_list)
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
    except UsageError as e:
        _error(str(e))
        return EXIT_USAGE
    except SystemExit as e:  # --help, --version
        return e.code if isinstance(e.code, int) else EXIT_OK if e.code is None else EXIT_USAGE
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except BrokenPipeError:  # `ctypes-shim ldconfig -p | head`
        _silence_stdout()
        return EXIT_PROBLEM
    except (OSError, ValueError) as e:
        _error(_one_line(e))
        return EXIT_PROBLEM
    except Exception as e:
        if os.environ.get("CTYPES_SHIM_DEBUG"):
            import traceback  # noqa: PLC0415

            traceback.print_exc()
        _error(f"internal error: {e!r}")
        return EXIT_PROBLEM


def _error(message: str) -> None:
    _stderr("error", message)


def _warn(message: str) -> None:
    _stderr("warning", message)


def _stderr(kind: str, message: str) -> None:
    """One line on stderr, whatever *message* holds; a closed stderr is not our problem."""
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(f"{PROG}: {kind}: {' '.join(message.split())}\n")
        sys.stderr.flush()


def _one_line(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror and type(e).__name__ != "LdconfigError":
        where = f": {e.filename}" if e.filename else ""
        return f"{e.strerror}{where}"
    return str(e) or type(e).__name__


def _silence_stdout() -> None:
    # Python flushes stdout at exit and would report the broken pipe again.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def _out(lines: Iterable[str]) -> None:
    """Write lines exactly: bytes that were not UTF-8 in a path go out as they came in."""
    data = "".join(line + "\n" for line in lines).encode("utf-8", "surrogateescape")
    stream = sys.stdout
    buffer = getattr(stream, "buffer", None)
    if buffer is None:
        stream.write(data.decode("utf-8", "replace"))
    else:
        stream.flush()
        buffer.write(data)
        buffer.flush()


def _json(obj: object) -> None:
    import json  # noqa: PLC0415

    _out([json.dumps(obj, indent=2, ensure_ascii=False)])


def _root_dir(value: str) -> str:
    if not value:
        raise argparse.ArgumentTypeError("root must not be empty")
    if not os.path.isdir(value):
        raise argparse.ArgumentTypeError(f"root {value!r} is not a directory")
    return os.path.abspath(value)


# -- the parser -----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    from . import __version__  # noqa: PLC0415 -- a static string in __init__

    parser = _Parser(
        prog=PROG, formatter_class=_Formatter,
        description="ctypes.util.find_library for Linux in pure Python: see what it finds,\n"
                    "print or write an ld.so.cache, check a root.  Never starts a process\n"
                    "(except `find --compare`, which runs stock find_library).",
        epilog="Under --root, every path printed and every path given (check's PATH,\n"
               "ldconfig's -C and -f) is a path inside ROOT, as the image sees it, the\n"
               "way `ldconfig -r ROOT` reads them.\n"
               "Exit codes: 0 ok; 1 not found, problems found or operation failed;\n"
               "2 bad usage or input.  Errors are one line on stderr.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    find = sub.add_parser(
        "find", help="what find_library returns for NAME...", formatter_class=_Formatter,
        description="Print, per NAME (as for ctypes.util.find_library: 'c', 'ssl', 'z'),\n"
                    "what the shim's find_library returns.",
        epilog="Exit code 1 when any NAME is not found, 2 for a NAME that cannot be a\n"
               "library name (empty, with '/', whitespace or NUL).")
    find.add_argument("names", nargs="+", metavar="NAME", help="library name without lib/.so")
    find.add_argument("--root", type=_root_dir, help="resolve inside this root directory "
                      "(its ld.so.cache, ld.so.conf and lib dirs) instead of this machine")
    find.add_argument("--explain", action="store_true",
                      help="show every candidate considered, in order, and why it was taken "
                           "or rejected; which source answered; the chosen library's "
                           "DT_NEEDED, where this root's loader finds each, and whether "
                           "everything they need in turn is found")
    find.add_argument("--compare", action="store_true",
                      help="also show stock ctypes.util.find_library's answer (this machine "
                           "only; stock runs /sbin/ldconfig, gcc, ld and objdump)")
    find.add_argument("--json", action="store_true", help="print JSON")
    find.set_defaults(handler=_cmd_find)

    ldc = sub.add_parser(
        "ldconfig", help="print (-p) or write an ld.so.cache", formatter_class=_Formatter,
        description="With -p: list a cache exactly as glibc's `ldconfig -p` does.\n"
                    "Without -p: write a glibc-ld.so.cache1.1 file for ROOT from its "
                    "ld.so.conf\n(or ld.so.conf.d/*.conf when ld.so.conf is missing) and the "
                    "built-in dirs,\nfollowing glibc 2.36 ldconfig's rules.  The file is "
                    "replaced atomically.\n\nUnlike ldconfig this never creates, changes or "
                    "removes soname symlinks\n(as with `ldconfig -X`), and keeps no auxiliary "
                    "cache.",
        epilog="Paths given to -C and -f are inside ROOT, as with `ldconfig -r ROOT`.\n"
               "Exit code 1 when the cache cannot be read or written.")
    ldc.add_argument("-p", "--print-cache", action="store_true", help="print the cache")
    ldc.add_argument("-r", "--root", type=_root_dir,
                     help="the root directory (required to write; use --root / for this "
                          "machine)")
    ldc.add_argument("-C", dest="cache", metavar="FILE",
                     help="the cache file (default /etc/ld.so.cache)")
    ldc.add_argument("-f", dest="conf", metavar="CONF",
                     help="the config file to read (default /etc/ld.so.conf)")
    ldc.add_argument("-v", "--verbose", action="store_true",
                     help="list each directory and library, as `ldconfig -v -X` does")
    ldc.add_argument("-X", dest="no_links", action="store_true",
                     help="accepted for compatibility: links are never made")
    ldc.add_argument("-i", dest="no_aux", action="store_true",
                     help="accepted for compatibility: there is no auxiliary cache")
    ldc.add_argument("--json", action="store_true", help="print JSON")
    ldc.set_defaults(handler=_cmd_ldconfig)

    doc = sub.add_parser(
        "doctor", help="check the shim, the interpreter and a root", formatter_class=_Formatter,
        description="Report whether the shim is active and how; the interpreter, its\n"
                    "architecture and libc; the search path and where each dir comes from;\n"
                    "the ld.so.cache and how it compares with what `ctypes-shim ldconfig`\n"
                    "would write now.",
        epilog="Exit code 1 when something is wrong: the shim cannot be imported, a\n"
               "config file cannot be read, or the cache is unreadable, has entries\n"
               "whose file is gone or whose soname link is missing, or lacks libraries\n"
               "that are on disk.  A missing cache is reported but is not wrong:\n"
               "find_library then scans the directories.")
    doc.add_argument("--root", type=_root_dir, help="check this root instead of this machine")
    doc.add_argument("--json", action="store_true", help="print JSON")
    doc.set_defaults(handler=_cmd_doctor)

    chk = sub.add_parser(
        "check", help="will every library this Python code looks up load in ROOT?",
        formatter_class=_Formatter,
        description="Read every .py file under PATH with `ast` (never importing or running it)\n"
                    "and find its ctypes.util.find_library calls.  For each literal name:\n"
                    "what stock find_library would return in ROOT, what the shim returns,\n"
                    "and whether that library and everything in its DT_NEEDED, transitively,\n"
                    "is found by the loader's rules in ROOT.  Calls whose name is not a\n"
                    "literal are listed as dynamic; calls that only run on another platform\n"
                    "are listed apart.",
        epilog="PATH defaults to this interpreter's sys.path without the standard library\n"
               "(under --root: those entries that exist in ROOT, plus ROOT's\n"
               "/usr{,/local}/lib/python3*/{site,dist}-packages).  Under --root, LD_LIBRARY_PATH\n"
               "is taken as unset.  Stock's answer: without /sbin/ldconfig in ROOT it is\n"
               "'not found'; with it, the cache entry stock's regex would pick.\n"
               "Exit code 1 when a literal lookup fails with the shim.")
    chk.add_argument("paths", nargs="*", metavar="PATH",
                     help="a directory or .py file to scan (inside ROOT under --root)")
    chk.add_argument("--root", type=_root_dir, help="check inside this root directory (an "
                     "unpacked image) instead of this machine")
    chk.add_argument("--json", action="store_true", help="print JSON")
    chk.set_defaults(handler=_cmd_check)

    # Listed here for --help; main() hands `run ...` to _run before parsing (and so does
    # __main__, before this module is even imported), since its arguments are the program's.
    run = sub.add_parser("run", add_help=False,
                         help="run a program (-m MODULE, -c CODE or SCRIPT) with the shim "
                              "installed in its process; `run --help` for more")
    run.set_defaults(handler=_cmd_run_help)
    return parser


def _cmd_run_help(args: argparse.Namespace) -> int:
    from . import _run  # noqa: PLC0415

    return _run.main(["--help"])


# -- find -------------------------------------------------------------------------------------


def _check_name(name: str) -> None:
    if (not name or "/" in name or len(name) > 255
            or any(c.isspace() for c in name)):
        raise UsageError(f"find: not a library name: {name!r} (give e.g. 'c' or 'ssl')")


def _cmd_find(args: argparse.Namespace) -> int:
    from . import _resolve  # noqa: PLC0415

    for name in args.names:
        _check_name(name)
    if args.compare and args.root:
        raise UsageError("find: --compare runs stock find_library, which only knows this "
                         "machine; drop --root")
    resolver = _resolve.Resolver(root=args.root) if args.root else _resolve.default()
    stock = _stock_find_library() if args.compare else None
    results = []
    for name in args.names:
        trace: list[_trace.Step] = []
        answer = resolver.lookup(name, trace=trace)
        result: dict[str, Any] = {"name": name, "found": answer is not None, "result": answer}
        if stock is not None:
            result["stock"] = _call_stock(stock, name)
        if args.explain:
            taken = [t for t in trace if t.outcome == "taken"]
            result["source"] = taken[-1].source if taken else None
            result["path"] = taken[-1].subject if taken and taken[-1].source != "musl" else None
            result["trace"] = [{"source": t.source, "candidate": t.subject,
                                "outcome": t.outcome, "detail": t.detail,
                                "verdict": t.verdict} for t in trace]
            if result["path"]:
                result.update(_needed(resolver, result["path"]))
        results.append(result)
    if args.json:
        _json({"root": args.root or "/", "results": results})
    else:
        _out(_find_text(results, compare=stock is not None, explain=args.explain))
    return EXIT_OK if all(r["found"] for r in results) else EXIT_PROBLEM


def _find_text(results: list[dict[str, Any]], *, compare: bool, explain: bool) -> list[str]:
    def show(value: object) -> str:
        return "not found" if value is None else str(value)

    lines = []
    width = max(len(r["name"]) for r in results)
    shim_width = max(len(show(r["result"])) for r in results)
    if compare:  # the header's words are columns too
        width, shim_width = max(width, len("NAME")), max(shim_width, len("SHIM"))
    if compare:
        lines.append(f"{'NAME':<{width}}  {'SHIM':<{shim_width}}  STOCK")
    for r in results:
        line = f"{r['name']:<{width}}  {show(r['result'])}"
        if compare:
            line = f"{r['name']:<{width}}  {show(r['result']):<{shim_width}}  {show(r['stock'])}"
        lines.append(line.rstrip())
        if not explain:
            continue
        by = r["source"] or "nothing"
        lines.append(f"  answered by: {by}")
        for t in r["trace"]:
            lines.append(f"  {t['source']:<11}  {t['candidate']}  {t['verdict']}")
        if "needed" in r:
            lines.append(f"  DT_NEEDED of {r['path']}:")
            if not r["needed"]:
                lines.append("    (none)")
            for n in r["needed"]:
                if n["path"]:
                    via = f"{n['via']} of {n['owner']}" if n.get("owner") else n["via"]
                    where = f"{n['path']} ({via})"
                elif "only_in" in n:
                    where = (f"NOT FOUND by the loader: {n['only_in']['path']} is only in a "
                             f"dir from {n['only_in']['origin']}, which needs ld.so.cache")
                else:
                    where = f"NOT FOUND in this root ({n['error']})" if n.get(
                        "error", "not found") != "not found" else "NOT FOUND in this root"
                lines.append(f"    {n['soname']} => {where}")
            lines.append(f"  loads: yes, {_plural(r['objects'], 'object', 'objects')}"
                         if r["loads"] else
                         f"  loads: no: {r['load_problem']}")
        elif "needed_error" in r:
            lines.append(f"  DT_NEEDED: {r['needed_error']}")
    return lines


def _stock_find_library() -> Callable[[str], str | None]:
    import ctypes.util  # noqa: PLC0415 -- only for --compare

    from . import _patch  # noqa: PLC0415

    # The shim may be active in this process, also behind an agent's wrapper: ask stock.
    stock: Callable[[str], str | None] = _patch.stock(ctypes.util.find_library)
    return stock


def _call_stock(stock: Callable[[str], str | None], name: str) -> str | None:
    try:
        return stock(name)
    except Exception as e:  # 3.8-3.12 raise FileNotFoundError for some names with gcc present
        return f"raised {type(e).__name__}: {e}"


def _needed(resolver: Resolver, path: str) -> dict[str, Any]:
    """The chosen library's DT_NEEDED, where this root's loader finds each, and whether
    everything they need in turn is found (ctypes_shim._loader)."""
    from . import _loader  # noqa: PLC0415

    loader = _loader.Loader(resolver.root, native=resolver.native.info)
    walk = loader.walk(path)
    if not walk.objects:
        return {"needed_error": walk.problem}
    out = []
    for found in walk.objects[0].needed:
        item: dict[str, Any] = {"soname": found.name, "path": found.path, "via": found.source}
        if found.owner:
            item["owner"] = found.owner
        if found.path is None:
            item["error"] = found.error
        if found.only_in:
            item["only_in"] = {"path": found.only_in[0], "origin": found.only_in[1]}
        out.append(item)
    return {"needed": out, "loads": walk.ok, "load_problem": walk.problem,
            "objects": len(walk.objects)}


def _exists(root: str, path: str) -> bool:
    from . import _ldpaths  # noqa: PLC0415

    host = _ldpaths.host_path(root, path)
    return host is not None and os.path.exists(host)


# -- check ----------------------------------------------------------------------------------


def _cmd_check(args: argparse.Namespace) -> int:
    from . import _check, _ldpaths  # noqa: PLC0415

    root = args.root or "/"
    for path in args.paths:
        host = _ldpaths.host_path(root, path) if path.startswith("/") else None
        if root != "/" and not path.startswith("/"):
            raise UsageError(f"check: PATH must be absolute under --root (inside ROOT): {path!r}")
        if not os.path.exists(host or path):
            raise UsageError(f"check: no such file or directory: {path!r}")
    paths = [os.path.abspath(p) if root == "/" else p for p in args.paths]
    report = _check.check(root, paths or None)
    if args.json:
        _json(report)
    else:
        _out(_check.text(report))
    return EXIT_OK if report["ok"] else EXIT_PROBLEM


# -- ldconfig ---------------------------------------------------------------------------------


def _cmd_ldconfig(args: argparse.Namespace) -> int:
    from . import _ldconfig, _ldpaths, _ldscan  # noqa: PLC0415

    name = args.cache or _ldconfig.LD_SO_CACHE
    if args.print_cache:
        if args.conf or args.verbose:
            raise UsageError("ldconfig: -f and -v only apply when writing a cache, not with -p")
        if args.root:
            host = _ldpaths.chroot_path(args.root, name)
            if host is None:
                raise _ldconfig.LdconfigError(f"Can't open cache file {name}: "
                                              "Too many levels of symbolic links")
        else:
            host = name
        cache = _ldconfig.read_for_print(host, name)
        if args.json:
            _json(_cache_json(cache, name))
        elif cache is not None:  # an empty file prints nothing, as ldconfig does
            # as the ldconfig of the root's glibc prints it (this machine's without --root)
            glibc = _ldscan.glibc_version(args.root or "/")
            _out(_ldconfig.print_lines(cache, name, glibc))
        return EXIT_OK
    if not args.root:
        raise UsageError("ldconfig: writing a cache needs --root ROOT (use --root / for this "
                         "machine); -p prints one")
    scan = _ldscan.scan(args.root, args.conf)
    data = _ldconfig.build(scan)
    target = _ldconfig.output_path(args.root, name)
    try:
        _ldconfig.write_cache(target, data)
    except OSError as e:
        raise _ldconfig.LdconfigError(f"cannot write {target}: {e.strerror or e}") from e
    no_link = scan.missing_links()
    if args.json:
        _json({"root": args.root, "cache": name, "written": target, "bytes": len(data),
               "entries": len(scan.entries), "generator": _ldconfig.GENERATOR,
               "dirs": [{"path": d.path, "origin": d.origin, "hwcaps": d.hwcaps}
                        for d in scan.dirs],
               "missing_links": [{"link": e.value, "file": e.file} for e in no_link],
               "skipped": [{"path": p, "why": w} for p, w in scan.skipped]})
        return EXIT_OK
    if args.verbose:
        _out(scan.verbose)
    for entry in no_link:  # the loader opens the value; ldconfig would have made this link
        _warn(f"{entry.value} does not exist (ldconfig would link it to "
              f"{os.path.basename(entry.file)}; {PROG} makes no links)")
    return EXIT_OK


def _cache_json(cache: Any, name: str) -> dict[str, Any]:
    from . import _ldconfig  # noqa: PLC0415

    if cache is None:
        return {"file": name, "format": None, "generator": None, "entries": []}
    return {"file": name, "format": cache.format, "generator": cache.generator,
            "entries": [{"key": e.key, "flags": e.flags, "description": _ldconfig.describe(
                e.flags), "hwcap": e.hwcap, "hwcaps": e.hwcap_name, "value": e.value}
                for e in cache.entries]}


# -- doctor -----------------------------------------------------------------------------------


def _cmd_doctor(args: argparse.Namespace) -> int:
    report = _doctor(args.root or "/")
    if args.json:
        _json(report)
    else:
        _out(_doctor_text(report))
    return EXIT_PROBLEM if report["problems"] else EXIT_OK


def _doctor(root: str) -> dict[str, Any]:
    import platform  # noqa: PLC0415

    from . import __version__, _activate  # noqa: PLC0415

    problems: list[str] = []
    notes: list[str] = []
    report: dict[str, Any] = {"version": __version__, "root": root}

    broken = []
    for module in ("_elf", "_ldcache", "_ldpaths", "_ldscan", "_resolve", "_search", "_patch",
                   "_ldconfig"):
        try:
            __import__(f"ctypes_shim.{module}")
        except Exception as e:  # a broken install: missing or unimportable module
            broken.append(f"ctypes_shim.{module}: {e!r}")
    if broken:
        problems.append("shim not importable: " + "; ".join(broken))
    site = sys.modules.get("sitecustomize")
    report["shim"] = {"active": _activate.is_installed(), "route": _activate.route,
                      "error": _activate.error or _patch_error(),
                      "package": os.path.dirname(__file__),
                      "disabled": _activate.disabled(),
                      "sitecustomize": getattr(site, "__file__", None),
                      "find_library": _replacement_report()}
    report["sitecustomize"] = _sitecustomize_report(report["shim"], problems, notes)
    if broken:
        report["shim"]["broken"] = broken
        return _finish(report, problems, notes)

    from . import _ldconfig, _ldscan, _resolve  # noqa: PLC0415

    resolver = _resolve.Resolver(root=root)
    native = resolver.native
    info = native.info
    report["interpreter"] = {"executable": sys.executable,
                             "version": platform.python_version(),
                             "implementation": platform.python_implementation()}
    report["architecture"] = {
        "uname": os.uname().machine,
        "elf_class": 64 if info and info.elf_class == 2 else 32 if info else None,
        "byteorder": sys.byteorder, "e_machine": info.machine if info else None,
        "cache_flags": sorted(native.cache_ok) if native.cache_ok else None,
        "interpreter": info.interp if info else None}
    report["libc"] = _libc(root, resolver)
    conf_files: list[str] = []
    kept = resolver.search_dirs()
    report["search_path"] = [{"dir": d, "origin": o} for d, o in kept]
    report["search_path_skipped"] = _skipped_dirs(resolver, kept)
    from . import _ldpaths  # noqa: PLC0415

    if not kept:
        problems.append("no directory of the search path exists in this root: nothing "
                        "resolves")
    if report["libc"]["name"] is None and report["libc"]["path"] is None:
        problems.append("no libc: find_library('c') finds nothing")
    if native.musl_arch is None:
        _ldpaths.conf_dirs(root=root, seen=conf_files)
    unreadable = _unreadable(conf_files)
    for path, why in unreadable:
        problems.append(f"config file {_inside(root, path)} cannot be read: {why}")
    report["config_files"] = sorted({_inside(root, p) for p in conf_files
                                     if os.path.isfile(p)})
    if native.musl_arch is not None:
        report["cache"] = {"path": None, "present": False, "note": "musl has no ld.so.cache"}
        return _finish(report, problems, notes)

    cache_name = _ldconfig.LD_SO_CACHE
    host = _ldpaths.host_path(root, cache_name)
    section: dict[str, Any] = {"path": cache_name,
                               "present": bool(host and os.path.exists(host))}
    report["cache"] = section
    if not section["present"]:
        notes.append("no ld.so.cache: find_library scans the directories; write one with "
                     f"`{PROG} ldconfig --root {root}`")
        return _finish(report, problems, notes)
    cache, why = resolver.cache()
    if cache is None:
        section["error"] = why
        problems.append(f"ld.so.cache cannot be read: {why}")
        return _finish(report, problems, notes)
    fresh = _ldscan.scan(root)
    cached = {(e.key, e.value, e.flags) for e in cache.entries}
    missing = [e for e in fresh.entries if (e.key, e.value, e.flags) not in cached]
    found = {(e.key, e.value): e for e in fresh.entries}
    stale, no_link = [], []
    for entry in cache.entries:
        if not _exists(root, entry.value):
            if (entry.key, entry.value) in found:  # the library is there, its link is not
                no_link.append({"key": entry.key, "value": entry.value,
                                "file": found[entry.key, entry.value].file})
            else:
                stale.append({"key": entry.key, "value": entry.value})
    section.update({
        "format": cache.format, "entries": len(cache.entries), "generator": cache.generator,
        "stale": stale, "missing_links": no_link,
        "missing": [{"key": e.key, "value": e.value, "flags": e.flags} for e in missing],
        "fresh_entries": len(fresh.entries)})
    if stale:
        problems.append(f"ld.so.cache has {_plural(len(stale), 'stale entry', 'stale entries')}"
                        " (file gone)")
    if no_link:
        problems.append(f"{_plural(len(no_link), 'cache entry names', 'cache entries name')}"
                        " a soname link that does not exist (ldconfig would create it)")
    if missing:
        problems.append(f"{_plural(len(missing), 'library', 'libraries')} on disk missing "
                        "from ld.so.cache")
    if stale or missing:
        notes.append(f"rewrite the cache with `{PROG} ldconfig --root {root}`")
    return _finish(report, problems, notes)


def _replacement_report() -> dict[str, Any] | None:
    """What ctypes.util.find_library is, when ctypes.util is imported: ours, wrapped or not."""
    module = sys.modules.get("ctypes.util")
    if module is None:
        return None
    from . import _patch  # noqa: PLC0415

    current = getattr(module, "find_library", None)
    found = _patch.locate(current)
    return {"type": _type_name(current), "shim": found is not None,
            "shim_type": _type_name(found[1]) if found else None,
            "wrapped_by": found[0] if found else None}


def _type_name(obj: object) -> str:
    kind = type(obj)
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"


# Routes that do not depend on which sitecustomize comes first (README: "With
# OpenTelemetry, ddtrace and other agents").
ROUTES_WITHOUT_SITECUSTOMIZE = ("the .pth (pip install ctypes-shim into a site directory) or "
                                "`python -m ctypes_shim run -m MODULE ...`")
_TEMPLATE_MARK = b"ctypes_shim"  # what the shim's template imports; bytes we look for
_TEMPLATE_HEAD = 64 << 10  # the template is ~2 KiB; never read a big file whole


def _sitecustomize_report(shim: dict[str, Any], problems: list[str],
                          notes: list[str]) -> dict[str, Any]:
    """Every sitecustomize on sys.path, in the order site.py looks, without importing one.

    site imports the first `sitecustomize` on sys.path only.  If that is not the shim's
    template, the template runs only if the first one imports the next (ours and ddtrace's
    do, OpenTelemetry's does not).  The entry the interpreter puts at sys.path[0] for
    the program is added after site runs, so it is left out.
    """
    from importlib.machinery import PathFinder  # noqa: PLC0415

    from . import _run  # noqa: PLC0415

    entries = sys.path[1:] if _run._path0_inserted() else list(sys.path)
    files: list[dict[str, Any]] = []
    for entry in dict.fromkeys(entries):
        try:
            spec = PathFinder.find_spec("sitecustomize", [entry])
        except (ImportError, OSError, ValueError, TypeError):  # a broken or odd entry
            continue
        origin = getattr(spec, "origin", None)
        if spec is None or not origin:
            continue
        files.append({"path": origin, "entry": entry, "shim": _mentions_shim(origin)})
    template = next((f for f in files if f["shim"]), None)
    result: dict[str, Any] = {"site": not sys.flags.no_site, "files": files,
                              "template": template["path"] if template else None,
                              "shadowed_by": None}
    if template is None or template is files[0]:
        return result
    first = files[0]["path"]
    result["shadowed_by"] = first
    if shim["route"] == "sitecustomize":
        notes.append(f"{first} comes first on sys.path and imported the shim's sitecustomize "
                     f"{template['path']} after it")
    elif shim["active"]:
        notes.append(f"the shim's sitecustomize {template['path']} is shadowed by {first}; "
                     f"the shim is active through its {shim['route']} route")
    elif not shim["disabled"]:
        problems.append(f"the shim's sitecustomize {template['path']} never runs: {first} "
                        "comes before it on sys.path and does not import the next one; use "
                        f"{ROUTES_WITHOUT_SITECUSTOMIZE}, which do not depend on the order")
    return result


def _mentions_shim(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return _TEMPLATE_MARK in f.read(_TEMPLATE_HEAD)
    except OSError:
        return False


def _inside(root: str, host: str) -> str:
    """A host path below *root* as the root sees it (the CLI's one convention)."""
    top = root.rstrip("/")
    if top and (host == top or host.startswith(top + "/")):
        return host[len(top):] or "/"
    return host


def _skipped_dirs(resolver: Resolver, kept: list[tuple[str, str]]) -> list[dict[str, str]]:
    """The search-path entries the scan does not read, each with why: missing on disk, not
    a directory, or the same directory as one already read (usrmerge links)."""
    from . import _ldpaths  # noqa: PLC0415

    root = resolver.root
    candidates = resolver.search().configured_dirs()
    read: dict[tuple[int, int], str] = {}
    for d, _ in kept:
        with contextlib.suppress(OSError, TypeError, ValueError):
            st = os.stat(_ldpaths.host_path(root, d))  # type: ignore[arg-type]
            read.setdefault((st.st_dev, st.st_ino), d)
    out: list[dict[str, str]] = []
    remaining = list(kept)
    for d, origin in candidates:
        if (d, origin) in remaining:
            remaining.remove((d, origin))
            continue
        host = _ldpaths.host_path(root, d)
        try:
            st = os.stat(host)  # type: ignore[arg-type]  # None raises TypeError
        except (OSError, ValueError, TypeError):
            why = "missing on disk" if host and not os.path.lexists(host) else "unreadable"
        else:
            same = read.get((st.st_dev, st.st_ino))
            why = ("already in the search path" if same == d else
                   f"same directory as {same}, read once" if same else
                   "not a directory" if not os.path.isdir(host) else "not read")  # type: ignore[arg-type]
        out.append({"dir": d, "origin": origin, "why": why})
    return out


def _patch_error() -> str | None:
    patch = sys.modules.get(__package__ + "._patch")
    return getattr(patch, "error", None)


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _finish(report: dict[str, Any], problems: list[str], notes: list[str]) -> dict[str, Any]:
    report["problems"] = problems
    report["notes"] = notes
    report["summary"] = ("OK" if not problems else
                         f"{len(problems)} problem{'s' if len(problems) > 1 else ''}: "
                         + "; ".join(problems))
    return report


def _unreadable(paths: Iterable[str]) -> list[tuple[str, str]]:
    out = []
    for path in dict.fromkeys(paths):
        if not os.path.lexists(path):
            continue  # missing config files are fine, as for ldconfig
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            try:
                if os.path.isdir(path):
                    if path.endswith(".conf"):  # ld.so.conf or an include match
                        raise IsADirectoryError(21, "Is a directory")
                    continue  # a directory an include glob looked into
                os.read(fd, 1)
            finally:
                os.close(fd)
        except OSError as e:
            out.append((path, e.strerror or str(e)))
    return out


def _libc(root: str, resolver: Resolver) -> dict[str, Any]:
    native = resolver.native
    if native.musl_arch is not None:
        loader = native.info.interp if native.info else None
        return {"name": "musl", "version": _musl_version(root, loader), "path": loader}
    from . import _ldpaths, _ldscan  # noqa: PLC0415

    release = _ldscan.glibc_release(root)
    if release is None:  # a libc.so.6 that names no glibc release, or none at all
        path = _ldpaths.libc_path(root=root, triplet=_ldpaths.multiarch())
        return {"name": None, "version": None, "path": path}
    version, path = release
    return {"name": "glibc", "version": version, "path": path,
            "from": "os.confstr('CS_GNU_LIBC_VERSION')" if path is None else "the libc file"}


def _read_head(root: str, path: str, size: int) -> bytes:
    from . import _ldpaths  # noqa: PLC0415

    host = _ldpaths.host_path(root, path)
    if host is None:
        return b""
    try:
        with open(host, "rb") as f:
            return f.read(size)
    except OSError:
        return b""


def _musl_version(root: str, loader: str | None) -> str | None:
    """musl keeps its version as a bare string next to "musl libc"; best effort."""
    import re  # noqa: PLC0415

    if not loader:
        return None
    data = _read_head(root, loader, 8 << 20)
    m = re.search(rb"\0(1\.\d+\.\d+)\0", data)
    return m.group(1).decode() if m else None


def _doctor_text(r: dict[str, Any]) -> list[str]:
    lines = [f"ctypes_shim {r['version']} doctor, root {r['root']}"]
    shim = r["shim"]
    if shim.get("broken"):
        state = "NOT IMPORTABLE"
    elif shim["disabled"]:
        state = "disabled by CTYPES_SHIM_DISABLE"
    elif shim["active"]:
        state = f"active (route: {shim['route']})"
    else:
        state = "not active in this process"
    lines.append(f"shim:         {state}; package {shim['package']}")
    if shim["sitecustomize"]:
        lines.append(f"              sitecustomize: {shim['sitecustomize']}")
    replaced = shim.get("find_library")
    if replaced and replaced["shim"]:
        wrapped = replaced["wrapped_by"]
        lines.append(f"              find_library: the shim's ({replaced['shim_type']})"
                     + (f", wrapped by {_plural(wrapped, 'other wrapper', 'other wrappers')}"
                        f" (outermost: {replaced['type']})" if wrapped else ""))
    elif replaced:
        lines.append(f"              find_library: stock ({replaced['type']})")
    hooks = r.get("sitecustomize", {})
    if hooks.get("shadowed_by"):
        lines.append(f"              sitecustomize order: {hooks['shadowed_by']} first, "
                     f"then the shim's {hooks['template']}")
    if shim["error"]:
        lines.append(f"              last error: {shim['error']}")
    if "interpreter" in r:
        i, a, c = r["interpreter"], r["architecture"], r["libc"]
        lines.append(f"interpreter:  {i['executable']} ({i['implementation']} {i['version']})")
        flags = ", ".join(f"{f:#06x}" for f in a["cache_flags"] or [])
        lines.append(f"architecture: {a['uname']}, ELF {a['elf_class']}-bit {a['byteorder']}-"
                     f"endian, e_machine {a['e_machine']}, cache flags {flags or 'any libc6'}")
        libc = f"{c['name'] or 'unknown'} {c['version'] or ''}".rstrip()
        source = c.get("from") if c.get("from") != "the libc file" else c["path"]
        lines.append(f"libc:         {libc}" + (f" (from {source})" if source else ""))
        lines.append("search path:" + ("" if r["search_path"] else " (none)"))
        width = max([len(d["dir"]) for d in r["search_path"]] + [0])
        for d in r["search_path"]:
            lines.append(f"  {d['dir']:<{width}}  {d['origin']}")
        if r["search_path_skipped"]:
            lines.append("  not read:")
            width = max(len(d["dir"]) for d in r["search_path_skipped"])
            lines += [f"  {d['dir']:<{width}}  {d['origin']}: {d['why']}"
                      for d in r["search_path_skipped"]]
        cache = r.get("cache", {})
        if cache.get("note"):
            lines.append(f"cache:        {cache['note']}")
        elif not cache.get("present"):
            lines.append(f"cache:        {cache.get('path')}: not present")
        elif "error" in cache:
            lines.append(f"cache:        {cache['path']}: unreadable ({cache['error']})")
        else:
            lines.append(f"cache:        {cache['path']}: {cache['format']} format, "
                         f"{cache['entries']} entries, generated by "
                         f"{cache['generator'] or 'unknown'}")
            lines.append(f"  stale entries (file gone): {len(cache['stale'])}")
            lines += [f"    {e['key']} => {e['value']}" for e in cache["stale"][:20]]
            if cache["missing_links"]:
                lines.append(f"  soname links missing: {len(cache['missing_links'])}")
                lines += [f"    {e['value']} (the library is {e['file']})"
                          for e in cache["missing_links"][:20]]
            lines.append(f"  on disk but missing from the cache: {len(cache['missing'])} "
                         f"(a fresh scan finds {cache['fresh_entries']})")
            lines += [f"    {e['key']} => {e['value']}" for e in cache["missing"][:20]]
    lines += [f"note: {n}" for n in r["notes"]]
    lines.append(f"summary: {r['summary']}")
    return lines
