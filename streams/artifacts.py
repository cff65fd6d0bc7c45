"""Resolve a model announcement to a verified, warmed-up runner (the serving registry + Runner).

``Runner.load`` verifies every file's sha256 against ``meta.json`` and the announced digest, and
runs warm-up batches that must produce finite scores of the right shape, so a corrupt or
half-written artifact raises here and never reaches the model slot; so does an artifact whose
text model (named by id and weights checksum) is not installed here or in
``encoder.text_model_dir``.
"""

from __future__ import annotations

from typing import Any

from streamrec.config import Settings
from streamrec.serving.registry import open_registry
from streamrec.serving.runner import Runner
from streamrec.streams.hotswap import Loader
from streamrec.text_models import search_dirs


def make_loader(settings: Settings) -> Loader:
    registry = open_registry(settings.registry.url, settings.data_dir, settings.redis_tls)

    def load(announcement: dict[str, Any]) -> Runner:
        digest = announcement.get("sha256") or None
        path = registry.fetch(announcement["version"], digest)
        w = settings.worker
        return Runner.load(
            path,
            settings.device,
            expected_sha256=digest,
            fp16=settings.registry.fp16,
            int8=settings.registry.int8,
            int8_min_items=settings.registry.int8_min_items,
            threads=w.score_threads,
            spinning=w.score_spinning,
            text_model_dirs=search_dirs(settings.encoder.text_model_dir),
            ann=settings.serving,
        )

    return load
