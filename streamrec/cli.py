"""``streamrec`` console script: one subcommand per module in :mod:`streamrec.commands`.

Each command module exposes ``HELP``, ``SETTINGS`` (the settings it reads: its ``--help`` lists
their flags), ``add_arguments(parser)`` and ``run(args, settings) -> int`` and imports its heavy
dependencies (torch, faust) inside ``run`` so ``streamrec --help`` and argument errors stay
instant. Expected failures (bad settings, missing files, a bad model dir, a service that does
not answer: :mod:`streamrec.failures`) print one line and exit 2 (fix the input) or 1 (a
service is down); only bugs print a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from streamrec.errors import UserError
from streamrec.failures import explain, missing_extra
from streamrec.local.services import ServiceError
from streamrec.settings.cli import ALL, SettingsError, add_settings_flags, flag_of, settings_from_args, used_fields
from streamrec.settings.show import mask

QUIET_LOGGERS = ("kafka", "aiokafka", "faust", "mode", "urllib3", "httpx")
COMMANDS = (
    "demo",
    "up",
    "worker",
    "trainer",
    "api",
    "train",
    "retrain",
    "eval",
    "export",
    "models",
    "experiments",
    "items",
    "users",
    "replay",
    "feed",
    "bench",
    "config",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamrec", description="Streaming real-time recommender.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"streamrec.commands.{name}")
        except ModuleNotFoundError as exc:  # an extra this command needs is not installed
            failure = missing_extra(exc)
            if failure is None:
                raise
            _unavailable(sub, name, failure.message)
            continue
        p = sub.add_parser(name, help=module.HELP.replace("%", "%%"), description=module.HELP)
        module.add_arguments(p)
        add_settings_flags(p, module.SETTINGS)
        p.set_defaults(_run=module.run)
    return parser


def _unavailable(sub: argparse._SubParsersAction, name: str, why: str) -> None:
    """A command whose extra is missing: listed, and running it says what to install."""
    p = sub.add_parser(name, help=f"(unavailable: {why})", description=why)
    p.add_argument("ignored", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)

    def run(_args: argparse.Namespace, _settings: object) -> int:
        raise UserError(why)

    p.set_defaults(_run=run)


def _unused_setting_hint(command: str, extras: list[str]) -> str | None:
    """For a settings flag given to a command that does not read it: which commands do."""
    uses = {}
    for name in COMMANDS:
        with contextlib.suppress(ModuleNotFoundError):  # a command whose extra is not installed
            uses[name] = importlib.import_module(f"streamrec.commands.{name}").SETTINGS
    for arg in extras:
        flag = arg.split("=", 1)[0]
        users = [name for name, u in uses.items() if any(flag_of(p) == flag for p, _ in used_fields(u))]
        named = [name for name in users if ALL not in uses[name]]  # not demo/up/bench/config: they read all
        if users:
            return (
                f"{flag} is a setting that `streamrec {command}` does not read "
                f"(read by: {', '.join(named or users)}); its STREAMREC_* variable is read everywhere"
            )
    return None


def main(argv: Sequence[str] | None = None) -> int:
    # torch's OpenMP threads otherwise spin at every barrier: on a shared 2-core machine a spinning
    # thread holds the core its descheduled partner needs, and a training epoch took ~6x longer
    # (bench/train_speed.json, arm current-spinning). Read once, when torch loads (commands
    # import it inside ``run``); an explicit OMP_WAIT_POLICY wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        hint = _unused_setting_hint(args.command, extras)
        if hint is None:
            parser.error(f"unrecognized arguments: {' '.join(extras)}")
        print(f"streamrec {args.command}: error: {hint}", file=sys.stderr)
        return 2
    try:
        settings = settings_from_args(args)
    except SettingsError as exc:
        print(f"streamrec {args.command}: error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in QUIET_LOGGERS:  # client libraries log every connection at INFO
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    try:
        return int(args._run(args, settings) or 0)
    except ServiceError as exc:
        print(f"streamrec {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"streamrec {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        failure = explain(exc, settings.broker, mask(settings.redis, secret=True))
        if failure is None:
            raise
        print(f"streamrec {args.command}: error: {failure.message}", file=sys.stderr)
        return failure.code


if __name__ == "__main__":
    sys.exit(main())
