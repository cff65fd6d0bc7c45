"""``streamrec retrain``: a scheduled full retrain, gated against the served version (a CronJob in k8s/)."""

from __future__ import annotations

import argparse
from pathlib import Path

from streamrec.config import Settings
from streamrec.errors import UserError

HELP = (
    "rebuild the model offline from the events topic (or an archive of it), gate it against the served "
    "version on the newest events, and announce it if it passes (exit 3 if the gate rejects it)"
)
# The settings it reads (its --help lists their flags; docs/configuration.md). ``trainer``: the gate's tolerance.
SETTINGS = (
    "broker",
    "data_dir",
    "k",
    "pool",
    "session_length",
    "device",
    "max_event_bytes",
    "topics",
    "kafka_security",
    "registry",
    "serving",
    "redis_tls",
    "trainer",
    "encoder",
    "hybrid",
    "retrain",
)
REJECTED = 3  # the gate kept the served version: distinct from 1 (a service is down) and 2 (bad input)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--events",
        type=Path,
        default=None,
        help="archive of the events topic (.csv/.jsonl/.parquet/.inter/.dat); default: read the topic itself",
    )
    parser.add_argument("--items", type=Path, help="items file with text; without it items get id embeddings only")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from streamrec.trainer.retrain import retrain

    if not settings.broker:
        raise UserError("no broker: pass --broker HOST:PORT or set STREAMREC_BROKER (the served version is read there)")
    for flag, path in (("--events", args.events), ("--items", args.items)):
        if path is not None and not path.is_file():
            raise UserError(f"{flag} {path}: no such file")
    outcome = retrain(settings, args.events, args.items, progress=not args.quiet)
    numbers = outcome.numbers(settings.trainer.tolerance)
    if not outcome.promoted:
        print(f"streamrec retrain: rejected, the served version stays: {numbers}")
        return REJECTED
    print(f"announced {outcome.version} on {settings.topics.models}: {numbers}")
    return 0
