"""What the embedded-stack latency benches (``withdraw_bench``, ``erasure_bench``) share: their
percentile and their command line (``--users``, ``--rounds``, ``--json``; the JSON records the
command that made it)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def percentile(xs: list[float], q: float) -> float:
    """The ``q`` quantile by rank (no interpolation: a figure some run really had)."""
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def run(
    module: str,
    doc: str,
    measure: Callable[[int, int], dict[str, Any]],
    users: tuple[int, str],
    rounds_help: str,
) -> None:
    """Parse the bench's arguments, run ``measure(users, rounds)``, print its JSON and write it to
    ``--json`` with the command first."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--users", type=int, default=users[0], help=users[1])
    parser.add_argument("--rounds", type=int, default=5, help=rounds_help)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    out = {
        "command": f"python -m streamrec.bench.{module} --users {args.users} --rounds {args.rounds}"
        + (f" --json {args.json}" if args.json else "")
    }
    out |= measure(args.users, args.rounds)
    text = json.dumps(out, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
