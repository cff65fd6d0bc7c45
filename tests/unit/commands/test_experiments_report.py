"""``streamrec experiments report`` against metrics endpoints served over HTTP (two workers): the
printed arms, the JSON written, and one line with a non-zero exit for what it cannot do."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from unit.core.test_experiment_report import WORKER_A, WORKER_B

from streamrec.cli import main

ARMS = "online:50:latest,frozen:25:version=v1,control:25:popularity"


@pytest.fixture
def endpoints() -> Iterator[list[str]]:
    bodies = {"/a/metrics": WORKER_A, "/b/metrics": WORKER_B}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = bodies.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.end_headers()
            self.wfile.write((body or "").encode())

        def log_message(self, *_args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    yield [f"{base}/a/metrics", f"{base}/b/metrics", f"{base}/nothing"]
    server.shutdown()


def test_report_prints_each_arm_and_writes_json(
    endpoints: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAMREC_EXPERIMENT__ARMS", ARMS)
    out_file = tmp_path / "results" / "report.json"
    argv = ["experiments", "report", "--metrics", endpoints[0], "--metrics", endpoints[1], "--json", str(out_file)]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "control: control" in lines[0]
    online = next(line for line in lines if line.startswith("online"))
    assert "hit@10  14.00%  events [" in online and "users [" in online
    versus = lines[lines.index(online) + 1]
    assert "vs control 4.00%  events [" in versus and "relative 40.00%  events [" in versus
    report = json.loads(out_file.read_text())
    assert report["metrics"] == endpoints[:2] and report["control"] == "control"
    assert [(a["arm"], a["events_with_feed"]) for a in report["arms"]] == [
        ("online", 1000),
        ("frozen", 0),
        ("control", 1000),
    ]


def test_what_it_cannot_do_is_one_line_and_a_non_zero_exit(
    endpoints: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["experiments", "report", "--metrics", endpoints[2]]) == 1  # HTTP 404
    assert main(["experiments", "report", "--metrics", endpoints[0], "--json", str(tmp_path)]) == 2  # a directory
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 2 and all(e.startswith("streamrec experiments: error: ") for e in errors)
    assert "HTTP 404" in errors[0] and str(tmp_path) in errors[1]
