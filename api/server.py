"""Run the API under uvicorn until SIGTERM/SIGINT (uvicorn handles both: in-flight requests
finish, then the producer flushes and the connections close in the app's lifespan)."""

from __future__ import annotations

import logging
import signal
import sys

from streamrec.api.app import create_app
from streamrec.api.auth import parse_tokens
from streamrec.api.backend import Backend
from streamrec.config import Settings
from streamrec.errors import UserError

log = logging.getLogger(__name__)


def check_settings(settings: Settings) -> None:
    """Refuse to start an API that could not serve, or would serve anyone by accident."""
    if not settings.redis:
        raise UserError("no Redis to read feeds from: pass --redis redis://HOST:PORT or set STREAMREC_REDIS")
    if not settings.broker:
        raise UserError("no broker to publish to: pass --broker HOST:PORT or set STREAMREC_BROKER")
    if not parse_tokens(settings.api.tokens.get_secret_value()) and not settings.api.allow_anonymous:
        raise UserError(
            "no API token: set STREAMREC_API__TOKENS (comma-separated; a Secret in k8s), "
            "or --api-allow-anonymous true for a local trial"
        )


def serve(settings: Settings) -> None:
    import uvicorn

    check_settings(settings)
    # uvicorn stops gracefully on SIGTERM, then raises it again with the handler it found: this
    # one makes that a clean exit (status 0, like the worker's) instead of a death by signal.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = create_app(Backend(settings))
    log.info("streamrec api on http://%s:%d (spec at /openapi.json)", settings.api.host, settings.api.port)
    uvicorn.run(
        app,
        host=settings.api.host,
        port=settings.api.port,
        log_level=settings.log_level.lower(),
        access_log=False,  # per-request lines would cost more than a feed read; /metrics counts them
        timeout_graceful_shutdown=10,
        lifespan="on",  # a failing start-up stops the API (uvicorn's "auto" would log it at INFO and go on)
    )
