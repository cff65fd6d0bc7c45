"""ANN bench: brute-force scoring vs the ANN index path (streamrec.serving.ann), same artifact.

Item vectors are a mixture of Gaussians (one cluster per 1,000 items, centres of norm ~1, items
spread 0.5 around them), not uniform noise, which has no neighbourhoods for an index to find;
each session is 50 items of one cluster (full L: the tower's worst case, as in the model bench).
The tower is the default shape's, randomly initialised (``model_bench.synthetic_model``).

Per catalogue size, in one run: runner sessions/s at batch 64 and 1 of the int8 brute-force file
(what the worker serves on a CPU today) and of the ANN path (default ``serving`` settings),
recall@20 of each against the exact fp32 graph's top 20, the export time (with the index build
timed from its progress message to the next), and the time from a cold-start item's catalogue
update (:class:`streamrec.streams.catalogue.CatalogueOverlay`, as the worker applies it) to its
first recommendation.

``python -m streamrec.bench.ann_bench [--quick] [--out FILE]``; ``streamrec bench --only ann``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from streamrec.bench.model_bench import POOL, SESSION_LENGTH, K, _time, synthetic_model
from streamrec.settings.serving import ServingSettings

CLUSTER_SIZE, SESSIONS = 1_000, 256


def clustered_items(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Item vectors [n, d] float32 of a Gaussian mixture and each item's cluster [n]."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(1, n // CLUSTER_SIZE), d)).astype(np.float32) / np.sqrt(d)
    cluster = rng.integers(0, len(centres), n)
    noise = rng.standard_normal((n, d)).astype(np.float32) * (0.5 / np.sqrt(d))
    return centres[cluster] + noise, cluster


def _sessions(ids: list[str], cluster: np.ndarray, count: int, seed: int = 1) -> list[list[str]]:
    """``count`` sessions of SESSION_LENGTH items, each from one cluster."""
    rng = np.random.default_rng(seed)
    members = np.argsort(cluster, kind="stable")
    starts = np.searchsorted(cluster[members], np.arange(cluster.max() + 2))
    out = []
    for c in rng.integers(0, cluster.max() + 1, count):
        pool = members[starts[c] : starts[c + 1]]
        out.append([ids[i] for i in rng.choice(pool, SESSION_LENGTH)])
    return out


def _recall(runner: Any, exact: list[list[str]], sessions: list[list[str]]) -> float:
    kinds = [["click"] * SESSION_LENGTH] * len(sessions)
    got = runner.recommend(sessions, kinds, K)
    return float(np.mean([len(set(g[0]) & set(e)) / K for g, e in zip(got, exact, strict=True)]))


def _cold_start_s(runner: Any, session: list[str]) -> float:
    """Seconds from a new item's catalogue update (a vector 1.5x the session's top item's) to the
    runner recommending it first for that session."""
    from streamrec.contracts.items import ItemUpdate
    from streamrec.streams.catalogue import CatalogueOverlay

    [(top, _)] = runner.recommend([session], [["click"] * SESSION_LENGTH], K)
    vector = runner.item_vectors(top[:1])[0] * 1.5
    update = ItemUpdate("cold-start-item", True, vector=vector.tolist())
    overlay = CatalogueOverlay()
    t0 = time.perf_counter()
    overlay.record([update], {}, None)
    overlay.apply(runner, [update])
    [(ids, _)] = runner.recommend([session], [["click"] * SESSION_LENGTH], K)
    elapsed = time.perf_counter() - t0
    if not ids or ids[0] != "cold-start-item":
        raise AssertionError(f"the cold-start item was not recommended first: {ids[:3]}")
    return elapsed


def _nprobe_sweep(ann: Any, truth: list[list[str]], sessions: list[list[str]], min_s: float) -> list[dict]:
    """Recall@20 and batch-64 sessions/s of the ANN path at other ``serving.ann_nprobe`` values."""
    out, kinds = [], [["click"] * SESSION_LENGTH] * 64
    for nprobe in (4, 8, 16, 32, 64, 128):
        ann.ann.settings = ServingSettings(ann_min_items=1, ann_nprobe=nprobe)
        seconds = _time(lambda: ann.recommend(sessions[:64], kinds, K), min_s)
        out.append(
            {"nprobe": nprobe, "recall_at_20": _recall(ann, truth, sessions), "sessions_per_s_b64": 64 / seconds}
        )
    ann.ann.settings = ServingSettings(ann_min_items=1)
    return out


def _one_size(registry: Any, n: int, min_s: float) -> dict[str, Any]:
    from streamrec.export.exporter import export_model
    from streamrec.serving.runner import Runner

    model, _, _ = synthetic_model(1_000)  # only its session tower is used
    matrix, cluster = clustered_items(n, model.cfg.d)
    ids = [f"i{i}" for i in range(n)]
    marks: list[tuple[str, float]] = []
    t0 = time.perf_counter()
    ref = export_model(
        model.session,
        ids,
        matrix,
        registry,
        k=K * POOL,
        session_length=SESSION_LENGTH,
        ann_min_items=1,
        progress=lambda msg: marks.append((msg, time.perf_counter())),
    ).ref
    export_s = time.perf_counter() - t0
    at = next(i for i, (msg, _) in enumerate(marks) if msg.startswith("building the ANN index"))
    path = Path(ref.uri)
    exact, brute = Runner.load(path, "cpu"), Runner.load(path, "cpu", int8=True)
    ann = Runner.load(path, "cpu", ann=ServingSettings(ann_min_items=1))
    sessions = _sessions(ids, cluster, SESSIONS)
    truth = [r[0] for r in exact.recommend(sessions, [["click"] * SESSION_LENGTH] * SESSIONS, K)]
    row: dict[str, Any] = {
        "items": n,
        "export_s": export_s,
        "ann_build_and_seal_s": marks[at + 1][1] - marks[at][1],
        "ann_index_mb": (path / "items.faiss").stat().st_size / 1e6,
        "ann_lists": ann.ann.index.lists if ann.ann else 0,
        "recall_at_20_ann": _recall(ann, truth, sessions),
        "recall_at_20_int8": _recall(brute, truth, sessions),
    }
    for b in (64, 1):
        batch, kinds = sessions[:b], [["click"] * SESSION_LENGTH] * b
        for name, runner in (("brute_int8", brute), ("ann", ann)):
            row[f"{name}_sessions_per_s_b{b}"] = b / _time(
                lambda r=runner, s=batch, t=kinds: r.recommend(s, t, K), min_s
            )
        row[f"ann_speedup_b{b}"] = row[f"ann_sessions_per_s_b{b}"] / row[f"brute_int8_sessions_per_s_b{b}"]
    row["nprobe_sweep"] = _nprobe_sweep(ann, truth, sessions, min_s)
    row["cold_start_s"] = _cold_start_s(ann, sessions[0])
    print(json.dumps(row), flush=True)
    return row


def run_ann_bench(quick: bool = False, out: Path | None = None, catalogues: list[int] | None = None) -> dict[str, Any]:
    """Run the bench; returns (and writes to ``out`` when given) a JSON-able dict."""
    from streamrec.serving.registry import LocalRegistry

    catalogues = catalogues or ([20_000] if quick else [50_000, 100_000, 1_000_000])
    defaults = ServingSettings()
    result: dict[str, Any] = {
        "items": "Gaussian mixture, one cluster per 1,000 items; sessions of 50 items of one cluster",
        "serving": defaults.model_dump(),
        "k": K,
        "exported_k": K * POOL,
        "cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
        "runs": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        registry = LocalRegistry(Path(tmp))
        for n in catalogues:
            result["runs"].append(_one_size(registry, n, 0.3 if quick else 1.5))
    result["loadavg_end"] = os.getloadavg()
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_name(out.name + ".tmp").write_text(json.dumps(result, indent=1))
        out.with_name(out.name + ".tmp").rename(out)
    return result


def ann_table(result: dict[str, Any]) -> str:
    """The RESULTS.md section of a bench JSON (``--table FILE``): every figure read from it."""
    nprobe = result["serving"]["ann_nprobe"]
    lines = [
        f"Default `serving` settings: {result['serving']}. Load average {result['loadavg_start'][0]:.1f} at start, "
        f"{result['loadavg_end'][0]:.1f} at end (cores shared with training jobs: ratios, not absolutes).",
        "",
        "| items | int8 brute sessions/s b64 | ANN b64 | ANN / brute b64 | int8 brute b1 | ANN b1 | ANN / brute b1 "
        "| recall@20 ANN | recall@20 int8 | export s | index build + seal s | index MB | cold start ms |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in result["runs"]:
        lines.append(
            f"| {r['items']:,} | {r['brute_int8_sessions_per_s_b64']:,.0f} | {r['ann_sessions_per_s_b64']:,.0f} "
            f"| {r['ann_speedup_b64']:.1f}x | {r['brute_int8_sessions_per_s_b1']:,.0f} "
            f"| {r['ann_sessions_per_s_b1']:,.0f} | {r['ann_speedup_b1']:.1f}x | {r['recall_at_20_ann']:.3f} "
            f"| {r['recall_at_20_int8']:.3f} | {r['export_s']:.0f} | {r['ann_build_and_seal_s']:.0f} "
            f"| {r['ann_index_mb']:.0f} | {1e3 * r['cold_start_s']:.0f} |"
        )
    lines += ["", f"`ann_nprobe` sweep (default {nprobe}), batch 64:", ""]
    lines += ["| items | nprobe | recall@20 | sessions/s |", "| ---: | ---: | ---: | ---: |"]
    for r in result["runs"]:
        for p in r["nprobe_sweep"]:
            lines.append(
                f"| {r['items']:,} | {p['nprobe']} | {p['recall_at_20']:.3f} | {p['sessions_per_s_b64']:,.0f} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20k items, short timings")
    parser.add_argument("--items", type=lambda t: [int(x) for x in t.split(",")], help="catalogue sizes")
    parser.add_argument("--out", type=Path, default=Path("bench/ann.json"))
    parser.add_argument("--table", type=Path, help="print the RESULTS.md table of this JSON and exit")
    args = parser.parse_args()
    if args.table:
        print(ann_table(json.loads(args.table.read_text())), end="")
        return
    run_ann_bench(args.quick, args.out, args.items)


if __name__ == "__main__":
    main()
