"""The GPU check's shared pieces and its model parts (bench/gpu_check.py runs them): the config,
the context the parts share, ``export``, ``model`` (onnxruntime vs eager torch on the device) and
``precision`` (fp16 vs fp32). The catalogue, trainer and e2e parts: bench/gpu_scale.py."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class CheckConfig:
    device: str = "cuda"
    d: int = 128
    layers: int = 2
    session_length: int = 50
    k: int = 20
    model_items: int = 50_000
    batches: tuple[int, ...] = (1, 64)
    catalogues: tuple[int, ...] = (100_000, 1_000_000, 10_000_000)
    min_s: float = 1.0  # timing window per measurement
    trainer_s: float = 5.0  # update loop per device
    e2e: bool = True
    # seconds per part; the whole run also stops at --budget-s (bench/gpu_check.sh: 8 minutes in all)
    boxes: dict[str, float] = field(
        default_factory=lambda: {
            "export": 60,
            "model": 45,
            "precision": 40,
            "catalogue": 120,
            "ann": 5,
            "trainer": 30,
            "e2e": 150,
        }
    )

    @classmethod
    def dry_run(cls) -> CheckConfig:
        """Every part but e2e, on the CPU, at sizes that take seconds."""
        return cls(
            device="cpu",
            d=16,
            layers=1,
            session_length=8,
            k=5,
            model_items=500,
            catalogues=(1_000, 2_000),
            min_s=0.02,
            trainer_s=0.3,
            e2e=False,
        )


@dataclass
class Context:
    """What the parts share: the config, a scratch directory, the exported artifact."""

    cfg: CheckConfig
    tmp: Path
    artifact: Path | None = None
    model: Any = None  # the Recommender the artifact was exported from
    matrix: np.ndarray | None = None
    ids: list[str] = field(default_factory=list)

    def need_artifact(self) -> Path:
        if self.artifact is None:
            raise RuntimeError("no artifact: the export part did not finish")
        return self.artifact


def part_export(ctx: Context) -> dict[str, Any]:
    import torch

    from streamrec.encoder.model import ModelConfig, Recommender
    from streamrec.export.exporter import export_model
    from streamrec.serving.registry import LocalRegistry

    c = ctx.cfg
    torch.manual_seed(0)
    ctx.model = Recommender(
        ModelConfig(d=c.d, n_layers=c.layers, session_length=c.session_length, n_items=c.model_items)
    ).eval()
    with torch.no_grad():
        ctx.matrix = ctx.model.items().numpy()
    ctx.ids = [f"i{i}" for i in range(c.model_items)]
    registry = LocalRegistry(ctx.tmp / "registry")
    t0 = time.perf_counter()
    result = export_model(
        ctx.model.session, ctx.ids, ctx.matrix, registry, k=c.k, session_length=c.session_length, fp16=True, int8=False
    )
    ctx.artifact = Path(result.ref.uri)
    return {
        "seconds": time.perf_counter() - t0,
        "items": c.model_items,
        "files": result.size_bytes,
        "parity": [r.as_dict() for r in result.parity],
    }


def sessions_batch(n_items: int, b: int, session_length: int, seed: int = 0) -> Any:
    from streamrec.serving.item_index import EncodedBatch

    rng = np.random.default_rng(seed + b)
    items = rng.integers(0, n_items, size=(b, session_length), dtype=np.int64)
    types = rng.integers(1, 5, size=(b, session_length), dtype=np.int64)
    return EncodedBatch(items, types, np.ones((b, session_length), np.bool_), list(range(b)))


def device_runner(ctx: Context, fp16: bool = False) -> Any:
    from streamrec.serving.runner import Runner

    runner = Runner.load(ctx.need_artifact(), ctx.cfg.device, fp16=fp16)  # type: ignore[arg-type]
    if runner.device != ctx.cfg.device:
        raise RuntimeError(f"the runner is on {runner.device}, not {ctx.cfg.device}: {runner.choice.reason}")
    return runner


def _describe(runner: Any) -> dict[str, Any]:
    cat = runner._index.current
    return {
        "device": runner.device,
        "file": runner.file_name,
        "providers": runner.session.get_providers(),
        "item_matrix_on": cat.matrix_value.device_name(),  # IO binding: the matrix stays on the device
    }


def part_model(ctx: Context) -> dict[str, Any]:
    import torch

    from streamrec.bench.model_bench import _time
    from streamrec.export.serving_graph import ServingGraph

    c = ctx.cfg
    runner = device_runner(ctx)
    dev = torch.device(c.device)
    graph = ServingGraph(copy.deepcopy(ctx.model.session).to(dev), c.k).eval()
    matrix = torch.from_numpy(ctx.matrix).to(dev)
    bias, exclude = torch.zeros(c.model_items, device=dev), torch.tensor(True, device=dev)
    cat = runner._index.current
    runs = []
    for b in c.batches:
        batch = sessions_batch(c.model_items, b, c.session_length)
        inputs = tuple(torch.from_numpy(a).to(dev) for a in (batch.items, batch.types, batch.mask))

        def eager(inputs: tuple = inputs) -> object:
            with torch.inference_mode():
                scores, indices, _ = graph(*inputs, matrix, bias, exclude)
                return scores.cpu(), indices.cpu()  # the B x K results reach the host, as the runner's do

        def onnx(batch: Any = batch) -> object:
            return runner._run(batch, cat, True)

        for _ in range(3):  # CUDA's first calls set up handles, kernels and allocators
            eager(), onnx()
        t_eager, t_onnx = _time(eager, c.min_s), _time(onnx, c.min_s)
        runs.append(
            {
                "batch": b,
                "eager_torch_ms": 1e3 * t_eager,
                "onnxruntime_ms": 1e3 * t_onnx,
                "onnxruntime_vs_torch": t_eager / t_onnx,
                "onnxruntime_sessions_per_s": b / t_onnx,
            }
        )
    return {"items": c.model_items, "runner": _describe(runner), "runs": runs}


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Mean share of each row's top-K indices that ``a`` and ``b`` have in common."""
    return float(np.mean([len(set(x) & set(y)) / len(x) for x, y in zip(a.tolist(), b.tolist(), strict=True)]))


def part_precision(ctx: Context) -> dict[str, Any]:
    from streamrec.bench.model_bench import _time

    c = ctx.cfg
    fp32, fp16 = device_runner(ctx), device_runner(ctx, fp16=True)
    cat32, cat16 = fp32._index.current, fp16._index.current
    runs = []
    for b in c.batches:
        batch = sessions_batch(c.model_items, b, c.session_length)
        t32 = _time(lambda batch=batch: fp32._run(batch, cat32, True), c.min_s)
        t16 = _time(lambda batch=batch: fp16._run(batch, cat16, True), c.min_s)
        runs.append({"batch": b, "fp32_ms": 1e3 * t32, "fp16_ms": 1e3 * t16, "fp16_speedup": t32 / t16})
    batch = sessions_batch(c.model_items, 256, c.session_length, seed=1)
    agreement = _overlap(fp32._run(batch, cat32, True)[1], fp16._run(batch, cat16, True)[1])
    return {
        "items": c.model_items,
        "fp32": _describe(fp32),
        "fp16": _describe(fp16),
        "runs": runs,
        f"top{c.k}_agreement_fp16_vs_fp32": agreement,
        "agreement_sessions": 256,
    }
