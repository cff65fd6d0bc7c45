"""The hybrid scorer offline: model scores + ``beta`` x the session's normalised co-occurrence
bonus + ``session_weight`` x its session-kNN votes, the same sum the serving graph computes
(streamrec.cooccurrence and streamrec.session_knn build the bonus for both), and the choice of
``beta``, ``session_weight`` and normalisation on the validation item.

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
from streamrec.session_knn import SessionIndex
from streamrec.settings.hybrid import HybridSettings

BETAS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 100.0)
EXPONENTS = ((0.0, 0.0), (0.5, 0.0), (0.3, 0.3), (0.5, 0.3))  # (popularity, source) exponents tried
SESSION_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0)
TUNE_USERS = 4_000  # validation users scored per setting (a fixed random subset above that)


def table_of(
    histories: Sequence[np.ndarray], ids: Sequence[str], hybrid: HybridSettings, sessions: bool = True
) -> Cooccurrence:
    """A table whose rows are ``ids``' rows (so its bonus needs no remapping), counted on
    ``histories`` with ``hybrid``'s shape; with ``sessions`` it holds them in its session index
    too, keyed by their position in ``histories``."""
    table = Cooccurrence(
        hybrid.max_neighbours, hybrid.window, capacity=len(ids), distance_exponent=hybrid.distance_exponent
    )
    table.rows_of(ids)
    table.observe_sequences(histories)
    if sessions:
        table.sessions = SessionIndex.shaped(hybrid)
        table.sessions.put_many(range(len(histories)), histories)
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


def session_fn(table: Cooccurrence, histories: Sequence[np.ndarray], keys: Sequence[int], n_items: int) -> ScoreFn:
    """Dense session-kNN votes [b, N] (each session's best = 1) of the eval users in a batch;
    ``keys[u]``: user ``u``'s own session in the table's index, never its own neighbour."""
    identity = np.arange(n_items)
    index = table.sessions
    if index is None:
        raise ValueError("the table has no session index")

    def score(users: list[int]) -> np.ndarray:
        bonus = index.bonus_rows([histories[u] for u in users], [keys[u] for u in users])
        return table.dense(bonus, identity, n_items)

    return score


def hybrid_fn(
    model: ScoreFn, bonus: ScoreFn, beta: float, sessions: ScoreFn | None = None, gamma: float = 0.0
) -> ScoreFn:
    """``model + beta x bonus (+ gamma x sessions)``."""
    if sessions is None or not gamma:
        return lambda users: model(users) + beta * bonus(users)
    return lambda users: model(users) + beta * bonus(users) + gamma * sessions(users)


def tune(
    model: ScoreFn,
    table: Cooccurrence,
    histories: Sequence[np.ndarray],
    targets: np.ndarray,
    keep_seen: bool,
    norms: Sequence[Normalisation],
    betas: Sequence[float] = BETAS,
    repeat: float = 0.0,
    keys: Sequence[int] | None = None,
    k: int = 10,
    batch_size: int = 256,
    seed: int = 0,
) -> dict:
    """NDCG@k / HR@k on the validation users of every (normalisation, popularity and source
    exponents, beta) without session votes, then of every (beta, session weight) at the best of
    those shapes (when the table has a session index; ``keys``: each user's own session in it)
    -> the grid and the best setting (ties: the smaller weights). ``repeat`` is the repeat term's
    weight as it applies to this protocol (``HybridSettings.repeat``), the same for every setting."""
    n_items = len(table)
    users = np.arange(len(targets))
    if len(users) > TUNE_USERS:
        users = np.sort(np.random.default_rng(seed).choice(users, TUNE_USERS, replace=False))
    fns = {
        (how, a, src): bonus_fn(table, histories, n_items, how, a, src, repeat) for how in norms for a, src in EXPONENTS
    }
    grid = _grid(model, fns, None, histories, targets, users, keep_seen, betas, (0.0,), repeat, k, batch_size)
    best = max(grid, key=lambda g: (g[f"ndcg@{k}"], -g["beta"]))
    if table.sessions is not None:
        shape = (best["norm"], best["popularity_exponent"], best["source_exponent"])
        votes = session_fn(table, histories, keys if keys is not None else range(len(targets)), n_items)
        grid += _grid(
            model, {shape: fns[shape]}, votes, histories, targets, users, keep_seen, betas, SESSION_WEIGHTS[1:],
            repeat, k, batch_size,
        )  # fmt: skip
        best = max(grid, key=lambda g: (g[f"ndcg@{k}"], -g["session_weight"], -g["beta"]))
    return {"users": len(users), "grid": grid, "best": best}


def _grid(
    model: ScoreFn,
    fns: dict[tuple[str, float, float], ScoreFn],
    votes: ScoreFn | None,
    histories: Sequence[np.ndarray],
    targets: np.ndarray,
    users: np.ndarray,
    keep_seen: bool,
    betas: Sequence[float],
    gammas: Sequence[float],
    repeat: float,
    k: int,
    batch_size: int,
) -> list[dict]:
    """The figures of every (bonus shape, beta, session weight) on ``users`` (one model pass per batch)."""
    ranks: dict[tuple, list[np.ndarray]] = {(*key, b, g): [] for key in fns for b in betas for g in gammas}
    for start in range(0, len(users), batch_size):
        batch = users[start : start + batch_size].tolist()
        base = np.asarray(model(batch), np.float64)  # [b, N]
        seen = np.zeros(base.shape, bool)
        if not keep_seen:
            for row, u in enumerate(batch):
                h = histories[u]
                seen[row, h[h != targets[u]]] = True
        extra = np.asarray(votes(batch), np.float64) if votes is not None else np.zeros_like(base)
        for key, fn in fns.items():
            bonus = fn(batch)
            for beta in betas:
                for gamma in gammas:
                    scores = np.where(seen, -np.inf, base + beta * bonus + gamma * extra)
                    ranks[(*key, beta, gamma)].append(target_ranks(scores, targets[batch]))
    grid = []
    for (how, a, src, beta, gamma), rs in ranks.items():
        r = np.concatenate(rs) if rs else np.zeros(0, np.int64)
        g = {"norm": how, "popularity_exponent": a, "source_exponent": src, "beta": beta, "repeat_weight": repeat}
        grid.append({**g, "session_weight": gamma, f"ndcg@{k}": ndcg(r, k), f"hr@{k}": hit_rate(r, k)})
    return grid


def table_from_log(log: EventLog, hybrid: HybridSettings) -> Cooccurrence:
    """The base table a model ships: every user's events of ``log`` in time order, counted in one
    pass (what a worker would have counted replaying the log), with every user's session in its
    session index."""
    table = Cooccurrence(
        hybrid.max_neighbours, hybrid.window, capacity=len(log.item_ids()), distance_exponent=hybrid.distance_exponent
    )
    users: dict[str, list[str]] = {}
    for ev in log.events:
        users.setdefault(ev.user_id, []).append(ev.item_id)
    rows = {user: table.rows_of(items) for user, items in users.items()}
    table.observe_sequences(rows.values())
    last = {ev.user_id: i for i, ev in enumerate(log.events)}
    table.sessions = SessionIndex.shaped(hybrid)  # the latest sessions last: the ring keeps those
    order = sorted(rows, key=last.__getitem__)
    table.sessions.put_many(order, [rows[u] for u in order])
    return table
