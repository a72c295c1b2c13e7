"""Payload run in the image: ``python3 -c <this file> '<json request>'``; prints one JSON object.

Request keys: ``names`` (list), ``symbols`` ({name: symbol}), ``use`` ("stock" to call
``ctypes.util.find_library`` as the program sees it, or "shim" to call ``ctypes_shim.find_library``
too). Stdlib only; the image's Python is Debian's 3.13.5 (debian13) or 3.11.2 (debian12).
"""

import json
import os
import sys

# Installed first thing, so every process start attempted by what follows is recorded. Interpreter
# startup (sitecustomize / .pth activation) runs before this line; "modules_at_start" covers that.
EVENTS = []
_WATCHED = (
    "subprocess.Popen",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.system",
    "os.fork",
    "os.forkpty",
)


def _hook(event, args):
    if event.startswith(_WATCHED):
        # [event, program]: argv[0] for subprocess.Popen, the path for os.exec*/posix_spawn.
        what = args[1] if event == "subprocess.Popen" else (args[0] if args else None)
        if isinstance(what, (list, tuple)) and what:
            what = what[0]
        EVENTS.append([event, str(what)])


sys.addaudithook(_hook)
MODULES_AT_START = sorted(
    m
    for m in ("ctypes", "ctypes.util", "subprocess", "wrapt", "elftools", "logging")
    if m in sys.modules
)

req = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
import ctypes  # noqa: E402
import ctypes.util  # noqa: E402

out = {
    "uid": os.getuid(),
    "python": sys.version.split()[0],
    "executable": sys.executable,
    "flags_isolated": sys.flags.isolated,
    "path": sys.path,
    "modules_at_start": MODULES_AT_START,
    "find_library_module": getattr(ctypes.util.find_library, "__module__", None),
    "sitecustomize": getattr(sys.modules.get("sitecustomize"), "__file__", None),
    "markers": {k: v for k, v in os.environ.items() if k.startswith("PROBE_")},
    "results": {},
}
shim = None
try:
    import ctypes_shim as shim
except ImportError as e:
    out["shim_import_error"] = str(e)
else:
    out["shim_file"] = shim.__file__
    out["shim_installed"] = shim.is_installed()

# Marker set by the probe's apport_python_hook.install(), which Debian's
# /etc/python3.X/sitecustomize.py calls: proves that (shadowed) sitecustomize ran.
out["debian_sitecustomize_ran"] = bool(getattr(sys, "_probe_apport_hook_installed", False))

SAFE_CALLS = {  # symbol: (restype, args, how to check) -- called, not only looked up
    "getpid": ("int", (), "pid"),
    "crc32": ("ulong", (0, b"abc", 3), 891568578),
    "sqlite3_libversion": ("str", (), None),
    "lzma_version_string": ("str", (), None),
    "BZ2_bzlibVersion": ("str", (), None),
    "yaml_get_version_string": ("str", (), None),
    "ZSTD_versionString": ("str", (), None),
    "jansson_version_str": ("str", (), None),
    "omp_get_max_threads": ("int", (), None),
    "OpenSSL_version_num": ("ulong", (), None),
}

for name in req.get("names", []):
    r = {}
    try:
        r["stock"] = ctypes.util.find_library(name)
    except Exception as e:
        r["stock_error"] = f"{type(e).__name__}: {e}"
        r["stock"] = None
    if shim is not None and req.get("use") == "shim":
        r["shim"] = shim.find_library(name)
    soname = r.get("shim") or r["stock"]
    sym = req.get("symbols", {}).get(name)
    if soname:
        try:
            lib = ctypes.CDLL(soname)
            r["loaded"] = lib._name
            if sym:
                fn = getattr(lib, sym)
                r["symbol"] = sym
                if sym in SAFE_CALLS:
                    restype, args, _check = SAFE_CALLS[sym]
                    fn.restype = {
                        "int": ctypes.c_int,
                        "ulong": ctypes.c_ulong,
                        "str": ctypes.c_char_p,
                    }[restype]
                    value = fn(*args)
                    r["call"] = value.decode() if isinstance(value, bytes) else value
        except (OSError, AttributeError) as e:
            r["load_error"] = f"{type(e).__name__}: {e}"
    out["results"][name] = r

try:
    out["cdll_libc_so_6_getpid"] = ctypes.CDLL("libc.so.6").getpid() == os.getpid()
except OSError as e:
    out["cdll_libc_so_6_getpid"] = str(e)
out["events"] = EVENTS
print(json.dumps(out))
