"""The API's OpenAPI spec: request bodies from the contracts' JSON Schemas (the handlers read
raw bodies, so FastAPI cannot infer them) and the bearer scheme on every ``/v1`` route.
Committed as docs/openapi.json (``python -m streamrec.api.spec docs/openapi.json``; a test
keeps it current)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from streamrec.contracts.schemas import EVENT, ITEM


def _plain(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k not in ("$schema", "$id")}


def event_body() -> dict[str, Any]:
    one = _plain(EVENT)
    schema = {"oneOf": [one, {"type": "array", "items": one, "minItems": 1}]}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def item_body() -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": _plain(ITEM)}}}}


def with_bearer(app: FastAPI) -> None:
    """Make ``app.openapi()`` declare the bearer scheme and require it on ``/v1`` routes."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = build()
            spec.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer", "description": "a token of api.tokens"}
            }
            for path, operations in spec["paths"].items():
                if path.startswith("/v1/"):
                    for op in operations.values():
                        op["security"] = [{"bearer": []}]
                        op["responses"]["401"] = {"description": "missing or wrong bearer token (body not read)"}
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def render() -> str:
    """The committed spec: the app over default settings (no connection is opened)."""
    from streamrec.api.app import create_app
    from streamrec.api.backend import Backend
    from streamrec.config import Settings

    app = create_app(Backend(Settings(redis="redis://127.0.0.1:6379/0")))
    return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    Path(sys.argv[1] if len(sys.argv) > 1 else "docs/openapi.json").write_text(render())
