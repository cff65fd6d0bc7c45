"""The event validator: valid events pass, anything else yields a precise reason and never
raises (hypothesis throws arbitrary bytes and JSON at it)."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamrec.contracts.events import Event, Invalid, validate_bytes, validate_obj

NOW = 1_700_000_000.0
GOOD = {"event_id": "e1", "user_id": "u1", "item_id": "i1", "type": "view", "ts": 1_699_999_000}


def _check(obj: object) -> Event | Invalid:
    return validate_bytes(json.dumps(obj).encode(), 65536, now=NOW)


def test_valid_event_and_defaults() -> None:
    ev = _check(GOOD)
    assert ev == Event("e1", "u1", "i1", "view", 1_699_999_000.0)
    no_type = {k: v for k, v in GOOD.items() if k != "type"}
    assert _check(no_type).type == "click"


def test_iso_timestamp() -> None:
    assert _check({**GOOD, "ts": "2023-11-14T22:13:20Z"}).ts == 1_700_000_000.0
    assert "no timezone" in _check({**GOOD, "ts": "2023-11-14T22:13:20"}).reason


def test_precise_reasons() -> None:
    cases = {
        "missing field(s): item_id": {k: v for k, v in GOOD.items() if k != "item_id"},
        "user_id must be a string, got int": {**GOOD, "user_id": 7},
        "unknown field(s): price": {**GOOD, "price": 3},
        "type 'teleport' is not one of view|click|cart|purchase": {**GOOD, "type": "teleport"},
        "event_id is empty": {**GOOD, "event_id": " "},
        "event must be a JSON object, got list": [GOOD],
    }
    for reason, obj in cases.items():
        assert _check(obj) == Invalid(reason), reason


def test_bytes_level_reasons() -> None:
    assert validate_bytes(b"\xff\xfe", 100).reason == "not valid UTF-8 at byte 0"
    assert validate_bytes(b"{not json", 100).reason.startswith("malformed JSON")
    assert validate_bytes(b"x" * 101, 100).reason == "event is 101 bytes, over the 100-byte limit"
    assert validate_bytes(None, 100).reason == "empty message (tombstone)"
    deep = b"[" * 100_000 + b"]" * 100_000
    assert isinstance(validate_bytes(deep, 10**6), Invalid)


def test_time_rules() -> None:
    assert "milliseconds?" in _check({**GOOD, "ts": NOW * 1000}).reason
    assert "more than a day in the future" in _check({**GOOD, "ts": NOW + 2 * 86400}).reason
    assert "after 1970" in _check({**GOOD, "ts": -5}).reason
    assert "boolean" in _check({**GOOD, "ts": True}).reason
    assert isinstance(_check({**GOOD, "ts": 874_965_758}), Event)  # 1997 (MovieLens) is fine


@settings(deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    assert isinstance(validate_bytes(raw, 256, now=NOW), Event | Invalid)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.fixed_dictionaries({}, optional={k: json_values for k in ("event_id", "user_id", "item_id", "type", "ts")}))
def test_arbitrary_field_values_never_raise(obj: dict[str, object]) -> None:
    result = validate_obj(obj, now=NOW)
    if isinstance(result, Invalid):
        assert result.reason and "\n" not in result.reason
    else:
        assert result.user_id.strip() and result.type in ("view", "click", "cart", "purchase")


def test_dead_letter_of_a_huge_event_stays_small_and_says_so() -> None:
    import hashlib

    from streamrec.contracts.dead_letters import MAX_ORIGINAL_BYTES, dead_letter, original_bytes

    small = dead_letter(b'{"x": 1}', "why", {"file": "f", "line": 3}, key=b"u1")
    assert original_bytes(json.loads(small)) == b'{"x": 1}' and "truncated" not in json.loads(small)
    huge = b"x" * (10 * 1024 * 1024)
    record = json.loads(dead_letter(huge, "event is too big", {"topic": "t", "partition": 0, "offset": 9}))
    assert len(json.dumps(record)) < 1024 * 1024  # fits the producer's default request limit
    assert record["truncated"] and record["original_bytes"] == len(huge)
    assert record["original_sha256"] == hashlib.sha256(huge).hexdigest()
    assert original_bytes(record) == huge[:MAX_ORIGINAL_BYTES]
