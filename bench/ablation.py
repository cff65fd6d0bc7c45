"""Ablations of the encoder's training settings: each variant x seed is trained with the same fixed
epoch budget and scored by ``streamrec eval``'s protocol (leave-one-out, full ranking, seen items
excluded), next to the popularity and co-occurrence baselines of the same run.

One JSON line per run is appended to ``--out`` as soon as it finishes (a run already there is
skipped, so an interrupted sweep resumes); ``--table`` turns such files into a markdown table of
mean ± std over seeds. Variants are ``name:setting=value,...`` over the encoder settings, e.g.
``d64:d_model=64`` or ``filter:filter_mix=0.5``; ``session_length`` (a top-level setting: the
worker serves that many items per session too) is accepted beside them.

    python -m streamrec.bench.ablation --data ml-100k --events ml-100k.inter --items ml-100k.item \\
        --epochs 12 --seeds 0,1,2 --variant default: --variant d64:d_model=64 --out docs/results/ablation.jsonl
    python -m streamrec.bench.ablation --table docs/results/ablation.jsonl > docs/results/ablation.md
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from streamrec.encoder.seeds import mean_std

METRICS = ("hr@10", "ndcg@10")
LIST_METRICS = ("coverage", "diversity", "category_coverage")  # of the top-10 lists (eval_run's protocol)
SESSION_LENGTH = "session_length"


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """``name:key=value,...`` -> (name, overrides); values are read as JSON when they parse."""
    name, _, rest = text.partition(":")
    overrides: dict[str, Any] = {}
    for pair in filter(None, rest.split(",")):
        key, _, value = pair.partition("=")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    return name, overrides


def split_overrides(overrides: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The encoder settings of a variant, and its session length (a top-level setting)."""
    from streamrec.config import Settings

    encoder = {k: v for k, v in overrides.items() if k != SESSION_LENGTH}
    return encoder, int(overrides.get(SESSION_LENGTH, Settings.model_fields[SESSION_LENGTH].default))


def run_one(
    data: str,
    events: str,
    items: str | None,
    first_events: int | None,
    variant: str,
    overrides: dict[str, Any],
    seed: int,
    epochs: int,
    keep_seen_too: bool = False,
) -> dict[str, Any]:
    import torch

    from streamrec.datasets import load_events, load_items
    from streamrec.encoder.eval_run import evaluate_run
    from streamrec.encoder.trainer import Trainer
    from streamrec.settings.encoder import EncoderSettings

    log = load_events(Path(events))
    if first_events:
        log = dataclasses.replace(log, events=log.events[:first_events])
    catalogue = load_items(Path(items)) if items else None
    encoder, session_length = split_overrides(overrides)
    fixed = {"seed": seed, "epochs": epochs, "patience": epochs + 1, "max_minutes": 1e6}
    settings = EncoderSettings(**{**encoder, **fixed})
    cache = Path(os.environ.get("STREAMREC_DATA_DIR", "/tmp/streamrec-ablation")) / "cache"
    trainer = Trainer(log, catalogue, settings, session_length, torch.device("cpu"), cache_dir=cache, progress=False)
    cpu0 = time.process_time()  # CPU seconds, all threads: a cost the machine's load does not inflate
    trained = trainer.fit()
    cpu = time.process_time() - cpu0
    res = evaluate_run(log, catalogue, trained, keep_seen=False, device=torch.device("cpu"), cache_dir=cache)
    m = trained.metrics
    kept = {}
    if keep_seen_too:
        # The same trained model under the other protocol: session data repeats items, so a variant
        # must also hold when the feed may show them.
        r_kept = evaluate_run(log, catalogue, trained, keep_seen=True, device=torch.device("cpu"), cache_dir=cache)
        kept = {"kept": {name: {k: r_kept[name][k] for k in METRICS} for name in ("model", "hybrid")}}
        kept["kept"]["cooccurrence"] = {k: r_kept["baselines"]["cooccurrence"][k] for k in METRICS}
    return {
        "data": data,
        "variant": variant,
        "overrides": overrides,
        "settings": settings.model_dump(),  # the whole resolved settings: defaults change over time
        "session_length": session_length,
        "seed": seed,
        "epochs": epochs,
        "best_epoch": m["best_epoch"],
        "s_per_epoch": round(m["train_seconds"] / len(m["epochs"]), 2),
        "cpu_s_per_epoch": round(cpu / len(m["epochs"]), 2),
        "full_softmax": trainer.full_softmax,
        "val": m["val"],
        **_figures(res),
        **kept,
        "test_cold_start": {k: res["model"]["cold_start"][k] for k in METRICS},
        "baselines": {name: {k: b[k] for k in METRICS} for name, b in res["baselines"].items()},
        "protocol": res["protocol"],
        "loadavg": os.getloadavg(),
    }


def _figures(res: dict[str, Any]) -> dict[str, Any]:
    """The test figures of the model and the hybrid an eval run kept: ranking, then the top-10 lists'."""
    return {
        "test": {k: res["model"][k] for k in METRICS},
        "test_hybrid": {k: res["hybrid"][k] for k in METRICS},
        "lists": {name: {k: res[name][k] for k in LIST_METRICS if k in res[name]} for name in ("model", "hybrid")},
    }


def cell(stat: dict[str, float] | None, n: int) -> str:
    """A table cell: mean ± std over ``n`` seeds, the value alone for one, '-' for none."""
    if stat is None:
        return "-"
    return f"{stat['mean']:.4f} ± {stat['std']:.4f}" if n > 1 else f"{stat['mean']:.4f}"


def read_runs(paths: list[Path]) -> list[dict[str, Any]]:
    """Every run (JSON line) of the bench's output files, in file order."""
    return [json.loads(line) for p in paths for line in p.read_text().splitlines() if line.strip()]


def table(paths: list[Path]) -> str:
    runs = read_runs(paths)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["data"], r["variant"]), []).append(r)
    head = (
        "| data | variant | settings | seeds | epochs | HR@10 | NDCG@10 | hybrid HR@10 | hybrid NDCG@10 | s/epoch "
        "| co-occurrence HR@10 / NDCG@10 |"
    )
    lines = [head, "|" + " --- |" * 11]
    for (data, variant), rs in groups.items():
        cells = [mean_std([r["test"][k] for r in rs]) for k in METRICS]
        # Runs from before the hybrid was recorded have no hybrid figure: shown as '-'.
        hybrid = [
            mean_std([r["test_hybrid"][k] for r in rs]) if all("test_hybrid" in r for r in rs) else None
            for k in METRICS
        ]
        co = [mean_std([r["baselines"]["cooccurrence"][k] for r in rs])["mean"] for k in METRICS]
        sets = ", ".join(f"{k}={v}" for k, v in rs[0]["overrides"].items()) or "defaults"
        lines.append(
            f"| {data} | {variant} | {sets} | {len(rs)} | {rs[0]['epochs']} | "
            + " | ".join(cell(c, len(rs)) for c in [*cells, *hybrid])
            + f" | {mean_std([r['s_per_epoch'] for r in rs])['mean']:.1f} | {co[0]:.4f} / {co[1]:.4f} |"
        )
    note = (
        "\nProtocol: leave-one-out (last event per user = test, the one before = validation, picks the best "
        "epoch), full ranking over all items, seen items excluded; mean ± sample std over seeds; every run has "
        "the same fixed epoch budget. s/epoch is wall clock on a shared 2-core machine (load varies).\n"
    )
    return "\n".join(lines) + "\n" + lists_table(groups) + note


def lists_table(groups: dict[tuple[str, str], list[dict[str, Any]]]) -> str:
    """The top-10 lists' figures (model, then hybrid) of the groups whose every run recorded them;
    "" when none did (runs from before they were recorded)."""
    rows = []
    for (data, variant), rs in groups.items():
        if not all(set(LIST_METRICS) <= set(r.get("lists", {}).get("model", {})) for r in rs):
            continue
        cells = [mean_std([r["lists"][m][k] for r in rs]) for m in ("model", "hybrid") for k in LIST_METRICS]
        rows.append(f"| {data} | {variant} | " + " | ".join(cell(c, len(rs)) for c in cells) + " |")
    if not rows:
        return ""
    names = " | ".join(f"{m} {k}" for m in ("model", "hybrid") for k in LIST_METRICS)
    title = "Top-10 lists: coverage of the catalogue, intra-list diversity, category coverage"
    head = f"\n{title}\n\n| data | variant | {names} |"
    return "\n".join([head, "|" + " --- |" * (2 + 2 * len(LIST_METRICS)), *rows]) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--table", nargs="+", type=Path, help="print the markdown table of these JSONL files")
    p.add_argument("--data", help="data set label")
    p.add_argument("--events")
    p.add_argument("--items")
    p.add_argument("--first-events", type=int, help="only the first N events of the log (time order)")
    p.add_argument("--variant", action="append", default=[], help="name:setting=value,...")
    p.add_argument("--seeds", default="0")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--out", type=Path)
    p.add_argument("--keep-seen-too", action="store_true", help="also score each model with seen items kept")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")  # the trainer's epoch lines
    if a.table:
        print(table(a.table), end="")
        return 0
    command = shlex.join(["python", "-m", "streamrec.bench.ablation", *(sys.argv[1:] if argv is None else argv)])
    done = set()
    if a.out.exists():
        done = {(r["data"], r["variant"], r["seed"]) for r in map(json.loads, a.out.read_text().splitlines())}
    for seed in map(int, a.seeds.split(",")):
        for name, overrides in map(parse_variant, a.variant):
            if (a.data, name, seed) in done:
                continue
            t0 = time.monotonic()
            r = run_one(a.data, a.events, a.items, a.first_events, name, overrides, seed, a.epochs, a.keep_seen_too)
            r = {"command": command, **r}  # the sweep that made this line
            with a.out.open("a") as fh:
                fh.write(json.dumps(r) + "\n")
            print(
                f"{a.data} {name} seed {seed}: ndcg@10 {r['test']['ndcg@10']:.4f} hr@10 {r['test']['hr@10']:.4f} "
                f"hybrid ndcg@10 {r['test_hybrid']['ndcg@10']:.4f} "
                f"({r['s_per_epoch']} s/epoch, best epoch {r['best_epoch']}, {time.monotonic() - t0:.0f}s)",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
