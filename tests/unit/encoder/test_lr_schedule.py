import pytest
import torch

from streamrec.encoder.lr_schedule import StepRates


def _opt() -> torch.optim.Optimizer:
    w, v = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    return torch.optim.AdamW([{"params": [w]}, {"params": [v], "lr": 1e-4}], lr=1e-2)


def _rates(opt: torch.optim.Optimizer) -> list[float]:
    return [g["lr"] for g in opt.param_groups]


def test_constant_keeps_every_group_at_its_base_rate() -> None:
    opt = _opt()
    rates = StepRates(opt, "constant", epochs=4, budget_s=None)
    rates.apply(epoch=3, step=5, steps=10, elapsed_s=100.0)
    assert _rates(opt) == [1e-2, 1e-4]


def test_cosine_starts_at_the_base_rate_halves_midway_and_ends_at_zero() -> None:
    opt = _opt()
    rates = StepRates(opt, "cosine", epochs=4, budget_s=None)
    rates.apply(epoch=1, step=0, steps=10, elapsed_s=0.0)
    assert _rates(opt) == pytest.approx([1e-2, 1e-4])
    rates.apply(epoch=3, step=0, steps=10, elapsed_s=0.0)
    assert _rates(opt) == pytest.approx([5e-3, 5e-5])
    rates.apply(epoch=4, step=10, steps=10, elapsed_s=0.0)
    assert _rates(opt) == pytest.approx([0.0, 0.0], abs=1e-12)


def test_the_budget_ends_the_schedule_when_it_comes_before_the_epoch_cap() -> None:
    rates = StepRates(_opt(), "cosine", epochs=200, budget_s=600.0)
    assert rates.progress(epoch=2, step=0, steps=10, elapsed_s=300.0) == pytest.approx(0.5)
    assert rates.progress(epoch=2, step=0, steps=10, elapsed_s=900.0) == 1.0
    unbudgeted = StepRates(_opt(), "cosine", epochs=200, budget_s=None)
    assert unbudgeted.progress(epoch=101, step=0, steps=10, elapsed_s=1e9) == pytest.approx(0.5)


def test_a_plateau_decay_scales_the_scheduled_rate() -> None:
    opt = _opt()
    rates = StepRates(opt, "cosine", epochs=4, budget_s=None)
    rates.decay(0.5)
    rates.apply(epoch=3, step=0, steps=10, elapsed_s=0.0)
    assert _rates(opt) == pytest.approx([2.5e-3, 2.5e-5])
