"""`streamrec eval`: leave-one-out, full-ranking evaluation of a model against two baselines."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from streamrec.config import Settings
from streamrec.errors import UserError

HELP = "evaluate a model and its co-occurrence hybrid against popularity and co-occurrence (leave-one-out)"
# The settings it reads (its --help lists their flags; docs/configuration.md).
SETTINGS = (
    "data_dir",
    "device",
    "session_length",
    "k",
    "pool",
    "encoder",
    "hybrid",
    "worker",
    "trainer",
    "registry",
    "serving",
)
COLUMNS = ("hr@10", "ndcg@10", "mrr", "coverage", "diversity")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", required=True, type=Path, help="events file (the one the model was trained on)")
    parser.add_argument("--items", type=Path, help="items file (text for items the model has not seen; diversity)")
    parser.add_argument("--model", required=True, type=Path, help="model directory written by `streamrec train`")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this path")
    parser.add_argument("--keep-seen", action="store_true", help="rank items already in the user's history too")
    parser.add_argument(
        "--stream",
        action="store_true",
        help="instead: replay the newer part of --events through the worker's pipeline (the demo's online hit@10)",
    )
    parser.add_argument(
        "--lag-events",
        type=int,
        default=0,
        help="with --stream: a feed read misses the newest N events (0 = every earlier chunk done; the demo's "
        "worker trails by rate x latency, ~10 at 200 events/s)",
    )
    parser.add_argument("--batch-events", type=int, default=20, help="with --stream: events per worker micro-batch")
    parser.add_argument(
        "--online",
        action="store_true",
        help="with --stream: run the online trainer's update rule alongside (trainer.* settings; promotions are "
        "exported and swapped in as a worker does)",
    )
    parser.add_argument(
        "--train-fraction",
        type=float,
        default=0.5,
        help="with --stream: the older share of the log (what the model was trained on); the rest is replayed",
    )
    parser.add_argument(
        "--mmr-lambda",
        type=_lambdas,
        default=(),
        metavar="L[,L...]",
        help="also sweep the worker's MMR re-rank over these lambdas (e.g. 0.9,0.8,0.7; 1 = off is always "
        "included): NDCG@10 vs intra-list diversity of the top 10 re-ranked from pools of k x pool candidates",
    )
    parser.add_argument("--mmr-plot", type=Path, help="with --mmr-lambda: draw NDCG@10 vs diversity as a PNG here")
    parser.add_argument(
        "--seeds",
        type=int,
        default=1,
        metavar="N",
        help="--model is a directory of `streamrec train --seeds N`: evaluate its N seed models, report mean ± std",
    )


def _lambdas(text: str) -> tuple[float, ...]:
    """``0.9,0.8`` -> (0.9, 0.8); argparse turns the ValueError into a one-line usage error."""
    try:
        values = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None
    if not values or not all(0.0 <= v <= 1.0 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: each lambda must be between 0 and 1")
    return values


def _mmr_table(sweep: dict) -> str:
    head = f"{'method':<10}{'lambda':>8}{'ndcg@10':>10}{'change':>9}{'diversity':>11}{'change':>9}{'coverage':>10}"
    lines = [head, "-" * len(head)]
    for name, points in sweep["methods"].items():
        for p in points:
            lines.append(
                f"{name:<10}{p['lambda']:>8g}{p['ndcg@10']:>10.4f}{p['ndcg_change']:>+9.1%}"
                f"{p['diversity']:>11.4f}{p['diversity_change']:>+9.1%}{p['coverage']:>10.4f}"
            )
    chosen = sweep["chosen"]
    verdict = f"lambda {chosen['lambda']:g}" if chosen["met"] else "none meets it: MMR stays off (lambda 1)"
    lines.append(f"\nMMR over pools of {sweep['pool']}, diversity = {sweep['diversity']}; {chosen['rule']}: {verdict}")
    return "\n".join(lines)


def _check_offline(args: argparse.Namespace) -> None:
    if args.seeds < 1:
        raise UserError(f"--seeds must be at least 1, got {args.seeds}")
    if args.mmr_lambda and args.seeds > 1:
        raise UserError("--mmr-lambda sweeps one model: leave out --seeds")
    if args.mmr_plot and not args.mmr_lambda:
        raise UserError("--mmr-plot draws the --mmr-lambda sweep: give --mmr-lambda too")


def _report_mmr(args: argparse.Namespace, sweep: dict, seen: str) -> None:
    print("\n" + _mmr_table(sweep))
    if args.mmr_plot:
        from streamrec.encoder.mmr_sweep import plot_sweep

        plot_sweep(sweep, args.mmr_plot, f"{args.events.name}, leave-one-out, full ranking, seen {seen}")


def _table(results: dict) -> str:
    rows = [("model", results["model"])]
    rows += [
        (f"{name} ({_setting(results[name]['setting'])})", results[name]) for name in ("hybrid", "hybrid_validated")
    ]
    rows += [(f"{k} (baseline)", v) for k, v in results["baselines"].items()]
    rows += [(f"{name} [cold start]", res["cold_start"]) for name, res in rows]
    width = 18 if isinstance(results["model"]["hr@10"], dict) else 11
    head = f"{'method':<50}" + "".join(f"{c:>{width}}" for c in COLUMNS) + f"{'users':>8}"
    lines = [head, "-" * len(head)]
    for name, res in rows:
        cells = "".join(f"{_cell(res[c]):>{width}}" if c in res else f"{'-':>{width}}" for c in COLUMNS)
        users = res["users"]["mean"] if isinstance(res["users"], dict) else res["users"]
        lines.append(f"{name:<50}{cells}{users:>8.0f}")
    return "\n".join(lines)


def _setting(s: dict) -> str:
    source, votes = _mean(s.get("source_exponent", 0.0)), _mean(s.get("session_weight", 0.0))
    text = f"beta {_mean(s['beta']):g}, {s['norm']}, alpha {_mean(s['popularity_exponent']):g}, source {source:g}"
    return text + (f", sessions {votes:g}" if votes else "")


def _mean(value: float | dict) -> float:
    """A setting, or its mean over seeds (the validated beta may differ per seed)."""
    return value["mean"] if isinstance(value, dict) else value


def _cell(value: float | dict) -> str:
    """A figure, or mean ± std over seeds."""
    return f"{value['mean']:.4f} ± {value['std']:.4f}" if isinstance(value, dict) else f"{value:.4f}"


def _stream(args: argparse.Namespace, settings: Settings) -> dict:
    from streamrec.datasets import load_events, split_events
    from streamrec.local.stream_eval import stream_eval

    if not 0.0 < args.train_fraction < 1.0:
        raise UserError(f"--train-fraction must be between 0 and 1, got {args.train_fraction}")
    if args.keep_seen:
        settings = settings.model_copy(update={"worker": settings.worker.model_copy(update={"exclude_seen": False})})
    older, newer = split_events(load_events(args.events).events, args.train_fraction)
    if args.lag_events < 0 or args.batch_events < 1:
        raise UserError("--lag-events must be >= 0 and --batch-events >= 1")
    results = stream_eval(
        settings, args.model, newer, older, lag=args.lag_events, batch=args.batch_events, online=args.online
    )
    head = f"{'method':<16}{'online hr@10':>14}{'latest 1/4':>12}{'checked':>10}{'no feed':>10}"
    lines = [head, "-" * len(head)]
    for name, r in results["methods"].items():
        lines.append(
            f"{name:<16}{r['online_hr@10'] or 0:>14.4f}{r['latest_quarter_hr@10'] or 0:>12.4f}"
            f"{r['events_checked']:>10}{r['events_without_feed']:>10}"
        )
    print("\n".join(lines))
    print(f"\n{results['protocol']['replay']}; seen {'excluded' if not args.keep_seen else 'kept'}")
    return results


def _provenance(model_dir: Path) -> dict:
    """What the published figures need besides the numbers: how the model was trained."""
    config = json.loads((model_dir / "config.json").read_text())
    metrics = json.loads((model_dir / "metrics.json").read_text())
    train = config.get("train", {})
    return {
        "seed": train.get("seed"),
        "max_minutes": train.get("max_minutes"),
        "best_epoch": metrics.get("best_epoch"),
        "epochs": len(metrics.get("epochs") or []),
        "train_seconds": metrics.get("train_seconds"),
    }


def _write_json(path: Path, results: dict, model_dir: Path) -> None:
    results = {**results, "command": "streamrec " + " ".join(sys.argv[1:]), "trained": _provenance(model_dir)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(results, indent=2, sort_keys=True))
    os.replace(tmp, path)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.stream and (args.mmr_lambda or args.mmr_plot):
        raise UserError("--mmr-lambda sweeps the leave-one-out protocol: leave out --stream")
    if args.stream:
        results = _stream(args, settings)
        if args.json:
            _write_json(args.json, results, args.model)
        return 0
    from streamrec.datasets import load_events, load_items
    from streamrec.encoder.artifact import load_model_dir
    from streamrec.encoder.eval_run import evaluate_run
    from streamrec.encoder.seeds import seed_dir, summarize_seeds
    from streamrec.encoder.trainer import pick_device

    _check_offline(args)
    device = pick_device(settings.device)
    seeds = list(range(settings.encoder.seed, settings.encoder.seed + args.seeds))
    dirs = [args.model] if args.seeds == 1 else [seed_dir(args.model, s) for s in seeds]
    log = load_events(args.events)
    catalogue = load_items(args.items) if args.items else None
    per_seed = []
    for d in dirs:
        trained = load_model_dir(d, device="cpu")
        for name in {"cold_neighbours", "cold_temperature"} & settings.encoder.model_fields_set:
            setattr(trained.model.cfg, name, getattr(settings.encoder, name))  # the tower shares this config
        per_seed.append(
            evaluate_run(
                log,
                catalogue,
                trained,
                args.keep_seen,
                device,
                settings.data_dir / "cache",
                hybrid=settings.hybrid,
                mmr_lambdas=args.mmr_lambda,
                pool=settings.pool_size,
            )
        )
    results = per_seed[0]
    if args.seeds > 1:
        results = {**summarize_seeds(per_seed), "seeds": seeds, "per_seed": per_seed}
        results["protocol"] = per_seed[0]["protocol"]
    print(_table(results))
    p = results["protocol"]
    seen = "kept" if args.keep_seen else "excluded"
    print(
        f"\n{p['users']} users, {p['items']} items, full ranking, seen {seen}; "
        f"cold-start slice: {p['cold_start_users']} users"
        + (f"; mean ± std over seeds {seeds}" if args.seeds > 1 else "")
    )
    if "mmr" in results:
        _report_mmr(args, results["mmr"], seen)
    if args.json:
        _write_json(args.json, results, dirs[0])
    return 0
