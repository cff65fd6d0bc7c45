"""A canary in the worker: the announcement's fields (which users, which versions), the arm split
that serves the trial's users from its runner, and the hot-swapper's trial life cycle: a canary
announcement puts the stable version in the slot (also on a worker that starts mid-trial) and the
canary beside it; the same version announced for everyone moves the trial's runner into the slot
without a reload; any other announcement ends the trial and is applied as usual."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from unit.streams.test_model_fit import _Runner

from streamrec.contracts.announcement import Canary, as_canary, canary_of, in_canary
from streamrec.experiment import Assignment, parse_arms
from streamrec.streams.arms import ArmRunners
from streamrec.streams.hotswap import HotSwapper
from streamrec.streams.model_slot import ModelSlot, Runner

USERS = [f"u{i}" for i in range(4000)]


def test_canary_fields_and_the_users_it_takes() -> None:
    ann = as_canary({"version": "v2", "sha256": "x"}, "v1", 10)
    assert canary_of(ann) == Canary("v2", "v1", 10.0)
    for bad in ({"stable": "", "share": 10}, {"stable": "v1", "share": 0}, {"stable": "v1", "share": 100}, "v1"):
        assert canary_of({"version": "v2", "canary": bad}) is None  # unreadable: served to everyone
    assert canary_of({"version": "v2"}) is None
    share = sum(in_canary(Canary("v2", "v1", 10), u) for u in USERS) / len(USERS)
    assert 0.08 < share < 0.12
    again = [in_canary(Canary("v2", "v1", 10), u) for u in USERS]
    assert again == [in_canary(Canary("v2", "v1", 10), u) for u in USERS]  # stable per (version, user)
    other = [in_canary(Canary("v3", "v1", 10), u) for u in USERS]
    assert other != again  # each canary tries other users


def test_the_split_serves_the_trial_users_from_its_runner_in_latest_arms_only() -> None:
    latest, trial, pinned = _Runner("v1", 10, 8), _Runner("v2", 10, 8), _Runner("v0", 10, 8)
    canary = Canary("v2", "v1", 50)
    arms = ArmRunners()
    arms.start_canary(canary, trial)
    groups = arms.split(USERS[:200], latest)
    by_runner = {g.runner.version: g.users for g in groups if g.runner is not None}
    assert set(by_runner["v2"]) == {u for u in USERS[:200] if in_canary(canary, u)}
    assert all(g.arm == "" for g in groups)
    assert arms.held() == [trial]
    assert arms.end_canary() is trial and arms.split(USERS[:5], latest)[0].runner is latest

    experiment = ArmRunners(Assignment(parse_arms("online:50:latest,frozen:50:version=v0"), "s"))
    experiment.install("v0", pinned)
    experiment.start_canary(canary, trial)
    served = {(g.arm, g.runner.version) for g in experiment.split(USERS[:400], latest) if g.runner is not None}
    assert served == {("online", "v1"), ("online", "v2"), ("frozen", "v0")}  # a pinned arm keeps its version


class _Worker:
    """The worker's Trial side (app.py) over a slot and arm runners, without a catalogue."""

    def __init__(self, slot: ModelSlot) -> None:
        self.slot, self.arms = slot, ArmRunners()

    def on_trial(self) -> str | None:
        return None if self.arms.canary is None else self.arms.canary[0].version

    async def begin(self, canary: Canary, runner: Runner) -> None:
        self.arms.start_canary(canary, runner)

    async def settle(self, version: str) -> bool:
        runner = self.arms.end_canary()
        if runner is None or runner.version != version:
            return False
        self.slot.swap(runner)
        return True


States = list[tuple[str | None, str | None]]  # per step: (the slot's version, the trial's)


def _run(steps: list[dict[str, Any]], preload: str | None = None) -> tuple[States, list[str]]:
    """Announce each step in turn; after each, (slot version, trial version); and the loads made."""
    loads: list[str] = []

    def load(ann: dict[str, Any]) -> Runner:
        loads.append(ann["version"])
        return _Runner(ann["version"], 10, 8)

    async def main() -> States:
        slot = ModelSlot()
        if preload:
            slot.swap(_Runner(preload, 10, 8))
        worker = _Worker(slot)
        swapper = HotSwapper(slot, load, trial=worker)
        task = asyncio.ensure_future(swapper.run())
        states = []
        for ann in steps:
            swapper.announce(json.dumps(ann).encode())
            for _ in range(50):
                await asyncio.sleep(0.01)
            states.append((slot.current and slot.current.version, worker.on_trial()))
        task.cancel()
        return states

    states = asyncio.run(main())
    return states, loads


def test_a_trial_rolled_out_moves_its_runner_into_the_slot_without_a_reload() -> None:
    states, loads = _run([as_canary({"version": "v2"}, "v1", 10), {"version": "v2"}], preload="v1")
    assert states == [("v1", "v2"), ("v2", None)]
    assert loads == ["v2"]


def test_a_trial_rolled_back_leaves_the_stable_version_serving_everyone() -> None:
    rolled_back = {"version": "v1", "rolled_back": {"version": "v2"}}
    states, loads = _run([as_canary({"version": "v2"}, "v1", 10), rolled_back], preload="v1")
    assert states == [("v1", "v2"), ("v1", None)]
    assert loads == ["v2"]


def test_a_worker_starting_mid_trial_loads_the_stable_version_and_the_canary() -> None:
    states, loads = _run([as_canary({"version": "v2"}, "v1", 10), {"version": "v3"}])
    assert states == [("v1", "v2"), ("v3", None)]  # a newer version (a retrain) overtakes the trial
    assert loads == ["v1", "v2", "v3"]
