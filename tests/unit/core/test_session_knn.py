"""The session kNN: neighbours found through their shared items, weighted by recency and length,
the own session never its own neighbour, bounded memory with the oldest sessions giving way, and
the index saved inside the co-occurrence table's file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from streamrec.bonus import Bonus, weighted_sum
from streamrec.cooccurrence import Cooccurrence
from streamrec.session_knn import SessionIndex, distinct_tail


def dense(bonus: Bonus, n: int) -> np.ndarray:
    out = np.zeros((bonus.rows.shape[0], n))
    b, c = np.nonzero(bonus.rows >= 0)
    out[b, bonus.rows[b, c]] = bonus.values[b, c]
    return out


def brute_force(query: list[int], stored: list[list[int]], own: int | None, k: int, n: int) -> np.ndarray:
    """V-SKNN written out: linear recency weights, shared weight / sqrt(len), top k vote."""
    tail = distinct_tail(query, 50).tolist()
    w = {r: (i + 1) / len(tail) for i, r in enumerate(tail)}
    sims = []
    for j, s in enumerate(stored):
        if j == own:
            continue
        items = set(s)
        shared = sum(w[r] for r in items if r in w)
        if shared > 0:
            sims.append((shared / np.sqrt(len(items)), j))
    votes = np.zeros(n)
    for sim, j in sorted(sims, key=lambda t: (-t[0], t[1]))[:k]:
        votes[list(set(stored[j]))] += sim
    return votes / votes.max() if votes.max() > 0 else votes


def test_distinct_tail_keeps_each_item_at_its_latest_position() -> None:
    assert distinct_tail([1, 2, 1, 3, -1, 2], 10).tolist() == [1, 3, 2]
    assert distinct_tail([1, 2, 3, 4], 2).tolist() == [3, 4]


def test_votes_match_a_brute_force_v_sknn() -> None:
    rng = np.random.default_rng(0)
    n = 30
    stored = [rng.choice(n, rng.integers(2, 7), replace=False).tolist() for _ in range(60)]
    index = SessionIndex(capacity=100, neighbours=5)
    index.put_many(range(len(stored)), stored)
    queries = [stored[3], stored[10], [0, 1, 2]]
    got = dense(index.bonus_rows(queries, [3, 10, None]), n)
    for row, (q, own) in enumerate(zip(queries, [3, 10, None], strict=True)):
        # ties at the k-th similarity may pick either session: compare on a tie-free k
        np.testing.assert_allclose(got[row], brute_force(q, stored, own, 5, n), atol=1e-5)


def test_the_own_session_is_never_its_own_neighbour() -> None:
    index = SessionIndex(capacity=10)
    index.put("alone", [1, 2, 3])
    assert (index.bonus_rows([[1, 2, 3]], ["alone"]).rows < 0).all()
    assert set(index.bonus_rows([[1, 2]], [None]).rows[0].tolist()) == {1, 2, 3}


def test_a_put_replaces_the_users_older_copy() -> None:
    index = SessionIndex(capacity=10)
    index.put("u", [1, 2])
    index.put("u", [1, 2, 5])
    assert len(index) == 1
    assert set(index.bonus_rows([[5]], [None]).rows[0].tolist()) == {1, 2, 5}  # 5 found through its ring


def test_the_oldest_session_gives_way_when_full() -> None:
    index = SessionIndex(capacity=2)
    index.put("old", [1, 7])
    index.put("mid", [2, 8])
    index.put("new", [3, 9])  # takes the old session's slot
    assert len(index) == 2 and "old" not in index.serial
    assert (index.bonus_rows([[1]], [None]).rows < 0).all()  # item 1's ring names a session that is gone
    assert set(index.bonus_rows([[3]], [None]).rows[0].tolist()) == {3, 9}


def test_the_index_travels_in_the_tables_file(tmp_path: Path) -> None:
    table = Cooccurrence(8, 3)
    rows = [table.rows_of(s) for s in (["a", "b", "c"], ["b", "c", "d"], ["d", "e"])]
    table.observe_sequences(rows)
    table.sessions = SessionIndex(capacity=16, neighbours=2)
    table.sessions.put_many(range(3), rows)
    table.save(tmp_path / "t.npz")
    loaded = Cooccurrence.load(tmp_path / "t.npz")
    assert loaded.sessions is not None and len(loaded.sessions) == 3 and not loaded.sessions.serial  # nobody's own
    query = [table.rows["c"]]
    np.testing.assert_allclose(
        dense(loaded.sessions.bonus_rows([query]), 8), dense(table.sessions.bonus_rows([query]), 8), atol=1e-6
    )
    assert loaded.sessions.neighbours == 2


def test_weighted_sum_adds_rows_present_in_both() -> None:
    a = Bonus(np.array([[1, 2]]), np.array([[1.0, 1.0]], np.float32))
    b = Bonus(np.array([[2, 4, -1]]), np.array([[1.0, 1.0, 0.0]], np.float32))
    got = dense(weighted_sum([(a, 0.5), (b, 2.0)]), 5)
    np.testing.assert_allclose(got, [[0, 0.5, 2.5, 0, 2.0]])


def test_a_forgotten_session_no_longer_votes_nor_is_saved_and_evicts_nobody() -> None:
    index = SessionIndex(capacity=2, session_items=8, per_item=4, neighbours=4)
    index.put_many(["u", "v"], [[1, 2, 3, 9], [2, 3, 4]])
    index.forget(["u", "nobody"])  # an unknown key is ignored: it takes no slot
    assert "u" not in index.serial and "nobody" not in index.serial and len(index) == 1
    votes = index.bonus_rows([[2, 3]], ["w"])
    assert set(votes.rows[0][votes.rows[0] >= 0].tolist()) == {2, 3, 4}  # v's items only: no 1, no 9
    assert index.arrays("s_")["s_items"].tolist() == [2, 3, 4]  # u is not saved either
    index.put("u", [5])  # a later session of u starts empty
    assert index.length[index.serial["u"] % 2] == 1


def test_store_and_vote_is_put_many_then_bonus_rows_over_the_mapped_ids() -> None:
    rng = np.random.default_rng(3)
    history = [rng.integers(0, 30, size=rng.integers(1, 9)).tolist() for _ in range(60)]
    queries = [rng.integers(0, 35, size=rng.integers(1, 9)).tolist() for _ in range(12)]  # ids 30-34: unknown
    row_of = {f"i{r}": r for r in range(30)}
    a, b = (SessionIndex(capacity=50, session_items=6, per_item=5, neighbours=4) for _ in range(2))
    for index in (a, b):
        index.put_many([f"h{n}" for n in range(60)], history)
    keys = [f"h{n}" for n in range(6)] + [f"q{n}" for n in range(6)]  # some replace stored sessions
    got = a.store_and_vote(keys, [[f"i{r}" for r in q] for q in queries], row_of)
    known = [[r for r in q if r < 30] for q in queries]
    b.put_many(keys, known)
    want = b.bonus_rows(known, keys)
    assert np.array_equal(got.rows, want.rows) and np.array_equal(got.values, want.values)
    assert np.array_equal(a.items, b.items) and np.array_equal(a.ring, b.ring)
