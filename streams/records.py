"""The unit the batch pipeline works on: one consumed Kafka message, decoupled from faust.

Keeping faust's ``Event`` behind ``origin`` lets the pipeline be driven by plain lists in unit
tests while the faust adapter still reaches the event (table writes need it to pick the
changelog partition; acks need it to commit).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    timestamp: float  # broker/producer time, epoch seconds: the start of event->feed latency
    key: bytes | None
    value: bytes | None
    origin: Any = None  # the faust Event, when there is one
