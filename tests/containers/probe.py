"""Run inside a built image: what ``ctypes.util.find_library`` returns, and whether it loads.

``python3 -c <this file> NAME...`` (or through the image's launcher); prints one JSON object:
uid, whether ctypes_shim is installed, and for each NAME the soname found and the error
``ctypes.CDLL`` raised loading it (null when it loaded, or when nothing was found).
"""

import ctypes
import ctypes.util
import json
import os
import sys

out = {"uid": os.getuid(), "libs": {}, "load_errors": {}}
for name in sys.argv[1:]:
    soname = ctypes.util.find_library(name)
    out["libs"][name] = soname
    if soname:
        try:
            ctypes.CDLL(soname)
        except OSError as e:
            out["load_errors"][name] = str(e)
shim = sys.modules.get("ctypes_shim")
out["shim_installed"] = bool(shim and shim.is_installed())
print(json.dumps(out))
