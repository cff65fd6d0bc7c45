"""Scaling: worker state per user, and the per-event session path as the number of users grows.

* ``state_per_user``: one user's session as the table keeps it, at three fill levels (one event,
  ten, full: L=50 items and a 128-id dedupe window): bytes of the changelog value (JSON, what
  RocksDB and the changelog topic hold) and bytes of Python objects (what the ``memory://``
  store holds), measured with tracemalloc over 2,000 users.
* ``users``: a session table of N users (10k, 100k, 1M; ten events each) in a dict, then the
  worker's per-event Python path over it: ``validate_bytes`` -> table get -> ``apply_event`` ->
  ``to_value`` -> table put. events/s and bytes per user (RSS growth) for each N. Scoring is left out (it
  does not depend on N; see the model benchmark for its cost against catalogue size).
* the catalogue side (item matrix bytes = N x d x 4; runner events/s against N) comes from the
  model benchmark's runs, so both are measured in one place.
"""

from __future__ import annotations

import gc
import json
import os
import random
import time
import tracemalloc
import uuid
from typing import Any

from streamrec.contracts.events import Event, Invalid, validate_bytes
from streamrec.streams.session import Session, apply_event

SESSION_LENGTH, DEDUPE_WINDOW, MAX_EVENT_BYTES = 50, 128, 64 * 1024


def _event(user: int, item: int, ts: float) -> Event:
    return Event(str(uuid.UUID(int=random.getrandbits(128))), f"u{user}", f"i{item}", "click", ts)


def _session(user: int, n_events: int, rng: random.Random) -> Session:
    s = Session.empty()
    for j in range(n_events):
        apply_event(s, _event(user, rng.randrange(50_000), 1.7e9 + j), SESSION_LENGTH, DEDUPE_WINDOW)
    return s


def state_per_user(fills: tuple[int, ...] = (1, 10, 128), n: int = 2000) -> list[dict[str, Any]]:
    rng = random.Random(0)
    out = []
    for fill in fills:
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        table = {f"u{u}": _session(u, fill, rng).to_value() for u in range(n)}
        python_bytes = (tracemalloc.get_traced_memory()[0] - before) / n
        tracemalloc.stop()
        value = table["u0"]
        out.append(
            {
                "events_in_session": fill,
                "items_kept": len(value["i"]),
                "ids_kept": len(value["e"]),
                "json_bytes": len(json.dumps(value, separators=(",", ":")).encode()),
                "python_bytes": python_bytes,
            }
        )
        del table
    return out


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _value(fill: int, rng: random.Random) -> dict[str, Any]:
    """A session value of ``fill`` events, built directly (what ``apply_event`` would build)."""
    return {
        "i": [f"i{rng.randrange(50_000)}" for _ in range(fill)],
        "t": ["click"] * fill,
        "s": [1.7e9 + j for j in range(fill)],
        "e": [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(fill)],
    }


def users_run(n_users: int, events: int = 50_000, fill: int = 10, seed: int = 0) -> dict[str, Any]:
    """Fill a table of ``n_users`` sessions, then time the per-event path over it. Memory is the
    process RSS growth (tracemalloc would slow the fill ~5x)."""
    rng = random.Random(seed)
    random.seed(seed)
    gc.collect()
    rss0 = _rss_bytes()
    t0 = time.perf_counter()
    table: dict[str, dict[str, Any]] = {f"u{u}": _value(fill, rng) for u in range(n_users)}
    fill_s = time.perf_counter() - t0
    state_bytes = _rss_bytes() - rss0
    payloads = [_event(rng.randrange(n_users), rng.randrange(50_000), time.time()).to_json() for _ in range(events)]
    gc.collect()
    t0 = time.perf_counter()
    for raw in payloads:
        ev = validate_bytes(raw, MAX_EVENT_BYTES)
        if isinstance(ev, Invalid):
            raise RuntimeError(ev.reason)
        session = Session.from_value(table.get(ev.user_id))
        apply_event(session, ev, SESSION_LENGTH, DEDUPE_WINDOW)
        table[ev.user_id] = session.to_value()
    seconds = time.perf_counter() - t0
    del table
    gc.collect()
    return {
        "users": n_users,
        "events_per_user_prefill": fill,
        "prefill_s": fill_s,
        "state_rss_mb": state_bytes / 1e6,
        "bytes_per_user": state_bytes / n_users,
        "events": events,
        "session_path_events_per_s": events / seconds,
        "session_path_us_per_event": 1e6 * seconds / events,
    }


def run_scaling_bench(quick: bool = False, model_runs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    users = (10_000, 100_000) if quick else (10_000, 100_000, 1_000_000)
    result: dict[str, Any] = {"state_per_user": state_per_user(n=500 if quick else 2000), "users": []}
    for n in users:
        print(f"── scaling: {n:,} users", flush=True)
        result["users"].append(users_run(n, events=10_000 if quick else 50_000))
    if model_runs:
        result["catalogue"] = catalogue_rows(model_runs)
    return result


def catalogue_rows(model_runs: list[dict[str, Any]], d: int = 128) -> list[dict[str, Any]]:
    """Runner events/s against catalogue size, per batch size, from the model benchmark."""
    rows = []
    for r in model_runs:
        rows.append(
            {
                "items": r["items"],
                "batch": r["batch"],
                "item_matrix_mb": r["items"] * d * 4 / 1e6,
                "onnx_events_per_s": r["onnx_events_per_s"],
                "runner_events_per_s": r["runner_events_per_s"],
                "eager_events_per_s": r["eager_events_per_s"],
            }
        )
    return rows
