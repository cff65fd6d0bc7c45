"""Online contrastive updates: the learning half of ``streamrec trainer``.

Examples (session prefix -> next item) arrive from the live stream. The newest ``holdout`` of them
are held back: the promotion gate scores the candidate and the served model on them, so both are
judged on events neither has trained on. Older examples move into a bounded replay buffer; each
update mixes the freshest examples (to follow drift) with older ones (to not forget), and minimises
the same next-item InfoNCE with logQ correction as offline training. The session tower learns and,
with ``train_item_ids`` (the default), so do the id rows of the items in each batch; an item first
seen in an event gets a trainable row at once, started from the mean id embedding of its session's
known items, so it is recommendable from the next promotion on. A promotion ships the whole item
matrix: workers swap rows and tower together. Each example also carries the feed its user held
before the event: with ``hard_negatives`` its top shown-but-not-clicked items are extra negatives of
that example's row (:mod:`streamrec.encoder.hard_negatives`).

Items that reach the catalogue after offline training join the item table as text-only (cold) rows
(:meth:`OnlineLearner.upsert_items`), in the candidate and the served model alike, so both are gated
on the same item space and every exported version carries them; items marked unavailable stay in the
table (workers mask them) but are not drawn as sampled negatives.
"""

from __future__ import annotations

import copy
import random
from collections import Counter, deque
from collections.abc import Iterable, Set
from dataclasses import dataclass, field
from itertools import islice

import numpy as np
import torch

from streamrec.contracts.session_rows import TYPE_INDEX
from streamrec.contracts.training_batch import Example
from streamrec.encoder.artifact import TrainedModel
from streamrec.encoder.gate import GateResult, promotes
from streamrec.encoder.hard_negatives import ShownRows, padded
from streamrec.encoder.item_table import append_cold_rows, append_id_rows, carry_moments, set_text_rows
from streamrec.encoder.losses import candidate_log_q, next_item_infonce
from streamrec.encoder.online_rows import Row, evaluate_rows, row_tensors
from streamrec.settings.encoder import EncoderSettings, TrainerSettings


@dataclass
class OnlineLearner:
    """Replay buffer + held-back window + optimiser over a copy of the served model."""

    trained: TrainedModel
    settings: TrainerSettings
    encoder: EncoderSettings
    holdout: deque[Row] = field(init=False)
    buffer: deque[Row] = field(init=False)
    pending: list[Row] = field(default_factory=list)  # trained since the last promotion
    trial: torch.nn.Module | None = None  # the weights on trial as a canary, frozen at its export
    trial_rows: list[Row] = field(default_factory=list)  # the rows those weights learned
    skipped_unknown: int = 0
    hard_negative_rows: int = 0  # update rows that got at least one shown-but-skipped item as a negative
    updates: int = 0
    last_loss: float = float("nan")
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))  # of updates and the gate

    def __post_init__(self) -> None:
        self.index = self.trained.item_index()
        self.n_items = len(self.index)
        # Rows the offline model came with, in its config: a resumed version knows how many were added online.
        self.offline_items = int(self.trained.config.setdefault("offline_items", self.n_items))
        self.unavailable: set[int] = set()
        self._neg_pool: torch.Tensor | None = None  # rows drawn as uniform negatives; None = all
        self.session_length = self.trained.model_config.session_length
        self.holdout = deque(maxlen=self.settings.holdout_size)
        self.buffer = deque(maxlen=self.settings.buffer_size)
        self.pop = Counter[int]()
        self.model = self.trained.model.to(self.device)
        self.served = copy.deepcopy(self.model).eval()
        self._set_trainable_items()
        self.opt = self._optimiser()
        self.rng = random.Random(self.encoder.seed)
        self.shown_rows = ShownRows()

    def _set_trainable_items(self) -> None:
        """The item side is frozen except, when asked, the text projection and the id rows."""
        for p in self.model.items.parameters():
            p.requires_grad = False
        if self.settings.train_item_projection and self.model.items.text_proj is not None:
            for p in self.model.items.text_proj.parameters():
                p.requires_grad = True
        if self.settings.train_item_ids:
            self.model.items.id_emb.weight.requires_grad = True

    def _optimiser(self) -> torch.optim.AdamW:
        """AdamW; id rows at their own, higher rate (a row sees few of the examples the tower sees)."""
        ids = self.model.items.id_emb.weight
        rest = [p for p in self.model.parameters() if p.requires_grad and p is not ids]
        groups = [{"params": rest, "lr": self.settings.lr}]
        if ids.requires_grad:
            groups.append({"params": [ids], "lr": self.settings.item_lr})
        return torch.optim.AdamW(groups)

    # ----------------------------------------------------------------- ingest
    def add(self, examples: Iterable[Example], entered_at: float) -> int:
        """Map examples to rows (unknown items get rows first with ``train_item_ids``, else leave the
        prefix, and an unknown target skips the example, counted); newest to the held-back window."""
        examples = list(examples)
        if self.settings.train_item_ids:
            self._add_id_rows([[*ex.items, ex.next_item] for ex in examples])
        added = 0
        for ex in examples:
            target = self.index.get(ex.next_item)
            if target is None:
                self.skipped_unknown += 1
                continue
            pairs = [
                (self.index[i], TYPE_INDEX.get(t, TYPE_INDEX["click"]))
                for i, t in zip(ex.items, ex.types, strict=True)
                if i in self.index
            ]
            pairs = pairs[-self.session_length :]
            if not pairs:
                continue
            prefix, types = [p for p, _ in pairs], [t for _, t in pairs]
            row = Row(prefix, types, target, entered_at, False, ex.user_id, ex.published, ex.shown)
            if len(self.holdout) == self.holdout.maxlen:
                self.buffer.append(self.holdout[0])
            self.holdout.append(row)
            self.pop[target] += 1
            added += 1
        return added

    # ------------------------------------------------------------ catalogue
    @property
    def new_items(self) -> int:
        """Items added to the table since the offline model."""
        return self.n_items - self.offline_items

    def upsert_items(self, item_ids: list[str], text_emb: np.ndarray, content_changed: Set[str] = frozenset()) -> int:
        """Unknown ``item_ids`` become cold rows from their text-model embeddings (float32 [n, T]);
        known ones get their text replaced, ``content_changed`` ones become text-only (cold) rows.
        Applied to the candidate and the served model alike. Returns how many rows were appended."""
        if len(item_ids) != len(text_emb):
            raise ValueError(f"{len(item_ids)} ids but {len(text_emb)} embeddings")
        emb = torch.from_numpy(np.asarray(text_emb, np.float32)).to(self.device)  # [n, T]
        last = {item: k for k, item in enumerate(item_ids)}  # a repeated id: its newest text wins
        known = [(self.index[item], k, item in content_changed) for item, k in last.items() if item in self.index]
        new = [(item, k) for item, k in last.items() if item not in self.index]
        for model in self._tables():
            if known:
                rows, cold = torch.tensor([(r, c) for r, _, c in known], device=self.device).T  # [m], [m]
                set_text_rows(model.items, rows, emb[[k for _, k, _ in known]], cold.bool())
            if new:
                append_cold_rows(model.items, emb[[k for _, k in new]])
        for item, _ in new:
            self.index[item] = len(self.trained.item_ids)
            self.trained.item_ids.append(item)
        self.n_items = len(self.trained.item_ids)
        self._refresh_neg_pool()
        return len(new)

    def _add_id_rows(self, sessions: list[list[str]]) -> None:
        """Rows for unknown items, from the mean id row of their session's known ones (one growth)."""
        ids = self.model.items.id_emb.weight  # [N, d]
        fresh: dict[str, torch.Tensor] = {}  # new item -> its starting id row [d]
        with torch.no_grad():
            for session in sessions:
                new = [i for i in dict.fromkeys(session) if i not in self.index and i not in fresh]
                if not new:
                    continue
                known = [ids[self.index[i]] if i in self.index else fresh[i] for i in session if i not in new]
                start = torch.stack(known).mean(0) if known else ids.new_zeros(ids.shape[1])  # [d]
                fresh.update((i, start) for i in new)
        if not fresh:
            return
        init = torch.stack(list(fresh.values()))  # [n, d]
        for model in self._tables():
            append_id_rows(model.items, init)
        carry_moments(self.opt, ids, self.model.items.id_emb.weight)
        for item in fresh:
            self.index[item] = len(self.trained.item_ids)
            self.trained.item_ids.append(item)
        self.n_items = len(self.trained.item_ids)
        self._refresh_neg_pool()

    def set_available(self, item_ids: Iterable[str], available: bool) -> None:
        """Availability of known items: unavailable ones are not drawn as sampled negatives."""
        rows = {self.index[i] for i in item_ids if i in self.index}
        self.unavailable = self.unavailable - rows if available else self.unavailable | rows
        self._refresh_neg_pool()

    def _refresh_neg_pool(self) -> None:
        if not self.unavailable:
            self._neg_pool = None
            return
        keep = torch.ones(self.n_items, dtype=torch.bool, device=self.device)  # [N]
        keep[torch.tensor(sorted(self.unavailable), device=self.device)] = False
        self._neg_pool = torch.nonzero(keep).flatten()  # [N_avail]

    # ----------------------------------------------------------------- update
    def _sample(self) -> list[Row]:
        """The freshest examples (``fresh_fraction``), the oldest never-trained ones, then a uniform
        replay draw: the full buffer evicts its oldest, so a row drawn only at random could leave it
        never learned (and a restarted trainer's committed offset would wait on it)."""
        n = min(self.settings.update_batch, len(self.buffer))
        n_fresh = int(n * self.settings.fresh_fraction)
        newest = list(self.buffer)[-max(n_fresh, 1) * 4 :]  # the freshest quarter-window
        rows = self.rng.sample(newest, min(n_fresh, len(newest)))
        picked = {id(r) for r in rows}
        rows += islice((r for r in self.buffer if not r.trained and id(r) not in picked), n - len(rows))
        rows += self.rng.choices(self.buffer, k=n - len(rows))
        return rows

    def step(self) -> float | None:
        """One InfoNCE update; None while the buffer is still empty."""
        if len(self.buffer) < 8:
            return None
        rows = self._sample()
        self.model.train()
        idx, types, mask = row_tensors(rows, self.device)
        sessions = self.model.encode_sessions(idx, types, mask)  # [B, d], or interests [B, M, d]
        targets = torch.tensor([r.target for r in rows], device=self.device)  # [B]
        pool = self._neg_pool
        # every item unavailable: in-batch negatives only (an unavailable row is never a negative)
        n_uniform = self.encoder.n_negatives if pool is None or len(pool) else 0
        n_pool = self.n_items if pool is None else max(len(pool), 1)
        uniform = torch.randint(0, n_pool, (n_uniform,), device=self.device)  # [U]
        if pool is not None and n_uniform:
            uniform = pool[uniform]  # [U], available rows only
        cands, target_rows = torch.unique(torch.cat([targets, uniform]), return_inverse=True)  # [C], [B+U]
        cand_vecs = self.model.items(cands)  # [C, d]
        log_q = None
        if self.encoder.logq:
            total = sum(self.pop.values())
            pop = torch.tensor([self.pop.get(c, 0) / total for c in cands.tolist()], device=self.device)  # [C]
            log_q = candidate_log_q(pop, len(rows), n_uniform, n_pool)
        T = self.encoder.temperature
        loss = next_item_infonce(sessions, target_rows[: len(rows)], cand_vecs, log_q, T, hard=self._hard(rows))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        for r in rows:
            if not r.trained:
                r.trained = True
                self.pending.append(r)
        self.updates += 1
        self.last_loss = float(loss.detach())
        return self.last_loss

    def _hard(self, rows: list[Row]) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Each row's shown-but-not-clicked items as its own negatives (vectors [B, H, d], log weights
        [B, H]; streamrec.encoder.hard_negatives); None when off or no row has any (today's loss)."""
        n, weight = self.settings.hard_negatives, self.settings.hard_negative_weight
        if not n or not weight:
            return None
        self.shown_rows.extend(self.trained.item_ids)
        picked = [self.shown_rows.resolve(r.shown, {r.target, *r.prefix}, n) for r in rows]
        with_shown = sum(map(bool, picked))
        self.hard_negative_rows += with_shown
        if not with_shown:
            return None
        hard_rows, log_w = padded(picked, weight, self.device)  # [B, H], [B, H]
        return self.model.items(hard_rows), log_w  # [B, H, d], [B, H]

    # ------------------------------------------------------------------- gate
    def gate(self) -> GateResult:
        """Candidate vs served on the held-back window: promote unless NDCG@10 drops > tolerance."""
        rows = list(self.holdout)
        cand, served = evaluate_rows(self.model, rows, self.device), evaluate_rows(self.served, rows, self.device)
        return GateResult(cand, served, promotes(cand, served, self.settings.tolerance), len(rows))

    def _tables(self) -> list[torch.nn.Module]:
        """Every copy of the model whose item table grows with the catalogue."""
        return [self.model, self.served] if self.trial is None else [self.model, self.served, self.trial]

    def start_trial(self) -> None:
        """Freeze the candidate as exported: it is a canary now, and updates go on beside it."""
        self.trial, self.trial_rows = copy.deepcopy(self.model).eval(), list(self.pending)

    def promoted(self) -> list[Row]:
        """The candidate (the trial's frozen weights, if one was started) became the served model:
        returns the examples it newly learned from; the ones learned since the trial stay pending."""
        if self.trial is None:
            self.served = copy.deepcopy(self.model).eval()
            learned, self.pending = self.pending, []
            return learned
        self.served, self.trial = self.trial, None
        learned, self.trial_rows = self.trial_rows, []
        done = {id(r) for r in learned}
        self.pending = [r for r in self.pending if id(r) not in done]
        return learned

    def rejected(self) -> None:
        """Throw the candidate away and continue from the served weights."""
        self.model.load_state_dict(self.served.state_dict())
        self.opt = self._optimiser()
        for r in self.pending:
            r.trained = False
        self.pending = []
