"""The online trainer's lineage: the version it resumes from, a candidate's export into the
registry and the lineage, and the record of a canary the live gate rolled back.

The lineage (``<data_dir>/trainer/models/<version>``) holds the model directory of every version
the trainer may resume from; a rolled-back canary must not be one of them, so its directory moves
to ``.rolled-back/`` and ``rollbacks.jsonl`` gets a line saying what was refused and on which live
counts.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from streamrec.config import Settings
from streamrec.encoder.artifact import TrainedModel, load_model_dir, on_cpu, save_model_dir
from streamrec.encoder.online import OnlineLearner
from streamrec.errors import UserError
from streamrec.serving.registry import Registry
from streamrec.text_models import search_dirs

log = logging.getLogger("streamrec.trainer")
ROLLED_BACK = ".rolled-back"


def resume_from(registry: Registry, lineage: Path, init_model: Path | None) -> tuple[TrainedModel, str]:
    """The newest registry version with a lineage entry, else ``init_model`` as the newest version."""
    refs = registry.list()
    for ref in reversed(refs):
        if (lineage / ref.version).is_dir():
            log.info("resuming from promoted version %s", ref.version)
            return load_model_dir(lineage / ref.version), ref.version
    if init_model is None:
        raise UserError("no promoted version with trainer state and no --init-model DIR to start from")
    if not refs:
        raise UserError("the registry is empty: export an initial model first (streamrec export --model DIR)")
    log.info("starting from %s as served version %s", init_model, refs[-1].version)
    trained = load_model_dir(init_model)
    save_model_dir(lineage / refs[-1].version, trained)
    return trained, refs[-1].version


def export_candidate(
    learner: OnlineLearner, s: Settings, registry: Registry, lineage: Path, parent: str, metrics: dict[str, float]
) -> tuple[str, dict]:
    """Export + parity check of the learner's candidate into the registry, its model directory into
    the lineage. A crash anywhere in here leaves no half artifact visible (the registry publishes by
    rename, the lineage entry appears by rename). Returns the version and its announcement."""
    from streamrec.export.exporter import export_trained
    from streamrec.export.text_export import text_spec

    trained = on_cpu(learner.trained)  # export traces and checks parity on the CPU
    tmp_dir = lineage / ".candidate"
    save_model_dir(tmp_dir, trained)
    result = export_trained(
        trained,
        registry,
        k=s.k,
        pool=s.pool,
        fp16=s.registry.fp16,
        int8=s.registry.int8,
        parent=parent,
        metrics={
            "online": metrics,
            "updates": learner.updates,
            "items": learner.n_items,
            "new_items": learner.new_items,  # added since the offline model
        },
        # text.onnx is reused from the cache while the projection is unchanged
        text=text_spec(trained, search_dirs(s.encoder.text_model_dir), s.data_dir / "cache"),
        trained_rows=trained.trained_rows(),
        ann_min_items=s.serving.ann_min_items,
    )
    version = result.ref.version
    tmp_dir.rename(lineage / version)
    return version, result.ref.announcement()


def record_rollback(lineage: Path, refused: dict) -> None:
    """``refused`` (``{"version", "reason", "live"}``) out of the versions a restart resumes from."""
    gone = lineage / ROLLED_BACK
    gone.mkdir(parents=True, exist_ok=True)
    own = lineage / refused["version"]
    if own.is_dir():
        own.rename(gone / refused["version"])
    with (lineage / "rollbacks.jsonl").open("a") as out:
        out.write(json.dumps({**refused, "at": time.time()}) + "\n")
