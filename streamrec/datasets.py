"""Event and item file readers (docs/contracts.md, "Data files").

Two layers on purpose: :func:`iter_event_rows` yields raw string rows with their line numbers
so that ``streamrec replay`` can dead-letter a bad row with its position exactly as the worker
would, while :func:`load_events` validates through :mod:`streamrec.contracts.events` (one validator for
files and the stream) and returns a time-ordered :class:`EventLog` for training and eval.

Formats: :mod:`streamrec.file_rows` (csv, jsonl, parquet, RecBole, MovieLens ``.dat``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamrec import file_rows
from streamrec.contracts.events import Event, Invalid, validate_obj
from streamrec.contracts.items import item_text
from streamrec.errors import UserError
from streamrec.file_rows import ERROR_KEY

# Column aliases seen in public logs; mapped to the contract's names before validation.
_EVENT_ALIASES = {
    "timestamp": "ts",
    "time": "ts",
    "event_time": "ts",
    "user": "user_id",
    "userid": "user_id",
    "item": "item_id",
    "itemid": "item_id",
    "movie_id": "item_id",
    "movieid": "item_id",
    "event_type": "type",
}
_TITLE_COLS = ("title", "movie_title", "name", "item_name")
_CATEGORY_COLS = ("category", "categories", "class", "genre", "genres")
_TEXT_COLS = ("text", "description", "desc", "overview", "summary")


def _normalise(row: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in row.items():
        if value is None or key is None:
            continue
        name = key.strip()
        name = _EVENT_ALIASES.get(name.lower(), name)
        if isinstance(value, dict | list):
            out[name] = json.dumps(value)
        else:
            out[name] = str(value)
    return out


def raw_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line, row)`` of a CSV, JSONL, Parquet, RecBole or ``ratings.dat`` file, by suffix: the
    reader behind ``replay`` (events) and ``items publish`` (catalogue records)."""
    name = path.name.lower().removesuffix(".gz")
    if name.endswith("ratings.dat"):
        return file_rows.iter_ratings_dat(path)
    suffix = Path(name).suffix
    if suffix == ".csv":
        return file_rows.iter_delimited(path)
    if suffix in (".jsonl", ".ndjson"):
        return file_rows.iter_jsonl(path)
    if suffix == ".parquet":
        return file_rows.iter_parquet(path)
    if suffix in (".inter", ".item"):
        return file_rows.iter_recbole(path)
    raise UserError(f"{path}: unknown file format (use .csv, .jsonl, .parquet, RecBole .inter/.item or ratings.dat)")


def iter_event_rows(path: str | Path) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line_number, raw_row)`` for every non-blank data row of an events file.

    Keys are normalised (``timestamp`` -> ``ts``, RecBole ``:type`` suffixes dropped); values are
    strings. A row that cannot be parsed at all (bad JSON line, wrong field count) is yielded as
    ``{"_error": reason}`` so the caller can dead-letter it with its line number instead of
    losing it. Line numbers are 1-based physical lines (for parquet: 1-based row numbers).
    """
    path = Path(path)
    for lineno, row in raw_rows(path):
        if ERROR_KEY in row:
            yield lineno, {ERROR_KEY: str(row[ERROR_KEY])}
        else:
            yield lineno, _normalise(row)


def row_to_event(row: dict[str, str], default_event_id: str) -> Event | Invalid:
    """Validate one raw row. Files often carry extra columns (rating) and no event id: keep
    only the contract's fields and give the row a stable id derived from its position."""
    if ERROR_KEY in row:
        return Invalid(row[ERROR_KEY])
    obj: dict[str, Any] = {k: row[k] for k in ("event_id", "user_id", "item_id", "ts", "type") if k in row}
    if not obj.get("event_id"):
        obj["event_id"] = default_event_id
    if "type" in obj and not obj["type"]:
        del obj["type"]
    return validate_obj(obj)


@dataclass(frozen=True)
class EventLog:
    """Validated events in time order (stable: same-second ties keep file order)."""

    events: list[Event]
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)

    def __len__(self) -> int:
        return len(self.events)

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events)

    def by_user(self) -> dict[str, list[Event]]:
        """Each user's events in time order (first-seen user order)."""
        out: dict[str, list[Event]] = {}
        for ev in self.events:
            out.setdefault(ev.user_id, []).append(ev)
        return out

    def item_ids(self) -> list[str]:
        """Distinct item ids in first-seen order."""
        return list(dict.fromkeys(ev.item_id for ev in self.events))


def split_events(events: list[Event], fraction: float) -> tuple[list[Event], list[Event]]:
    """The older ``fraction`` of a time-ordered log by count, and the newer rest: the split of
    ``streamrec demo`` (initial model on the older part, replay of the newer) and of
    ``streamrec eval --stream``."""
    cut = int(len(events) * fraction)
    return events[:cut], events[cut:]


def load_events(path: str | Path) -> EventLog:
    """Read, validate and time-order an events file. Invalid rows are kept in ``rejected``
    (not silently dropped); a file with no valid event at all is a user error."""
    path = Path(path)
    events: list[Event] = []
    rejected: list[tuple[int, str]] = []
    for lineno, row in iter_event_rows(path):
        result = row_to_event(row, f"{path.name}:{lineno}")
        if isinstance(result, Invalid):
            rejected.append((lineno, result.reason))
        else:
            events.append(result)
    if not events:
        hint = f" (first problem, line {rejected[0][0]}: {rejected[0][1]})" if rejected else ""
        raise UserError(f"{path}: no valid events{hint}")
    events.sort(key=lambda ev: ev.ts)  # list.sort is stable: ties keep file order
    return EventLog(events, rejected)


@dataclass(frozen=True)
class Catalogue:
    """Items with their text. Row order is the catalogue order used by models."""

    item_ids: list[str]
    titles: list[str]
    texts: list[str]
    categories: list[str]
    available: list[bool]

    def __post_init__(self) -> None:
        n = len(self.item_ids)
        if not all(len(col) == n for col in (self.titles, self.texts, self.categories, self.available)):
            raise ValueError("catalogue columns differ in length")

    def __len__(self) -> int:
        return len(self.item_ids)

    def index(self) -> dict[str, int]:
        return {item: i for i, item in enumerate(self.item_ids)}

    def text_of(self, i: int) -> str:
        """What the text tower reads: title, category and description in one string."""
        return item_text(self.titles[i], self.categories[i], self.texts[i])

    def all_texts(self) -> list[str]:
        return [self.text_of(i) for i in range(len(self))]


_FALSE = {"0", "false", "no", "n", "f", ""}


def _pick(row: dict[str, Any], names: tuple[str, ...]) -> tuple[str | None, str]:
    lower = {k.lower(): k for k in row}
    for name in names:
        if name in lower:
            key = lower[name]
            value = row[key]
            return key, "" if value is None else str(value)
    return None, ""


def _catalogue_from_rows(path: Path, rows: Iterator[tuple[int, dict[str, Any]]], recbole: bool) -> Catalogue:
    ids: list[str] = []
    titles: list[str] = []
    texts: list[str] = []
    cats: list[str] = []
    avail: list[bool] = []
    seen: set[str] = set()
    for lineno, row in rows:
        if ERROR_KEY in row:
            raise UserError(f"{path}:{lineno}: {row[ERROR_KEY]}")
        id_key, item_id = _pick(row, ("item_id", "itemid", "movie_id", "movieid", "id"))
        item_id = item_id.strip()
        if id_key is None or not item_id:
            raise UserError(f"{path}:{lineno}: no item_id")
        if item_id in seen:
            continue
        seen.add(item_id)
        t_key, title = _pick(row, _TITLE_COLS)
        c_key, category = _pick(row, _CATEGORY_COLS)
        x_key, text = _pick(row, _TEXT_COLS)
        a_key, available = _pick(row, ("available",))
        if recbole and x_key is None:
            # RecBole .item files carry no description: the remaining columns are the text.
            used = {id_key, t_key, c_key, a_key}
            text = "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in row.items() if k not in used and v)
        if "|" in category:
            category = " ".join(category.split("|"))
        ids.append(item_id)
        titles.append(title.strip())
        texts.append(text.strip())
        cats.append(category.strip())
        avail.append(a_key is None or available.strip().lower() not in _FALSE)
    if not ids:
        raise UserError(f"{path}: no items")
    return Catalogue(ids, titles, texts, cats, avail)


def load_items(path: str | Path) -> Catalogue:
    """Read an items file into a :class:`Catalogue` (duplicate ids: the first row wins)."""
    path = Path(path)
    name = path.name.lower().removesuffix(".gz")
    suffix = Path(name).suffix
    if name.endswith("movies.dat"):
        return _catalogue_from_rows(path, file_rows.iter_movies_dat(path), recbole=False)
    if suffix == ".csv":
        return _catalogue_from_rows(path, file_rows.iter_delimited(path), recbole=False)
    if suffix in (".jsonl", ".ndjson"):
        return _catalogue_from_rows(path, file_rows.iter_jsonl(path), recbole=False)
    if suffix == ".parquet":
        return _catalogue_from_rows(path, file_rows.iter_parquet(path), recbole=False)
    if suffix == ".item":
        return _catalogue_from_rows(path, file_rows.iter_recbole(path), recbole=True)
    raise UserError(f"{path}: unknown items format (use .csv, .jsonl, .parquet, RecBole .item or movies.dat)")
