"""The text tower's targets (issue #17), measured: ``text.onnx`` against torch on real item texts,
embedding speed onnxruntime vs the torch path, and new item -> recommendable on the embedded stack.

* ``parity``: the first ``--n-parity`` item texts of ``--items`` (title, category and text as the
  text model reads them), through ``text.onnx`` the way serving runs it (``tokenizers`` +
  onnxruntime) and through eager torch (``transformers`` tokenizer + MiniLM + the same pooling and
  projection): max abs error of both outputs, and the overlap of each item's top-20 neighbours
  (cosine of the item vectors, itself excluded). The projection is a seeded, untrained
  ``TextProjection`` (d=128): parity is about the exported graph, not what training learned.
* ``speed``: ``--n-speed`` texts (the item texts repeated) embedded once each way: the torch path
  (``encoder.text.TextModel.embed``, batches of 64 in input order) and the serving path
  (``TextTower.embed``: batches of 64, sorted by length), plus the serving path in input order,
  to show what the sorting is worth; one run each (in slices of 2,000, the arms interleaved so load
  from other processes hits all alike), wall clock, on this machine.
* ``latency``: a stack (embedded broker and Redis, one worker) serving a model trained for
  2 epochs on the sample data with the real MiniLM and exported with ``text.onnx``; per new
  item: publish its catalogue record (text, no vector), then click, every 50 ms, an item whose
  one-click session ranks the new item in the top K (found on a local copy of the model with the
  item added); latency = publish -> the first feed of that user holding the new item.

    python -m streamrec.bench.text_tower --items /work/shared/data/ml-100k/ml-100k.item \\
        --json bench/text_tower.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from streamrec.bench.report import machine
from streamrec.errors import UserError

PARTS = ("parity", "speed", "latency")
NEIGHBOURS = 20
SLICE = 2000  # texts per slice of the speed case


def item_texts(items: Path, n: int) -> list[str]:
    """The first ``n`` non-empty item texts of an items file, repeated to ``n`` if it has fewer."""
    from streamrec.datasets import load_items

    texts = [t for t in load_items(items).all_texts() if t.strip()]
    if not texts:
        raise UserError(f"{items}: no item has text")
    return [texts[i % len(texts)] for i in range(n)]


def _spec(d: int, seed: int) -> Any:
    import torch

    from streamrec.encoder.model import TextProjection
    from streamrec.export.text_export import TextSpec
    from streamrec.text_models import resolve_setting

    resolved = resolve_setting("minilm")
    assert resolved is not None
    torch.manual_seed(seed)
    return TextSpec(resolved[0], TextProjection(384, d).eval(), 64)


def _topk_overlap(a: np.ndarray, b: np.ndarray, k: int) -> tuple[float, float]:
    """Mean and min share of each row's top-k neighbours (by dot product, itself excluded) that
    ``a`` and ``b`` agree on."""

    def top(m: np.ndarray) -> np.ndarray:
        sims = m @ m.T
        np.fill_diagonal(sims, -np.inf)
        return np.argsort(-sims, axis=1)[:, :k]

    ta, tb = top(a), top(b)
    shares = [len(set(x) & set(y)) / k for x, y in zip(ta.tolist(), tb.tolist(), strict=True)]
    return float(np.mean(shares)), float(np.min(shares))


def parity_case(texts: list[str], workdir: Path, d: int = 128, seed: int = 0) -> dict[str, Any]:
    import torch

    from streamrec.encoder.text import TextModel
    from streamrec.export.text_export import TextGraph, export_text_tower
    from streamrec.serving.artifact import sha256_file
    from streamrec.serving.text_tower import TextTower
    from streamrec.text_models import locate

    spec = _spec(d, seed)
    path = workdir / "text.onnx"
    t0 = time.perf_counter()
    export_text_tower(spec, path)
    export_s = time.perf_counter() - t0
    lm = TextModel(locate(spec.ref))
    graph = TextGraph(lm.pooled, spec.projection).eval()
    ref_emb, ref_vec = [], []
    with torch.no_grad():
        for start in range(0, len(texts), 64):
            e, v = graph(**lm.tokenize(texts[start : start + 64], spec.max_tokens))
            ref_emb.append(e.numpy())
            ref_vec.append(v.numpy())
    emb, vec = TextTower.load(path, sha256_file(path), spec.meta()).embed(texts)
    t_emb, t_vec = np.concatenate(ref_emb), np.concatenate(ref_vec)
    mean, low = _topk_overlap(vec, t_vec, NEIGHBOURS)
    return {
        "texts": len(texts),
        "d": d,
        "projection": f"TextProjection(384, {d}), untrained, torch seed {seed}",
        "export_seconds": round(export_s, 1),
        "text_onnx_bytes": path.stat().st_size,
        "max_abs_err_text_embedding": float(np.abs(emb - t_emb).max()),
        "max_abs_err_item_vec": float(np.abs(vec - t_vec).max()),
        f"top{NEIGHBOURS}_neighbour_overlap_mean": mean,
        f"top{NEIGHBOURS}_neighbour_overlap_min": low,
        "targets": {"max_abs_err": 1e-4, f"top{NEIGHBOURS}_overlap": 1.0},
    }


def speed_case(texts: list[str], workdir: Path) -> dict[str, Any]:
    import torch

    from streamrec.encoder.text import TextModel
    from streamrec.export.text_export import export_text_tower
    from streamrec.serving import text_tower
    from streamrec.serving.artifact import sha256_file
    from streamrec.text_models import locate

    spec = _spec(128, 0)
    path = workdir / "text.onnx"
    if not path.is_file():
        export_text_tower(spec, path)
    lm = TextModel(locate(spec.ref))
    tower = text_tower.TextTower.load(path, sha256_file(path), spec.meta())
    tower.embed(texts[:64])  # first calls allocate arenas, pick kernels
    lm.embed(texts[:64], spec.max_tokens)
    runs = {"torch": 0.0, "onnxruntime": 0.0, "onnxruntime_input_order": 0.0}
    for start in range(0, len(texts), SLICE):  # arms interleaved: load from other processes hits all alike
        part = texts[start : start + SLICE]
        t0 = time.perf_counter()
        lm.embed(part, spec.max_tokens)
        runs["torch"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        tower.embed(part)
        runs["onnxruntime"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        for b in range(0, len(part), text_tower.BATCH):  # the serving path without the length sort
            ids, mask = tower.tokenize(part[b : b + text_tower.BATCH])
            tower.session.run(list(text_tower.TEXT_OUTPUTS), {"input_ids": ids, "attention_mask": mask})
        runs["onnxruntime_input_order"] += time.perf_counter() - t0
    return {
        "texts": len(texts),
        "seconds": {k: round(v, 2) for k, v in runs.items()},
        "texts_per_s": {k: round(len(texts) / v, 1) for k, v in runs.items()},
        "ratio_onnxruntime_vs_torch": round(runs["torch"] / runs["onnxruntime"], 2),
        "ratio_onnxruntime_input_order_vs_torch": round(runs["torch"] / runs["onnxruntime_input_order"], 2),
        "torch_threads": torch.get_num_threads(),
        "loadavg": os.getloadavg(),
        "target_ratio": 1.5,
    }


def new_items(per_category: int = 3) -> list[tuple[str, str, str]]:
    """New items in the sample catalogue's style (title, category, text), ``per_category`` each."""
    from streamrec.sample import ADJECTIVES, CATEGORIES, FILLER

    out = []
    for c, (name, words) in enumerate(CATEGORIES.items()):
        for v in range(per_category):
            lead, a, b, x = (words[(c + v + j) % len(words)] for j in (0, 2, 3, 5))
            filler = FILLER[(c + v) % len(FILLER)]
            title = f"The {ADJECTIVES[(c + 3 * v) % len(ADJECTIVES)]} {lead} {filler}"
            out.append((title, name, f"A {name} {filler} about {lead} and {a}, {b}, {x}; a new {lead} series."))
    return out


def latency_case(workdir: Path, settings: Any) -> dict[str, Any]:
    from streamrec.bench.text_latency import measure_cold_start

    return measure_cold_start(settings, workdir, new_items())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--items", type=Path, required=True, help="items file whose texts are embedded")
    p.add_argument("--json", type=Path, required=True)
    p.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts: {','.join(PARTS)}")
    p.add_argument("--n-parity", type=int, default=1000)
    p.add_argument("--n-speed", type=int, default=10_000)
    a = p.parse_args(argv)
    parts = [x.strip() for x in a.only.split(",") if x.strip()]
    if not parts or any(x not in PARTS for x in parts):
        raise SystemExit(f"--only: choose from {', '.join(PARTS)}")
    result: dict[str, Any] = json.loads(a.json.read_text()) if a.json.is_file() else {}
    result.update({"items": str(a.items), "machine": machine()})
    with tempfile.TemporaryDirectory(prefix="streamrec-text-bench-") as tmp:
        work = Path(tmp)
        if "parity" in parts:
            print(f"── parity on {a.n_parity} item texts", flush=True)
            result["parity"] = parity_case(item_texts(a.items, a.n_parity), work)
            print(json.dumps(result["parity"]), flush=True)
        if "speed" in parts:
            print(f"── embedding {a.n_speed} texts: torch vs onnxruntime", flush=True)
            result["speed"] = speed_case(item_texts(a.items, a.n_speed), work)
            print(json.dumps(result["speed"]), flush=True)
        if "latency" in parts:
            from streamrec.config import Settings

            print("── new item -> recommendable on the embedded stack", flush=True)
            with contextlib.chdir(work):
                result["latency"] = latency_case(work, Settings())
            print(json.dumps({k: v for k, v in result["latency"].items() if k != "items"}), flush=True)
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
