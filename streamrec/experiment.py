"""An experiment: arms with a traffic share and a policy each, and which arm a user is in.

The arms are one setting (``experiment.arms``), a comma-separated list of ``NAME:SHARE:POLICY``,
so that every field of the experiment stays one ``STREAMREC_*`` variable and one flag (and
reaches the demo's child processes through the same variables):

    online:45:latest,frozen:45:version=v0001,control:10:popularity

``SHARE`` is a percentage (the shares add up to 100); ``POLICY`` is ``latest`` (the latest
promoted version, what every user gets without an experiment), ``version=ID`` (a pinned
version from the registry) or ``popularity`` (the most clicked items, the control).

A user's arm is a stable hash of (salt, user id): blake2b, not Python's ``hash`` (salted per
process), so every worker, a restarted one and the report agree, and a new salt reshuffles users
for the next experiment. The first 64 bits of the digest, as a fraction of 2^64, fall into the arm
whose cumulative share covers them; the next 64 bits pick the user's bucket (one of
:data:`BUCKETS`, independent of the arm), by which the live counters are also kept, so that the
report can measure how much hit rates vary between groups of users rather than between events.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from streamrec.contracts.user_hash import user_digest, user_point

LATEST = "latest"
POPULARITY = "popularity"
PIN = "version="
NO_ARM = "all"  # the arm label without an experiment (one arm, every user, the latest version)
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SHARE_TOTAL = 100.0
# Users per arm are split into this many buckets for the report's user-level interval: 20 gives it
# 19 degrees of freedom (t = 2.09, 7% wider than z) at 2 x 20 series per arm in Prometheus.
BUCKETS = 20


@dataclass(frozen=True, slots=True)
class Arm:
    """One arm: its name (the metrics label and the feed's ``arm``), its share of the users in
    percent, and its policy (``latest``, ``popularity`` or a pinned version id in :attr:`pinned`)."""

    name: str
    share: float
    policy: str

    @property
    def pinned(self) -> str | None:
        """The pinned version id, None for ``latest`` and ``popularity``."""
        return self.policy.removeprefix(PIN) if self.policy.startswith(PIN) else None


def parse_arms(spec: str) -> tuple[Arm, ...]:
    """The arms of ``spec`` (empty: none, no experiment). Raises ValueError with one line naming
    the entry at fault."""
    if not spec.strip():
        return ()
    arms: list[Arm] = []
    for entry in (e.strip() for e in spec.split(",")):
        parts = entry.split(":", 2)
        if len(parts) != 3:
            raise ValueError(f"arm {entry!r} is not NAME:SHARE:POLICY (e.g. online:50:latest)")
        name, share_text, policy = (p.strip() for p in parts)
        if not _NAME.fullmatch(name):
            raise ValueError(f"arm name {name!r}: use 1-64 letters, digits, '_' or '-'")
        if any(a.name == name for a in arms):
            raise ValueError(f"arm {name!r} is named twice")
        try:
            share = float(share_text)
        except ValueError:
            raise ValueError(f"arm {name!r}: share {share_text!r} is not a number (a percentage)") from None
        if not 0.0 < share <= _SHARE_TOTAL:
            raise ValueError(f"arm {name!r}: share {share_text} must be above 0 and at most 100 (a percentage)")
        if policy not in (LATEST, POPULARITY) and not (policy.startswith(PIN) and policy != PIN):
            raise ValueError(f"arm {name!r}: policy {policy!r} is not latest, popularity or version=ID")
        arms.append(Arm(name, share, policy))
    total = sum(a.share for a in arms)
    if abs(total - _SHARE_TOTAL) > 1e-6:
        raise ValueError(f"the arms' shares add up to {total:g}, not 100")
    return tuple(arms)


def control_arm(arms: tuple[Arm, ...], named: str = "") -> str:
    """The arm the others are compared with: ``named``, else the popularity arm, else the first.
    Raises ValueError for a ``named`` arm that is not among ``arms``."""
    if named:
        if arms and named not in {a.name for a in arms}:
            raise ValueError(f"control arm {named!r} is not one of the arms ({', '.join(a.name for a in arms)})")
        return named
    if not arms:
        return NO_ARM
    return next((a.name for a in arms if a.policy == POPULARITY), arms[0].name)


class Assignment:
    """Which arm a user is in: a pure function of (salt, user id) and the arms' shares."""

    def __init__(self, arms: tuple[Arm, ...], salt: str) -> None:
        self.arms = arms
        self._salt = salt
        bounds, total = [], 0.0
        for arm in arms:
            total += arm.share
            bounds.append(total / _SHARE_TOTAL)
        self._bounds = bounds

    def _digest(self, user_id: str) -> bytes:
        return user_digest(self._salt, user_id)

    def point(self, user_id: str) -> float:
        """The user's place in [0, 1): the first 8 bytes of blake2b(salt, user id) / 2^64."""
        return user_point(self._digest(user_id))

    def bucket(self, user_id: str) -> int:
        """The user's bucket in [0, BUCKETS): the digest's last 8 bytes, independent of the arm."""
        return int.from_bytes(self._digest(user_id)[8:], "big") % BUCKETS

    def arm_of(self, user_id: str) -> Arm | None:
        """The user's arm, None without an experiment."""
        if not self.arms:
            return None
        x = self.point(user_id)
        for arm, bound in zip(self.arms, self._bounds, strict=True):
            if x < bound:
                return arm
        return self.arms[-1]  # x within rounding of 1.0

    def label_of(self, user_id: str) -> str:
        """The user's arm name, :data:`NO_ARM` without an experiment (the metrics label)."""
        arm = self.arm_of(user_id)
        return NO_ARM if arm is None else arm.name
