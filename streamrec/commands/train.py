"""`streamrec train`: not built yet (issue #3)."""

from __future__ import annotations

import argparse
import sys

from streamrec.config import Settings

HELP = "train the encoder offline from an events log (not built yet)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def run(args: argparse.Namespace, settings: Settings) -> int:
    print("streamrec train: not built yet (issue #3)", file=sys.stderr)
    return 2
