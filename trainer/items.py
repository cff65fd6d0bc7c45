"""The online trainer's view of the catalogue topic (``streamrec.items``).

Workers give a new item a text-only vector themselves, but a version the trainer promotes must
carry it too, or the item would vanish from every model exported after it arrived, and the
trainer's gate and negatives would never see it. So the trainer follows the topic as well (from
its beginning, without a consumer group: it is compacted, one record per item) and turns items
its table does not have into cold rows, embedded with the same text model the model was trained
with (loaded on the first new item, then kept) in batches on a background thread; the rows are
appended on the trainer's own thread, between two updates.

Changed text: the table stores embeddings, not texts, so the text an offline item was trained
with is unknown; the first text seen for it in this process is taken as that one, and a later
different text refreshes its embedding. Items the trainer embedded keep a digest of their text in
the model's config (``item_texts``), so those are compared across restarts too.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from streamrec.contracts.items import ItemUpdate, parse_records
from streamrec.encoder.online import OnlineLearner
from streamrec.follow import FollowerThread

log = logging.getLogger("streamrec.trainer")
TextEncoder = Callable[[list[str]], np.ndarray]  # texts -> float32 [n, T]
DIGESTS = "item_texts"  # model config key: item id -> digest of the text its row was embedded from


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def model_text_encoder(config: dict[str, Any]) -> TextEncoder | None:
    """An encoder running the text model named in a trained model's config (loaded on its first
    call, then kept), or None when the config names none a process can load."""
    name = config.get("text_model")
    if not name or name == "injected":
        return None
    from streamrec.encoder.text import TextModel, resolve_text_model

    path = resolve_text_model(str(name))
    if path is None:
        return None
    max_tokens = int(config.get("train", {}).get("text_max_tokens", 64))
    loaded: list[TextModel] = []

    def encode(texts: list[str]) -> np.ndarray:
        if not loaded:
            log.info("loading text model %s for new catalogue items", path)
            loaded.append(TextModel(path))
        return loaded[0].embed(texts, max_tokens)

    return encode


class CatalogueSync:
    """Catalogue updates -> cold rows / refreshed text rows / availability in the learner."""

    def __init__(self, learner: OnlineLearner, text_encoder: TextEncoder | None = None, batch: int = 256) -> None:
        self.learner = learner
        self.batch = batch
        self.digests: dict[str, str] = dict(learner.trained.config.get(DIGESTS, {}))
        self.queue: dict[str, str] = {}  # item id -> text waiting to be embedded (newest wins)
        self.job: tuple[list[str], list[str], Future[np.ndarray]] | None = None
        self.pending_available: dict[str, bool] = {}  # for items not in the table yet
        self.encoder = text_encoder
        self.enabled = learner.trained.model_config.text_dim > 0
        if self.enabled and self.encoder is None:
            self.encoder = model_text_encoder(learner.trained.config)
        if not self.enabled or self.encoder is None:
            log.info("the model has no text tower (or no loadable text model): new catalogue items are not embedded")
            self.enabled = False
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="item-text") if self.enabled else None

    def handle(self, updates: Iterable[ItemUpdate]) -> None:
        """Record updates; new items and changed texts are queued for embedding. Availability of
        known items is applied once per call (each change rebuilds the negative pool)."""
        available: dict[str, bool] = {}  # known items, newest update wins
        for u in updates:
            if u.item_id in self.learner.index:
                available[u.item_id] = u.available
            else:
                self.pending_available[u.item_id] = u.available
            if not self.enabled or not u.text:
                continue
            digest = text_digest(u.text)
            if u.item_id in self.learner.index and u.item_id not in self.digests:
                self.digests[u.item_id] = digest  # first sighting of an offline item: its training text
                continue
            if self.digests.get(u.item_id) != digest:
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
        added = self.learner.upsert_items(ids, emb)
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
