"""The GPU check: what the CUDA path does on a GPU machine, in one JSON (``bench/gpu_check.sh``
installs what it needs and runs this).

Parts, in this order, each time-boxed (a part that fails or runs out of time is recorded with its
error and the next one still runs; the JSON is rewritten after each part, so a killed run keeps
what it measured):

* ``export``: a randomly initialised tower of the default shape exported through the normal
  exporter with the fp16 variant (the cost per session does not depend on training);
* ``model``: onnxruntime on the device vs eager torch on the same device, the same serving graph,
  at batch 1 and 64 (target: onnxruntime CUDA >= 3x eager torch at batch 1);
* ``precision``: the fp16 serving file vs fp32, speed and top-K agreement;
* ``catalogue``: sessions/s at 100k, 1M and 10M items (synthetic vectors, bound on the device);
* ``ann``: ANN vs brute force; recorded as not built while the runner has no ANN index;
* ``trainer``: online-learner updates/s on the device (and on the CPU for reference);
* ``e2e``: one end-to-end worker run (bench/e2e_bench.py, quick config) with the worker's device.

``--device cuda`` (the default) refuses to start without a usable GPU (one line, exit 2);
``--dry-run`` runs every part but e2e on the CPU at tiny sizes in seconds (the schema's test).
``python -m streamrec.bench.gpu_check [--dry-run] [--out FILE] [--budget-s S]``
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from streamrec.errors import UserError

PARTS = ("export", "model", "precision", "catalogue", "ann", "trainer", "e2e")
SCHEMA = 1


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


class PartTimeout(Exception):
    """A part ran past its time box."""


@contextlib.contextmanager
def time_box(seconds: float) -> Iterator[None]:
    """Raise :class:`PartTimeout` in the main thread after ``seconds`` (SIGALRM: a long C call
    ends first; the shell script's outer ``timeout`` covers one that never does)."""

    def expire(_signum: int, _frame: object) -> None:
        raise PartTimeout(f"ran past its {seconds:.0f} s time box")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


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


# ------------------------------------------------------------------------------------ device
def require_device(device: str) -> dict[str, Any]:
    """Check that onnxruntime and torch can both run on ``device``; raises UserError (one line)
    otherwise. Returns what they run on."""
    import torch

    from streamrec.encoder.trainer import pick_device
    from streamrec.serving.providers import choose_providers

    choice = choose_providers("cuda" if device == "cuda" else "cpu")
    torch_device = pick_device(device)
    return {"onnxruntime": choice.reason, "torch": f"{torch_device} (torch {torch.__version__})"}


def machine(device: str) -> dict[str, Any]:
    import onnxruntime as ort
    import torch

    out: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "onnxruntime": ort.__version__,
        "onnxruntime_cuda": getattr(ort, "cuda_version", "") or None,
        "onnxruntime_providers": ort.get_available_providers(),
        "device": device,
    }
    if shutil.which("nvidia-smi"):
        query = "--query-gpu=name,driver_version,memory.total"
        got = subprocess.run(["nvidia-smi", query, "--format=csv,noheader"], capture_output=True, text=True)
        out["gpus"] = [line.strip() for line in got.stdout.splitlines() if line.strip()]
    return out


# ------------------------------------------------------------------------------------- parts
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


def _batch(n_items: int, b: int, session_length: int, seed: int = 0) -> Any:
    from streamrec.serving.item_index import EncodedBatch

    rng = np.random.default_rng(seed + b)
    items = rng.integers(0, n_items, size=(b, session_length), dtype=np.int64)
    types = rng.integers(1, 5, size=(b, session_length), dtype=np.int64)
    return EncodedBatch(items, types, np.ones((b, session_length), np.bool_), list(range(b)))


def _runner(ctx: Context, fp16: bool = False) -> Any:
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
    runner = _runner(ctx)
    dev = torch.device(c.device)
    graph = ServingGraph(copy.deepcopy(ctx.model.session).to(dev), c.k).eval()
    matrix = torch.from_numpy(ctx.matrix).to(dev)
    bias, exclude = torch.zeros(c.model_items, device=dev), torch.tensor(True, device=dev)
    cat = runner._index.current
    runs = []
    for b in c.batches:
        batch = _batch(c.model_items, b, c.session_length)
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
    fp32, fp16 = _runner(ctx), _runner(ctx, fp16=True)
    cat32, cat16 = fp32._index.current, fp16._index.current
    runs = []
    for b in c.batches:
        batch = _batch(c.model_items, b, c.session_length)
        t32 = _time(lambda batch=batch: fp32._run(batch, cat32, True), c.min_s)
        t16 = _time(lambda batch=batch: fp16._run(batch, cat16, True), c.min_s)
        runs.append({"batch": b, "fp32_ms": 1e3 * t32, "fp16_ms": 1e3 * t16, "fp16_speedup": t32 / t16})
    batch = _batch(c.model_items, 256, c.session_length, seed=1)
    agreement = _overlap(fp32._run(batch, cat32, True)[1], fp16._run(batch, cat16, True)[1])
    return {
        "items": c.model_items,
        "fp32": _describe(fp32),
        "fp16": _describe(fp16),
        "runs": runs,
        f"top{c.k}_agreement_fp16_vs_fp32": agreement,
        "agreement_sessions": 256,
    }


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
    fp32, fp16 = _runner(ctx), _runner(ctx, fp16=True)
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
            batch = _batch(n, b, c.session_length)
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


PART_FNS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "export": part_export,
    "model": part_model,
    "precision": part_precision,
    "catalogue": part_catalogue,
    "ann": part_ann,
    "trainer": part_trainer,
    "e2e": part_e2e,
}


# ------------------------------------------------------------------------------------ driver
def run_part(name: str, ctx: Context, seconds: float) -> dict[str, Any]:
    """One part in its time box: ``{"status": ok|error|timeout|..., "seconds", ...}``."""
    if seconds <= 1:
        return {"status": "timeout", "error": "not started: the run's budget was spent", "seconds": 0.0}
    print(f"── gpu check: {name} (at most {seconds:.0f} s)", flush=True)
    t0 = time.perf_counter()
    try:
        with time_box(seconds):
            out = PART_FNS[name](ctx)
        out.setdefault("status", "ok")
    except PartTimeout as exc:
        out = {"status": "timeout", "error": str(exc)}
    except Exception as exc:  # the JSON says what failed; the next part still runs
        out = {"status": "error", "error": f"{type(exc).__name__}: {exc}"[:2000]}
    out["seconds"] = time.perf_counter() - t0
    print(f"   {name}: {out['status']} in {out['seconds']:.1f} s", flush=True)
    return out


def targets(parts: dict[str, Any]) -> dict[str, Any]:
    """The issue's GPU target: onnxruntime CUDA >= 3x eager torch at batch 1."""
    runs = {r["batch"]: r for r in (parts.get("model") or {}).get("runs", [])}
    ratio = runs.get(1, {}).get("onnxruntime_vs_torch")
    return {
        "device": (parts.get("model") or {}).get("runner", {}).get("device"),
        "onnxruntime_vs_torch_batch1": ratio,
        "onnxruntime_vs_torch_batch1_ge_3": None if ratio is None else ratio >= 3,
    }


def write_json(result: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(result, indent=2, default=str) + "\n")
    tmp.replace(out)


def run_check(cfg: CheckConfig, out: Path, budget_s: float = 420.0) -> dict[str, Any]:
    """Run every part within ``budget_s`` in all; returns the result written to ``out``."""
    deadline = time.monotonic() + budget_s
    result: dict[str, Any] = {
        "schema": SCHEMA,
        "command": "python -m streamrec.bench.gpu_check " + " ".join(sys.argv[1:]),
        "started": time.time(),
        "config": asdict(cfg),
        "checked": require_device(cfg.device),
        "machine": machine(cfg.device),
        "parts": {},
    }
    with tempfile.TemporaryDirectory(prefix="streamrec-gpu-check-") as tmp:
        ctx = Context(cfg, Path(tmp))
        for name in PARTS:
            result["parts"][name] = run_part(name, ctx, min(cfg.boxes[name], deadline - time.monotonic()))
            write_json(result, out)
    result["targets"] = targets(result["parts"])
    result["ok"] = all(p["status"] in ("ok", "not built", "skipped") for p in result["parts"].values())
    write_json(result, out)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/gpu_check.json"))
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU, no e2e (seconds)")
    parser.add_argument("--budget-s", type=float, default=420.0, help="stop starting parts after this many seconds")
    args = parser.parse_args(argv)
    cfg = CheckConfig.dry_run() if args.dry_run else CheckConfig(device=args.device)
    try:
        result = run_check(cfg, args.out, args.budget_s)
    except UserError as exc:
        print(f"gpu_check: {exc}", file=sys.stderr)
        return 2
    print(f"results written to {args.out}: " + ", ".join(f"{k} {v['status']}" for k, v in result["parts"].items()))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
