"""A tiny HTTP endpoint for non-faust processes (the trainer): ``/metrics`` (Prometheus
text), ``/healthz`` (the process answers) and ``/readyz`` (:func:`streamrec.readiness.readyz`
over its own check), on a daemon thread so it never blocks the work loop."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, generate_latest

from streamrec.contracts import compact_json
from streamrec.readiness import readyz


def serve_status(port: int, registry: CollectorRegistry, not_ready: Callable[[], list[str]]) -> ThreadingHTTPServer:
    """Serve on ``port``; ``not_ready`` returns the reasons the process is not ready (none: ready)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                body, status, ctype = generate_latest(registry), 200, "text/plain; version=0.0.4; charset=utf-8"
            elif self.path == "/healthz":
                body, status, ctype = b"ok\n", 200, "text/plain"
            elif self.path == "/readyz":
                status, obj = readyz(not_ready())
                body, ctype = compact_json.dumps(obj), "application/json"
            else:
                body, status, ctype = b"not found\n", 404, "text/plain"
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:  # scrapes every few seconds: keep logs quiet
            return

    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    threading.Thread(target=server.serve_forever, name="status-http", daemon=True).start()
    return server
