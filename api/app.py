"""The routes of ``streamrec api``. Feeds are read with :func:`streamrec.feed_store.get_feed`,
events checked with the worker's validator (:mod:`streamrec.api.batch`), catalogue records with
:func:`streamrec.contracts.items.parse_item`: the API adds HTTP, never a second copy of a rule."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from kafka.errors import KafkaError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError

from streamrec.api import schemas
from streamrec.api.auth import BearerAuth, parse_tokens
from streamrec.api.backend import Backend
from streamrec.api.batch import BadBody, check_events
from streamrec.api.console import OPEN_PREFIXES, add_console
from streamrec.api.metrics import ApiMetrics, MetricsLayer
from streamrec.api.responses import json_response
from streamrec.api.spec import event_body, item_body, with_bearer
from streamrec.contracts.erasure import erasure_records
from streamrec.contracts.feed import feed_age_s
from streamrec.contracts.items import parse_item
from streamrec.errors import ServiceUnavailable, UserError
from streamrec.failures import SERVICE_DOWN, Failure, explain
from streamrec.feed_store import get_feed_async
from streamrec.readiness import readyz
from streamrec.settings.show import mask

log = logging.getLogger(__name__)
OPEN_PATHS = ("/", "/healthz", "/readyz", "/metrics", "/openapi.json")


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing (413) one over ``limit`` bytes before reading it all."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BadBody(413, f"body of {declared} bytes is over the {limit}-byte limit")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadBody(413, f"body is over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _known_failure(broker: str, redis_url: str) -> Any:
    """A handler answering a client-library failure with the CLI's one line: 503 when a service
    is down, 400 when the input is at fault (no traceback per request in the log)."""

    def handle(_request: Request, exc: Exception) -> Response:
        failure = explain(exc, broker, redis_url) or Failure(SERVICE_DOWN, f"{type(exc).__name__}: {exc}")
        log.warning("%s", failure.message)
        return json_response(503 if failure.code == SERVICE_DOWN else 400, {"detail": failure.message})

    return handle


def create_app(backend: Backend) -> FastAPI:
    """The app over ``backend``; bearer auth and metrics wrap it (auth answers before the body is read)."""
    settings = backend.settings
    metrics = ApiMetrics()

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        backend.start()
        yield
        await backend.aclose()
        await run_in_threadpool(backend.close)

    app = FastAPI(
        title="streamrec",
        version="1",
        summary="Feeds, events, catalogue and model versions of a streamrec deployment.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    _feed_routes(app, backend)
    _write_routes(app, backend, metrics)
    _user_routes(app, backend)
    _ops_routes(app, backend, metrics)
    add_console(app, backend)
    app.add_exception_handler(BadBody, lambda _r, exc: json_response(exc.status, {"detail": str(exc)}))
    for kind in (RedisError, KafkaError, ServiceUnavailable, UserError):
        app.add_exception_handler(kind, _known_failure(settings.broker, mask(settings.redis, secret=True)))
    tokens = parse_tokens(settings.api.tokens.get_secret_value())
    app.add_middleware(BearerAuth, tokens=tokens, open_paths=OPEN_PATHS, open_prefixes=OPEN_PREFIXES)
    app.add_middleware(MetricsLayer, metrics=metrics)
    with_bearer(app)
    return app


def _feed_routes(app: FastAPI, backend: Backend) -> None:
    prefix = backend.settings.feed_prefix

    @app.get(
        "/v1/feeds/{user_id:path}",
        summary="a user's current feed",
        responses={200: {"model": schemas.FeedOut}, 404: {"model": schemas.Problem}, 503: {"model": schemas.Problem}},
    )
    async def get_user_feed(user_id: str) -> Response:
        feed = await get_feed_async(backend.aredis, user_id, prefix)
        if feed is None:
            return json_response(404, {"detail": f"no feed for user {user_id!r} (no event yet, or expired)"})
        because = feed.because or [None] * len(feed.items)
        items = [
            {"item_id": i, "score": s, "because": b} for i, s, b in zip(feed.items, feed.scores, because, strict=True)
        ]
        out = {
            "user_id": feed.user_id,
            "items": items,
            "model_version": feed.model_version,
            "arm": feed.arm,
            "generated_at": feed.generated_at,
            "age_s": round(feed_age_s(feed), 3),
            "event_id": feed.event_id,
        }
        return json_response(200, out)

    @app.get("/v1/models", summary="registry versions, the served one, gate metrics", response_model=schemas.ModelsOut)
    def models() -> Response:
        refs = backend.registry().list()
        served, caught_up = backend.served()
        version = served["version"] if served else None
        rows = [
            {"version": r.version, "sha256": r.sha256, "parent": r.parent, "created": r.created}
            | {"metrics": r.metrics, "served": r.version == version}
            for r in refs
        ]
        return json_response(200, {"served": version, "announcement_caught_up": caught_up, "versions": rows})


def _write_routes(app: FastAPI, backend: Backend, metrics: ApiMetrics) -> None:
    s = backend.settings
    limit = s.api.max_batch_events * (s.max_event_bytes + 16)

    @app.post(
        "/v1/events",
        summary="publish one event or a batch (all or nothing unless ?partial=true)",
        status_code=202,
        openapi_extra=event_body(),
        responses={202: {"model": schemas.EventsAccepted}, 422: {"model": schemas.EventsRefused}},
    )
    async def post_events(request: Request, partial: bool = False) -> Response:
        checked = check_events(await read_body(request, limit), s.max_event_bytes, s.api.max_batch_events)
        metrics.events.labels("rejected").inc(len(checked.rejected))
        if checked.rejected and not partial:
            n, total = len(checked.rejected), len(checked.rejected) + len(checked.events)
            detail = f"{n} of {total} events refused; nothing published (?partial=true publishes the valid ones)"
            return json_response(422, {"detail": detail, "rejected": checked.rejected})
        records = [(ev.user_id, ev.to_json()) for ev in checked.events]
        if records:
            await run_in_threadpool(backend.publish, s.topics.events, records)
        metrics.events.labels("published").inc(len(records))
        return json_response(202, {"published": len(records), "rejected": checked.rejected})

    @app.post(
        "/v1/items",
        summary="publish a catalogue item (new, changed, or available: false)",
        status_code=202,
        openapi_extra=item_body(),
        responses={202: {"model": schemas.ItemAccepted}, 422: {"model": schemas.Problem}},
    )
    async def post_item(request: Request) -> Response:
        body = await read_body(request, s.max_event_bytes * 16)
        try:
            item_id = orjson.loads(body).get("item_id")
        except (orjson.JSONDecodeError, AttributeError):
            item_id = None
        update = parse_item(item_id.encode() if isinstance(item_id, str) else None, body)
        if isinstance(update, str):
            return json_response(422, {"detail": update})
        await run_in_threadpool(backend.publish, s.topics.items, [(update.item_id, body)])
        metrics.items.labels("publish").inc()
        return json_response(202, {"item_id": update.item_id, "published": True, "available": update.available})

    @app.delete(
        "/v1/items/{item_id:path}",
        summary="withdraw an item (a tombstone on the catalogue topic)",
        status_code=202,
        responses={202: {"model": schemas.ItemAccepted}},
    )
    def delete_item(item_id: str) -> Response:
        backend.publish(s.topics.items, [(item_id, None)])
        metrics.items.labels("withdraw").inc()
        return json_response(202, {"item_id": item_id, "published": True, "available": False})


def _user_routes(app: FastAPI, backend: Backend) -> None:
    @app.delete(
        "/v1/users/{user_id:path}",
        summary="erase a user: session, feed and training examples (an erasure on the erasure topic)",
        status_code=202,
        responses={202: {"model": schemas.UserErased}},
    )
    def delete_user(user_id: str) -> Response:
        requested_at = round(time.time(), 3)
        backend.publish(backend.settings.topics.erasures, erasure_records([user_id], requested_at))
        return json_response(202, {"user_id": user_id, "published": True, "requested_at": requested_at})


def _ops_routes(app: FastAPI, backend: Backend, metrics: ApiMetrics) -> None:
    @app.get("/healthz", summary="liveness: the process answers")
    def healthz() -> Response:
        return json_response(200, {"ok": True})

    @app.get("/readyz", summary="readiness: Redis (and the broker, once used) answer", response_model=schemas.Ready)
    def ready() -> Response:
        status, body = readyz(backend.ready())
        return json_response(status, body)

    @app.get("/metrics", summary="Prometheus metrics")
    def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
