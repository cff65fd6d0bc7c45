"""``streamrec feed USER``: print a user's current feed from Redis."""

from __future__ import annotations

import argparse

from streamrec.config import Settings
from streamrec.contracts.feed import feed_age_s
from streamrec.errors import UserError
from streamrec.feed_store import get_feed, redis_client

HELP = "print a user's feed from Redis"
# The settings it reads (its --help lists their flags; docs/configuration.md).
SETTINGS = ("redis", "redis_tls", "feed_prefix")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("user", help="user id")
    parser.add_argument("--json", action="store_true", help="print the raw feed as JSON")


def run(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.redis:
        raise UserError("no Redis to read from: pass --redis redis://HOST:PORT or set STREAMREC_REDIS")
    feed = get_feed(redis_client(settings.redis, settings.redis_tls), args.user, settings.feed_prefix)
    if feed is None:
        print(f"no feed for user {args.user!r}")
        return 1
    if args.json:
        print(feed.pack().decode())
        return 0
    arm = f"  arm {feed.arm}" if feed.arm else ""  # an experiment's arm (none without one)
    print(
        f"user {feed.user_id}  model {feed.model_version}{arm}  age {feed_age_s(feed):.1f}s  "
        f"after event {feed.event_id} (partition {feed.partition}, offset {feed.offset})"
    )
    because = feed.because or [None] * len(feed.items)  # feeds written before `because` existed
    for rank, (item, score, why) in enumerate(zip(feed.items, feed.scores, because, strict=True), 1):
        print(f"{rank:3d}. {item:<24} {score: .4f}" + (f"  because you viewed {why}" if why is not None else ""))
    return 0
