"""Rows of a data file, by format: the parsing half of :mod:`streamrec.datasets`.

Each reader yields ``(line_number, row)``; a row that cannot be parsed at all is
``{ERROR_KEY: reason}``, so the caller can report (or dead-letter) it with its position.
Formats by suffix (optionally ``.gz``): ``.csv`` (header row), ``.jsonl``, ``.parquet``, RecBole
atomic files (``.inter`` / ``.item``, tab-separated, ``name:type`` headers) and MovieLens
``ratings.dat`` / ``movies.dat`` (``::``-separated, latin-1).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from streamrec.errors import UserError

ERROR_KEY = "_error"  # a row that could not be parsed at all: {"_error": reason}


def open_text(path: Path, encoding: str = "utf-8") -> IO[str]:
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    if path.name.lower().endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding=encoding, newline="")
    return open(path, encoding=encoding, newline="")


def recbole_header(line: str) -> list[str]:
    return [col.split(":", 1)[0].strip() for col in line.rstrip("\r\n").split("\t")]


def iter_delimited(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    with open_text(path) as fh:
        reader = csv.DictReader(fh)
        for row in reader:
            if not any(v for v in row.values() if isinstance(v, str)):
                continue
            yield reader.line_num, row  # type: ignore[misc]


def iter_recbole(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    with open_text(path) as fh:
        header: list[str] | None = None
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            if header is None:
                header = recbole_header(line)
                continue
            values = line.rstrip("\r\n").split("\t")
            if len(values) != len(header):
                yield lineno, {ERROR_KEY: f"expected {len(header)} tab-separated fields, got {len(values)}"}
                continue
            yield lineno, dict(zip(header, values, strict=True))


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                yield lineno, {ERROR_KEY: f"malformed JSON: {exc.msg} at char {exc.pos}"}
                continue
            if not isinstance(obj, dict):
                yield lineno, {ERROR_KEY: f"event must be a JSON object, got {type(obj).__name__}"}
                continue
            yield lineno, obj


def iter_parquet(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    import pyarrow.parquet as pq

    if not path.is_file():
        raise UserError(f"{path}: no such file")
    lineno = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=65_536):
        for row in batch.to_pylist():
            lineno += 1
            yield lineno, row


def iter_ratings_dat(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    with open_text(path, encoding="latin-1") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            parts = line.rstrip("\r\n").split("::")
            if len(parts) < 4:
                yield lineno, {ERROR_KEY: f"expected UserID::MovieID::Rating::Timestamp, got {len(parts)} fields"}
                continue
            yield lineno, {"user_id": parts[0], "item_id": parts[1], "rating": parts[2], "ts": parts[3]}


def iter_movies_dat(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    with open_text(path, encoding="latin-1") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            parts = line.rstrip("\r\n").split("::")
            if len(parts) < 3:
                yield lineno, {ERROR_KEY: f"expected MovieID::Title::Genres, got {len(parts)} fields"}
                continue
            yield lineno, {"item_id": parts[0], "title": parts[1], "category": parts[2].replace("|", " ")}
