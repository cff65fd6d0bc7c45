"""`streamrec train`: fine-tune the encoder offline from an events log into a model directory."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from streamrec.config import Settings
from streamrec.errors import UserError

if TYPE_CHECKING:
    from streamrec.datasets import Catalogue, EventLog

HELP = "train the encoder offline from an events log (leave-one-out split, early stopping)"
# The settings it reads (its --help lists their flags; docs/configuration.md).
SETTINGS = ("data_dir", "device", "session_length", "encoder", "hybrid")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", required=True, type=Path, help="events file (.csv/.jsonl/.parquet/.inter/.dat)")
    parser.add_argument("--items", type=Path, help="items file with text; without it items get id embeddings only")
    parser.add_argument("--out", required=True, type=Path, help="model directory to write (replaced atomically)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--seeds",
        type=int,
        default=1,
        metavar="N",
        help="train N models (seeds encoder.seed .. +N-1) into OUT/seed-<seed>/ and report validation mean ± std",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    from streamrec.datasets import load_events, load_items
    from streamrec.encoder.seeds import mean_std, seed_dir

    if args.seeds < 1:
        raise UserError(f"--seeds must be at least 1, got {args.seeds}")
    log = load_events(args.events)
    catalogue = load_items(args.items) if args.items else None
    if log.rejected:
        line, reason = log.rejected[0]
        print(f"skipped {len(log.rejected)} invalid event rows (first: line {line}: {reason})")
    if args.seeds == 1:
        _train_one(args, settings, log, catalogue, args.out)
        return 0
    vals = []
    for seed in range(settings.encoder.seed, settings.encoder.seed + args.seeds):
        one = settings.model_copy(update={"encoder": settings.encoder.model_copy(update={"seed": seed})})
        vals.append(_train_one(args, one, log, catalogue, seed_dir(args.out, seed)))
    for k in ("ndcg@10", "hr@10"):
        m = mean_std([v[k] for v in vals])
        print(f"val {k} over {args.seeds} seeds: {m['mean']:.4f} ± {m['std']:.4f}")
    return 0


def _train_one(
    args: argparse.Namespace, settings: Settings, log: EventLog, catalogue: Catalogue | None, out: Path
) -> dict:
    """Train and save one model -> its validation metrics."""
    from streamrec.encoder.artifact import save_model_dir
    from streamrec.encoder.fit import fit_model

    trained = fit_model(settings, log, catalogue, progress=not args.quiet)
    written = save_model_dir(out, trained)
    val = trained.metrics["val"]
    print(
        f"wrote {written} (best epoch {trained.metrics['best_epoch']}, val ndcg@10 {val['ndcg@10']:.4f}, "
        f"hr@10 {val['hr@10']:.4f}, {trained.metrics['train_seconds']}s)"
    )
    return val
