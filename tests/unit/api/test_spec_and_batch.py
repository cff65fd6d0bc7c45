"""The committed OpenAPI spec is current; the API imports no torch; a batch is checked event by
event with the worker's reasons."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from streamrec.api.auth import BearerAuth, parse_tokens
from streamrec.api.batch import BadBody, check_events

ROOT = Path(__file__).resolve().parents[3]
GOOD = {"event_id": "e1", "user_id": "u", "item_id": "i", "ts": 10}


def test_committed_spec_is_current() -> None:
    from streamrec.api.spec import render

    assert (ROOT / "docs" / "openapi.json").read_text() == render(), "regenerate: python -m streamrec.api.spec"


def test_every_v1_route_needs_the_bearer_token() -> None:
    spec = json.loads((ROOT / "docs" / "openapi.json").read_text())
    ops = [(path, op) for path, ops in spec["paths"].items() for op in ops.values()]
    assert {p for p, _ in ops} >= {"/v1/feeds/{user_id}", "/v1/events", "/v1/items", "/v1/items/{item_id}"}
    for path, op in ops:
        assert (op.get("security") == [{"bearer": []}]) == path.startswith("/v1/"), path


def test_the_api_loads_no_torch() -> None:
    code = "import sys, streamrec.api.server\nprint(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def test_a_batch_is_checked_event_by_event() -> None:
    bad = dict(GOOD, type="like")
    checked = check_events(json.dumps([GOOD, bad, "x"]).encode(), 1024, 10)
    assert [e.event_id for e in checked.events] == ["e1"]
    assert checked.rejected == [
        {"index": 1, "reason": "type 'like' is not one of view|click|cart|purchase"},
        {"index": 2, "reason": "event must be a JSON object, got str"},
    ]


def test_the_worker_byte_limit_applies() -> None:
    big = dict(GOOD, item_id="i" * 250)
    assert "over the 256-byte limit" in check_events(json.dumps(big).encode(), 256, 10).rejected[0]["reason"]


@pytest.mark.parametrize(("body", "status"), [(b"nope", 400), (b"3", 422), (b"[]", 422), (b"[{}, {}, {}]", 413)])
def test_unusable_bodies(body: bytes, status: int) -> None:
    with pytest.raises(BadBody) as exc:
        check_events(body, 1024, 2)
    assert exc.value.status == status


def test_tokens() -> None:
    assert parse_tokens(" a, ,b ") == ["a", "b"]
    auth = BearerAuth(lambda *_: None, ["a", "b"], ())
    assert auth.allowed(b"Bearer b") and auth.allowed(b"bearer a")
    assert not auth.allowed(b"Bearer c") and not auth.allowed(b"Basic a") and not auth.allowed(b"")


def test_metric_names_are_the_ones_the_dashboard_uses() -> None:
    from prometheus_client import generate_latest

    from streamrec.api.metrics import ApiMetrics

    m = ApiMetrics()
    m.requests.labels("/x", "GET", "200").inc()
    m.latency.labels("/x").observe(0.001)
    m.events.labels("published").inc()
    m.items.labels("publish").inc()
    text = generate_latest(m.registry).decode()
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line.startswith("streamrec_")}
    expected = {"streamrec_api_requests_total", "streamrec_api_events_total", "streamrec_api_items_total"}
    assert expected <= names and "streamrec_api_request_seconds_bucket" in names
