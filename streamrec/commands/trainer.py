"""``streamrec trainer``: the online contrastive-update worker."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from streamrec.config import Settings
from streamrec.errors import UserError

HELP = "run the online contrastive-update worker (consumes streamrec.training, promotes gated versions)"
# The settings it reads (its --help lists their flags; docs/configuration.md).
SETTINGS = (
    "broker",
    "data_dir",
    "k",
    "pool",
    "session_length",
    "device",
    "topics",
    "kafka_security",
    "registry",
    "serving",
    "redis_tls",
    "trainer",
    "encoder",
    "hybrid",
    "worker",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--init-model",
        type=Path,
        default=None,
        metavar="DIR",
        help="model directory (streamrec train) of the served version, used when the trainer has no state yet",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    from streamrec.trainer.process import run_trainer

    if not settings.broker:
        raise UserError("no broker: pass --broker HOST:PORT or set STREAMREC_BROKER")
    if args.init_model is not None and not args.init_model.is_dir():
        raise UserError(f"--init-model {args.init_model}: no such directory (a model directory of streamrec train)")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run_trainer(settings, args.init_model, stop)
    return 0
