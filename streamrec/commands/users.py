"""``streamrec users delete USER...``: erase users, by one erasure each on ``streamrec.erasures``.

Every worker deletes the session (a tombstone on the table's changelog), the feed and the live
state of a user it owns; the trainer drops the user's buffered and held-back examples and
ignores those published before the erasure (docs/privacy.md says what stays: what model weights
learned, and the topics' retention). The command returns once the broker acked every erasure;
the erasure itself takes effect within seconds (``bench/erasure.json``).
"""

from __future__ import annotations

import argparse
import time

from streamrec.config import Settings
from streamrec.contracts.erasure import erasure_records
from streamrec.errors import UserError

HELP = "erase users: their session, feed and training examples (docs/privacy.md)"
# The settings it reads (its --help lists their flags; docs/configuration.md).
SETTINGS = ("broker", "kafka_security", "topics", "partitions", "replication")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("delete",), help="what to do")
    parser.add_argument("users", nargs="*", metavar="USER", help="user ids to erase")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from streamrec.kafka import publish

    try:
        records = erasure_records(args.users, time.time())
    except ValueError as exc:
        raise UserError(f"users delete: {exc}") from None
    if not settings.broker:
        raise UserError("no broker: pass --broker HOST:PORT or set STREAMREC_BROKER")
    publish(settings, settings.topics.erasures, records)
    print(f"erasure of {len(records)} user(s) published on {settings.topics.erasures}")
    return 0
