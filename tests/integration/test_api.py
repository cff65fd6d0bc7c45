"""``streamrec api`` against the real broker and redis-server, served by uvicorn on a loopback
port: feeds through the feed store, events with the worker's validator (all or nothing unless
?partial=true), catalogue publish and withdraw, model versions, auth before the body is read,
user erasure, health and metrics."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from pathlib import Path

import pytest
from support.api_harness import TOKEN
from support.worker_harness import WorkerEnv, build_artifact

from streamrec.api.app import create_app
from streamrec.api.backend import Backend
from streamrec.config import Settings
from streamrec.contracts.announcement import send_announcement
from streamrec.contracts.erasure import Erasure, parse_erasure
from streamrec.contracts.feed import Feed
from streamrec.contracts.items import parse_item
from streamrec.feed_store import redis_client, write_feeds
from streamrec.kafka import make_producer, read_topic
from streamrec.net import free_port

pytestmark = pytest.mark.integration
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _event(i: int, user: str = "u1") -> dict:
    return {"event_id": f"e{i}", "user_id": user, "item_id": f"i{i}", "type": "click", "ts": 1_700_000_000 + i}


def test_feed_is_read_through_the_feed_store(api: tuple) -> None:
    client, wenv, _ = api
    feed = Feed("user/with:odd*chars", ["a", "b"], [0.9, 0.5], "v7", time.time(), "e9", 1, 42)
    write_feeds(redis_client(wenv.redis), wenv.feed_prefix, [feed], 60)
    r = client.get("/v1/feeds/user%2Fwith:odd*chars", headers=AUTH)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["items"] == [
        {"item_id": "a", "score": 0.9, "because": None},
        {"item_id": "b", "score": 0.5, "because": None},
    ]
    assert body["model_version"] == "v7" and body["event_id"] == "e9" and body["age_s"] >= 0
    assert client.get("/v1/feeds/nobody", headers=AUTH).status_code == 404
    explained = Feed("u-why", ["a", "b"], [0.9, 0.5], "v8", time.time(), "e10", 1, 43, ["s1", "s2"])
    write_feeds(redis_client(wenv.redis), wenv.feed_prefix, [explained], 60)
    items = client.get("/v1/feeds/u-why", headers=AUTH).json()["items"]
    assert [i["because"] for i in items] == ["s1", "s2"]


def test_the_feed_command_says_why(api: tuple, capsys: pytest.CaptureFixture[str]) -> None:
    from streamrec.cli import main

    _, wenv, _ = api
    feeds = [
        Feed("u-cmd", ["a", "b"], [0.9, 0.5], "v8", time.time(), "e1", 0, 1, ["seen-1", None]),
        Feed("u-old", ["c"], [0.3], "v7", time.time(), "e2", 0, 2),  # written before `because`
    ]
    write_feeds(redis_client(wenv.redis), wenv.feed_prefix, feeds, 60)
    argv = ["--redis", wenv.redis, "--feed-prefix", wenv.feed_prefix]
    assert main(["feed", "u-cmd", *argv]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].endswith("because you viewed seen-1") and "because" not in lines[2]
    assert main(["feed", "u-old", *argv]) == 0
    assert "c" in capsys.readouterr().out


def test_events_all_or_nothing_unless_partial(api: tuple) -> None:
    client, wenv, _ = api
    bad = {"event_id": "x", "user_id": "u2", "item_id": "i", "ts": "yesterday"}
    r = client.post("/v1/events", json=[_event(1), bad, _event(2)], headers=AUTH)
    assert r.status_code == 422, r.text
    assert r.json()["rejected"] == [{"index": 1, "reason": "ts 'yesterday' is neither epoch seconds nor ISO-8601"}]
    r = client.post("/v1/events", json=_event(3), headers=AUTH)  # one event, not a list
    assert r.status_code == 202 and r.json() == {"published": 1, "rejected": []}
    r = client.post("/v1/events?partial=true", json=[_event(4), bad], headers=AUTH)
    assert r.status_code == 202 and r.json()["published"] == 1 and r.json()["rejected"][0]["index"] == 1
    # one user, so one partition, in order: had the refused batch gone out, e1 would come first
    records = read_topic(wenv.broker, wenv.topics["events"], min_count=2, timeout_s=10)
    assert [json.loads(rec.value)["event_id"] for rec in records] == ["e3", "e4"]  # nothing of the refused batch
    assert all(rec.key == b"u1" for rec in records)


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"{not json", 400), (b'"a string"', 422), (b"[]", 422), (json.dumps([_event(i) for i in range(1001)]), 413)],
)
def test_unusable_bodies(api: tuple, body: bytes | str, status: int) -> None:
    client, _, _ = api
    r = client.post("/v1/events", content=body, headers=AUTH | {"content-type": "application/json"})
    assert r.status_code == status and "detail" in r.json()


def test_items_publish_and_withdraw(api: tuple) -> None:
    client, wenv, _ = api
    r = client.post("/v1/items", json={"item_id": "new-1", "title": "A title", "category": "c"}, headers=AUTH)
    assert r.status_code == 202 and r.json() == {"item_id": "new-1", "published": True, "available": True}
    assert client.post("/v1/items", json={"title": "no id"}, headers=AUTH).status_code == 422
    assert client.delete("/v1/items/new-1", headers=AUTH).status_code == 202
    records = read_topic(wenv.broker, wenv.topics["items"], min_count=2, timeout_s=10)
    updates = [parse_item(rec.key, rec.value) for rec in records]
    assert [(u.item_id, u.available, u.text) for u in updates] == [
        ("new-1", True, "A title. c"),
        ("new-1", False, None),
    ]
    assert records[1].value is None  # a real tombstone, which compaction removes


def test_user_erasure_publishes_an_erasure_with_the_same_auth(api: tuple) -> None:
    client, wenv, _ = api
    assert client.delete("/v1/users/u-9").status_code == 401
    r = client.delete("/v1/users/u-9", headers=AUTH)
    assert r.status_code == 202 and r.json()["user_id"] == "u-9" and r.json()["published"] is True
    (record,) = read_topic(wenv.broker, wenv.topics["erasures"], min_count=1, timeout_s=10)
    assert parse_erasure(record.key, record.value) == Erasure("u-9", r.json()["requested_at"])


def test_models_lists_versions_and_the_served_one(api: tuple) -> None:
    client, wenv, _ = api
    ref = build_artifact(wenv.registry_dir)
    producer = make_producer(wenv.broker)
    send_announcement(producer, wenv.topics["models"], ref.announcement())
    producer.close()
    deadline = time.monotonic() + 20
    while (body := client.get("/v1/models", headers=AUTH).json())["served"] is None:
        assert time.monotonic() < deadline, body
        time.sleep(0.2)
    assert body["served"] == ref.version
    assert [(v["version"], v["served"], v["sha256"]) for v in body["versions"]] == [(ref.version, True, ref.sha256)]


def test_no_or_wrong_token_is_401_before_the_body_is_read(api: tuple) -> None:
    client, _, settings = api
    assert client.get("/v1/feeds/u").status_code == 401
    assert client.get("/v1/feeds/u", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/v1/models", headers={"Authorization": "Bearer old-token"}).status_code == 200  # rotation
    # Announce a 10 MB body and send none of it: the answer must come without the body.
    with socket.create_connection(("127.0.0.1", settings.api.port), timeout=5) as sock:
        sock.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
        sock.sendall(b"Content-Length: 10000000\r\nAuthorization: Bearer nope\r\n\r\n")
        head = sock.recv(4096).decode()
    assert head.startswith("HTTP/1.1 401"), head


def test_health_readiness_metrics_and_spec_need_no_token(api: tuple) -> None:
    client, _, _ = api
    assert client.get("/healthz").json() == {"ok": True}
    assert client.get("/readyz").json() == {"ready": True, "reasons": []}
    client.get("/v1/feeds/x", headers=AUTH)
    metrics = client.get("/metrics").text
    assert 'streamrec_api_requests_total{method="GET",route="/v1/feeds/{user_id:path}",status="404"} 1.0' in metrics
    assert client.get("/openapi.json").json()["paths"]["/v1/events"]["post"]["security"] == [{"bearer": []}]


def test_redis_down_is_503_with_one_line(wenv: WorkerEnv, tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    dead = f"redis://127.0.0.1:{free_port()}"
    settings = Settings(broker=wenv.broker, redis=dead, data_dir=tmp_path, api={"allow_anonymous": True})
    with contextlib.closing(Backend(settings)) as backend:
        client = TestClient(create_app(backend))
        r = client.get("/v1/feeds/u")
        assert r.status_code == 503 and "does not answer" in r.json()["detail"]
        assert client.get("/readyz").status_code == 503
