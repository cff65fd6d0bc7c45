"""`streamrec worker`: not built yet (issue #4)."""

from __future__ import annotations

import argparse
import sys

from streamrec.config import Settings

HELP = "run the Faust stream worker against the configured broker and Redis (not built yet)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def run(args: argparse.Namespace, settings: Settings) -> int:
    print("streamrec worker: not built yet (issue #4)", file=sys.stderr)
    return 2
