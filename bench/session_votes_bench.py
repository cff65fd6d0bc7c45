"""What the hybrid's session-kNN votes cost the worker: time per scoring batch, and memory.

The worker's scoring thread builds each batch's bonus (:meth:`LiveHybrid.bonus`) before it runs
the ONNX graph. With ``hybrid.session_weight`` > 0 that bonus also stores every session in the
session index and gathers its neighbours' votes. This times, in one run and on the same
batches: the runner's ``recommend`` with the bonus (what the worker calls), the co-occurrence
bonus alone (``session_weight`` 0) and the bonus with the votes, so the votes' share of a
batch's scoring time is a ratio within the run. Memory: the index's numpy arrays and its key
map, traced (``tracemalloc``) while a full index of ``--sessions`` sessions is built.

Synthetic data of a click log's shape: ``--items`` items with Zipf-like popularity, sessions of
2-20 clicks (the last 50 kept) from ``--sessions`` users, counted into the table and the index
as the worker would have; query batches are other users' sessions. Default model shape (a
seeded random model: weights do not change the cost), exported as the trainer exports it.

``python -m streamrec.bench.session_votes_bench --json bench/session_votes.json``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

from streamrec.bench.model_bench import POOL, SESSION_LENGTH, K, _time, synthetic_model


def _sessions(rng: np.random.Generator, n_items: int, n: int) -> list[list[int]]:
    """``n`` sessions of 2-20 item rows, popular items drawn more often (rank ** -0.8)."""
    weights = np.arange(1, n_items + 1, dtype=np.float64) ** -0.8
    weights /= weights.sum()
    lengths = rng.integers(2, 21, size=n)
    flat = rng.choice(n_items, size=int(lengths.sum()), p=weights)
    cut = np.cumsum(lengths)[:-1]
    return [s.tolist() for s in np.split(flat, cut)]


def _index_bytes(hybrid_settings: Any, sessions: list[list[int]]) -> dict[str, float]:
    """Traced bytes of a session index holding ``sessions`` (its capacity set to their count)."""
    from streamrec.session_knn import SessionIndex

    shaped = hybrid_settings.model_copy(update={"session_capacity": len(sessions)})
    tracemalloc.start()
    index = SessionIndex.shaped(shaped)
    index.put_many([f"u{n}" for n in range(len(sessions))], sessions)
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"sessions": len(index), "bytes": current, "peak_bytes": peak, "bytes_per_session": current / len(index)}


def measure(n_items: int, n_sessions: int, batches: list[int], min_s: float) -> dict[str, Any]:
    from streamrec.cooccurrence import Cooccurrence
    from streamrec.export.exporter import export_model
    from streamrec.serving.hybrid import LiveHybrid
    from streamrec.serving.registry import LocalRegistry
    from streamrec.serving.runner import Runner
    from streamrec.session_knn import SessionIndex
    from streamrec.settings.hybrid import HybridSettings

    rng = np.random.default_rng(0)
    history = _sessions(rng, n_items, n_sessions)
    settings = HybridSettings()
    model, ids, matrix = synthetic_model(n_items)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        ref = export_model(
            model.session, ids, matrix, LocalRegistry(Path(tmp)), k=K * POOL, session_length=SESSION_LENGTH
        ).ref
        runner = Runner.load(ref.uri, "cpu")  # type: ignore[arg-type]
        table = Cooccurrence(settings.max_neighbours, settings.window, distance_exponent=settings.distance_exponent)
        table.observe_items([([ids[r] for r in s[:n]], ids[s[n]]) for s in history for n in range(len(s))])
        table.sessions = SessionIndex.shaped(settings)
        stored = [[table.rows[ids[r]] for r in s] for s in history]
        table.sessions.put_many([f"u{n}" for n in range(len(history))], stored)
        votes_on = LiveHybrid(settings, table)
        votes_off = LiveHybrid(settings.model_copy(update={"session_weight": 0.0}), table)
        for b in batches:
            queries = [[ids[r] for r in s][-SESSION_LENGTH:] for s in _sessions(rng, n_items, b)]
            kinds = [["click"] * len(s) for s in queries]
            users = [f"q{n}" for n in range(b)]
            bonus = votes_on.bonus(runner, queries, users=users)
            t_score = _time(lambda q=queries, k=kinds, x=bonus: runner.recommend(q, k, K, True, x), min_s)
            t_cooc = _time(lambda q=queries: votes_off.bonus(runner, q), min_s)
            t_votes = _time(lambda q=queries, u=users: votes_on.bonus(runner, q, users=u), min_s)
            runs.append(
                {
                    "batch": b,
                    "recommend_ms": 1e3 * t_score,
                    "cooccurrence_bonus_ms": 1e3 * t_cooc,
                    "bonus_with_votes_ms": 1e3 * t_votes,
                    "votes_ms": 1e3 * (t_votes - t_cooc),
                    "votes_vs_recommend": (t_votes - t_cooc) / t_score,
                    "bonus_with_votes_vs_recommend": t_votes / t_score,
                }
            )
            print(json.dumps(runs[-1]), flush=True)
    return {
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor()},
        "items": n_items,
        "history_sessions": n_sessions,
        "settings": {k: getattr(settings, k) for k in ("session_weight", "session_neighbours", "sessions_per_item")}
        | {"session_items": settings.session_items, "model_k": K * POOL},
        "runs": runs,
        "memory": _index_bytes(settings, history),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--sessions", type=int, default=200_000, help="stored sessions (the default capacity)")
    parser.add_argument("--batches", default="16,64,256")
    parser.add_argument("--min-s", type=float, default=2.0, help="seconds each timing runs for at least")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    result = measure(args.items, args.sessions, [int(b) for b in args.batches.split(",")], args.min_s)
    result["command"] = (
        f"python -m streamrec.bench.session_votes_bench --items {args.items} --sessions {args.sessions} "
        f"--batches {args.batches} --min-s {args.min_s}" + (f" --json {args.json}" if args.json else "")
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    print(json.dumps(result["memory"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
