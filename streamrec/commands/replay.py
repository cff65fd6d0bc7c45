"""``streamrec replay FILE``: publish an events file to the events topic at a given rate.

Rows are validated with the worker's own validator; a bad row is reported with its line
and reason and sent to the dead-letter topic (nothing is dropped), and the rest are
published keyed by user id, in time order by default (ties keep file order).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from streamrec.config import Settings
from streamrec.contracts.dead_letters import dead_letter
from streamrec.contracts.events import Event, Invalid
from streamrec.datasets import iter_event_rows, row_to_event
from streamrec.errors import UserError
from streamrec.kafka import EventProducer, Pacer, ensure_topics, make_producer, topic_plan

HELP = "publish an events file (CSV, JSONL, Parquet, RecBole .inter, ratings.dat) at a given rate"
# The settings it reads (its --help lists their flags; docs/configuration.md).
SETTINGS = ("broker", "kafka_security", "topics", "partitions", "replication")
MAX_REPORTED = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="events file")
    parser.add_argument("--rate", type=float, default=1000.0, help="events per second (0 = as fast as possible)")
    parser.add_argument("--limit", type=int, default=None, help="publish at most this many events")
    parser.add_argument("--order", choices=("time", "file"), default="time", help="publish order")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def read_replay_file(path: Path) -> tuple[list[Event], list[tuple[int, str, bytes]]]:
    """Valid events, and (line, reason, raw row bytes) for each bad row."""
    if not path.exists():
        raise UserError(f"{path}: no such file")
    good: list[Event] = []
    bad: list[tuple[int, str, bytes]] = []
    for lineno, row in iter_event_rows(path):
        result = row_to_event(row, f"{path.name}:{lineno}")
        if isinstance(result, Invalid):
            bad.append((lineno, result.reason, json.dumps(row).encode()))
        else:
            good.append(result)
    return good, bad


def publish(events: list[Event], settings: Settings, rate: float, progress: bool) -> EventProducer:
    producer = EventProducer(settings.broker, settings.topics.events, settings.kafka_security)
    pacer = Pacer(rate)
    columns = (
        TextColumn("replay"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task("replay", total=len(events), rate="")
        for i, ev in enumerate(events, 1):
            producer.send(ev.user_id, ev.to_json())
            pacer.tick()
            if i % 500 == 0 or i == len(events):
                elapsed = time.monotonic() - pacer.start
                bar.update(task, completed=i, rate=f"{i / max(elapsed, 1e-9):,.0f} ev/s")
    producer.close()
    return producer


def run(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.broker:
        raise UserError("no broker to publish to: pass --broker HOST:PORT or set STREAMREC_BROKER")
    if args.rate < 0:
        raise UserError(f"--rate must be >= 0, got {args.rate}")
    events, bad = read_replay_file(args.file)
    if args.order == "time":
        events.sort(key=lambda ev: ev.ts)
    if args.limit is not None:
        events = events[: args.limit]
    ensure_topics(settings.broker, topic_plan(settings), settings.replication, settings.kafka_security)
    for lineno, reason, _ in bad[:MAX_REPORTED]:
        print(f"{args.file}:{lineno}: rejected: {reason}", file=sys.stderr)
    if len(bad) > MAX_REPORTED:
        print(f"... and {len(bad) - MAX_REPORTED} more rejected rows", file=sys.stderr)
    if bad:
        dlq = make_producer(settings.broker, settings.kafka_security)
        for lineno, reason, raw in bad:
            dlq.send(settings.topics.dlq, value=dead_letter(raw, reason, {"file": str(args.file), "line": lineno}))
        dlq.close()
    report = publish(events, settings, args.rate, progress=not args.no_progress and sys.stderr.isatty())
    print(
        f"published {report.report.delivered}/{len(events)} events to {settings.topics.events}; "
        f"{len(bad)} rejected rows sent to {settings.topics.dlq}"
    )
    for key, reason in report.report.failed[:MAX_REPORTED]:
        print(f"delivery failed (user {key}): {reason}", file=sys.stderr)
    return 1 if report.report.failed else 0
