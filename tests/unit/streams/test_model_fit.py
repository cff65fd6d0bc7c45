"""Swap-time fit (streams/model_slot.Fit): a model whose K is below the feed length is refused
and the old one keeps serving; a K below the MMR pool or another session length is adapted to,
and logged."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from streamrec.serving.providers import ProviderChoice
from streamrec.streams.hotswap import HotSwapper
from streamrec.streams.model_slot import Fit, IncompatibleModel, ModelSlot, Runner


@dataclass
class _Runner:
    version: str
    k: int
    session_length: int
    item_ids: list[str] = field(default_factory=list)
    takes_bonus: bool = False
    d: int = 2
    cooccurrence_file: Path | None = None
    text_digest: str | None = None
    choice: ProviderChoice = field(
        default_factory=lambda: ProviderChoice(["CPUExecutionProvider"], "cpu", "device=cpu")
    )

    def recommend(
        self, sessions: Any, types: Any, k: int, exclude_seen: bool, bonus: Any = None, explain: bool = False
    ) -> list[Any]:
        return [([], [], []) if explain else ([], []) for _ in sessions]

    def rows_of(self, ids: Any) -> np.ndarray:
        return np.full(len(ids), -1, np.int64)

    def item_vectors(self, ids: Any) -> np.ndarray:
        return np.zeros((len(ids), 2), np.float32)

    def trained(self, ids: Any) -> list[bool]:
        return [False for _ in ids]

    def text_vectors(self, texts: Any) -> np.ndarray | None:
        return None

    def upsert_items(self, ids: Any, vectors: Any) -> int:
        return 0

    def set_available(self, ids: Any, flag: bool) -> None:
        return None


def test_the_fake_is_a_runner() -> None:
    assert isinstance(_Runner("v", 10, 8), Runner)


def test_a_model_with_k_below_the_feed_length_is_refused() -> None:
    slot = ModelSlot(fit=Fit(k=10, candidates=10, session_length=8))
    good = _Runner("v1", 10, 8)
    slot.swap(good)
    with pytest.raises(IncompatibleModel, match="K=5, below the feed length k=10"):
        slot.swap(_Runner("v2", 5, 8))
    assert slot.current is good


def test_a_smaller_pool_or_other_session_length_is_adapted_to_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    slot = ModelSlot(fit=Fit(k=10, candidates=30, session_length=8))
    with caplog.at_level(logging.WARNING, logger="streamrec.streams.model_slot"):
        slot.swap(_Runner("v1", 20, 50))
    assert slot.current is not None and slot.current.version == "v1"
    assert "MMR re-ranks 20 candidates instead of 30" in caplog.text
    assert "reads the newest 50 items of a session; the worker keeps 8" in caplog.text


def test_the_hot_swapper_keeps_the_old_model_when_the_new_one_does_not_fit() -> None:
    async def main() -> tuple[ModelSlot, list[tuple[str, BaseException]]]:
        slot = ModelSlot(fit=Fit(k=10, candidates=10, session_length=8))
        slot.swap(_Runner("v1", 10, 8))
        failures: list[tuple[str, BaseException]] = []
        swapper = HotSwapper(
            slot, lambda ann: _Runner(ann["version"], 5, 8), on_failure=lambda v, e: failures.append((v, e))
        )
        task = asyncio.ensure_future(swapper.run())
        swapper.announce(b'{"version": "v2"}')
        for _ in range(200):
            await asyncio.sleep(0.01)
            if failures:
                break
        task.cancel()
        return slot, failures

    slot, failures = asyncio.run(main())
    assert slot.current is not None and slot.current.version == "v1"
    assert [v for v, _ in failures] == ["v2"] and isinstance(failures[0][1], IncompatibleModel)
