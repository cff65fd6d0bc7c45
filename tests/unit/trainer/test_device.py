"""The online trainer's device: ``settings.device`` through ``pick_device`` (auto takes the GPU
torch sees, cuda without one is a one-line UserError), the learner trains where it is told, and
a promoted version is exported from a model on the CPU. bench/gpu_check.py runs the learner on
a real GPU."""

from __future__ import annotations

import pytest
import torch
from support.tiny_model import chain_examples, tiny_trained

from streamrec.encoder.artifact import on_cpu
from streamrec.encoder.online import OnlineLearner
from streamrec.encoder.trainer import pick_device
from streamrec.errors import UserError
from streamrec.settings.encoder import EncoderSettings, TrainerSettings


def test_auto_and_cuda_take_the_gpu_torch_sees(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device("auto") == pick_device("cuda") == torch.device("cuda")
    assert pick_device("cpu") == torch.device("cpu")


def test_cuda_without_a_gpu_is_a_one_line_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device("auto") == torch.device("cpu")
    with pytest.raises(UserError, match=r"^device=cuda, but torch \S+ \(.+\) sees no CUDA device$"):
        pick_device("cuda")


def test_the_learner_trains_on_its_device_and_exports_from_the_cpu() -> None:
    settings = TrainerSettings(holdout_size=50, buffer_size=1000, update_batch=32)
    learner = OnlineLearner(tiny_trained(), settings, EncoderSettings(n_negatives=8), device=torch.device("cpu"))
    learner.add(chain_examples(200, seed=1), entered_at=100.0)
    assert learner.step() is not None and learner.gate().n == 50
    assert {p.device.type for p in learner.model.parameters()} == {"cpu"}
    assert on_cpu(learner.trained) is learner.trained  # already there: no copy
