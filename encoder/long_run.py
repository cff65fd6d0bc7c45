"""How much dropout a training run gets, decided once its first epoch has been timed.

Dropout trades speed of learning for resistance to overfitting, and which of the two a run needs
depends on how many passes over the log it will make. On ml-100k (about 30 epochs fit the CPU
budget, the best epoch comes after 20-45) dropout 0.4 beat 0.2 over 3 seeds at 50 epochs; on
DIGINETICA (about 6 epochs fit, validation still rising at the last) 0.4 trailed 0.2 at every
epoch. The first epoch's wall time and the budget tell which regime a run is in, so the stronger
dropout is switched on from the second epoch only when enough epochs fit; on a GPU (no wall-clock
budget) every run is a long one, as in the published models trained to convergence.
"""

from __future__ import annotations

import math

from torch import nn


def expected_epochs(max_epochs: int, budget_minutes: float | None, first_epoch_s: float) -> int:
    """Epochs the run can make: the epoch cap, or fewer if the wall-clock budget ends it first."""
    if budget_minutes is None or first_epoch_s <= 0:
        return max_epochs
    return min(max_epochs, math.floor(60.0 * budget_minutes / first_epoch_s))


def run_dropout(dropout: float, long_dropout: float, long_run_epochs: int, epochs: int) -> float:
    """The dropout from epoch 2 on: ``long_dropout`` when ``epochs`` reach ``long_run_epochs``
    (0 turns the switch off)."""
    return long_dropout if long_run_epochs and epochs >= long_run_epochs else dropout


def set_dropout(model: nn.Module, p: float) -> None:
    """Every dropout layer of ``model`` at ``p``: the rate is not part of the weights, so this
    changes training from the next step on and nothing the model exports."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = p
