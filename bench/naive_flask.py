"""Baseline: server-sent events the way a Flask tutorial does it.

The development server with a thread per connection, and a generator per
viewer that calls psutil itself every second and yields one `data:` frame.
This is what people would pick instead of the dashboard; it is here to be
measured, not copied.

    python bench/naive_flask.py <port> [host]
"""

import itertools
import json
import os
import socket
import sys
import time

import psutil
from flask import Flask, Response

app = Flask(__name__)
HOST_NAME = socket.gethostname()


def snapshot(seq: int) -> dict:
    # What a tutorial's "live system monitor" reads, per viewer, every second.
    memory = psutil.virtual_memory()
    disk = psutil.disk_usage("/")
    net = psutil.net_io_counters()
    return {
        "ts": time.time(),
        "seq": seq,
        "host": HOST_NAME,
        "cpu": {"total": psutil.cpu_percent(), "cores": psutil.cpu_percent(percpu=True)},
        "load": os.getloadavg(),
        "memory": memory._asdict(),
        "disk": disk._asdict(),
        "net": net._asdict(),
        # Padding to about the size of the dashboard's metrics event (~1.45 KB
        # in its compact form: it also lists top processes, per-disk and
        # per-interface figures), so every server writes about the same bytes.
        "padding": "x" * 750,
    }


@app.route("/healthz")
def healthz():
    return {"status": "ok"}


@app.route("/events")
def events():
    def stream():
        for seq in itertools.count(1):
            yield f"id: {seq}\ndata: {json.dumps(snapshot(seq))}\n\n"
            time.sleep(1)

    return Response(stream(), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache"})


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    app.run(host=host, port=port, threaded=True, debug=False, use_reloader=False)
