"""The learning rate of each offline training step.

A constant rate leaves the weights bouncing around the optimum at the last epoch; annealing
it to zero by the end of training lets the last epochs settle into it (SGDR, Loshchilov &
Hutter 2017, and the cosine decay most published sequential recommenders train with). The
end is whichever comes first of the epoch cap and the wall-clock budget, since on CPU the
budget, not the cap, ends a run.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

Schedule = Literal["constant", "cosine"]


class StepRates:
    """Sets every parameter group's rate before each step: its base rate times the schedule's
    factor at the run's progress. Plateau decays scale the base rates, so the two compose."""

    def __init__(self, opt: torch.optim.Optimizer, kind: Schedule, epochs: int, budget_s: float | None) -> None:
        self.opt = opt
        self.kind = kind
        self.epochs = epochs
        self.budget_s = budget_s
        self.base = [float(g["lr"]) for g in opt.param_groups]

    def progress(self, epoch: int, step: int, steps: int, elapsed_s: float) -> float:
        """Share of the run done, in [0, 1]: epochs done (``epoch`` counts from 1) or budget
        spent, whichever is further along."""
        by_epoch = (epoch - 1 + step / max(steps, 1)) / self.epochs
        by_time = elapsed_s / self.budget_s if self.budget_s else 0.0
        return min(1.0, max(by_epoch, by_time))

    def factor(self, progress: float) -> float:
        if self.kind == "constant":
            return 1.0
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    def apply(self, epoch: int, step: int, steps: int, elapsed_s: float) -> None:
        f = self.factor(self.progress(epoch, step, steps, elapsed_s))
        for group, base in zip(self.opt.param_groups, self.base, strict=True):
            group["lr"] = base * f

    def decay(self, factor: float) -> None:
        """A validation plateau: every later step runs at ``factor`` times the rate it would have had."""
        self.base = [b * factor for b in self.base]
