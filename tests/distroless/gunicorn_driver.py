"""Run inside the image: start gunicorn on 127.0.0.1, make HTTP requests, stop it with SIGTERM.

``python3 -c <this file> '{"args": [gunicorn args without --bind], "requests": 4}'``: runs
``python3 -m gunicorn --bind 127.0.0.1:<free port> ARGS``. The driver and gunicorn
share the namespace's loopback; nothing outside can reach them. Prints one JSON object with
the parsed responses, gunicorn's exit code and the tail of its log.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time

req = json.loads(sys.argv[1])
with socket.socket() as s:  # a free port on the namespace's loopback
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
log_path = f"/tmp/gunicorn-{os.getuid()}-{port}.log"
cmd = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", *req["args"]]
out = {"cmd": cmd, "responses": []}
with open(log_path, "w") as log:
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
try:
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    for _ in range(req.get("requests", 4)):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/")
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        out["responses"].append({"status": resp.status, "json": json.loads(body)})
except Exception as e:  # report, then still stop gunicorn below
    out["error"] = f"{type(e).__name__}: {e}"
finally:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        out["rc"] = proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out["rc"] = "killed after SIGTERM timeout"
with open(log_path) as log:
    out["log_tail"] = log.read()[-3000:]
print(json.dumps(out))
