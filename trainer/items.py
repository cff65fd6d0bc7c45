"""The online trainer's view of the catalogue topic (``streamrec.items``).

Workers give a new item a text-only vector themselves, but a version the trainer promotes must
carry it too, or the item would vanish from every model exported after it arrived, and the
trainer's gate and negatives would never see it. So the trainer follows the topic as well (from
its beginning, without a consumer group: it is compacted, one record per item) and turns items
its table does not have into cold rows, embedded by the served artifact's text tower
(``text.onnx`` with onnxruntime, the workers' own chain) in batches on a background thread; the
rows are appended on the trainer's own thread, between two updates.

Which updates touch a row is :func:`streamrec.item_refresh.refreshes_vector`, the workers' rule:
a trained row (warm: it has a trained id embedding) is never re-embedded unless the update is
marked ``content_change``, which also turns it into a text-only row (its id embedding described
the old content), as the workers then serve it. An untrained row is refreshed when its text
differs from the one it was embedded from (for a row of the offline model, the first text seen
in this process is taken as the one it was trained with); items the trainer embedded keep a
digest of their text in the model's config (``item_texts``), so those are compared across
restarts too.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from streamrec.contracts.items import ItemUpdate, parse_records
from streamrec.encoder.online import OnlineLearner
from streamrec.follow import FollowerThread
from streamrec.item_refresh import refreshes_vector
from streamrec.serving.providers import Device, choose_providers

log = logging.getLogger("streamrec.trainer")
TextEncoder = Callable[[list[str]], np.ndarray]  # texts -> float32 [n, T]
DIGESTS = "item_texts"  # model config key: item id -> digest of the text its row was embedded from


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def artifact_text_encoder(
    artifact_dir: Path, search_dirs: Sequence[Path] = (), device: Device = "cpu"
) -> TextEncoder | None:
    """The text-model half of a served artifact's ``text.onnx`` (texts -> embeddings [n, T], what
    the learner's rows hold) on ``device`` (auto|cuda|cpu), None for an artifact without one. A
    text model the artifact names but this machine lacks raises (``ArtifactError``)."""
    from streamrec.serving.artifact import verify
    from streamrec.serving.text_tower import TextTower

    meta = verify(artifact_dir)
    providers = choose_providers(device).providers
    # One thread: on a 2-core box the other core is the worker's.
    tower = TextTower.of_artifact(artifact_dir, meta, search_dirs, providers, threads=1)
    return None if tower is None else (lambda texts: tower.embed(texts)[0])


class CatalogueSync:
    """Catalogue updates -> cold rows / refreshed text rows / availability in the learner."""

    def __init__(self, learner: OnlineLearner, text_encoder: TextEncoder | None, batch: int = 256) -> None:
        self.learner = learner
        self.batch = batch
        self.digests: dict[str, str] = dict(learner.trained.config.get(DIGESTS, {}))
        self.queue: dict[str, str] = {}  # item id -> text waiting to be embedded (newest wins)
        self.changed: set[str] = set()  # items whose content changed (updates marked content_change)
        self.job: tuple[list[str], list[str], Future[np.ndarray]] | None = None
        self.pending_available: dict[str, bool] = {}  # for items not in the table yet
        self.encoder = text_encoder
        self.enabled = learner.trained.model_config.text_dim > 0 and text_encoder is not None
        if learner.trained.model_config.text_dim == 0:
            log.info("the model has no text tower (ID-only): new catalogue items join with the next trained model")
        elif text_encoder is None:
            log.error("the model has a text tower but the served artifact no text.onnx: new items are not embedded")
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="item-text") if self.enabled else None

    def _trained(self, item: str) -> bool:
        row = self.learner.index.get(item)
        return row is not None and bool(self.learner.model.items.warm[row])

    def handle(self, updates: Iterable[ItemUpdate]) -> None:
        """Record updates; new items and texts the rule lets refresh are queued for embedding.
        Availability of known items is applied once per call (each change rebuilds the negative
        pool)."""
        available: dict[str, bool] = {}  # known items, newest update wins
        for u in updates:
            if u.item_id in self.learner.index:
                available[u.item_id] = u.available
            else:
                self.pending_available[u.item_id] = u.available
            if u.content_change and self._trained(u.item_id):
                self.changed.add(u.item_id)
            if not self.enabled or not u.text or not refreshes_vector(u, self._trained(u.item_id)):
                continue
            digest = text_digest(u.text)
            row = self.learner.index.get(u.item_id)
            offline = row is not None and row < self.learner.offline_items and u.item_id not in self.changed
            if offline and u.item_id not in self.digests:
                self.digests[u.item_id] = digest  # first sighting of an offline row: the text it was trained with
                continue
            if self.digests.get(u.item_id) != digest or u.item_id in self.changed:
                self.queue[u.item_id] = u.text
        self._set_available(available)

    def pump(self, wait: bool = False) -> int:
        """Apply a finished embedding batch and start the next one; returns rows appended.
        ``wait`` blocks until the queue is empty (tests, shutdown)."""
        added = 0
        while True:
            if self.job is not None and (wait or self.job[2].done()):
                added += self._apply(*self.job)
                self.job = None
            if self.job is None and self.queue:
                ids = list(self.queue)[: self.batch]
                texts = [self.queue.pop(i) for i in ids]
                assert self.pool is not None and self.encoder is not None
                self.job = (ids, texts, self.pool.submit(self.encoder, texts))
            if not wait or self.job is None:
                return added

    def _apply(self, ids: list[str], texts: list[str], future: Future[np.ndarray]) -> int:
        try:
            emb = future.result()
        except Exception:
            log.exception("embedding %d catalogue items failed; they wait for their next update", len(ids))
            return 0
        started = time.monotonic()
        changed = {i for i in ids if i in self.changed}
        added = self.learner.upsert_items(ids, emb, content_changed=changed)
        self.changed -= changed
        for item, text in zip(ids, texts, strict=True):
            self.digests[item] = text_digest(text)
        online_ids = self.learner.trained.item_ids[self.learner.offline_items :]
        online = {i: self.digests[i] for i in online_ids if i in self.digests}
        self.learner.trained.config[DIGESTS] = online
        self._set_available({item: self.pending_available.pop(item) for item in ids if item in self.pending_available})
        log.info(
            "catalogue: %d new items, %d texts refreshed (%.0f ms); %d items, %d added online",
            added,
            len(ids) - added,
            1000 * (time.monotonic() - started),
            self.learner.n_items,
            self.learner.new_items,
        )
        return added

    def _set_available(self, flags: dict[str, bool]) -> None:
        for flag in (True, False):
            ids = [item for item, f in flags.items() if f is flag]
            if ids:
                self.learner.set_available(ids, flag)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


class ItemsReader:
    """The catalogue topic from its first offset, without a consumer group (every trainer needs
    every item, and a restart must re-read them all), followed in a thread
    (:class:`streamrec.follow.FollowerThread`); the topic is picked up once it exists."""

    def __init__(self, bootstrap: str, topic: str, **client_kwargs: Any) -> None:
        self.follower = FollowerThread(bootstrap, topic, **client_kwargs)

    def poll(self) -> list[ItemUpdate]:
        return parse_records(self.follower.drain())

    def close(self) -> None:
        self.follower.close()
