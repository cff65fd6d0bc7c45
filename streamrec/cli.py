"""``streamrec`` console script: one subcommand per module in :mod:`streamrec.commands`.

Each command module exposes ``HELP``, ``add_arguments(parser)`` and ``run(args, settings) -> int``
and imports its heavy dependencies (torch, faust) inside ``run`` so ``streamrec --help`` and
argument errors stay instant. Expected failures (bad settings, missing files or binaries)
print one line and exit non-zero; only bugs print a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from streamrec.errors import UserError
from streamrec.local.services import ServiceError
from streamrec.settings.cli import SettingsError, add_settings_flags, settings_from_args

QUIET_LOGGERS = ("kafka", "aiokafka", "faust", "mode", "urllib3", "httpx")
COMMANDS = ("demo", "up", "worker", "trainer", "train", "eval", "export", "models", "replay", "feed", "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamrec", description="Streaming real-time recommender.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"streamrec.commands.{name}")
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        add_settings_flags(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # torch's OpenMP threads otherwise spin at every barrier: on a shared 2-core machine a spinning
    # thread holds the core its descheduled partner needs, and a training epoch took ~6x longer
    # (bench/train_speed.json, arm current-spinning). Read once, when torch loads (commands
    # import it inside ``run``); an explicit OMP_WAIT_POLICY wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = settings_from_args(args)
        logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        for noisy in QUIET_LOGGERS:  # client libraries log every connection at INFO
            logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
        return int(args._run(args, settings) or 0)
    except (SettingsError, UserError) as exc:
        print(f"streamrec {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ServiceError as exc:
        print(f"streamrec {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"streamrec {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
