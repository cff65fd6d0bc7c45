"""Where a user falls in [0, 1) for a given salt: the one hash behind experiment arms and canary
shares, so that every worker, a restarted one and the trainer's report agree on a user's group.

blake2b, not Python's ``hash`` (salted per process). The salt ends with a NUL byte, so that
("ab", "c") and ("a", "bc") differ; a new salt (an experiment's, or each canary's version)
reshuffles the users.
"""

from __future__ import annotations

from hashlib import blake2b

_SCALE = 2.0**64


def user_digest(salt: str, user_id: str) -> bytes:
    """16 bytes of blake2b(salt, NUL, user id): the first 8 place the user, the last 8 are free
    for a second, independent draw (an experiment's buckets)."""
    return blake2b(salt.encode() + b"\0" + user_id.encode(), digest_size=16).digest()


def user_point(digest: bytes) -> float:
    """The user's place in [0, 1): the first 8 bytes of :func:`user_digest` / 2^64."""
    return int.from_bytes(digest[:8], "big") / _SCALE
