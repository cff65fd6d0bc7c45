"""What one promotion ships, and what swapping it into a serving worker costs, by catalogue size.

A promotion of the default model (d=128, 2 layers, L=50, K=20, ID-only: no ``text.onnx``) is
exported as the trainer exports it (``session.onnx``, the default int8 variant, ``items.npy``,
``item_ids.json``, ``trained_rows.npy``, ``meta.json``); the hybrid's co-occurrence base table
(``cooccurrence.npz``) is left out: its size is set by the log and the hybrid's settings, not by
the catalogue. The swap is the worker's: a second version is loaded (checksums verified, the
onnxruntime session opened, the catalogue bound, warm-up batches run) and swapped into a
:class:`ModelSlot` while another thread serves batches of 64 sessions from the first
(:func:`streamrec.bench.model_bench._swap_pause`, fp32 file); the load of the int8 variant, which
the worker serves on CPU from ``registry.int8_min_items`` items, is timed separately.

``python -m streamrec.bench.promotion_bench --out bench/promotion.json [--items 50000,1000000]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from streamrec.bench.model_bench import LAYERS, SESSION_LENGTH, D, K, _swap_pause, synthetic_model


def measure(n: int, registry_root: Path) -> dict[str, Any]:
    """Sizes, export time, swap pause and int8 load time at ``n`` items."""
    from streamrec.export.exporter import export_model
    from streamrec.serving.registry import LocalRegistry
    from streamrec.serving.runner import Runner

    registry = LocalRegistry(registry_root)
    model, ids, matrix = synthetic_model(n)
    trained = np.ones(n, np.bool_)
    refs, export_s = [], []
    for _ in range(2):  # the served version and the promoted one
        t0 = time.perf_counter()
        refs.append(
            export_model(model.session, ids, matrix, registry, k=K, session_length=SESSION_LENGTH, trained_rows=trained)
        )
        export_s.append(time.perf_counter() - t0)
    served, promoted = (Path(r.ref.uri) for r in refs)
    files = {p.name: p.stat().st_size for p in sorted(promoted.iterdir())}
    rng = np.random.default_rng(0)
    batch = (
        [[ids[i] for i in row] for row in rng.integers(0, n, (64, SESSION_LENGTH))],
        [["click"] * SESSION_LENGTH] * 64,
    )
    swap = _swap_pause(served, promoted, batch)
    t0 = time.perf_counter()
    Runner.load(promoted, "cpu", int8=True)
    int8_load_s = time.perf_counter() - t0
    return {
        "items": n,
        "files_bytes": files,
        "total_bytes": sum(files.values()),
        "export_s": export_s,
        "swap": swap,
        "int8_load_s": int8_load_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", default="50000,1000000", help="comma-separated catalogue sizes")
    parser.add_argument("--out", type=Path, default=Path("bench/promotion.json"))
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    result: dict[str, Any] = {
        "command": "python -m streamrec.bench.promotion_bench " + f"--items {args.items} --out {args.out}",
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor(), "torch": torch.__version__},
        "model": {"d": D, "layers": LAYERS, "session_length": SESSION_LENGTH, "k": K, "text": False},
        "runs": [],
    }
    for n in (int(x) for x in args.items.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            result["runs"].append(measure(n, Path(tmp)))
        print(json.dumps(result["runs"][-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
