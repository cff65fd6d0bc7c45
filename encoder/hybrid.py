"""The hybrid scorer offline: model scores + ``beta`` x the session's normalised co-occurrence
bonus, the same sum the serving graph computes (streamrec.cooccurrence builds the bonus
for both), and the choice of ``beta`` and normalisation on the validation item.

Validation is the second-to-last event of each user with at least three, scored from the
events before it, with the co-occurrence table counted on those training parts only: the test
item (and the validation item itself) never inform the choice.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from streamrec.bonus import Normalisation
from streamrec.cooccurrence import Cooccurrence
from streamrec.datasets import EventLog
from streamrec.encoder.evaluate import ScoreFn
from streamrec.encoder.metrics import hit_rate, ndcg, target_ranks
from streamrec.settings.hybrid import HybridSettings

BETAS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 100.0)
EXPONENTS = ((0.0, 0.0), (0.5, 0.0), (0.3, 0.3), (0.5, 0.3))  # (popularity, source) exponents tried
TUNE_USERS = 4_000  # validation users scored per setting (a fixed random subset above that)


def table_of(histories: Sequence[np.ndarray], ids: Sequence[str], hybrid: HybridSettings) -> Cooccurrence:
    """A table whose rows are ``ids``' rows (so its bonus needs no remapping), counted on
    ``histories`` with ``hybrid``'s shape."""
    table = Cooccurrence(
        hybrid.max_neighbours, hybrid.window, capacity=len(ids), distance_exponent=hybrid.distance_exponent
    )
    table.rows_of(ids)
    table.observe_sequences(histories)
    return table


def bonus_fn(
    table: Cooccurrence,
    histories: Sequence[np.ndarray],
    n_items: int,
    how: Normalisation,
    alpha: float = 0.0,
    source: float = 0.0,
    repeat: float = 0.0,
) -> ScoreFn:
    """Dense normalised bonus [b, N] of the eval users in a batch (``repeat``: only when seen
    items are kept)."""
    identity = np.arange(n_items)

    def score(users: list[int]) -> np.ndarray:
        bonus = table.bonus_rows([histories[u] for u in users], how, alpha, source, repeat)
        return table.dense(bonus, identity, n_items)

    return score


def hybrid_fn(model: ScoreFn, bonus: ScoreFn, beta: float) -> ScoreFn:
    return lambda users: model(users) + beta * bonus(users)


def tune(
    model: ScoreFn,
    table: Cooccurrence,
    histories: Sequence[np.ndarray],
    targets: np.ndarray,
    keep_seen: bool,
    norms: Sequence[Normalisation],
    betas: Sequence[float] = BETAS,
    repeat: float = 0.0,
    k: int = 10,
    batch_size: int = 256,
    seed: int = 0,
) -> dict:
    """NDCG@k / HR@k of every (normalisation, popularity and source exponents, beta) on the validation users
    -> the grid and the best setting (ties: the smaller beta). ``repeat`` is the repeat term's
    weight as it applies to this protocol (``HybridSettings.repeat``), the same for every setting."""
    n_items = len(table)
    users = np.arange(len(targets))
    if len(users) > TUNE_USERS:
        users = np.sort(np.random.default_rng(seed).choice(users, TUNE_USERS, replace=False))
    fns = {
        (how, a, src): bonus_fn(table, histories, n_items, how, a, src, repeat) for how in norms for a, src in EXPONENTS
    }
    ranks: dict[tuple[str, float, float, float], list[np.ndarray]] = {(*key, b): [] for key in fns for b in betas}
    for start in range(0, len(users), batch_size):
        batch = users[start : start + batch_size].tolist()
        base = np.asarray(model(batch), np.float64)  # [b, N]
        seen = np.zeros(base.shape, bool)
        if not keep_seen:
            for row, u in enumerate(batch):
                h = histories[u]
                seen[row, h[h != targets[u]]] = True
        for key, fn in fns.items():
            bonus = fn(batch)
            for beta in betas:
                scores = np.where(seen, -np.inf, base + beta * bonus)
                ranks[(*key, beta)].append(target_ranks(scores, targets[batch]))
    grid = []
    for (how, a, src, beta), rs in ranks.items():
        r = np.concatenate(rs) if rs else np.zeros(0, np.int64)
        g = {"norm": how, "popularity_exponent": a, "source_exponent": src, "beta": beta, "repeat_weight": repeat}
        grid.append({**g, f"ndcg@{k}": ndcg(r, k), f"hr@{k}": hit_rate(r, k)})
    best = max(grid, key=lambda g: (g[f"ndcg@{k}"], -g["beta"]))
    return {"users": len(users), "grid": grid, "best": best}


def table_from_log(log: EventLog, hybrid: HybridSettings) -> Cooccurrence:
    """The base table a model ships: every user's events of ``log`` in time order, counted in one
    pass (what a worker would have counted replaying the log)."""
    table = Cooccurrence(
        hybrid.max_neighbours, hybrid.window, capacity=len(log.item_ids()), distance_exponent=hybrid.distance_exponent
    )
    users: dict[str, list[str]] = {}
    for ev in log.events:
        users.setdefault(ev.user_id, []).append(ev.item_id)
    table.observe_sequences([table.rows_of(items) for items in users.values()])
    return table
