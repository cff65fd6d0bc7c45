"""The web console at ``/``: static files (api/static/, no build step) that call the API with
the token the operator pastes, and the three read routes only the console needs: live stream
figures, item search and the newest dead letters."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from streamrec.api.backend import Backend
from streamrec.api.responses import json_response

STATIC = Path(__file__).with_name("static")
OPEN_PREFIXES = ("/console/",)  # the page itself holds no data: every figure on it needs the token


def add_console(app: FastAPI, backend: Backend) -> None:
    """The page, and the routes it reads besides feeds and models."""

    @app.get("/", include_in_schema=False)
    def index() -> Response:
        return RedirectResponse("/console/")

    @app.get("/v1/stats", summary="events/s appended to the events topic and the workers' consumer lag")
    def stats() -> Response:
        return json_response(200, backend.stats.read())

    @app.get("/v1/items", summary="search the catalogue by item id or title")
    def items(q: str = "", limit: int = 20) -> Response:
        rows = backend.tails.search(q, max(1, min(limit, 200))) if backend.tails else []
        return json_response(200, {"items": rows})

    @app.get("/v1/dead-letters", summary="the newest records of the dead-letter topic, with their reasons")
    def dead_letters(limit: int = 20) -> Response:
        rows = backend.tails.latest_dead_letters(max(1, min(limit, 200))) if backend.tails else []
        return json_response(200, {"dead_letters": rows})

    app.mount("/console", StaticFiles(directory=STATIC, html=True), name="console")
