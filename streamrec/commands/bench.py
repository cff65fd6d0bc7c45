"""`streamrec bench`: not built yet (issue #8)."""

from __future__ import annotations

import argparse
import sys

from streamrec.config import Settings

HELP = "run the benchmarks and write JSON (not built yet)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def run(args: argparse.Namespace, settings: Settings) -> int:
    print("streamrec bench: not built yet (issue #8)", file=sys.stderr)
    return 2
