"""The erasure record (streamrec.contracts.erasure) and the training example's ``published``,
added compatibly to format v1 (a batch without it still reads)."""

from __future__ import annotations

import json

import pytest

from streamrec.contracts.erasure import Erasure, erasure_records, parse_erasure
from streamrec.contracts.training_batch import Example, decode_batch, encode_batch


def test_records_round_trip_one_per_distinct_user() -> None:
    records = erasure_records(["a", "b", "a"], 1700000000.12345)
    assert [k for k, _ in records] == ["a", "b"]
    assert parse_erasure(b"a", records[0][1]) == Erasure("a", 1700000000.123)


@pytest.mark.parametrize("users", [[], ["a", ""]])
def test_no_users_or_an_empty_id_is_refused(users: list[str]) -> None:
    with pytest.raises(ValueError):
        erasure_records(users, 1.0)


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        (b"a", None, "tombstone"),
        (b"a", b"{", "malformed JSON"),
        (b"a", b'{"v": 2, "user_id": "a", "requested_at": 1}', "format v1"),
        (b"a", b'{"v": 1, "user_id": "", "requested_at": 1}', "user_id"),
        (b"a", b'{"v": 1, "user_id": "a", "requested_at": true}', "requested_at"),
        (b"b", b'{"v": 1, "user_id": "a", "requested_at": 1}', "is not the erasure's user_id"),
        (None, b'{"v": 1, "user_id": "a", "requested_at": 1}', "is not the erasure's user_id"),
    ],
)
def test_what_is_not_an_erasure_says_why(key: bytes | None, value: bytes | None, reason: str) -> None:
    outcome = parse_erasure(key, value)
    assert isinstance(outcome, str) and reason in outcome


def test_published_is_optional_in_training_batches() -> None:
    ex = Example("u", ["i1"], ["click"], "i2", "click", 5.0, "e1", 7.25)
    assert decode_batch(encode_batch("v1", [ex])).examples == [ex]
    old = json.loads(encode_batch("v1", [ex]))
    del old["examples"][0]["published"]  # what a worker from before erasure sends
    assert decode_batch(json.dumps(old).encode()).examples[0].published is None
