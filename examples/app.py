"""Demo WSGI app for the distroless examples: finds native libraries with ctypes at import.

Run it with gunicorn (``python3 -m gunicorn --chdir /app app:app``). At import it calls
``ctypes.util.find_library`` for each name below, as code written against the stdlib does,
loads the result with ``ctypes.CDLL`` and looks up one symbol (calling the harmless ones).
Every request returns the outcome as JSON. Without ctypes_shim, in
gcr.io/distroless/python3-debian12 every soname is null, and in python3-debian13 a library
added by a later layer is (its pre-generated ld.so.cache does not list it); with it, each
one resolves and loads.
"""

import ctypes
import ctypes.util
import json
import os
import sys

# name -> symbol to look up (and call, when the signature is simple)
LIBRARIES = {
    "c": "getpid",
    "m": "cos",
    "ssl": "SSL_new",
    "crypto": "OpenSSL_version_num",
    "z": "zlibVersion",
    "sqlite3": "sqlite3_libversion",
    "ffi": "ffi_call",
    "uuid": "uuid_generate",
    "expat": "XML_ExpatVersion",
    "lzma": "lzma_version_string",
    "bz2": "BZ2_bzlibVersion",
    "stdc++": "_ZSt9terminatev",
    "gcc_s": "_Unwind_Backtrace",
    "gomp": "omp_get_max_threads",
}
_CALLS = {  # symbol -> restype for functions that take no arguments
    "getpid": ctypes.c_int,
    "OpenSSL_version_num": ctypes.c_ulong,
    "zlibVersion": ctypes.c_char_p,
    "sqlite3_libversion": ctypes.c_char_p,
    "XML_ExpatVersion": ctypes.c_char_p,
    "lzma_version_string": ctypes.c_char_p,
    "BZ2_bzlibVersion": ctypes.c_char_p,
    "omp_get_max_threads": ctypes.c_int,
}
_SPAWN_EVENTS = ("subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn", "os.system")

_spawned = []
_watching = True


def _audit(event, args):
    # Records any attempt to start a process while the libraries are being resolved:
    # stock find_library tries /sbin/ldconfig, gcc/cc and ld; ctypes_shim never does.
    if _watching and event.startswith(_SPAWN_EVENTS):
        _spawned.append(event)


sys.addaudithook(_audit)


def _resolve(name, symbol):
    entry = {"soname": ctypes.util.find_library(name)}
    if entry["soname"]:
        try:
            func = getattr(ctypes.CDLL(entry["soname"]), symbol)
            entry["symbol"] = symbol
            if symbol in _CALLS:
                func.restype = _CALLS[symbol]
                value = func()
                entry["value"] = value.decode() if isinstance(value, bytes) else value
        except (OSError, AttributeError) as e:
            entry["error"] = str(e)
    return entry


LIBS = {name: _resolve(name, symbol) for name, symbol in LIBRARIES.items()}
_watching = False


def _shim_state():
    shim = sys.modules.get("ctypes_shim")
    if shim is None:
        return None
    return {"installed": shim.is_installed(), "version": shim.__version__}


def app(environ, start_response):
    body = json.dumps(
        {
            "pid": os.getpid(),
            "uid": os.getuid(),
            "python": sys.version.split()[0],
            "server": environ.get("SERVER_SOFTWARE"),
            "ctypes_shim": _shim_state(),
            "libraries": LIBS,
            "spawned": _spawned,
        },
        sort_keys=True,
    ).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
