"""The GPU check's scale parts (bench/gpu_check.py runs them): sessions/s at 100k-10M items on
the device, ANN vs brute force (not built), the online learner's updates/s, one e2e worker run."""

from __future__ import annotations

import gc
import json
import time
from typing import Any

import numpy as np

from streamrec.bench.gpu_parts import Context, device_runner, sessions_batch


def _device_memory_mb(device: str) -> float | None:
    """Memory in use on the GPU (all allocators: onnxruntime's arena too), None on the CPU."""
    if device != "cuda":
        return None
    import torch

    free, total = torch.cuda.mem_get_info()
    return (total - free) / 2**20


def _synthetic(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Unit-norm float32 item vectors [n, d], generated in blocks (10M x 128 is 5 GB)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, d), np.float32)
    for start in range(0, n, 1_000_000):
        block = rng.standard_normal((min(1_000_000, n - start), d), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start : start + len(block)] = block
    return out


def part_catalogue(ctx: Context) -> dict[str, Any]:
    from streamrec.bench.model_bench import _time
    from streamrec.serving.item_index import ItemIndex

    c = ctx.cfg
    fp32, fp16 = device_runner(ctx), device_runner(ctx, fp16=True)
    sizes = []
    for n in c.catalogues:
        base = _device_memory_mb(c.device)
        t0 = time.perf_counter()
        matrix = _synthetic(n, c.d)
        cat = ItemIndex([f"i{i}" for i in range(n)], matrix, fp32.device).current
        build_s = time.perf_counter() - t0
        row: dict[str, Any] = {
            "items": n,
            "build_s": build_s,
            "matrix_bytes": matrix.nbytes,
            "item_matrix_on": cat.matrix_value.device_name(),
            "runs": [],
        }
        for b in c.batches:
            batch = sessions_batch(n, b, c.session_length)
            t32 = _time(lambda batch=batch, cat=cat: fp32._run(batch, cat, True), c.min_s)
            t16 = _time(lambda batch=batch, cat=cat: fp16._run(batch, cat, True), c.min_s)
            row["runs"].append(
                {
                    "batch": b,
                    "fp32_ms": 1e3 * t32,
                    "fp32_sessions_per_s": b / t32,
                    "fp16_ms": 1e3 * t16,
                    "fp16_sessions_per_s": b / t16,
                }
            )
        used = _device_memory_mb(c.device)
        row["device_memory_mb"] = None if used is None or base is None else {"before": base, "with_catalogue": used}
        sizes.append(row)
        print(f"   catalogue {n:,}: {json.dumps(row['runs'])}", flush=True)
        del cat, matrix
        gc.collect()
    return {"fp32_file": fp32.file_name, "fp16_file": fp16.file_name, "sizes": sizes}


def part_ann(_ctx: Context) -> dict[str, Any]:
    return {
        "status": "not built",
        "reason": "the runner scores by brute force over the item matrix (no ANN index in serving/ yet); "
        "the brute-force figures are under catalogue",
    }


def part_trainer(ctx: Context) -> dict[str, Any]:
    import torch

    from streamrec.contracts.training_batch import Example
    from streamrec.encoder.artifact import TrainedModel
    from streamrec.encoder.model import ModelConfig, Recommender
    from streamrec.encoder.online import OnlineLearner
    from streamrec.encoder.trainer import pick_device
    from streamrec.settings.encoder import EncoderSettings, TrainerSettings

    c = ctx.cfg
    settings = TrainerSettings()
    rng = np.random.default_rng(0)
    n_examples = settings.holdout_size + 8 * settings.update_batch
    examples = []
    for i in range(n_examples):
        items = [f"i{j}" for j in rng.integers(0, c.model_items, size=c.session_length)]
        examples.append(
            Example(f"u{i}", items, ["click"] * len(items), f"i{rng.integers(c.model_items)}", "click", 0, f"e{i}")
        )
    devices = [pick_device(c.device)] + ([torch.device("cpu")] if c.device == "cuda" else [])
    out: dict[str, Any] = {"update_batch": settings.update_batch, "n_negatives": EncoderSettings().n_negatives}
    for dev in devices:
        torch.manual_seed(0)
        model = Recommender(
            ModelConfig(d=c.d, n_layers=c.layers, session_length=c.session_length, n_items=c.model_items)
        )
        learner = OnlineLearner(TrainedModel(model, list(ctx.ids), {}), settings, EncoderSettings(), device=dev)
        learner.add(examples, time.time())
        learner.step()  # first step: kernels, allocator
        steps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < c.trainer_s:
            learner.step()
            steps += 1
        if dev.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        t1 = time.perf_counter()
        learner.gate()
        out[dev.type] = {
            "updates_per_s": steps / seconds,
            "examples_per_s": steps * settings.update_batch / seconds,
            "gate_s": time.perf_counter() - t1,
            "parameters_on": str(next(learner.model.parameters()).device),
        }
    return out


def part_e2e(ctx: Context) -> dict[str, Any]:
    if not ctx.cfg.e2e:
        return {"status": "skipped", "reason": "dry run (the e2e bench has its own tests)"}
    from streamrec.bench.e2e_bench import E2EConfig, run_e2e_bench
    from streamrec.config import Settings

    result = run_e2e_bench(Settings(device=ctx.cfg.device), E2EConfig.quick())  # type: ignore[arg-type]
    provider = result.get("worker_provider") or {}
    if provider.get("device") != ctx.cfg.device:
        raise RuntimeError(f"the worker scored on {provider.get('device')}, not {ctx.cfg.device}: {provider}")
    return {
        "worker_provider": provider,
        "events_per_s": result["events_per_s"],
        "latency_ms": result["latency_ms"],
        "loads": result["loads"],
        "config": result["config"],
    }
