"""``streamrec experiments report``: each arm's live hit rate@10 with its 95% interval, and its
difference from the control arm, read from the workers' own ``/metrics`` (the counters of
:mod:`streamrec.streams.live_metrics`; the figures: :mod:`streamrec.experiment_report`)."""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from streamrec.config import Settings
from streamrec.errors import ServiceUnavailable, UserError

HELP = "an experiment's live hit rate@10 per arm with 95% intervals, and each arm against the control"
# The settings it reads (its --help lists their flags; docs/configuration.md).
SETTINGS = ("experiment", "worker")
TIMEOUT_S = 5.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("report",), help="report: the arms' live figures from the workers")
    parser.add_argument(
        "--metrics",
        action="append",
        default=None,
        metavar="URL",
        help="a worker's metrics endpoint, once per worker (default: http://127.0.0.1:<worker.web_port>/metrics)",
    )
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the report as JSON here")


def _scrape(url: str) -> Any:
    from streamrec.prom import parse

    if not url.startswith(("http://", "https://")):
        raise UserError(f"--metrics {url!r}: give an http:// or https:// URL")
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp:
            body = resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        raise ServiceUnavailable(f"{url} answered HTTP {exc.code}: is it a worker's /metrics?") from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ServiceUnavailable(f"no worker metrics at {url} ({reason}): is the worker running?") from None
    try:
        return parse(body)
    except ValueError as exc:
        raise ServiceUnavailable(f"{url} did not answer Prometheus text ({exc})") from None


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def _ci(pair: list[float | None]) -> str:
    return f"[{_pct(pair[0])}, {_pct(pair[1])}]"


def _lines(row: dict[str, Any]) -> list[str]:
    """An arm's figures; intervals over events, then over buckets of users (the honest one when
    few users make many events: streamrec.experiment_report)."""
    lines = [
        f"{row['arm']:<16} {row['policy'] or '-':<24} {row['events_with_feed']:>9,}  "
        f"hit@10 {_pct(row['hit_rate_at_10']):>7}  events {_ci(row['ci95'])}  users {_ci(row['users_ci95'])}"
    ]
    vs = row.get("vs_control")
    if vs is not None:
        lines.append(
            f"{'':<16} vs control {_pct(vs['difference'])}  events {_ci(vs['difference_ci95'])}  users "
            f"{_ci(vs['difference_users_ci95'])};  relative {_pct(vs['relative'])}  events "
            f"{_ci(vs['relative_ci95'])}  users {_ci(vs['relative_users_ci95'])}"
        )
    return lines


def run(args: argparse.Namespace, settings: Settings) -> int:
    from streamrec.experiment_report import arm_counts, report

    urls = args.metrics or [f"http://127.0.0.1:{settings.worker.web_port}/metrics"]
    counts = arm_counts([_scrape(url) for url in urls])
    exp = settings.experiment
    out = report(counts, exp.control_name, exp.parsed) | {"metrics": urls}
    if not out["arms"]:
        print("no live counts yet: the workers have scored no event against a feed")
    else:
        print(f"{'arm':<16} {'policy':<24} {'events':>9}  (95% intervals; control: {out['control']})")
        for row in out["arms"]:
            print("\n".join(_lines(row)))
    if args.json is not None:
        try:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(out, indent=2) + "\n")
        except OSError as exc:
            raise UserError(f"--json {args.json}: {exc.strerror or exc}") from None
        print(f"report written to {args.json}")
    return 0
