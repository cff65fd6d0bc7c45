"""Training-batch emitter: (session prefix -> next item) examples to ``streamrec.training``.

Delivery guarantee: best-effort, at-most-once per event. Examples are buffered in memory and
published every N examples or T seconds (defaults 256 / 5 s); a crash loses at most that buffer,
and a re-delivered event is deduplicated by the session table before it makes an example, so
the trainer never sees one twice from a replay. The trainer samples a replay buffer of ~20k
examples, so losing <= 256 costs nothing measurable, while holding offsets back for training
would tie feed latency to the training cadence.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Set
from typing import Any

from streamrec.contracts.training_batch import Example, encode_batch

SendFn = Callable[[bytes], Awaitable[Any]]


class TrainingEmitter:
    def __init__(
        self,
        send: SendFn,
        every_n: int,
        every_s: float,
        clock: Callable[[], float] = time.monotonic,
        on_published: Callable[[int], None] | None = None,
    ) -> None:
        self._send = send
        self.every_n = every_n
        self.every_s = every_s
        self._clock = clock
        self._on_published = on_published
        self._buffer: list[Example] = []
        self._model_version = ""
        self._last_flush = clock()

    def add(self, examples: list[Example], model_version: str) -> None:
        self._buffer.extend(examples)
        self._model_version = model_version

    def forget(self, users: Set[str]) -> None:
        """Drop the unpublished examples of erased ``users``."""
        self._buffer = [ex for ex in self._buffer if ex.user_id not in users]

    def due(self) -> bool:
        if not self._buffer:
            return False
        return len(self._buffer) >= self.every_n or self._clock() - self._last_flush >= self.every_s

    async def maybe_flush(self) -> int:
        """Publish full batches of ``every_n`` (and the remainder when T seconds passed);
        returns the number of examples published."""
        sent = 0
        # Taken out of the buffer before the send: :meth:`forget` may filter it meanwhile.
        while len(self._buffer) >= self.every_n:
            batch, self._buffer = self._buffer[: self.every_n], self._buffer[self.every_n :]
            sent += await self._publish(batch)
        if self._buffer and self._clock() - self._last_flush >= self.every_s:
            batch, self._buffer = self._buffer, []
            sent += await self._publish(batch)
        if sent or not self._buffer:
            self._last_flush = self._clock()
        return sent

    async def _publish(self, examples: list[Example]) -> int:
        await self._send(encode_batch(self._model_version, examples))
        if self._on_published is not None:
            self._on_published(len(examples))
        return len(examples)

    @property
    def pending(self) -> int:
        return len(self._buffer)
