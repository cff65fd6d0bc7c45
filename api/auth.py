"""Bearer-token authentication as the outermost ASGI layer: a request without a valid token is
answered 401 before anything reads its body (FastAPI reads a declared body before it runs
dependencies, so a dependency would check too late)."""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Collection
from typing import Any

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]
UNAUTHORIZED = json.dumps({"detail": "missing or wrong bearer token (Authorization: Bearer TOKEN)"}).encode()


def parse_tokens(text: str) -> list[str]:
    """The accepted tokens of the comma-separated setting (several: rotation without downtime)."""
    return [t.strip() for t in text.split(",") if t.strip()]


class BearerAuth:
    """Lets a request through when its ``Authorization: Bearer`` token is one of ``tokens``;
    ``open_paths`` (health, readiness, metrics, the spec) and ``open_prefixes`` (the console's
    static files) need none. ``tokens`` empty = no auth."""

    def __init__(
        self, app: ASGIApp, tokens: Collection[str], open_paths: Collection[str], open_prefixes: tuple[str, ...] = ()
    ) -> None:
        self.app = app
        self.tokens = [t.encode() for t in tokens]
        self.open_paths = frozenset(open_paths)
        self.open_prefixes = open_prefixes

    def allowed(self, header: bytes) -> bool:
        scheme, _, token = header.partition(b" ")
        if scheme.lower() != b"bearer" or not token:
            return False
        # compare against every token, so the time taken does not tell which one nearly matched
        return any([hmac.compare_digest(token.strip(), t) for t in self.tokens])

    def _open(self, path: str) -> bool:
        return path in self.open_paths or path.startswith(self.open_prefixes)

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or not self.tokens or self._open(scope["path"]):
            await self.app(scope, receive, send)
            return
        header = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
        if self.allowed(header):
            await self.app(scope, receive, send)
            return
        headers = [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer"), (b"connection", b"close")]
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": UNAUTHORIZED})
