"""Readers: every format yields the same contract rows; load_events orders by time, stably."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from streamrec.datasets import ERROR_KEY, iter_event_rows, load_events, load_items
from streamrec.errors import UserError


def test_csv_rows_keep_line_numbers_and_strings(tmp_path: Path) -> None:
    p = tmp_path / "e.csv"
    p.write_text("event_id,user_id,item_id,type,ts\ne1,u1,i1,click,100\n\ne2,u1,i2,view,101\n")
    rows = list(iter_event_rows(p))
    assert [n for n, _ in rows] == [2, 4]
    assert rows[0][1] == {"event_id": "e1", "user_id": "u1", "item_id": "i1", "type": "click", "ts": "100"}


def test_recbole_inter_headers_and_alias(tmp_path: Path) -> None:
    p = tmp_path / "x.inter"
    p.write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t10\t3\t50\n2\t11\t4\n")
    rows = list(iter_event_rows(p))
    assert rows[0] == (2, {"user_id": "1", "item_id": "10", "rating": "3", "ts": "50"})
    assert ERROR_KEY in rows[1][1] and rows[1][0] == 3


def test_jsonl_bad_line_is_reported_not_dropped(tmp_path: Path) -> None:
    p = tmp_path / "e.jsonl"
    p.write_text(json.dumps({"user_id": "u", "item_id": "i", "ts": 5}) + "\n{oops\n")
    rows = list(iter_event_rows(p))
    assert rows[0] == (1, {"user_id": "u", "item_id": "i", "ts": "5"})
    assert rows[1][0] == 2 and rows[1][1][ERROR_KEY].startswith("malformed JSON")


def test_parquet_and_ratings_dat(tmp_path: Path) -> None:
    p = tmp_path / "e.parquet"
    pq.write_table(pa.table({"user_id": ["u"], "item_id": ["i"], "ts": [7.0]}), p)
    assert list(iter_event_rows(p)) == [(1, {"user_id": "u", "item_id": "i", "ts": "7.0"})]
    d = tmp_path / "ratings.dat"
    d.write_text("1::20::5::978300760\n")
    assert next(iter(iter_event_rows(d)))[1]["ts"] == "978300760"


def test_load_events_time_order_ties_in_file_order(tmp_path: Path) -> None:
    p = tmp_path / "e.csv"
    p.write_text("user_id,item_id,ts\nu,c,20\nu,a,10\nu,b,10\nu,bad,-1\n")
    log = load_events(p)
    assert [e.item_id for e in log] == ["a", "b", "c"]
    assert log.rejected and log.rejected[0][0] == 5
    assert all(e.type == "click" for e in log)
    assert len({e.event_id for e in log}) == 3


def test_load_events_all_invalid_is_user_error(tmp_path: Path) -> None:
    p = tmp_path / "e.csv"
    p.write_text("user_id,item_id,ts\nu,a,never\n")
    with pytest.raises(UserError):
        load_events(p)
    with pytest.raises(UserError):
        load_events(tmp_path / "missing.csv")


def test_load_items_formats(tmp_path: Path) -> None:
    p = tmp_path / "i.csv"
    p.write_text("item_id,title,text,category,available\na,Alpha,first,cat1,true\nb,Beta,,cat2,0\n")
    cat = load_items(p)
    assert cat.item_ids == ["a", "b"] and cat.available == [True, False]
    assert cat.text_of(0) == "Alpha. cat1. first"
    r = tmp_path / "x.item"
    header = "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
    r.write_text(header + "1\tToy\t1995\tAnim Comedy\n")
    rc = load_items(r)
    assert rc.titles == ["Toy"] and rc.categories == ["Anim Comedy"] and "1995" in rc.texts[0]
    m = tmp_path / "movies.dat"
    m.write_text("1::Toy Story (1995)::Animation|Comedy\n", encoding="latin-1")
    assert load_items(m).categories == ["Animation Comedy"]
