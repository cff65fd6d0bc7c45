"""What the live hit rate costs in the session changelog: the bytes one session value gains
from its feed digest (:mod:`streamrec.streams.live_metrics`), serialised by the codec the
worker's table uses (faust's ``json``), for a full session (``session_length`` items, a full
dedupe window) and feeds of K items.

``python -m streamrec.bench.live_state --json bench/live_metrics_state.json``
"""

from __future__ import annotations

import argparse
import json
import uuid
from pathlib import Path
from typing import Any

from faust.serializers import codecs

from streamrec.contracts.events import Event
from streamrec.streams.live_metrics import feed_digest
from streamrec.streams.session import Session, apply_event

SESSION_LENGTH, DEDUPE_WINDOW, VERSION = 50, 128, "v0042-3f9a1c2e"
TARGET_BYTES = 100


def _session() -> Session:
    s = Session.empty()
    for n in range(DEDUPE_WINDOW):
        ev = Event(str(uuid.UUID(int=n)), "user-1", f"item-{n:06d}", "click", 1.7e9 + n)
        apply_event(s, ev, SESSION_LENGTH, DEDUPE_WINDOW)
    return s


def measure(ks: tuple[int, ...] = (10, 20, 50)) -> dict[str, Any]:
    """Serialised session value sizes without and with a feed digest, per feed length K."""
    session = _session()
    base = len(codecs.dumps("json", session.to_value()))
    by_k = {}
    for k in ks:
        session.feed = feed_digest(VERSION, [f"item-{n:06d}" for n in range(1000, 1000 + k)])
        with_feed = len(codecs.dumps("json", session.to_value()))
        by_k[str(k)] = {"session_bytes": with_feed, "extra_bytes": with_feed - base, "digest_chars": len(session.feed)}
    return {
        "what": "bytes a session value gains in the changelog from the live metrics' feed digest",
        "codec": "faust json (the worker's table value serializer)",
        "session": {"items": SESSION_LENGTH, "dedupe_window": DEDUPE_WINDOW, "bytes_without_feed": base},
        "target_extra_bytes_at_k20": TARGET_BYTES,
        "by_k": by_k,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    out = measure()
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
