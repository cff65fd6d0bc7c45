"""The compact form of a served feed: what a session (``f``) and a training example (``shown``)
carry of the list the user was shown, instead of its item ids.

Format: base64 of 3 bytes of blake2b of the model version that produced the feed, then 3 bytes
per item in rank order, so a K=20 feed is 84 characters (a JSON list of ids costs id length + 3
characters per item). Two items share a 24-bit digest with probability ~N / 2^24 per item in a
catalogue of N (0.3% at 50k items): a reader that maps digests back to items must drop the
ambiguous ones (:func:`item_digests`).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from hashlib import blake2b

DIGEST_BYTES = 3
CHARS = 4  # base64 characters per digest: 3 bytes encode to 4 characters, so digests never straddle
LIVE_HIT_AT = 10  # live hit@10: the figure the worker's metrics, the canary gate and the README report


def short_digest(text: str) -> bytes:
    return blake2b(text.encode(), digest_size=DIGEST_BYTES).digest()


def feed_digest(version: str, items: Sequence[str]) -> str:
    """The digest of a feed: version digest, then one per item."""
    raw = short_digest(version) + b"".join(short_digest(i) for i in items)
    return base64.b64encode(raw).decode("ascii")


def item_digests(digest: str) -> list[bytes]:
    """The item digests of a feed digest, in rank order (the version digest left out)."""
    raw = base64.b64decode(digest)
    return [raw[pos : pos + DIGEST_BYTES] for pos in range(DIGEST_BYTES, len(raw), DIGEST_BYTES)]


def head(digest: str, n: int) -> str:
    """The digest of the feed's first ``n`` items (a prefix of the string)."""
    return digest[: CHARS * (n + 1)]


def items_in(digest: str) -> int:
    """How many items a feed digest holds."""
    return max(len(digest) // CHARS - 1, 0)


def rank_in(digest: str, item_id: str) -> tuple[bytes, int | None]:
    """The version digest of a feed digest, and the 1-based rank of ``item_id`` in it (None: not
    in the feed)."""
    raw = base64.b64decode(digest)
    want = short_digest(item_id)
    for pos in range(DIGEST_BYTES, len(raw), DIGEST_BYTES):
        if raw[pos : pos + DIGEST_BYTES] == want:
            return raw[:DIGEST_BYTES], pos // DIGEST_BYTES
    return raw[:DIGEST_BYTES], None


def live_hit(rank: int | None) -> bool:
    """Whether a click at ``rank`` (from :func:`rank_in`) counts as a live hit: one rule for the
    worker's metrics and the trainer's canary gate, so the two can never disagree on a figure."""
    return rank is not None and rank <= LIVE_HIT_AT
