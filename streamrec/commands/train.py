"""`streamrec train`: fine-tune the encoder offline from an events log into a model directory."""

from __future__ import annotations

import argparse
from pathlib import Path

from streamrec.config import Settings

HELP = "train the encoder offline from an events log (leave-one-out split, early stopping)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", required=True, type=Path, help="events file (.csv/.jsonl/.parquet/.inter/.dat)")
    parser.add_argument("--items", type=Path, help="items file with text; without it items get id embeddings only")
    parser.add_argument("--out", required=True, type=Path, help="model directory to write (replaced atomically)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from streamrec.datasets import load_events, load_items
    from streamrec.encoder.artifact import save_model_dir
    from streamrec.encoder.hybrid import table_from_log
    from streamrec.encoder.trainer import Trainer, pick_device

    log = load_events(args.events)
    catalogue = load_items(args.items) if args.items else None
    if log.rejected:
        line, reason = log.rejected[0]
        print(f"skipped {len(log.rejected)} invalid event rows (first: line {line}: {reason})")
    device = pick_device(settings.device)
    trainer = Trainer(
        log,
        catalogue,
        settings.encoder,
        settings.session_length,
        device,
        cache_dir=settings.data_dir / "cache",
        progress=not args.quiet,
    )
    print(
        f"training on {device}: {len(log)} events, {len(trainer.seqs.users)} users, {trainer.cfg.n_items} items, "
        f"text model: {trainer.text_model or 'none (id embeddings)'}"
    )
    trained = trainer.fit()
    trained.cooccurrence = table_from_log(log, settings.hybrid)  # the hybrid's base table, shipped on export
    out = save_model_dir(args.out, trained)
    val = trained.metrics["val"]
    print(
        f"wrote {out} (best epoch {trained.metrics['best_epoch']}, val ndcg@10 {val['ndcg@10']:.4f}, "
        f"hr@10 {val['hr@10']:.4f}, {trained.metrics['train_seconds']}s)"
    )
    return 0
