"""``streamrec config show``: the effective settings, secrets masked, and where each came from."""

from __future__ import annotations

import argparse
import json

from streamrec.config import Settings
from streamrec.settings.cli import ALL
from streamrec.settings.show import effective_settings

HELP = "print the effective settings (secrets masked) and where each value came from (flag, env, default)"
SETTINGS = (ALL,)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("show",), help="show the effective settings")
    parser.add_argument("--json", action="store_true", help="print JSON: name -> value, source, env, flag")
    parser.add_argument("--changed", action="store_true", help="only the settings that are not at their default")


def run(args: argparse.Namespace, settings: Settings) -> int:
    rows = [r for r in effective_settings(settings, args) if not args.changed or r.source != "default"]
    if args.json:
        print(json.dumps({r.name: {"value": r.value, "source": r.source, "env": r.env, "flag": r.flag} for r in rows}))
        return 0
    width = max((len(r.name) for r in rows), default=0)
    vwidth = min(max((len(r.value) for r in rows), default=0), 40)
    for r in rows:
        print(f"{r.name:<{width}}  {r.value:<{vwidth}}  {r.source}")
    return 0
