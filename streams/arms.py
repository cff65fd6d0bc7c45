"""What an experiment's arms serve in the worker: which runner scores each user of a batch.

A batch's users are split by arm (:class:`streamrec.experiment.Assignment`, a hash of the user
id, so a user's arm is the same in every worker and after a restart); each group is scored by
its arm's policy:

* ``latest``: the model slot's runner, swapped by the hot-swapper on each promotion;
* ``version=ID``: a runner of that version, loaded from the registry when the worker starts
  (:meth:`ArmRunners.install`) and never swapped; the catalogue follower keeps it up to date
  like the latest one;
* ``popularity``: no runner, the worker's click counts (:mod:`streamrec.streams.popularity`).

A canary (a newly promoted version on trial, :class:`streamrec.contracts.announcement.Canary`)
takes its share of the users that would get the latest version, in every arm whose policy is
``latest`` (without an experiment: of everyone); its feeds carry its version, so the live counters
and the trainer's live gate tell the two apart.

Without an experiment there is one group, every user, on the latest runner, and feeds carry
no arm: today's behaviour.

Each pinned version is its own runner with its own item matrix (50k x 128 float32: 25.6 MB, plus
its int8 codes on the CPU variant). They are not shared: with ``trainer.train_item_ids`` (the
default) every promotion ships a matrix whose trained rows moved, so the versions an experiment
compares hold different rows; sharing would pay only with that setting off, and a shared index
would also take every runner's catalogue upserts and cold-start vectors of its own text tower.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from streamrec.contracts.announcement import Canary, in_canary
from streamrec.experiment import POPULARITY, Arm, Assignment
from streamrec.streams.hotswap import Loader
from streamrec.streams.model_slot import Fit, Runner
from streamrec.streams.popularity import VERSION as POPULARITY_VERSION
from streamrec.streams.popularity import Popularity
from streamrec.streams.postrank import Ranked

if TYPE_CHECKING:
    from streamrec.streams.scoring import Scorer

log = logging.getLogger(__name__)
Sessions = Sequence[tuple[list[str], list[str]]]  # per user of a batch: (items, types)


@dataclass(slots=True)
class Group:
    """The users of one arm in a batch and what scores them (None: the popularity control)."""

    arm: str  # the feeds' ``arm`` ("" without an experiment)
    runner: Runner | None
    users: list[str] = field(default_factory=list)


class ArmRunners:
    def __init__(self, assignment: Assignment | None = None) -> None:
        self.assignment = assignment or Assignment((), "")
        arms = self.assignment.arms
        self.pinned: dict[str, Runner | None] = {a.pinned: None for a in arms if a.pinned is not None}
        self.popularity = Popularity() if any(a.policy == POPULARITY for a in arms) else None
        self.canary: tuple[Canary, Runner] | None = None  # the version on trial and its runner
        self._ready = asyncio.Event()
        if not self.pinned:
            self._ready.set()

    async def load_pinned(
        self,
        load: Loader,
        fit: Fit,
        adopt: Callable[[str, Runner], Awaitable[None]],
        on_fatal: Callable[[Exception], None],
    ) -> None:
        """Load each pinned version (from the registry, verified and warmed up like an announced
        one); ``adopt`` brings it up to date with the catalogue and :meth:`install` it under the catalogue
        lock. One that fails stops the worker (``on_fatal``): its arm would otherwise serve something else."""
        loop = asyncio.get_running_loop()
        for version in self.pinned:
            try:
                runner = await loop.run_in_executor(None, load, {"version": version})
                fit.check(runner)
                await adopt(version, runner)
            except Exception as exc:
                on_fatal(RuntimeError(f"experiment version {version} (experiment.arms) could not be loaded: {exc}"))
                return
            log.info("experiment version %s loaded (pinned)", version)

    def install(self, version: str, runner: Runner) -> None:
        """A pinned version, loaded (verified, warmed up, the catalogue replayed onto it)."""
        self.pinned[version] = runner
        if all(r is not None for r in self.pinned.values()):
            self._ready.set()

    async def ready(self) -> None:
        """Until every pinned version is loaded (a batch must not serve an arm something else)."""
        await self._ready.wait()

    def held(self) -> list[Runner]:
        """The pinned runners loaded so far and the canary's (the catalogue follower updates them too)."""
        held = [r for r in self.pinned.values() if r is not None]
        return held if self.canary is None else [*held, self.canary[1]]

    def start_canary(self, canary: Canary, runner: Runner) -> None:
        """Serve ``runner`` (loaded, caught up with the catalogue) to the canary's share of the users."""
        self.canary = (canary, runner)

    def end_canary(self) -> Runner | None:
        """Stop the trial; returns its runner (a rolled-out canary becomes the latest without a reload)."""
        ended, self.canary = self.canary, None
        return None if ended is None else ended[1]

    def split(self, users: Sequence[str], latest: Runner) -> list[Group]:
        """The batch's users by arm (and canary), in first-seen order; ``latest``: the slot's runner."""
        if not self.assignment.arms and self.canary is None:
            return [Group("", latest, list(users))]
        groups: dict[tuple[str, int], Group] = {}
        for user in users:
            arm = self.assignment.arm_of(user)
            name = "" if arm is None else arm.name
            runner = latest if arm is None else self._runner_of(arm, latest)
            if runner is latest and self.canary is not None and in_canary(self.canary[0], user):
                runner = self.canary[1]
            group = groups.get((name, id(runner)))
            if group is None:
                group = groups[name, id(runner)] = Group(name, runner)
            group.users.append(user)
        return list(groups.values())

    async def rank(
        self,
        scorer: Scorer,
        latest: Runner,
        users: list[str],
        sessions: Sessions,
        pairs: Any,
        k: int,
        exclude_seen: bool,
    ) -> list[tuple[Group, str, list[Ranked | None]]]:
        """Each arm's users ranked by its policy: (group, the version that ranked it, per user of
        the group its list). The batch's events (``pairs``) are counted once, before the first
        group: into the popularity counts, and into the co-occurrence table by the first runner
        call (or on their own when only popularity users are in the batch)."""
        if self.popularity is not None:
            self.popularity.observe(item for _prefix, item in pairs)
        of = dict(zip(users, sessions, strict=True))
        out: list[tuple[Group, str, list[Ranked | None]]] = []
        for group in self.split(users, latest):
            items = [of[u][0] for u in group.users]
            if group.runner is None:  # the popularity control
                assert self.popularity is not None
                out.append((group, POPULARITY_VERSION, list(self.popularity.rank(items, k, exclude_seen))))
                continue
            types = [of[u][1] for u in group.users]
            out.append((group, group.runner.version, await scorer.rank(group.runner, items, types, pairs, group.users)))
            pairs = ()
        if pairs:
            await scorer.observe(latest, pairs)
        return out

    def _runner_of(self, arm: Arm, latest: Runner) -> Runner | None:
        if arm.policy == POPULARITY:
            return None
        if arm.pinned is None:
            return latest
        runner = self.pinned[arm.pinned]
        if runner is None:
            raise RuntimeError(f"arm {arm.name}: version {arm.pinned} is not loaded yet (await ready() first)")
        return runner
