"""`streamrec eval`: leave-one-out, full-ranking evaluation of a model against two baselines."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from streamrec.config import Settings
from streamrec.errors import UserError

HELP = "evaluate a model (leave-one-out, full ranking) against popularity and co-occurrence baselines"
COLUMNS = ("hr@10", "ndcg@10", "mrr", "coverage", "diversity")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", required=True, type=Path, help="events file (the one the model was trained on)")
    parser.add_argument("--items", type=Path, help="items file (text for items the model has not seen; diversity)")
    parser.add_argument("--model", required=True, type=Path, help="model directory written by `streamrec train`")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this path")
    parser.add_argument("--keep-seen", action="store_true", help="rank items already in the user's history too")
    parser.add_argument(
        "--seeds",
        type=int,
        default=1,
        metavar="N",
        help="--model is a directory of `streamrec train --seeds N`: evaluate its N seed models, report mean ± std",
    )


def _table(results: dict) -> str:
    rows = [("model", results["model"])] + [(f"{k} (baseline)", v) for k, v in results["baselines"].items()]
    rows += [(f"{name} [cold start]", res["cold_start"]) for name, res in rows]
    width = 18 if isinstance(results["model"]["hr@10"], dict) else 11
    head = f"{'method':<38}" + "".join(f"{c:>{width}}" for c in COLUMNS) + f"{'users':>8}"
    lines = [head, "-" * len(head)]
    for name, res in rows:
        cells = "".join(f"{_cell(res[c]):>{width}}" if c in res else f"{'-':>{width}}" for c in COLUMNS)
        users = res["users"]["mean"] if isinstance(res["users"], dict) else res["users"]
        lines.append(f"{name:<38}{cells}{users:>8.0f}")
    return "\n".join(lines)


def _cell(value: float | dict) -> str:
    """A figure, or mean ± std over seeds."""
    return f"{value['mean']:.4f} ± {value['std']:.4f}" if isinstance(value, dict) else f"{value:.4f}"


def run(args: argparse.Namespace, settings: Settings) -> int:
    from streamrec.datasets import load_events, load_items
    from streamrec.encoder.artifact import load_model_dir
    from streamrec.encoder.eval_run import evaluate_run
    from streamrec.encoder.seeds import seed_dir, summarize_seeds
    from streamrec.encoder.trainer import pick_device

    if args.seeds < 1:
        raise UserError(f"--seeds must be at least 1, got {args.seeds}")
    device = pick_device(settings.device)
    seeds = list(range(settings.encoder.seed, settings.encoder.seed + args.seeds))
    dirs = [args.model] if args.seeds == 1 else [seed_dir(args.model, s) for s in seeds]
    log = load_events(args.events)
    catalogue = load_items(args.items) if args.items else None
    per_seed = []
    for d in dirs:
        trained = load_model_dir(d, device="cpu")
        per_seed.append(evaluate_run(log, catalogue, trained, args.keep_seen, device, settings.data_dir / "cache"))
    results = per_seed[0]
    if args.seeds > 1:
        results = {**summarize_seeds(per_seed), "seeds": seeds, "per_seed": per_seed}
        results["protocol"] = per_seed[0]["protocol"]
    print(_table(results))
    p = results["protocol"]
    print(
        f"\n{p['users']} users, {p['items']} items, full ranking, seen {'kept' if args.keep_seen else 'excluded'}; "
        f"cold-start slice: {p['cold_start_users']} users"
        + (f"; mean ± std over seeds {seeds}" if args.seeds > 1 else "")
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json.with_name(f".{args.json.name}.tmp")
        tmp.write_text(json.dumps(results, indent=2, sort_keys=True))
        os.replace(tmp, args.json)
    return 0
