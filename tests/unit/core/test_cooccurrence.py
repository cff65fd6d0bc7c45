"""The co-occurrence table: exact while rows have room, bounded when they do not, the same
counts per event or in one pass, a bonus normalised per session, and a round trip to disk."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from streamrec.cooccurrence import Cooccurrence


def histories(n: int = 60, items: int = 30, seed: int = 0) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    return [[f"i{j}" for j in rng.integers(0, items, size=rng.integers(2, 9))] for _ in range(n)]


def brute_force(hists: list[list[str]], window: int) -> Counter[tuple[str, str]]:
    """C[a, b] += 1 for every ordered pair at most ``window`` apart, both directions."""
    c: Counter[tuple[str, str]] = Counter()
    for h in hists:
        for t in range(len(h)):
            for p in h[max(0, t - window) : t]:
                c[(p, h[t])] += 1
                c[(h[t], p)] += 1
    return c


def counts(table: Cooccurrence) -> Counter[tuple[str, str]]:
    out: Counter[tuple[str, str]] = Counter()
    for r, a in enumerate(table.ids):
        for slot in range(table.fill[r]):
            out[(a, table.ids[table.neighbours[r, slot]])] += float(table.counts[r, slot])
    return out


@pytest.mark.parametrize("mode", ["per event", "per batch", "one pass"])
def test_counts_are_exact_while_rows_have_room(mode: str) -> None:
    hists = histories()
    table = Cooccurrence(max_neighbours=64, window=3)
    if mode == "one pass":
        table.observe_sequences([table.rows_of(h) for h in hists])
    else:
        events = [(h[:t], h[t]) for h in hists for t in range(1, len(h))]
        if mode == "per event":
            for prefix, item in events:
                table.observe(prefix, item)
        else:
            for start in range(0, len(events), 17):
                table.observe_many([(table.rows_of(p[-3:]), table.row(i)) for p, i in events[start : start + 17]])
    assert counts(table) == brute_force(hists, 3)


def test_rows_stay_bounded_and_a_frequent_neighbour_survives() -> None:
    table = Cooccurrence(max_neighbours=4, window=1)
    for k in range(200):
        table.observe(["a"], "often")  # every other pair of "a" is with "often"
        table.observe(["a"], f"rare{k}")
    assert table.fill.max() <= 4
    a = table.rows["a"]
    kept = {table.ids[n]: float(c) for n, c in zip(table.neighbours[a], table.counts[a], strict=True)}
    assert kept["often"] >= 200
    assert table.totals[a] == 400
    assert table.bytes_per_item == 4 * 8 + 8


def test_bonus_is_normalised_per_session_and_reaches_new_items() -> None:
    table = Cooccurrence(max_neighbours=8, window=5)
    table.observe(["a"], "b")
    table.observe(["a", "b"], "new")  # an item first seen in an event is a neighbour at once
    table.observe(["a"], "b")
    bonus = table.bonus([["a"], ["zzz"], ["b", "a"]], "max")
    assert bonus.rows.shape == bonus.values.shape and bonus.rows.shape[0] == 3
    first = {table.ids[r]: v for r, v in zip(bonus.rows[0], bonus.values[0], strict=True) if r >= 0}
    assert first == {"b": 1.0, "new": 0.5}  # C[a, b] = 2, C[a, new] = 1; best = 1
    assert not (bonus.rows[1] >= 0).any()  # an unknown item has no neighbours
    third = bonus.rows[2][bonus.rows[2] >= 0]
    assert len(third) == len(set(third.tolist()))  # one entry per row
    raw = table.bonus([["b", "a"]], "raw")
    got = {table.ids[r]: v for r, v in zip(raw.rows[0], raw.values[0], strict=True) if r >= 0}
    # a newest (weight 5), b before it (weight 4): C[a,b]=2, C[a,new]=1, C[b,a]=2, C[b,new]=1
    assert got == {"b": 10.0, "new": 5.0 + 4.0, "a": 8.0}


def test_dense_maps_rows_into_another_space() -> None:
    table = Cooccurrence(max_neighbours=8, window=2)
    table.observe(["x"], "y")
    bonus = table.bonus([["x"]], "max")
    row_of = np.array([-1, -1], np.int64)
    row_of[table.rows["y"]] = 4
    dense = table.dense(bonus, row_of, 6)
    assert dense.shape == (1, 6) and dense[0, 4] == 1.0 and dense.sum() == 1.0


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    table = Cooccurrence(max_neighbours=5, window=2)
    table.observe_sequences([table.rows_of(h) for h in histories(20, 12)])
    table.save(tmp_path / "t.npz")
    back = Cooccurrence.load(tmp_path / "t.npz")
    assert back.ids == table.ids and (back.max_neighbours, back.window) == (5, 2)
    assert counts(back) == counts(table)
    back.observe(["i1"], "brand-new")  # still growable after a load
    assert "brand-new" in back.rows


def test_the_popularity_exponent_damps_busy_neighbours() -> None:
    table = Cooccurrence(max_neighbours=8, window=1)
    for k in range(9):
        table.observe([f"x{k}"], "busy")  # "busy" co-occurs with everything: total 10
    table.observe(["a"], "busy")
    table.observe(["a"], "quiet")  # total 1
    raw = table.bonus([["a"]], "raw", alpha=0.0)
    damped = table.bonus([["a"]], "raw", alpha=0.5)
    as_dict = lambda b: {table.ids[r]: v for r, v in zip(b.rows[0], b.values[0], strict=True) if r >= 0}  # noqa: E731
    assert as_dict(raw)["busy"] == as_dict(raw)["quiet"]
    assert as_dict(damped)["quiet"] > as_dict(damped)["busy"]
    assert np.isclose(as_dict(damped)["busy"], 1.0 / np.sqrt(10))  # window 1: the one item weighs 1


def test_the_source_exponent_damps_busy_session_items() -> None:
    table = Cooccurrence(max_neighbours=16, window=2)
    for k in range(9):
        table.observe([f"x{k}"], "hub")  # the session item "hub" co-occurs with everything: total 10
    table.observe(["hub"], "via-hub")
    table.observe(["rare"], "via-rare")  # "rare" has total 1
    as_dict = lambda b: {table.ids[r]: v for r, v in zip(b.rows[0], b.values[0], strict=True) if r >= 0}  # noqa: E731
    raw = as_dict(table.bonus([["hub", "rare"]], "raw"))
    damped = as_dict(table.bonus([["hub", "rare"]], "raw", source=0.5))
    assert raw["via-hub"] < raw["via-rare"]  # recency only: "rare" is the newer item (weight 2 vs 1)
    assert np.isclose(damped["via-hub"], 1.0 / np.sqrt(10)) and np.isclose(damped["via-rare"], 2.0)
    assert as_dict(table.bonus([["hub"]], "raw", source=0.0)) == as_dict(table.bonus([["hub"]], "raw"))


def test_the_repeat_share_is_the_same_counted_per_event_or_in_one_pass(tmp_path: Path) -> None:
    hists = histories(80, 6)  # few items: many re-clicks within the window
    one_pass, per_event = Cooccurrence(window=3), Cooccurrence(window=3)
    one_pass.observe_sequences([one_pass.rows_of(h) for h in hists])
    for h in hists:
        for t in range(len(h)):
            per_event.observe(h[:t], h[t])
    expected = sum(h[t] in h[max(0, t - 3) : t] for h in hists for t in range(len(h)))
    assert one_pass.repeats == per_event.repeats == expected > 0
    assert one_pass.events == per_event.events == sum(map(len, hists))
    one_pass.save(tmp_path / "t.npz")
    assert Cooccurrence.load(tmp_path / "t.npz").repeat_share == one_pass.repeat_share


def test_the_repeat_term_scores_recent_session_items_and_vanishes_without_repeats() -> None:
    table = Cooccurrence(window=3)
    table.observe_sequences([table.rows_of(h) for h in (["a", "b", "a"], ["c", "d"])])
    share = table.repeat_share  # 1 repeat in 5 events
    assert share == pytest.approx(0.2)
    plain = table.bonus([["c", "a", "b"]], "raw")
    rep = table.bonus([["c", "a", "b"]], "raw", repeat=10.0)
    got = dict(zip(rep.rows[0].tolist(), rep.values[0].tolist(), strict=True))
    base = dict(zip(plain.rows[0].tolist(), plain.values[0].tolist(), strict=True))
    for item, recency in (("c", 1), ("a", 2), ("b", 3)):  # newest = window
        r = table.rows[item]
        assert got[r] == pytest.approx(base.get(r, 0.0) + 10.0 * share * recency / 3)
    no_repeats = Cooccurrence(window=3)
    no_repeats.observe_sequences([no_repeats.rows_of(h) for h in (["a", "b", "c"], ["c", "d"])])
    assert no_repeats.repeat_share == 0.0
    b1, b2 = no_repeats.bonus([["a", "b"]], "raw"), no_repeats.bonus([["a", "b"]], "raw", repeat=10.0)
    assert np.array_equal(b1.rows, b2.rows) and np.array_equal(b1.values, b2.values)
