"""`streamrec trainer`: not built yet (issue #5)."""

from __future__ import annotations

import argparse
import sys

from streamrec.config import Settings

HELP = "run the online contrastive-update worker (not built yet)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def run(args: argparse.Namespace, settings: Settings) -> int:
    print("streamrec trainer: not built yet (issue #5)", file=sys.stderr)
    return 2
