"""The ``/readyz`` answer, one for every process (worker on faust's web server, trainer on its
status server): 200 when nothing stands in the way, else 503 naming the reasons, as JSON
``{"ready", "reasons", ...detail}`` so probes read the status code and operators the reasons."""

from __future__ import annotations

from typing import Any


def readyz(reasons: list[str], **detail: Any) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) of a readiness check that found ``reasons`` not to be ready."""
    return (503 if reasons else 200), {"ready": not reasons, "reasons": reasons, **detail}
