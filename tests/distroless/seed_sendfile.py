"""The seed scenario, run inside the image: gunicorn's old ``gunicorn/http/_sendfile.py`` pattern.

    _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    _sendfile = _libc.sendfile

then sendfile(2) of a 1 MiB file over a TCP connection on 127.0.0.1 (the namespace's
loopback), checking what the peer receives. Prints one JSON object.
"""

import ctypes
import ctypes.util
import errno
import hashlib
import json
import os
import socket
import sys
import tempfile
import threading

spawned = []
sys.addaudithook(
    lambda ev, _a: (
        ev.startswith(("subprocess.Popen", "os.exec", "os.posix_spawn")) and spawned.append(ev)
    )
)

found = ctypes.util.find_library("c")
_libc = ctypes.CDLL(found, use_errno=True)
_sendfile = _libc.sendfile
# ssize_t sendfile(int out_fd, int in_fd, off_t *offset, size_t count);
_sendfile.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_int64), ctypes.c_size_t]
_sendfile.restype = ctypes.c_ssize_t


def sendfile(fdout, fdin, offset, nbytes):
    off = ctypes.c_int64(offset)
    sent = _sendfile(fdout, fdin, ctypes.byref(off), nbytes)
    if sent == -1:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return sent


payload = os.urandom(1 << 20)
with tempfile.TemporaryFile() as f:
    f.write(payload)
    f.flush()
    server = socket.create_server(("127.0.0.1", 0))
    received = []

    def reader(port):
        with socket.create_connection(("127.0.0.1", port)) as c:
            while chunk := c.recv(1 << 16):
                received.append(chunk)

    t = threading.Thread(target=reader, args=(server.getsockname()[1],))
    t.start()
    conn, _ = server.accept()
    offset = calls = 0
    while offset < len(payload):
        try:
            n = sendfile(conn.fileno(), f.fileno(), offset, len(payload) - offset)
        except OSError as e:
            if e.errno != errno.EAGAIN:
                raise
            continue
        offset += n
        calls += 1
    conn.close()
    t.join()
    server.close()

data = b"".join(received)
print(
    json.dumps(
        {
            "find_library_c": found,
            "libc_handle_name": _libc._name,
            "sent": offset,
            "sendfile_calls": calls,
            "received": len(data),
            "sha256_match": hashlib.sha256(data).digest() == hashlib.sha256(payload).digest(),
            "spawned": spawned,
        }
    )
)
