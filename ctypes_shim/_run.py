"""`python -m ctypes_shim run`: install the shim in this process, then run a program.

    python -m ctypes_shim run -m MODULE [ARGS...]    as `python -m MODULE ARGS...`
    python -m ctypes_shim run -c CODE [ARGS...]      as `python -c CODE ARGS...`
    python -m ctypes_shim run SCRIPT [ARGS...]       as `python SCRIPT ARGS...` (file, dir, zip)
    python -m ctypes_shim run - [ARGS...]            as `python - ARGS...` (stdin)

This route does not depend on sitecustomize (which another agent's sitecustomize may
shadow) nor on a site directory (which `pip install --target` does not give), and it
composes with other launchers: `opentelemetry-instrument python -m ctypes_shim run -m
gunicorn ...`.  Nothing here starts a process: the program runs in this interpreter, so
its exit status, signals and forks (gunicorn's workers) are the program's own.

It sets what the interpreter sets (CPython Modules/main.c, pymain_run_python): sys.argv,
sys.path[0] (unless -P/-I), a fresh `__main__` module; runs -m and directories through
runpy._run_module_as_main, exactly as `python -m` does.  An uncaught exception is printed
by sys.excepthook without this module's frames, and the interpreter exits 1 as usual.

Start-up module: `python -m ctypes_shim run` imports this before argparse or the rest of
the CLI, so only sys and os are imported at the top.
"""

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # no typing at start-up
    from types import ModuleType, TracebackType
    from typing import Any, Callable, Sequence

PROG = "ctypes-shim"
EXIT_USAGE = 2  # as the rest of the CLI, and as python for a bad command line
ROUTE = "run"  # _activate.route when this launcher activated the shim

USAGE = "usage: ctypes-shim run [-m MODULE | -c CODE | SCRIPT | -] [ARGS...]"
HELP = USAGE + """

Install ctypes_shim's find_library in this process, then run the program as
`python -m MODULE`, `python -c CODE`, `python SCRIPT` or `python -` would: the same
sys.argv, sys.path[0] and __main__, the same exit status, tracebacks and signals.
No process is started, and no sitecustomize or site directory is needed.

Interpreter options go before it: python3 -u -X dev -m ctypes_shim run -m app.
Composes with other launchers: opentelemetry-instrument python3 -m ctypes_shim run
-m gunicorn app:app.  A new interpreter the program starts (subprocess, multiprocessing
"spawn") is not covered; forked children (gunicorn's workers) are.
"""


def main(argv: "Sequence[str] | None" = None) -> int:
    """Run the program named by *argv* (default: sys.argv[2:], after `run`).

    Returns the exit status: 0 when the program returns, 2 for bad usage (one line on
    stderr, in the CLI's format) or a script that cannot be opened (python's message).
    The program's SystemExit and uncaught exceptions go on to the interpreter, which ends
    the process as it would have ended the program's own.
    """
    args = list(sys.argv[2:] if argv is None else argv)
    try:
        kind, target, rest = _parse(args)
    except ValueError as e:
        _stderr(f"{PROG}: error: run: {e}")
        return EXIT_USAGE
    if kind == "help":
        sys.stdout.write(HELP)
        return 0
    from . import _activate  # noqa: PLC0415 -- sys, os only

    _activate.activate(ROUTE)  # never raises; CTYPES_SHIM_DISABLE=1 leaves stock in place
    return _run(kind, target, rest)


def _parse(args: "list[str]") -> "tuple[str, str, list[str]]":
    """(kind, target, program args) as CPython's command line reads them; ValueError if bad."""
    if not args:
        raise ValueError("give -m MODULE, -c CODE or SCRIPT (see --help)")
    first = args[0]
    if first in ("-h", "--help"):
        return "help", "", []
    for option, kind, what in (("-m", "module", "MODULE"), ("-c", "code", "CODE")):
        if first == option:  # `-m MOD` or, as python allows, `-mMOD`
            if len(args) < 2:
                raise ValueError(f"{option} needs {what}")
            return kind, args[1], args[2:]
        if first.startswith(option):
            return kind, first[len(option):], args[1:]
    if first == "--":  # python's end of options: the next word is the script
        if len(args) < 2:
            raise ValueError("-- needs SCRIPT")
        return "script", args[1], args[2:]
    if first == "-":
        return "stdin", "-", args[1:]
    if first.startswith("-"):
        raise ValueError(f"unknown option {first!r}: interpreter options go before "
                         "`-m ctypes_shim` (python3 -u -m ctypes_shim run ...)")
    return "script", first, args[1:]


def _stderr(line: str) -> None:
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass  # a closed stderr is not a reason to fail differently


def _path0_inserted() -> bool:
    """True when the interpreter put an entry at sys.path[0] for the program it runs.

    It does unless -P (3.11+) or -I: the script's dir, the current dir for -m, '' for -c.
    sitecustomize and .pth files run before that entry is added, so it is never one of
    theirs; `doctor` uses this to list sys.path as it was when sitecustomize was imported.
    """
    return not (getattr(sys.flags, "safe_path", False) or sys.flags.isolated)


def _set_path0(entry: str, *, always: bool = False) -> None:
    """Put *entry* where the interpreter put the launcher's own sys.path[0]."""
    if _path0_inserted() and sys.path:
        sys.path[0] = entry
    elif always:  # a directory or zip: python adds it even under -P/-I (it holds __main__)
        sys.path.insert(0, entry)


def _fresh_main() -> "ModuleType":
    """A new, empty `__main__` as the interpreter makes one (pylifecycle add_main_module)."""
    import builtins  # noqa: PLC0415 -- builtin, always loaded

    module = type(sys)("__main__")
    module.__loader__ = sys.modules["_frozen_importlib"].BuiltinImporter
    if sys.version_info < (3, 14):  # PEP 649 (3.14) removed the eager __annotations__ dict
        module.__annotations__ = {}
    module.__builtins__ = builtins  # type: ignore[attr-defined]
    sys.modules["__main__"] = module
    return module


def _run(kind: str, target: str, rest: "list[str]") -> int:
    main_module = _fresh_main()
    if kind == "module":
        sys.argv[:] = ["-m", *rest]  # runpy replaces "-m" with the module's file once found
        _set_path0(os.getcwd())
        return _call(_run_module, target, True)
    if kind == "code":
        sys.argv[:] = ["-c", *rest]
        _set_path0("")
        return _call(_run_command, main_module, target)
    if kind == "stdin":
        sys.argv[:] = ["-", *rest]
        _set_path0("")
        return _call(_run_file, main_module, sys.stdin.buffer.read(), "<stdin>")
    sys.argv[:] = [target, *rest]
    # 3.9+ makes the script's name absolute (config->run_filename); 3.8 keeps it as given.
    name = os.path.abspath(target) if sys.version_info >= (3, 9) else target
    if _importer(target) is not None:  # a directory or zip: run its __main__ (pymain_run_python)
        _set_path0(name, always=True)
        return _call(_run_module, "__main__", False)
    try:
        with open(target, "rb") as f:
            data = f.read()
    except OSError as e:  # python's own message and status (pymain_run_file)
        _stderr(f"{_program_name()}: can't open file {name!r}: [Errno {e.errno}] {e.strerror}")
        return 2
    _set_path0(os.path.dirname(os.path.realpath(target)))
    return _call(_run_file, main_module, data, name)


def _run_module(name: str, alter_argv: bool) -> None:
    import runpy  # noqa: PLC0415 -- loaded already under `python -m`

    # What the interpreter itself calls for -m and for a directory or zip: it runs the
    # module in sys.modules["__main__"].__dict__ and reports "No module named ..." as python.
    runpy._run_module_as_main(name, alter_argv)  # type: ignore[attr-defined]


def _run_command(module: "ModuleType", command: str) -> None:
    """-c CODE, as PyRun_SimpleStringFlags runs it."""
    code = compile(command, "<string>", "exec", dont_inherit=True)
    if sys.version_info >= (3, 13):  # python -c gives tracebacks the source lines (3.13+)
        import linecache  # noqa: PLC0415 -- what python itself imports here

        # The entry 3.13's run_mod leaves (pythonrun.c calls linecache._register_code).
        linecache.cache["<string>"] = (len(command), None,
                                       [line + "\n" for line in command.splitlines()],
                                       "<string>")
    exec(code, module.__dict__)


def _run_file(module: "ModuleType", data: bytes, name: str) -> None:
    """A script (source or compiled) or stdin, as PyRun_SimpleFileExFlags (pythonrun.c) runs it."""
    from importlib import machinery, util  # noqa: PLC0415 -- loaded already by site/runpy

    module.__file__ = name
    if sys.version_info < (3, 15):  # 3.15's pythonrun.c no longer sets it
        module.__cached__ = None  # type: ignore[attr-defined]
    try:
        if name.endswith(".pyc") or data[:4] == util.MAGIC_NUMBER:
            if data[:4] != util.MAGIC_NUMBER:
                raise RuntimeError("Bad magic number in .pyc file")
            import marshal  # noqa: PLC0415 -- builtin

            module.__loader__ = machinery.SourcelessFileLoader("__main__", name)
            code = marshal.loads(data[16:])  # after magic, flags, mtime/hash, size (PEP 552)
        else:
            if name != "<stdin>":  # stdin keeps the BuiltinImporter loader, as in pythonrun.c
                module.__loader__ = machinery.SourceFileLoader("__main__", name)
            code = compile(data, name, "exec", dont_inherit=True)
        exec(code, module.__dict__)
    finally:  # pythonrun.c removes them once the file has run
        module.__dict__.pop("__file__", None)
        module.__dict__.pop("__cached__", None)


def _importer(path: str) -> "object | None":
    """The path hook that takes *path* as a sys.path entry (PyImport_GetImporter), or None."""
    for hook in sys.path_hooks:
        try:
            found: object = hook(path)
        except ImportError:
            continue
        return found
    return None


def _program_name() -> str:
    """argv[0] of this interpreter as it was typed (python's name in its own messages)."""
    orig = getattr(sys, "orig_argv", None)  # 3.10+
    if orig:
        return str(orig[0])
    try:
        with open("/proc/self/cmdline", "rb") as f:
            return os.fsdecode(f.read().split(b"\0", 1)[0]) or sys.executable
    except OSError:
        return sys.executable


def _call(function: "Callable[..., None]", *args: "Any") -> int:
    """Run the program; its frames start right below this one (see _trimmed_hook)."""
    try:
        function(*args)
    except SystemExit:
        raise  # the interpreter turns it into the exit status, as for the program itself
    except BaseException as e:
        # Re-raise so that the interpreter ends as it would for the program (status 1;
        # KeyboardInterrupt: killed by SIGINT), after its hook printed the program's frames.
        sys.excepthook = _TrimmedHook(sys.excepthook, e)
        raise
    return 0


class _TrimmedHook:
    """sys.excepthook for the program's uncaught exception, minus the launcher's frames."""

    def __init__(self, hook: "Callable[..., Any]", exception: BaseException) -> None:
        self.hook = hook
        self.exception = exception

    def __call__(self, kind: "type[BaseException]", value: BaseException,
                 tb: "TracebackType | None") -> "Any":
        sys.excepthook = self.hook
        if value is self.exception:
            tb = _program_frames(tb)
            value.__traceback__ = tb  # the default hook prints value.__traceback__
        return self.hook(kind, value, tb)


def _program_frames(tb: "TracebackType | None") -> "TracebackType | None":
    """*tb* from the program's first frame on: what python would show without this launcher.

    The frames above _call (the interpreter's runpy, ctypes_shim's __main__) and this
    module's own below it go.  None when the program had no frame yet (a SyntaxError),
    which python prints without a "Traceback" header too.
    """
    start = tb
    while tb is not None and tb.tb_frame.f_code is not _call.__code__:
        tb = tb.tb_next
    if tb is None:
        return start  # not raised through _call: leave it alone
    while tb is not None and tb.tb_frame.f_globals is globals():
        tb = tb.tb_next
    return tb
