"""``streamrec items``: a catalogue file published with its bad rows reported as FILE:LINE (and
exit 1), an item shown as the topic holds it, a withdrawal shown as a tombstone; and feed reads
(``get_feed``, the API's) dropping an item as soon as it is in the withdrawn set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis

from streamrec.cli import main
from streamrec.contracts.feed import Feed
from streamrec.feed_store import get_feed, set_withdrawn, write_feeds
from streamrec.kafka import read_topic
from streamrec.local.services import EmbeddedServices

pytestmark = pytest.mark.integration


def test_publish_show_withdraw(
    services: EmbeddedServices, unique_prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "items.csv"
    path.write_text(
        "item_id,title,category,available,vector\n"
        "a1,Red shoes,shoes,true,\n"
        ",no id,shoes,true,\n"
        "a2,Blue hat,hats,maybe,\n"
        'a3,Green bag,bags,false,"[0.5, 1]"\n'
    )
    common = ["--broker", services.broker, "--topics-items", f"{unique_prefix}.items", "--redis", services.redis]
    assert main(["items", "publish", str(path), *common]) == 1
    err = capsys.readouterr().err
    assert f"{path}:3: rejected: item must be an object with a non-empty string item_id" in err
    assert f"{path}:4: rejected: available must be true or false, got 'maybe'" in err
    records = read_topic(services.broker, f"{unique_prefix}.items", min_count=2)
    assert [(r.key, json.loads(r.value)) for r in records] == [
        (b"a1", {"item_id": "a1", "title": "Red shoes", "category": "shoes", "available": True}),
        (b"a3", {"item_id": "a3", "title": "Green bag", "category": "bags", "available": False, "vector": [0.5, 1]}),
    ]
    assert main(["items", "show", "a1", *common]) == 0
    assert json.loads(capsys.readouterr().out.split("\n}")[0] + "}")["record"]["title"] == "Red shoes"
    assert main(["items", "withdraw", "a1", *common]) == 0
    capsys.readouterr()
    assert main(["items", "show", "a1", *common]) == 0
    assert '"record": "withdrawn (tombstone)"' in capsys.readouterr().out
    assert main(["items", "show", "nope", *common]) == 1


def test_feed_reads_drop_withdrawn_items(services: EmbeddedServices, unique_prefix: str) -> None:
    client = redis.Redis.from_url(services.redis)
    prefix = f"{unique_prefix}:feed:"
    write_feeds(client, prefix, [Feed("u", ["a", "b", "c"], [3.0, 2.0, 1.0], "v1", 0.0, "e", 0, 1)], 60)
    assert get_feed(client, "u", prefix).items == ["a", "b", "c"]
    set_withdrawn(client, prefix, {"b": False, "c": True})
    feed = get_feed(client, "u", prefix)
    assert (feed.items, feed.scores) == (["a", "c"], [3.0, 1.0])
    set_withdrawn(client, prefix, {"b": True})  # available again
    assert get_feed(client, "u", prefix).items == ["a", "b", "c"]
    assert get_feed(client, "nobody", prefix) is None
