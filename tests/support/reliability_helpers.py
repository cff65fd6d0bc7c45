"""Helpers for the fault-injection suite (tests/reliability): event streams whose every event
is visible in the session (unique item per event), the criteria "every event reflected exactly
once" and "feeds equal those of an undisturbed run", consumer-group offsets, RSS from /proc.

No tests here. Built on :mod:`support.worker_harness` (the worker as a real subprocess).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from streamrec.contracts.feed import Feed
from streamrec.net import free_port
from support.worker_harness import WorkerEnv, event, feeds, produce, session_table

Msgs = list[tuple[str, dict[str, Any]]]


def stream(n_users: int, per_user: int, tag: str = "e", n_items: int = 200) -> Msgs:
    """Round-robin over users; event ``{tag}{step}-{u}`` is user ``u``'s ``step``-th event.
    per_user <= the session length L keeps all of a user's events in the session, so a lost,
    duplicated or reordered event is visible there."""
    return [
        (f"u{u}", event(0, f"u{u}", f"item-{(step * n_users + u) % n_items}") | {"event_id": f"{tag}{step}-{u}"})
        for step in range(per_user)
        for u in range(n_users)
    ]


USERS, PER_USER = 40, 8  # 8 = the test model's session length L: nothing is trimmed from a session
MSGS: Msgs = stream(USERS, PER_USER)  # the stream of the crash, rebalance and broker-restart tests
USER_IDS = sorted({u for u, _ in MSGS})


def produce_slowly(broker: str, topic: str, msgs: Msgs, per_s: float) -> threading.Thread:
    """Produce ``msgs`` at about ``per_s`` events/s in a background thread (in order)."""

    def run() -> None:
        chunk = max(1, int(per_s / 10))
        for i in range(0, len(msgs), chunk):
            produce(broker, topic, msgs[i : i + chunk])
            time.sleep(0.1)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def expected_sessions(msgs: Msgs) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for user, ev in msgs:
        out.setdefault(user, []).append(ev["item_id"])
    return out


def last_events(msgs: Msgs) -> dict[str, str]:
    return {user: ev["event_id"] for user, ev in msgs}


def all_reflected(env: WorkerEnv, msgs: Msgs) -> bool:
    """Every user's feed was computed after the user's last event."""
    last = last_events(msgs)
    got = feeds(env.redis, env.feed_prefix, list(last))
    return all(f is not None and f.event_id == last[u] for u, f in got.items())


def session_differences(got: dict[str, list[str]], want: dict[str, list[str]]) -> list[str]:
    """Per user, how the session differs from the events produced (lost, extra, reordered)."""
    out = []
    for user in sorted(set(got) | set(want)):
        g, w = got.get(user, []), want.get(user, [])
        if g != w:
            lost = [i for i in w if w.count(i) > g.count(i)]
            extra = [i for i in g if g.count(i) > w.count(i)]
            out.append(f"{user}: got {g}, want {w} (lost {sorted(set(lost))}, extra {sorted(set(extra))})")
    return out


def sessions_of(env: WorkerEnv, users: list[str]) -> dict[str, list[str]]:
    """The item lists of the users' sessions, from the table's changelog (the durable copy)."""
    table = session_table(env.broker, env.prefix)
    return {u: table[u]["i"] if u in table else [] for u in users}


def final_feeds(env: WorkerEnv, users: list[str]) -> dict[str, Feed | None]:
    return feeds(env.redis, env.feed_prefix, users)


def feed_differences(got: dict[str, Feed | None], want: dict[str, Feed | None]) -> list[str]:
    """Where two runs' feeds differ in what an app sees: items, scores (to 1e-4: onnxruntime's
    float sums depend on the batch shape at ~1e-7), model version, causing event. The time
    generated and the source offset differ between runs by nature and are not compared."""
    out = []
    for user in sorted(set(got) | set(want)):
        g, w = got.get(user), want.get(user)
        if g is None or w is None:
            if g is not w:
                out.append(f"{user}: {g} != {w}")
            continue
        same_scores = len(g.scores) == len(w.scores) and all(
            abs(a - b) < 1e-4 for a, b in zip(g.scores, w.scores, strict=True)
        )
        if (g.items, g.model_version, g.event_id) != (w.items, w.model_version, w.event_id) or not same_scores:
            out.append(f"{user}: {g.items} {g.event_id} != {w.items} {w.event_id}")
    return out


def assert_same_as_undisturbed(env: WorkerEnv, reference: dict[str, Feed | None], note: str = "") -> None:
    """Every session holds each event of :data:`MSGS` once, in order, and every feed equals the
    undisturbed run's (``reference``: the ``undisturbed_feeds`` fixture)."""
    sessions = session_differences(sessions_of(env, USER_IDS), expected_sessions(MSGS))
    feeds = feed_differences(final_feeds(env, USER_IDS), reference)
    assert (sessions, feeds) == ([], []), (
        f"{note}\n{len(sessions)} sessions differ from the events produced:\n"
        + "\n".join(sessions)
        + f"\n{len(feeds)} feeds differ from the undisturbed run's:\n"
        + "\n".join(feeds)
    )


def sibling(env: WorkerEnv, name: str) -> WorkerEnv:
    """Same topics, group and Redis; its own web port and data dir (a second worker)."""
    return dataclasses.replace(env, web_port=free_port(), data_dir=env.data_dir.parent / name)


def committed_offsets(broker: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    """The consumer group's committed offsets (next offset to read; -1 = none), read without
    joining the group."""
    consumer = KafkaConsumer(bootstrap_servers=broker, group_id=group, enable_auto_commit=False)
    try:
        out = {}
        for p in range(partitions):
            c = consumer.committed(TopicPartition(topic, p))
            out[p] = -1 if c is None else c
        return out
    finally:
        consumer.close()


def rss_mb(pid: int) -> float:
    """Resident set size of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")
