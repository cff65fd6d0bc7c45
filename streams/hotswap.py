"""Model hot-swap: follow ``streamrec.models`` and swap in each newly announced version.

An announcement (``{"version", "sha256", "uri", "parent", "created", "metrics"}``) is only a
pointer: the artifact is resolved and loaded by ``load`` (the export registry + Runner.load,
which verify checksums and warm up) in a thread, off the event loop, so batches keep flowing
on the old model meanwhile. A corrupt or half-written artifact fails to load and is refused:
the old model keeps serving (docs/architecture.md, invariant 3) and the version is not retried until a
newer announcement arrives. The swap itself is between batches (see model_slot).

A canary announcement (:func:`streamrec.contracts.announcement.canary_of`) puts its ``stable``
version in the slot (a worker that starts mid-trial loads it first) and the announced one beside
it, on trial (:class:`Trial`); the next announcement settles the trial: the same version without
``canary`` moves the trial's runner into the slot as it is (rolled out, no reload), any other one
drops it (rolled back, or overtaken) and is applied as usual.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from streamrec.contracts.announcement import Canary, canary_of, parse_announcement
from streamrec.serving.providers import DeviceError
from streamrec.streams.model_slot import ModelSlot, Runner

log = logging.getLogger(__name__)

Loader = Callable[[dict[str, Any]], Runner]


class Trial(Protocol):
    """Where the worker keeps a version on trial (the app: its arm runners and catalogue lock)."""

    def on_trial(self) -> str | None:
        """The version on trial, None without one."""
        ...

    async def begin(self, canary: Canary, runner: Runner) -> None:
        """Bring ``runner`` up to date with the catalogue and serve it to the canary's users."""
        ...

    async def settle(self, version: str) -> bool:
        """End the trial; when ``version`` is the one on trial, make its runner the latest (True)."""
        ...


class HotSwapper:
    def __init__(
        self,
        slot: ModelSlot,
        load: Loader,
        install: Callable[[Runner], Awaitable[None]] | None = None,
        on_failure: Callable[[str, BaseException], None] | None = None,
        on_fatal: Callable[[BaseException], None] | None = None,
        trial: Trial | None = None,
    ) -> None:
        self.slot = slot
        self.trial = trial  # None: a canary announcement serves its version to everyone
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
        while True:
            await self._changed.wait()
            self._changed.clear()
            ann = self.latest
            if ann is None:
                continue
            canary = canary_of(ann) if self.trial is not None else None
            if canary is None:
                if self.trial is not None and await self.trial.settle(ann["version"]):
                    log.info("model %s rolled out from its canary to every user", ann["version"])
                    continue
                await self._swap_in(ann)
            elif await self._swap_in({"version": canary.stable}):
                await self._try(canary)

    async def _swap_in(self, ann: dict[str, Any]) -> bool:
        """``ann``'s version into the slot (unless it is there already). False: it is not there."""
        version = ann["version"]
        current = self.slot.current
        if current is not None and current.version == version:
            return True
        runner = await self._load(ann)
        if runner is None:
            return False
        try:
            if self.install is not None:
                await self.install(runner)
            else:
                self.slot.swap(runner)
        except Exception as exc:
            self._refuse(version, exc)
            return False
        log.info("model %s swapped in (was %s)", version, current and current.version)
        return True

    async def _try(self, canary: Canary) -> None:
        """``canary``'s version on trial beside the stable one in the slot."""
        assert self.trial is not None
        if self.trial.on_trial() == canary.version:
            return
        runner = await self._load({"version": canary.version})
        if runner is None:
            return
        try:
            await self.trial.begin(canary, runner)
        except Exception as exc:
            self._refuse(canary.version, exc)
            return
        log.info("model %s on trial for %g%% of the users beside %s", canary.version, canary.share, canary.stable)

    async def _load(self, ann: dict[str, Any]) -> Runner | None:
        """The version loaded and verified in a thread; None when it is refused (now or before)."""
        version = ann["version"]
        if version in self.refused:
            return None
        try:
            return await asyncio.get_running_loop().run_in_executor(None, self.load, ann)
        except Exception as exc:
            self._refuse(version, exc)
            return None

    def _refuse(self, version: str, exc: BaseException) -> None:
        self.refused.add(version)
        current = self.slot.current
        log.error("model %s refused, keeping %s: %s", version, current and current.version, exc)
        if self.on_failure is not None:
            self.on_failure(version, exc)
        if isinstance(exc, DeviceError) and self.on_fatal is not None:
            self.on_fatal(exc)
