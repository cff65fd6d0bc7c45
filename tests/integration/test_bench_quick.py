"""``streamrec bench --quick`` end to end (its own embedded broker, Redis and worker): the JSON has
the figures the issue names, measured by the worker, and the results page is written. The e2e
and model parts only (~1 min on 2 cores); the scaling part is covered by its unit-sized run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from streamrec.bench.scaling_bench import state_per_user, users_run

pytestmark = pytest.mark.integration


def test_quick_bench_writes_the_named_figures(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "streamrec.cli",
            "bench",
            "--quick",
            "--only",
            "e2e,model",
            "--loads",
            "250",
            "--json",
            str(out),
            "--results",
            str(tmp_path / "page"),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    res = json.loads(out.read_text())
    e2e = res["e2e"]
    assert e2e["events_per_s"] > 50
    assert e2e["latency_ms"]["p50"]["250"] > 0 and e2e["latency_ms"]["p99"]["250"] >= e2e["latency_ms"]["p50"]["250"]
    assert e2e["loads"][0]["events"] > 0 and e2e["loads"][0]["drained"]
    assert e2e["saturation"]["drained"]
    cores = e2e["saturation"]["worker_alone"]["cores"]  # CPU by process while the backlog drained
    assert {"worker", "broker", "redis", "producer (bench)"} <= set(cores) and cores["worker"] > 0
    ovt = res["model"]["onnx_vs_torch"]
    assert ovt["batch_1"] > 0 and ovt["batch_64"] > 0
    assert res["machine"]["cores"] >= 1 and res["machine"]["onnxruntime_providers"]
    assert (tmp_path / "page" / "RESULTS.md").exists()
    assert (tmp_path / "page" / "latency_vs_load.png").exists()


def test_state_per_user_grows_with_the_session_and_stays_bounded() -> None:
    rows = state_per_user(fills=(1, 10, 200), n=200)
    assert rows[0]["json_bytes"] < rows[1]["json_bytes"] < rows[2]["json_bytes"]
    assert rows[2]["items_kept"] == 50 and rows[2]["ids_kept"] == 128  # L and the dedupe window
    run = users_run(2000, events=2000)
    assert run["session_path_events_per_s"] > 0 and run["bytes_per_user"] > 0


def test_quick_api_bench_reads_every_feed(tmp_path: Path) -> None:
    """The API part against its own `streamrec api` process: both windows read real feeds."""
    out = tmp_path / "api.json"
    cmd = [sys.executable, "-m", "streamrec.cli", "bench", "--quick", "--only", "api", "--json", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    api = json.loads(out.read_text())["api"]
    for window in ("api", "direct_redis"):
        assert api[window]["errors"] == 0 and api[window]["requests"] > 0, api[window]
        assert api[window]["latency_ms"]["p99"] > 0
    assert api["api"]["cpu_ms_per_request"]["api"] > 0
    assert api["target"]["p99_ms"] == 5.0
