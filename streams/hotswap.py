"""Model hot-swap: follow ``streamrec.models`` and swap in each newly announced version.

An announcement (``{"version", "sha256", "uri", "parent", "created", "metrics"}``) is only a
pointer: the artifact is resolved and loaded by ``load`` (the export registry + Runner.load,
which verify checksums and warm up) in a thread, off the event loop, so batches keep flowing
on the old model meanwhile. A corrupt or half-written artifact fails to load and is refused:
the old model keeps serving (docs/architecture.md, invariant 3) and the version is not retried until a
newer announcement arrives. The swap itself is between batches (see model_slot).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from streamrec.contracts.announcement import parse_announcement
from streamrec.serving.providers import DeviceError
from streamrec.streams.model_slot import ModelSlot, Runner

log = logging.getLogger(__name__)

Loader = Callable[[dict[str, Any]], Runner]


class HotSwapper:
    def __init__(
        self,
        slot: ModelSlot,
        load: Loader,
        install: Callable[[Runner], Awaitable[None]] | None = None,
        on_failure: Callable[[str, BaseException], None] | None = None,
        on_fatal: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.slot = slot
        self.load = load
        # Brings the new runner up to date (catalogue overlay) and swaps it in; default: swap.
        self.install = install
        self.on_failure = on_failure
        # device=cuda and a session that came up without CUDA: no model would load here, so stop
        self.on_fatal = on_fatal
        self.latest: dict[str, Any] | None = None
        self.refused: set[str] = set()
        self._changed = asyncio.Event()

    def announce(self, value: bytes | None) -> None:
        """Note an announcement (the last one read wins: the topic is in publication order)."""
        ann = parse_announcement(value)
        if ann is None:
            log.warning("ignoring a malformed model announcement: %r", (value or b"")[:200])
            return
        self.latest = ann
        self._changed.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._changed.wait()
            self._changed.clear()
            ann = self.latest
            if ann is None:
                continue
            version = ann["version"]
            current = self.slot.current
            if (current is not None and current.version == version) or version in self.refused:
                continue
            try:
                runner = await loop.run_in_executor(None, self.load, ann)
                if self.install is not None:
                    await self.install(runner)
                else:
                    self.slot.swap(runner)
            except Exception as exc:
                self.refused.add(version)
                log.error("model %s refused, keeping %s: %s", version, current and current.version, exc)
                if self.on_failure is not None:
                    self.on_failure(version, exc)
                if isinstance(exc, DeviceError) and self.on_fatal is not None:
                    self.on_fatal(exc)
                continue
            log.info("model %s swapped in (was %s)", version, current and current.version)
