"""The offline model of an event log as ``streamrec train`` builds it, shared with ``streamrec retrain``
(one trainer, not two that drift apart)."""

from __future__ import annotations

from streamrec.config import Settings
from streamrec.datasets import Catalogue, EventLog
from streamrec.encoder.artifact import TrainedModel
from streamrec.encoder.hybrid import table_from_log
from streamrec.encoder.trainer import Trainer, pick_device


def fit_model(settings: Settings, log: EventLog, catalogue: Catalogue | None, progress: bool) -> TrainedModel:
    """The offline model of ``log`` as ``streamrec train`` builds it (``streamrec retrain`` too):
    fit with early stopping, then count the hybrid's base co-occurrence table on the same log."""
    device = pick_device(settings.device)
    trainer = Trainer(
        log,
        catalogue,
        settings.encoder,
        settings.session_length,
        device,
        cache_dir=settings.data_dir / "cache",
        progress=progress,
    )
    print(
        f"training on {device} (seed {settings.encoder.seed}): {len(log)} events, {len(trainer.seqs.users)} users, "
        f"{trainer.cfg.n_items} items, text model: {trainer.text_model or 'none (id embeddings)'}"
    )
    trained = trainer.fit()
    trained.cooccurrence = table_from_log(log, settings.hybrid)  # the hybrid's base table, shipped on export
    return trained
