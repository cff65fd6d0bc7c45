"""``streamrec trainer``: the online contrastive-update worker."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from streamrec.config import Settings
from streamrec.errors import UserError

HELP = "run the online contrastive-update worker (consumes streamrec.training, promotes gated versions)"


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
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run_trainer(settings, args.init_model, stop)
    return 0
