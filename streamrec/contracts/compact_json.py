"""Compact JSON for the hot path (feeds, events, training batches, dead letters).

orjson serialises dataclass instances field by field in C: the stdlib's ``json`` with
``dataclasses.asdict`` deep-copied every list it met (~5% of the worker's event loop and of
its feed-writer thread at ~2,000 events/s, py-spy), and even a shallow field dict cost a
Python-level encoder pass per record. faust picks orjson up too, for the session table's
changelog values. Non-finite floats become ``null``; nothing written here holds one.
"""

from __future__ import annotations

from typing import Any

import orjson


def dumps(value: Any) -> bytes:
    """UTF-8 JSON without spaces; dataclass instances as their fields."""
    return orjson.dumps(value)
