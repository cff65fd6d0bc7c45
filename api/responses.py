"""JSON responses built with orjson (validating each answer against a model would cost more than
the Redis read it carries)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import Response


def json_response(status: int, body: Any) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")
