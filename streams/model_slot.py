"""The runner the worker scores with, swapped atomically between micro-batches.

The protocol below is the narrow seam to ``streamrec.serving.runner.Runner``
(docs/contracts.md): the pipeline only ever calls ``recommend`` (one call per micro-batch) and
reads ``version``; the catalogue follower calls ``upsert_items``/``set_available``.

Swaps are atomic for free: a batch reads :attr:`ModelSlot.current` once before scoring, and
everything runs on one event loop, so a batch never mixes two models. The old runner is
dropped, not closed, because a batch may still hold it in the scoring thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Runner(Protocol):
    version: str

    def recommend(
        self, sessions: list[list[str]], types: list[list[str]], k: int, exclude_seen: bool
    ) -> list[tuple[list[str], list[float]]]: ...

    def upsert_items(self, ids: Sequence[str], vectors: Any) -> None: ...

    def set_available(self, ids: Sequence[str], flag: bool) -> None: ...


class ModelSlot:
    def __init__(self, on_swap: Callable[[Runner], None] | None = None) -> None:
        self._current: Runner | None = None
        self._loaded = asyncio.Event()
        self._on_swap = on_swap

    @property
    def current(self) -> Runner | None:
        return self._current

    def swap(self, runner: Runner) -> Runner | None:
        """Install ``runner``; returns the previous one."""
        old, self._current = self._current, runner
        self._loaded.set()
        if self._on_swap is not None:
            self._on_swap(runner)
        return old

    async def wait(self) -> Runner:
        await self._loaded.wait()
        assert self._current is not None
        return self._current
