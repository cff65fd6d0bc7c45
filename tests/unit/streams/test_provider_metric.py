"""``streamrec_worker_provider_info``: what the worker scores on and why, one series at a time,
read back the way the benchmarks read it (bench/e2e_bench.worker_provider)."""

from __future__ import annotations

from streamrec.bench.e2e_bench import worker_provider
from streamrec.prom import parse
from streamrec.streams.metrics import WorkerMetrics

FALLBACK = "device=auto but no NVIDIA driver (libcuda.so.1 not found); falling back to CPU"


def test_the_provider_metric_says_why_and_keeps_one_series() -> None:
    metrics = WorkerMetrics()
    metrics.set_provider("CUDAExecutionProvider", "cuda", "device=auto: 1 CUDA device(s), using CUDA")
    metrics.set_provider("CPUExecutionProvider", "cpu", FALLBACK)  # a newer model came up on the CPU
    scrape = parse(metrics.exposition().decode())
    assert scrape.labelled["streamrec_worker_provider_info"] == [
        ({"provider": "CPUExecutionProvider", "device": "cpu", "reason": FALLBACK}, 1.0)
    ]
    assert worker_provider(scrape) == {"provider": "CPUExecutionProvider", "device": "cpu", "reason": FALLBACK}
    assert worker_provider(parse("")) == {}
