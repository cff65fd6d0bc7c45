"""The dropout switch: stronger dropout from epoch 2 only on runs the budget lets pass over the
log many times."""

from __future__ import annotations

import pytest
import torch

from streamrec.encoder.long_run import expected_epochs, run_dropout
from streamrec.encoder.trainer import Trainer
from streamrec.sample import generate_sample
from streamrec.settings.encoder import EncoderSettings


def test_expected_epochs_are_the_cap_or_what_the_budget_fits() -> None:
    assert expected_epochs(200, None, 30.0) == 200  # no wall-clock budget (CUDA): the cap
    assert expected_epochs(200, 8.0, 15.0) == 32  # ml-100k-like: 8 minutes at 15 s an epoch
    assert expected_epochs(200, 14.8, 140.0) == 6  # DIGINETICA-like
    assert expected_epochs(10, 8.0, 15.0) == 10


def test_run_dropout_switches_only_on_long_runs() -> None:
    assert run_dropout(0.2, 0.4, 20, 32) == 0.4
    assert run_dropout(0.2, 0.4, 20, 19) == 0.2
    assert run_dropout(0.2, 0.4, 0, 200) == 0.2  # 0 = never


def _dropouts(model: torch.nn.Module) -> set[float]:
    return {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)}


@pytest.mark.parametrize(("max_minutes", "switched"), [(60.0, True), (1e-6, False)])
def test_trainer_raises_dropout_after_epoch_one_when_the_run_is_long(max_minutes: float, switched: bool) -> None:
    _, log = generate_sample(0, n_users=40, n_items=30)
    settings = EncoderSettings(
        d_model=8, n_layers=1, epochs=3, dropout=0.1, long_dropout=0.3, long_run_epochs=3, max_minutes=max_minutes
    )
    trainer = Trainer(log, None, settings, 10, torch.device("cpu"), progress=False)
    assert _dropouts(trainer.model) == {0.1}
    trained = trainer.fit()
    assert trained.metrics["dropout"]["then"] == (0.3 if switched else 0.1)
    assert _dropouts(trainer.model) == ({0.3} if switched else {0.1})
    # a budget of a microsecond ends the run after its first epoch
    assert len(trained.metrics["epochs"]) == (3 if switched else 1)
