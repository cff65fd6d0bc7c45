"""`streamrec export`: not built yet (issue #10)."""

from __future__ import annotations

import argparse
import sys

from streamrec.config import Settings

HELP = "export a trained model to a verified ONNX artifact in the registry (not built yet)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def run(args: argparse.Namespace, settings: Settings) -> int:
    print("streamrec export: not built yet (issue #10)", file=sys.stderr)
    return 2
