"""``streamrec items publish FILE | withdraw ID... | show ID``: the catalogue on ``streamrec.items``.

``publish`` reads a CSV, JSONL or Parquet file with the reader ``replay`` uses, checks every row
with the catalogue contract (:func:`streamrec.contracts.items.record_from_row`), reports each bad
row as ``FILE:LINE: rejected: reason`` and publishes the good ones (exit 1 when a row was
rejected, so a script notices). ``withdraw`` publishes tombstones: feed reads stop showing the
items as soon as a worker has read them (streamrec.contracts.feed). ``show`` prints the latest
record of an item on the topic, and whether feed reads filter it out.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from streamrec.config import Settings
from streamrec.contracts.items import record_from_row
from streamrec.errors import UserError
from streamrec.file_rows import ERROR_KEY

HELP = "publish a catalogue file (CSV, JSONL, Parquet), withdraw items, or show one item"
# The settings it reads (its --help lists their flags; docs/configuration.md).
SETTINGS = ("broker", "kafka_security", "topics", "partitions", "replication", "redis", "redis_tls", "feed_prefix")
MAX_REPORTED = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("publish", "withdraw", "show"), help="what to do")
    parser.add_argument("args", nargs="+", metavar="FILE|ID", help="publish: a file; withdraw: item ids; show: an id")


def read_items_file(path: Path) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
    """Valid catalogue records, and (line, reason) for each bad row."""
    from streamrec.datasets import raw_rows

    if not path.is_file():
        raise UserError(f"{path}: no such file")
    good: list[dict[str, Any]] = []
    bad: list[tuple[int, str]] = []
    for lineno, row in raw_rows(path):
        record = str(row[ERROR_KEY]) if ERROR_KEY in row else record_from_row(row)
        if isinstance(record, str):
            bad.append((lineno, record))
        else:
            good.append(record)
    return good, bad


def _publish(settings: Settings, messages: list[tuple[str, bytes | None]]) -> None:
    from streamrec.kafka import publish

    publish(settings, settings.topics.items, messages)


def _show(settings: Settings, item_id: str) -> int:
    from streamrec.kafka import read_to_end

    latest = None
    for r in read_to_end(settings.broker, settings.topics.items, settings.kafka_security):
        if r.key is not None and r.key.decode("utf-8", "replace") == item_id:
            latest = r
    if latest is None:
        print(f"item {item_id!r} is not on {settings.topics.items}")
        return 1
    state = "withdrawn (tombstone)" if latest.value is None else json.loads(latest.value)
    print(json.dumps({"item_id": item_id, "offset": latest.offset, "record": state}, indent=2))
    if settings.redis:
        from streamrec.feed_store import is_withdrawn, redis_client

        hidden = is_withdrawn(redis_client(settings.redis, settings.redis_tls), settings.feed_prefix, item_id)
        print(f"feed reads {'filter it out' if hidden else 'show it'} ({settings.redis})")
    return 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.broker:
        raise UserError("no broker: pass --broker HOST:PORT or set STREAMREC_BROKER")
    if args.action == "show":
        if len(args.args) != 1:
            raise UserError("items show takes one item id")
        return _show(settings, args.args[0])
    if args.action == "withdraw":
        _publish(settings, [(item_id, None) for item_id in args.args])
        print(f"withdrew {len(args.args)} item(s) on {settings.topics.items}")
        return 0
    if len(args.args) != 1:
        raise UserError("items publish takes one file")
    path = Path(args.args[0])
    records, bad = read_items_file(path)
    for lineno, reason in bad[:MAX_REPORTED]:
        print(f"{path}:{lineno}: rejected: {reason}", file=sys.stderr)
    if len(bad) > MAX_REPORTED:
        print(f"... and {len(bad) - MAX_REPORTED} more rejected rows", file=sys.stderr)
    if not records and not bad:
        raise UserError(f"{path}: no items")
    _publish(settings, [(r["item_id"], json.dumps(r).encode()) for r in records])
    print(f"published {len(records)} items to {settings.topics.items}; {len(bad)} rejected rows (not published)")
    return 1 if bad else 0
