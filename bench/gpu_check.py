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
from dataclasses import asdict
from pathlib import Path
from typing import Any

from streamrec.bench.gpu_parts import CheckConfig, Context, part_export, part_model, part_precision
from streamrec.bench.gpu_scale import part_ann, part_catalogue, part_e2e, part_trainer
from streamrec.errors import UserError

PARTS = ("export", "model", "precision", "catalogue", "ann", "trainer", "e2e")
SCHEMA = 1


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
