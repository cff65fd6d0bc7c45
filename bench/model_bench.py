"""Model-path benchmark: eager PyTorch vs onnxruntime for session tower + scoring + mask + TopK.

Both sides run the same :class:`ServingGraph` on the same pre-encoded sessions (full L=50, the
worst case), so the ratio is the runtime's alone; ``runner_events_per_s`` adds the runner's
id -> row mapping and result decoding. FLOPs per session are counted (2 per multiply-add):
2 layers x (24 L d^2 + 4 L^2 d) = 41.9 M + output layer 1.6 M + scoring 2 N d (12.8 M at
N = 50k), and reported as a fraction of this machine's ~176 GFLOP/s sgemm peak (2 cores).

The file is exported as the trainer exports it, returning a candidate pool of ``K x POOL``; the
runner is asked for ``K`` (the worker with MMR off). ``because_ms`` times what
``recommend(explain=True)`` does beyond ``recommend`` (:func:`streamrec.explain.because_rows` on the encoded batch and
its ids: each of the K items against its full 50-item session) and ``because_vs_scoring`` is its
share of the ``recommend`` time for the same batch, in the same run; ``mmr_ms`` times the
worker's MMR of the whole pool down to K (:mod:`streamrec.streams.postrank`).

``python -m streamrec.bench.model_bench [--quick] [--items N,..] [--batches B,..] [--out FILE]``;
``streamrec bench`` calls :func:`run_model_bench`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

PEAK_GFLOPS = 176.0  # measured sgemm peak of the 2-core reference machine (docs/architecture.md, known facts)
D, LAYERS, SESSION_LENGTH, K = 128, 2, 50, 20
POOL = 4  # the settings' default: models return K x POOL candidates
MMR_LAMBDA = 0.8  # any lambda < 1 costs the same


def synthetic_model(n_items: int, session_length: int = SESSION_LENGTH) -> tuple[Any, list[str], np.ndarray]:
    """A randomly initialised model of the default shape over ``n_items`` synthetic items (seed 0,
    so every bench that builds one gets the same weights) -> (model, item ids, item matrix [N, d])."""
    from streamrec.encoder.model import ModelConfig, Recommender

    torch.manual_seed(0)
    model = Recommender(ModelConfig(d=D, n_layers=LAYERS, session_length=session_length, n_items=n_items)).eval()
    with torch.no_grad():
        matrix = model.items().numpy()
    return model, [f"i{i}" for i in range(n_items)], matrix


def session_flops(n_items: int, d: int = D, layers: int = LAYERS, session_length: int = SESSION_LENGTH) -> float:
    per_layer = 24 * session_length * d * d + 4 * session_length * session_length * d
    return layers * per_layer + 2 * session_length * d * d + 2 * n_items * d


def _time(fn: Callable[[], object], min_s: float, min_reps: int = 5) -> float:
    """Median seconds per call after one warm-up call, over at least ``min_s`` seconds."""
    fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_reps or time.perf_counter() - start < min_s:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _swap_pause(runner_dir: Path, other_dir: Path, batch: tuple[list[list[str]], list[list[str]]]) -> dict[str, Any]:
    """Serve batches in a loop while another thread loads, verifies, warms and swaps in a new
    version; report the worst batch latency during the swap against the median before it."""
    from streamrec.serving.runner import Runner
    from streamrec.streams.model_slot import ModelSlot

    slot = ModelSlot()  # what the worker swaps with
    slot.swap(Runner.load(runner_dir, "cpu"))
    latencies: list[tuple[float, float, str]] = []
    errors: list[str] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            t0 = time.perf_counter()
            try:
                runner = slot.current  # read once per batch, as the worker's pipeline does
                assert runner is not None
                version, recs = runner.version, runner.recommend(*batch)
                if len(recs) != len(batch[0]):
                    errors.append("short result")
            except Exception as exc:  # the point is to count them
                errors.append(repr(exc))
                version = "error"
            latencies.append((t0, time.perf_counter() - t0, version))

    thread = threading.Thread(target=serve)
    thread.start()
    time.sleep(1.0)
    swap_start = time.perf_counter()
    slot.swap(Runner.load(other_dir, "cpu"))
    swap_end = time.perf_counter()
    time.sleep(0.5)
    stop.set()
    thread.join()
    before = [lat for t, lat, _ in latencies if t + lat < swap_start]
    during = [lat for t, lat, _ in latencies if t + lat >= swap_start and t <= swap_end]
    median = statistics.median(before)
    return {
        "swap_load_s": swap_end - swap_start,
        "batch_median_ms": 1e3 * median,
        "batch_max_during_swap_ms": 1e3 * max(during, default=0.0),
        "max_gap_ratio": max(during, default=0.0) / median,
        "errors": len(errors),
        "versions_served": sorted({v for *_, v in latencies}),
    }


def _post_rank(runner: Any, sessions: list[list[str]], kinds: list[list[str]], min_s: float) -> dict[str, float]:
    """The runner's time for a batch (``K`` results, the worker's call with MMR off), what
    ``because`` adds to it, and the worker's MMR of the pool to K on the same batch."""
    from streamrec.explain import because_rows
    from streamrec.serving.item_index import encode_sessions
    from streamrec.streams.postrank import Ranked, diversify

    t_score = _time(lambda: runner.recommend(sessions, kinds, K), min_s)
    cat = runner._index.current
    batch = encode_sessions(cat, sessions, kinds, runner.session_length, trim=True)
    top = runner._run(batch, cat, True)[1][:, :K]
    t_because = _time(
        lambda: [[cat.ids[r] for r in row] for row in because_rows(cat.matrix, batch.items, batch.mask, top)], min_s
    )
    pools = [Ranked(*r) for r in runner.recommend(sessions, kinds, K * POOL, explain=True)]
    t_mmr = _time(lambda: diversify(runner, pools, K, MMR_LAMBDA), min_s)
    return {
        "runner_ms": 1e3 * t_score,
        "because_ms": 1e3 * t_because,
        "because_vs_scoring": t_because / t_score,
        "mmr_ms": 1e3 * t_mmr,
        "mmr_vs_scoring": t_mmr / t_score,
    }


def run_model_bench(
    quick: bool = False,
    out: Path | None = None,
    catalogues: list[int] | None = None,
    batches: list[int] | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """Run the benchmark; returns (and writes to ``out`` when given) a JSON-able dict.
    ``catalogues``/``batches`` replace the default grids (``streamrec bench`` asks for 10k-1M);
    ``device`` is the runner's (auto|cuda|cpu: the CUDA provider on a GPU machine)."""
    from streamrec.export.exporter import export_model
    from streamrec.export.serving_graph import ServingGraph
    from streamrec.serving.item_index import EncodedBatch
    from streamrec.serving.registry import LocalRegistry
    from streamrec.serving.runner import Runner

    torch.set_num_threads(os.cpu_count() or 1)
    catalogues = catalogues or ([50_000] if quick else [10_000, 50_000])
    batches = batches or ([1, 64] if quick else [1, 16, 64, 256])
    min_s = 0.5 if quick else 2.0
    result: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor(), "torch": torch.__version__},
        "model": {"d": D, "layers": LAYERS, "session_length": SESSION_LENGTH, "k": K, "exported_k": K * POOL},
        "peak_gflops": PEAK_GFLOPS,
        "runs": [],
    }
    result["machine"]["runner_device"] = ""
    with tempfile.TemporaryDirectory() as tmp:
        registry = LocalRegistry(Path(tmp))
        for n in catalogues:
            model, ids, matrix = synthetic_model(n)
            t0 = time.perf_counter()
            ref = export_model(model.session, ids, matrix, registry, k=K * POOL, session_length=SESSION_LENGTH).ref
            export_s = time.perf_counter() - t0
            runner = Runner.load(ref.uri, device)  # type: ignore[arg-type]
            result["machine"]["runner_device"] = runner.device
            # the int8-scoring file where the runner is on the CPU, at every size (the worker's
            # default uses it from registry.int8_min_items items)
            int8 = Runner.load(ref.uri, device, int8=True) if runner.device == "cpu" else None  # type: ignore[arg-type]
            graph = ServingGraph(model.session, K * POOL).eval()
            size = (Path(ref.uri) / "session.onnx").stat().st_size
            rng = np.random.default_rng(0)
            flops = session_flops(n)
            for b in batches:
                items = rng.integers(0, n, size=(b, SESSION_LENGTH), dtype=np.int64)
                types = rng.integers(1, 5, size=(b, SESSION_LENGTH), dtype=np.int64)
                mask = np.ones((b, SESSION_LENGTH), bool)
                batch = EncodedBatch(items, types, mask, list(range(b)))
                cat = runner._index.current
                targs = (
                    *(torch.from_numpy(a) for a in (items, types, mask, matrix)),
                    torch.zeros(n),
                    torch.tensor(True),
                )

                def eager(targs: tuple = targs, graph: ServingGraph = graph) -> object:
                    with torch.inference_mode():
                        return graph(*targs)

                def onnx(batch: EncodedBatch = batch, cat: object = cat, runner: Runner = runner) -> object:
                    return runner._run(batch, cat, True)  # type: ignore[arg-type]

                def onnx_int8(batch: EncodedBatch = batch, runner: Runner | None = int8) -> object:
                    return runner._run(batch, runner._index.current, True)  # type: ignore[union-attr]

                sessions = [[ids[i] for i in row] for row in items]
                kinds = [["click"] * SESSION_LENGTH] * b
                t_eager = _time(eager, min_s)
                t_onnx = _time(onnx, min_s)
                post = _post_rank(runner, sessions, kinds, min_s)
                t_int8 = _time(onnx_int8, min_s) if int8 is not None else math.nan
                result["runs"].append(
                    {
                        "items": n,
                        "batch": b,
                        "eager_ms": 1e3 * t_eager,
                        "onnx_ms": 1e3 * t_onnx,
                        "speedup": t_eager / t_onnx,
                        "eager_events_per_s": b / t_eager,
                        "onnx_events_per_s": b / t_onnx,
                        "onnx_int8_ms": 1e3 * t_int8,  # NaN off the CPU
                        "int8_speedup": t_onnx / t_int8,
                        "runner_events_per_s": 1e3 * b / post["runner_ms"],
                        **post,
                        "onnx_gflops": flops * b / t_onnx / 1e9,
                        "onnx_peak_fraction": flops * b / t_onnx / 1e9 / PEAK_GFLOPS,
                        "eager_peak_fraction": flops * b / t_eager / 1e9 / PEAK_GFLOPS,
                    }
                )
                print(json.dumps(result["runs"][-1]), flush=True)
            result.setdefault("export", {})[str(n)] = {"seconds": export_s, "session_onnx_bytes": size}
            if n == 50_000:
                other = export_model(model.session, ids, matrix, registry, k=K, session_length=SESSION_LENGTH).ref
                swap_batch = (
                    [[ids[i] for i in row] for row in rng.integers(0, n, (64, SESSION_LENGTH))],
                    [["click"] * SESSION_LENGTH] * 64,
                )
                result["swap"] = _swap_pause(Path(ref.uri), Path(other.uri), swap_batch)
    by = {(r["items"], r["batch"]): r for r in result["runs"]}
    if (50_000, 1) in by and (50_000, 64) in by:
        result["targets"] = _targets(by, result)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp_out = out.with_name(out.name + ".tmp")
        tmp_out.write_text(json.dumps(result, indent=1))
        tmp_out.rename(out)
    return result


def _targets(by: dict[tuple[int, int], dict[str, Any]], result: dict[str, Any]) -> dict[str, Any]:
    eager_1 = by[(50_000, 1)]["eager_events_per_s"]
    return {
        "onnx_vs_eager_batch1_50k": by[(50_000, 1)]["speedup"],
        "onnx_vs_eager_batch64_50k": by[(50_000, 64)]["speedup"],
        "onnx_batch64_vs_eager_per_event_50k": by[(50_000, 64)]["onnx_events_per_s"] / eager_1,
        "session_onnx_mb": result["export"]["50000"]["session_onnx_bytes"] / 1e6,
    }


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50k items, batch 1 and 64, short timings")
    parser.add_argument("--items", type=_ints, help="catalogue sizes, comma-separated (default 10000,50000)")
    parser.add_argument("--batches", type=_ints, help="batch sizes, comma-separated (default 1,16,64,256)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/model_bench.json"))
    args = parser.parse_args()
    result = run_model_bench(args.quick, args.out, args.items, args.batches)
    print(json.dumps({"targets": result.get("targets"), "swap": result.get("swap")}, indent=1))


if __name__ == "__main__":
    main()
