"""`streamrec demo`: not built yet (issue #6)."""

from __future__ import annotations

import argparse
import sys

from streamrec.config import Settings

HELP = "run the whole system on one machine (broker, Redis, worker, trainer, replay, live view) (not built yet)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def run(args: argparse.Namespace, settings: Settings) -> int:
    print("streamrec demo: not built yet (issue #6)", file=sys.stderr)
    return 2
