"""The online trainer inside ``streamrec eval --stream --online``: what a replay gains from it.

The worker pipeline's training examples (the same :class:`TrainingEmitter` batches the worker
publishes to ``streamrec.training``) go to an :class:`OnlineLearner`, the trainer process's
learning half. After each chunk the learner takes as many update steps as the new examples fill
fresh halves of update batches (each example trained on about once, as the trainer keeps up at
the demo's rate); every ``gate_every`` events it runs the promotion gate, and a promoted
candidate is exported with the trainer's exporter (parity check included) and swapped into the
worker's model slot, as a worker does when a version is announced. Event counts stand in for
the trainer's clock: ``trainer.interval_s`` at the demo's replay rate.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from streamrec.config import Settings
from streamrec.contracts.training_batch import Example, decode_batch
from streamrec.online_eval import HitRecord

if TYPE_CHECKING:
    from streamrec.encoder.artifact import TrainedModel
    from streamrec.encoder.online import OnlineLearner
    from streamrec.serving.runner import Runner
    from streamrec.streams.model_slot import ModelSlot

REPLAY_RATE = 1_000  # events/s: the demo's replay rate, to turn the trainer's seconds into events


@dataclass
class OnlineReplay:
    """See the module docstring. ``export`` turns the learner's model into a served runner."""

    learner: OnlineLearner
    export: Callable[[TrainedModel, Path], Runner]
    root: Path
    gate_every: int
    inbox: list[Example] = field(default_factory=list)
    last_gate: int = 0
    promotions: int = 0
    rejections: int = 0
    steps: int = 0
    promoted_at: list[int] = field(default_factory=list)  # events done at each promotion
    gate_ndcg: list[tuple[float, float]] = field(default_factory=list)  # (candidate, served) NDCG@10 per gate
    sawtooth: dict | None = None

    @classmethod
    def start(cls, settings: Settings, trained: TrainedModel, export: Callable, root: Path) -> OnlineReplay:
        import copy

        from streamrec.encoder.online import OnlineLearner

        learner = OnlineLearner(copy.deepcopy(trained), settings.trainer, settings.encoder)
        gate_every = max(int(settings.trainer.interval_s * REPLAY_RATE), 1)
        return cls(learner, export, root, gate_every)

    async def send(self, raw: bytes) -> None:
        """The training emitter's send: keep the batch's examples for the next update."""
        self.inbox.extend(decode_batch(raw).examples)

    def after_chunk(self, events_done: int, slot: ModelSlot) -> None:
        """Learn from what the chunk emitted; gate, and swap a promoted version in when due."""
        learner, trainer = self.learner, self.learner.settings
        added = learner.add(self.inbox, entered_at=float(events_done))
        self.inbox = []
        fresh_per_step = max(int(trainer.update_batch * trainer.fresh_fraction), 1)
        for _ in range(math.ceil(added / fresh_per_step)):
            if learner.step() is None:
                break
            self.steps += 1
        if events_done - self.last_gate < self.gate_every or len(learner.pending) < trainer.min_new_examples:
            return
        self.last_gate = events_done
        result = learner.gate()
        self.gate_ndcg.append((result.candidate["ndcg@10"], result.served["ndcg@10"]))
        if not result.promote:
            learner.rejected()
            self.rejections += 1
            return
        learner.promoted()
        self.promotions += 1
        self.promoted_at.append(events_done)
        slot.swap(self.export(learner.trained, self.root / f"v{self.promotions}"))

    def measure_sawtooth(self, records: Sequence[HitRecord]) -> None:
        """Hit rate in the first and the second half of every gap between two promotions: a
        version that goes stale between swaps shows as a second half below the first."""
        halves = [[0, 0], [0, 0]]  # [hits, events] of first and second halves
        at = self.promoted_at  # increasing: one gate per gate_every events at most
        for r in records:
            g = bisect.bisect_right(at, r.at) - 1  # the gap [at[g], at[g + 1]) holding r
            if 0 <= g < len(at) - 1:
                h = halves[r.at >= (at[g] + at[g + 1]) / 2]
                h[0] += r.hit
                h[1] += 1
        first, second = (h[0] / h[1] if h[1] else None for h in halves)
        self.sawtooth = {
            "gaps": max(len(self.promoted_at) - 1, 0),
            "first_half_hr@10": first,
            "second_half_hr@10": second,
            "second_vs_first": second / first if first and second is not None else None,
        }

    def summary(self) -> dict:
        s = self.learner.settings
        return {
            "promotions": self.promotions,
            "rejections": self.rejections,
            "update_steps": self.steps,
            "items_added_online": self.learner.new_items,
            "gate_every_events": self.gate_every,
            "train_item_ids": s.train_item_ids,
            "lr": s.lr,
            "item_lr": s.item_lr,
            "hard_negatives": s.hard_negatives,
            "hard_negative_weight": s.hard_negative_weight,
            "hard_negative_rows": self.learner.hard_negative_rows,
            "gate_ndcg@10": _gate_summary(self.gate_ndcg),
            "sawtooth": self.sawtooth,
        }


def _gate_summary(gates: Sequence[tuple[float, float]]) -> dict | None:
    """The gate's NDCG@10 on its held-back window: candidate and served, mean over gates and last."""
    if not gates:
        return None
    cand, served = zip(*gates, strict=True)
    return {
        "gates": len(gates),
        "candidate_mean": sum(cand) / len(cand),
        "served_mean": sum(served) / len(served),
        "candidate_last": cand[-1],
        "served_last": served[-1],
    }
