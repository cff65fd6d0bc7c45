"""Withdrawal to gone: how long after an item's tombstone is published until no feed read
(``get_feed``, what the API serves) shows it, on the embedded stack (Tansu + redis-server + one
``streamrec worker`` process with a synthetic 10k-item model).

The worker writes real feeds for ``--users`` users (one event each); then, per round, the item
at the top of each feed is withdrawn (one tombstone per distinct item, published together) and
every feed is read in a loop until its item is gone. A feed's latency runs from just before the
tombstones are sent to the first read without the item (so it includes the produce, the
worker's catalogue follower, its write of the withdrawn set and one sweep of reads).

``python -m streamrec.bench.withdraw_bench --json bench/withdraw.json``
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from streamrec.bench.stack_cli import percentile, run
from streamrec.config import Settings
from streamrec.contracts.events import Event
from streamrec.feed_store import get_feed, redis_client
from streamrec.kafka import make_producer

TARGET_P99_S = 5.0
TIMEOUT_S = 30.0


def measure(users: int, rounds: int) -> dict[str, Any]:
    from streamrec.bench.e2e_bench import E2EConfig, running_stack

    with running_stack(Settings(), E2EConfig.quick()) as bench:
        s = bench.settings
        client = redis_client(s.redis, s.redis_tls)
        ids = [f"wd{n}" for n in range(users)]
        assert bench.producer is not None
        for n, user in enumerate(ids):
            ev = Event(f"wd-{n}", user, f"i{n % 50}", "click", time.time())
            bench.producer.send(user, ev.to_json())
        bench.produced += users
        bench.drain()
        deadline = time.monotonic() + TIMEOUT_S
        while any(get_feed(client, u, s.feed_prefix) is None for u in ids) and time.monotonic() < deadline:
            time.sleep(0.2)
        catalogue = make_producer(s.broker, s.kafka_security)
        latencies: list[float] = []
        per_round = []
        for r in range(rounds):
            feeds = {u: get_feed(client, u, s.feed_prefix) for u in ids}
            top = {u: f.items[0] for u, f in feeds.items() if f is not None and f.items}
            t0 = time.monotonic()
            for item in set(top.values()):
                catalogue.send(s.topics.items, key=item, value=None)
            catalogue.flush()
            waiting = dict(top)
            gone: dict[str, float] = {}
            while waiting and time.monotonic() - t0 < TIMEOUT_S:
                for u, item in list(waiting.items()):
                    f = get_feed(client, u, s.feed_prefix)
                    if f is None or item not in f.items:
                        gone[u] = time.monotonic() - t0
                        del waiting[u]
            latencies += gone.values()
            row = {"round": r, "feeds": len(top), "items": len(set(top.values())), "not_gone": len(waiting)}
            row |= {"p50_s": round(percentile(list(gone.values()), 0.5), 3), "max_s": round(max(gone.values()), 3)}
            per_round.append(row)
            print(json.dumps(row), flush=True)
        catalogue.close()
    return {
        "what": "tombstone published -> the item gone from every feed read that held it (read-time filtering)",
        "stack": "embedded Tansu broker + redis-server + one streamrec worker process (synthetic 10k-item model)",
        "machine": {"cpus": os.cpu_count(), "load_avg_at_end": os.getloadavg()},
        "feeds_measured": len(latencies),
        "latency_s": {
            "p50": round(percentile(latencies, 0.5), 3),
            "p99": round(percentile(latencies, 0.99), 3),
            "max": round(max(latencies), 3),
        },
        "target_p99_s": TARGET_P99_S,
        "rounds": per_round,
    }


def main() -> None:
    rounds_help = "withdrawal rounds (each feed's top item)"
    run("withdraw_bench", __doc__ or "", measure, (200, "feeds (one user each)"), rounds_help)


if __name__ == "__main__":
    main()
