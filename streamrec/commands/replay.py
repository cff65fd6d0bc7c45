"""`streamrec replay`: not built yet (issue #2)."""

from __future__ import annotations

import argparse
import sys

from streamrec.config import Settings

HELP = "publish an events file to the events topic at a given rate (not built yet)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def run(args: argparse.Namespace, settings: Settings) -> int:
    print("streamrec replay: not built yet (issue #2)", file=sys.stderr)
    return 2
