"""Helpers for the online-trainer fault tests (no tests here): the trainer's environment on one
test's topics, a tiny initial model exported as the first served version, and examples whose
(session prefix, next item) is unique, so a promoted version's learned rows name them."""

from __future__ import annotations

from pathlib import Path

import torch

from streamrec.config import Settings
from streamrec.contracts.training_batch import Example
from streamrec.encoder.artifact import TrainedModel, save_model_dir
from streamrec.encoder.model import ModelConfig, Recommender
from streamrec.export.exporter import export_model
from streamrec.kafka import ensure_topics, topic_plan
from streamrec.local.services import EmbeddedServices
from streamrec.net import free_port
from streamrec.serving.registry import open_registry

N_ITEMS = 40
TOPICS = ("events", "dlq", "items", "training", "models", "erasures")


def trainer_env(services: EmbeddedServices, prefix: str, data_dir: Path) -> dict[str, str]:
    """STREAMREC_* of a fast-promoting trainer on ``prefix``'s topics (always promotes)."""
    return {
        "STREAMREC_BROKER": services.broker,
        "STREAMREC_REDIS": services.redis,
        "STREAMREC_DATA_DIR": str(data_dir),
        "STREAMREC_K": "10",
        "STREAMREC_DEVICE": "cpu",
        **{f"STREAMREC_TOPICS__{n.upper()}": f"{prefix}.{n}" for n in TOPICS},
        "STREAMREC_TRAINER__GROUP_ID": f"{prefix}-trainer",
        "STREAMREC_TRAINER__INTERVAL_S": "1",
        "STREAMREC_TRAINER__MIN_NEW_EXAMPLES": "64",
        "STREAMREC_TRAINER__HOLDOUT_SIZE": "100",
        "STREAMREC_TRAINER__UPDATE_BATCH": "64",
        "STREAMREC_TRAINER__LR": "3e-3",
        "STREAMREC_TRAINER__TOLERANCE": "1.0",  # always promote: the tests are about delivery and export
        "STREAMREC_TRAINER__CANARY_SHARE": "0",  # straight to everyone: their examples carry no feeds to judge
        "STREAMREC_TRAINER__WEB_PORT": str(free_port()),
        "STREAMREC_ENCODER__N_NEGATIVES": "16",
    }


def initial_model(settings: Settings, root: Path) -> tuple[Path, str]:
    """Create the topics, save a tiny model under ``root`` and export it as the first served
    version; returns (the model dir for ``--init-model``, that version)."""
    ensure_topics(settings.broker, topic_plan(settings))
    torch.manual_seed(0)
    cfg = ModelConfig(d=16, n_layers=1, n_heads=2, session_length=8, dropout=0.0, n_items=N_ITEMS)
    trained = TrainedModel(Recommender(cfg), [f"i{j}" for j in range(N_ITEMS)], {})
    init = save_model_dir(root / "init-model", trained)
    registry = open_registry("", settings.data_dir)
    matrix = trained.item_matrix()
    first = export_model(trained.session_tower, trained.item_ids, matrix, registry, k=10, session_length=8)
    return init, first.ref.version


def example_key(prefix: list[str], target: str) -> str:
    return f"{','.join(prefix)}>{target}"


def unique_examples(start: int, n: int) -> list[Example]:
    """Examples ``start`` .. ``start + n - 1``: each one's 3-item prefix (base-40 digits of its
    number, so up to 64,000 unique) is its own; the next item follows a learnable rule."""
    out = []
    for k in range(start, start + n):
        items = [f"i{(k // N_ITEMS**j) % N_ITEMS}" for j in range(3)]
        target = f"i{(k + 7) % N_ITEMS}"
        out.append(Example(f"u{k}", items, ["click"] * 3, target, "click", 0.0, f"e{k}"))
    return out
