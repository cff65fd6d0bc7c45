"""The runner the worker scores with, swapped atomically between micro-batches.

:class:`Runner` below is the whole seam to ``streamrec.serving.runner.Runner``
(docs/contracts.md): the pipeline calls ``recommend`` (one call per micro-batch, at most ``k``
results), reads ``version``, ``item_ids`` and ``item_vectors`` (MMR); the catalogue follower
calls ``trained``, ``upsert_items`` and ``set_available``; cold start calls ``text_vectors``
(the artifact's text tower) and reads ``text_digest``. Nothing reaches past it.

Swaps are atomic for free: a batch reads :attr:`ModelSlot.current` once before scoring, and
everything runs on one event loop, so a batch never mixes two models. The old runner is
dropped, not closed, because a batch may still hold it in the scoring thread.

At swap time the slot checks the model against what the worker serves (:class:`Fit`): a model
whose K is below the feed length is refused (the hot-swapper logs it and the old model keeps
serving); a K below the MMR candidate pool, or a session length other than the worker's, is
adapted to (fewer candidates; the model reads the newest items it was exported for) and logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from streamrec.serving.providers import ProviderChoice

log = logging.getLogger(__name__)


@runtime_checkable
class Runner(Protocol):
    @property
    def version(self) -> str: ...

    @property
    def k(self) -> int:
        """The most results ``recommend`` returns per session (fixed at export)."""
        ...

    @property
    def session_length(self) -> int:
        """The newest items of a session the model reads (fixed at export)."""
        ...

    @property
    def item_ids(self) -> list[str]: ...

    @property
    def choice(self) -> ProviderChoice:
        """The providers the runner scores on and why (the worker's provider metric)."""
        ...

    @property
    def takes_bonus(self) -> bool:
        """Whether the file adds a co-occurrence bonus (streamrec.serving.hybrid)."""
        ...

    @property
    def d(self) -> int:
        """Width of the item vectors."""
        ...

    def recommend(
        self,
        sessions: list[list[str]],
        types: list[list[str]],
        k: int,
        exclude_seen: bool,
        bonus: tuple[Any, Any] | None = None,
        explain: bool = False,
    ) -> list[Any]:
        """(ids, scores) per session; with ``explain``, (ids, scores, because)."""
        ...

    @property
    def cooccurrence_file(self) -> Path | None:
        """The co-occurrence table the artifact ships, if any (the hybrid's base table)."""
        ...

    def rows_of(self, ids: Sequence[str]) -> np.ndarray: ...

    @property
    def text_digest(self) -> str | None:
        """sha256 of the artifact's text tower (``text.onnx``), None without one."""
        ...

    def trained(self, ids: Sequence[str]) -> list[bool]:
        """Per id: whether its row has a trained id embedding (a vector updates must keep)."""
        ...

    def text_vectors(self, texts: Sequence[str]) -> np.ndarray | None:
        """Item vectors [n, d] from texts by the text tower (blocking), None without one."""
        ...

    def item_vectors(self, ids: Sequence[str]) -> np.ndarray: ...

    def upsert_items(self, ids: Sequence[str], vectors: Any) -> int: ...

    def set_available(self, ids: Sequence[str], flag: bool) -> None: ...


class IncompatibleModel(ValueError):
    """A model the worker cannot serve with its settings."""


@dataclass(frozen=True)
class Fit:
    """What the worker asks of a model: feeds of ``k`` items, re-ranked from ``candidates``
    scored ones (``k`` when MMR is off), sessions of up to ``session_length`` items."""

    k: int
    candidates: int
    session_length: int

    def check(self, runner: Runner) -> None:
        """Raise :class:`IncompatibleModel`, or log how the worker adapts to ``runner``."""
        if runner.k < self.k:
            raise IncompatibleModel(f"model {runner.version} has K={runner.k}, below the feed length k={self.k}")
        if runner.k < self.candidates:
            log.warning(
                "model %s has K=%d: MMR re-ranks %d candidates instead of %d",
                runner.version,
                runner.k,
                runner.k,
                self.candidates,
            )
        if runner.session_length != self.session_length:
            log.warning(
                "model %s reads the newest %d items of a session; the worker keeps %d (session_length)",
                runner.version,
                runner.session_length,
                self.session_length,
            )


class ModelSlot:
    def __init__(self, on_swap: Callable[[Runner], None] | None = None, fit: Fit | None = None) -> None:
        self._current: Runner | None = None
        self._loaded = asyncio.Event()
        self._on_swap = on_swap
        self.fit = fit

    @property
    def current(self) -> Runner | None:
        return self._current

    def swap(self, runner: Runner) -> Runner | None:
        """Install ``runner`` (after :meth:`Fit.check`, which may refuse it); returns the previous one."""
        if self.fit is not None:
            self.fit.check(runner)
        old, self._current = self._current, runner
        self._loaded.set()
        if self._on_swap is not None:
            self._on_swap(runner)
        return old

    async def wait(self) -> Runner:
        await self._loaded.wait()
        assert self._current is not None
        return self._current
