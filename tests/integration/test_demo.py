"""``streamrec demo`` in a small bounded run: it finishes, processes every produced event,
promotes at least one model version, writes its summary and plot, and leaves no process
behind."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _descendants(pid: int) -> set[int]:
    out = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True, check=True).stdout
    children: dict[int, list[int]] = {}
    for line in out.splitlines():
        p, pp = (int(x) for x in line.split())
        children.setdefault(pp, []).append(p)
    found, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            found.add(c)
            todo.append(c)
    return found


def test_small_demo_processes_everything_and_promotes(tmp_path: Path) -> None:
    summary_path, plot_path = tmp_path / "summary.json", tmp_path / "plot.png"
    argv = [
        sys.executable, "-m", "streamrec.cli", "demo", "--no-live",
        "--max-events", "2500", "--rate", "500", "--initial-epochs", "1",
        "--summary", str(summary_path), "--plot", str(plot_path), "--data-dir", str(tmp_path / "state"),
        # a tiny model and a fast gate so the run fits a CI budget
        "--encoder-d-model", "32", "--encoder-n-layers", "1", "--encoder-text-model", "none",
        "--trainer-interval-s", "3", "--trainer-min-new-examples", "64", "--trainer-holdout-size", "128",
        "--trainer-tolerance", "1.0", "--worker-training-every-s", "1",
        # straight to everyone: a 5-second replay ends before a canary's users come back (test_canary.py)
        "--trainer-canary-share", "0",
    ]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen: set[int] = set()
    deadline = time.monotonic() + 540
    while proc.poll() is None and time.monotonic() < deadline:
        seen |= _descendants(proc.pid)
        time.sleep(1.0)
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, out[-3000:]

    summary = json.loads(summary_path.read_text())
    assert summary["events_produced"] == 2500
    assert summary["events_processed"] == summary["events_produced"]
    assert summary["promotions"] >= 1 and len(summary["model_versions"]) >= 2, summary
    assert summary["exit_codes"] == {"trainer": 0, "worker": 0}
    assert summary["latency_ms"]["p99"] is not None
    assert plot_path.stat().st_size > 10_000
    assert len(seen) >= 4, f"expected broker, redis, worker, trainer among {seen}"
    time.sleep(1.0)
    alive = [p for p in seen if Path(f"/proc/{p}").exists()]
    assert alive == [], f"processes left behind: {alive}"
