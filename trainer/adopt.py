"""The online trainer continues from a version it did not produce (a ``streamrec retrain``).

The trainer follows ``streamrec.models`` as the workers do: the latest announcement is the
served version (once the replay of the topic at start is read, and then after each new one). The
newest announcement of a version without a lineage entry (not one it produced or adopted; its own
promotions announced after it do not hide it) whose
artifact carries the model directory (``model_dir.tar``) becomes its new base: the directory is unpacked into the
lineage (so a restart resumes from it), and a fresh learner starts from it with the examples the
old one held, re-mapped to the new item table, in the same order (buffer, then held-back
window), untrained: the new base has not learned them. Versions without ``model_dir.tar`` (a
rollback to an older online version, a plain ``streamrec export``) are not adopted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from streamrec.contracts.announcement import canary_of
from streamrec.contracts.session_rows import TYPE_INDEX
from streamrec.contracts.training_batch import Example
from streamrec.encoder.artifact import TrainedModel, unpack_model_dir
from streamrec.encoder.online import OnlineLearner
from streamrec.encoder.online_rows import Row
from streamrec.serving.artifact import MODEL_DIR_TAR, ArtifactMeta, verify
from streamrec.serving.registry import Registry

log = logging.getLogger("streamrec.trainer")
TYPE_NAME = {i: name for name, i in TYPE_INDEX.items()}


def adoptable(ann: dict[str, Any], served_version: str, lineage: Path) -> bool:
    """A latest announcement the trainer should continue from (its artifact still to be checked);
    never a canary (the trainer's own trial, or one it has refused)."""
    return ann["version"] != served_version and not (lineage / ann["version"]).exists() and canary_of(ann) is None


def fetch_trainable(registry: Registry, ann: dict[str, Any], lineage: Path) -> TrainedModel | None:
    """The announced version's model directory, unpacked into ``lineage/<version>``; None when
    its artifact carries none. Raises ``ArtifactError`` / ``UserError`` for a bad one."""
    directory = registry.fetch(ann["version"], ann.get("sha256"))
    meta: ArtifactMeta = verify(directory)
    if MODEL_DIR_TAR not in meta.files:
        return None
    return unpack_model_dir(directory / MODEL_DIR_TAR, lineage / ann["version"])


def _examples(rows: Iterable[Row], item_ids: list[str]) -> list[Example]:
    return [
        Example(
            r.user_id,  # kept, with ``published``: an erasure must still find the row
            [item_ids[p] for p in r.prefix],
            [TYPE_NAME[t] for t in r.types],
            item_ids[r.target],
            "click",
            r.entered_at,
            "",
            r.published,
            r.shown,
        )
        for r in rows
    ]


def rebase(old: OnlineLearner, trained: TrainedModel) -> tuple[OnlineLearner, list[bool]]:
    """A learner over ``trained`` holding ``old``'s examples (buffer, then window, in order), and for
    each of them whether the new learner kept it (it drops one whose target it cannot map, as for
    any incoming example). Availability and text-only catalogue rows the new table lacks carry over."""
    new = OnlineLearner(trained, old.settings, old.encoder)
    rows = [*old.buffer, *old.holdout]
    kept = [new.add([ex], ex.ts) == 1 for ex in _examples(rows, old.trained.item_ids)]
    _carry_catalogue(old, new)
    return new, kept


def _carry_catalogue(old: OnlineLearner, new: OnlineLearner) -> None:
    """Items the old table had from the catalogue topic (text rows) join the new one the same way,
    and unavailable items stay unavailable: the topic is not re-read."""
    items = old.model.items
    width = old.trained.model_config.text_dim
    missing = [i for i in old.trained.item_ids if i not in new.index]
    if missing and width and width == new.trained.model_config.text_dim:
        rows = torch.tensor([old.index[i] for i in missing])
        new.upsert_items(missing, items.text_emb[rows].detach().cpu().numpy())
    off = [old.trained.item_ids[r] for r in old.unavailable]
    if off:
        new.set_available(off, False)
    log.info("rebased: %d examples, %d catalogue items carried over", len(new.buffer) + len(new.holdout), len(missing))
