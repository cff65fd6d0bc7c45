"""The web console in a real headless Chromium (Debian's, driven by Playwright) against the API
over the real broker and Redis: it loads, takes the token, shows the model versions, a user's
feed, an item search and the newest dead letter, and is saved as a screenshot."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest
from support.api_harness import TOKEN
from support.worker_harness import WorkerEnv, build_artifact

from streamrec.contracts.announcement import send_announcement
from streamrec.contracts.dead_letters import dead_letter
from streamrec.contracts.feed import Feed
from streamrec.feed_store import redis_client, write_feeds
from streamrec.kafka import make_producer

pytestmark = pytest.mark.integration
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _seed(client: object, wenv: WorkerEnv) -> str:
    ref = build_artifact(wenv.registry_dir)
    producer = make_producer(wenv.broker)
    send_announcement(producer, wenv.topics["models"], ref.announcement())
    producer.send(wenv.topics["dlq"], value=dead_letter(b"{not json", "malformed JSON: x at char 1", {"file": "f"}))
    producer.flush()
    producer.close()
    feed = Feed("u-console", ["item-a", "item-b", "item-c"], [0.9, 0.7, 0.4], ref.version, time.time(), "e1", 0, 1)
    write_feeds(redis_client(wenv.redis), wenv.feed_prefix, [feed], 600)
    r = client.post("/v1/items", json={"item_id": "new-lamp", "title": "A desk lamp"}, headers=AUTH)  # type: ignore[attr-defined]
    assert r.status_code == 202
    events = [{"event_id": f"e{i}", "user_id": "u-console", "item_id": "item-a", "ts": 1e9 + i} for i in range(3)]
    assert client.post("/v1/events", json=events, headers=AUTH).status_code == 202  # type: ignore[attr-defined]
    return ref.version


def test_console_shows_feed_models_items_and_dead_letters(api: tuple, tmp_path: Path) -> None:
    assert CHROMIUM, "the console test needs Debian's chromium (make setup installs it)"
    from playwright.sync_api import expect, sync_playwright

    client, wenv, settings = api
    version = _seed(client, wenv)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"http://127.0.0.1:{settings.api.port}/")
        page.fill("#token", TOKEN)
        page.dispatch_event("#token", "change")
        page.fill("#user-id", "u-console")
        page.click("#feed-form button")
        expect(page.locator("#feed tbody tr")).to_have_count(3, timeout=15_000)
        expect(page.locator("#feed tbody tr").first).to_contain_text("item-a")
        expect(page.locator("#models tbody")).to_contain_text(version, timeout=20_000)
        expect(page.locator("#models tbody")).to_contain_text("served", timeout=20_000)
        expect(page.locator("#dead-letters tbody")).to_contain_text("malformed JSON", timeout=20_000)
        page.fill("#item-q", "lamp")
        page.click("#item-form button")
        expect(page.locator("#items tbody")).to_contain_text("new-lamp", timeout=20_000)
        # no worker runs here, so the group is behind by all the posted events. Offsets, not
        # counts: the embedded broker gives a batch of records one offset.
        expect(page.locator("#consumer-lag")).to_have_text(re.compile(r"^[1-9]\d*$"), timeout=10_000)
        expect(page.locator("#events-total")).to_have_text(page.locator("#consumer-lag").inner_text())
        shot = tmp_path / "console.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert shot.stat().st_size > 10_000
    if os.environ.get("STREAMREC_CONSOLE_SCREENSHOT"):  # how docs/console.png was made
        shutil.copy(shot, os.environ["STREAMREC_CONSOLE_SCREENSHOT"])


def test_the_page_needs_no_token_but_its_data_does(api: tuple) -> None:
    client, _, _ = api
    assert client.get("/", follow_redirects=True).status_code == 200
    assert "streamrec console" in client.get("/console/").text
    for path in ("/v1/stats", "/v1/items?q=x", "/v1/dead-letters"):
        assert client.get(path).status_code == 401, path
