"""The JSON Schemas of docs/schemas/ are current, and the event schema agrees with the worker's
validator on generated events, good and bad (hypothesis).

Generated values stay within the forms the contract documents (ids, the four types, ts as a
number, a decimal string or ISO-8601 with a timezone); what a schema cannot express (the byte
limit, "at most a day in the future") is kept out of the generated events."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import hypothesis
import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamrec.contracts.events import EVENT_TYPES, MAX_ID_CHARS, Invalid, validate_obj
from streamrec.contracts.schemas import EVENT, FEED, ITEM, SCHEMAS, render

DOCS = Path(__file__).resolve().parents[3] / "docs" / "schemas"
NOW = 1_800_000_000.0
VALIDATOR = jsonschema.Draft202012Validator(EVENT)


def test_committed_schemas_are_current() -> None:
    for name, schema in SCHEMAS.items():
        assert (DOCS / name).read_text() == render(schema), "regenerate: python -m streamrec.contracts.schemas"


def test_schemas_are_valid_json_schemas() -> None:
    for schema in (EVENT, FEED, ITEM):
        jsonschema.Draft202012Validator.check_schema(schema)


def test_the_feed_schema_matches_a_packed_feed() -> None:
    from streamrec.contracts.feed import Feed

    packed = json.loads(Feed("u", ["a"], [0.5], "v1", NOW, "e1", 0, 3).pack())
    jsonschema.validate(packed, FEED)
    jsonschema.validate(json.loads(Feed("u", ["a", "b"], [0.5, 0.4], "v1", NOW, "e1", 0, 3, ["s", None]).pack()), FEED)


def test_feeds_without_because_or_with_fields_unknown_here_still_unpack() -> None:
    from streamrec.contracts.feed import Feed

    old = {"user_id": "u", "items": ["a"], "scores": [0.5], "model_version": "v1", "generated_at": NOW}
    old |= {"event_id": "e1", "partition": 0, "offset": 3}
    assert Feed.unpack(json.dumps(old)).because == []  # written before `because`
    newer = Feed.unpack(json.dumps(old | {"because": ["s"], "from_the_future": 1}))
    assert newer.because == ["s"] and newer.items == ["a"]


good_ids = st.text(min_size=1, max_size=MAX_ID_CHARS).filter(lambda s: s.strip() != "")
bad_ids = st.one_of(
    st.just(""),
    st.sampled_from([" ", "\t\n", "\u00a0"]),
    st.text(min_size=MAX_ID_CHARS + 1, max_size=MAX_ID_CHARS + 5).filter(lambda s: s.strip() != ""),
    st.integers(),
    st.none(),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
)
past = st.floats(min_value=0, max_value=NOW, allow_nan=False)
iso = st.tuples(
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2026, 1, 1)),
    st.sampled_from(["seconds", "milliseconds", "minutes"]),
    st.sampled_from(["Z", "+02:00", "-05:30", "+00:00"]),
).map(lambda t: t[0].isoformat(timespec=t[1]) + t[2])
good_ts = st.one_of(past, st.integers(min_value=0, max_value=int(NOW)), past.map(repr), iso)
bad_ts = st.one_of(
    st.floats(max_value=-0.001, allow_nan=False, allow_infinity=False),
    st.sampled_from(["nan", "inf", "-1"]),
    st.sampled_from(["yesterday", "2026-01-01T00:00:00", "12:00", "", "1,5", "0x10"]),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
)
good_type = st.sampled_from(EVENT_TYPES)
bad_type = st.one_of(st.sampled_from(["like", "CLICK", "", "buy"]), st.integers(), st.none())


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    """An event, good or with one or more faults: a bad field, a missing or an unknown one."""

    def faulty() -> bool:  # each field is bad one time in six: about a third of the events are valid
        return draw(st.integers(0, 5)) == 0

    obj: dict[str, Any] = {name: draw(bad_ids if faulty() else good_ids) for name in ("event_id", "user_id", "item_id")}
    obj["ts"] = draw(bad_ts if faulty() else good_ts)
    if draw(st.booleans()):
        obj["type"] = draw(bad_type if faulty() else good_type)
    if draw(st.integers(0, 9)) == 0:
        del obj[draw(st.sampled_from(["event_id", "user_id", "item_id", "ts"]))]
    if draw(st.integers(0, 9)) == 0:
        obj[draw(st.sampled_from(["extra", "price", "Type"]))] = 1
    return obj


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events())
def test_schema_and_validator_agree(event: dict[str, Any]) -> None:
    by_validator = not isinstance(validate_obj(event, now=NOW), Invalid)
    by_schema = VALIDATOR.is_valid(event)
    hypothesis.event("valid" if by_schema else "invalid")
    assert by_validator == by_schema, (event, validate_obj(event, now=NOW))


@settings(max_examples=100, deadline=None)
@given(st.one_of(st.integers(), st.text(), st.lists(st.integers()), st.none()))
def test_non_objects_are_refused_by_both(value: Any) -> None:
    assert isinstance(validate_obj(value, now=NOW), Invalid) and not VALIDATOR.is_valid(value)
