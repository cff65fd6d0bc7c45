"""Settings section owned by the api package (``streamrec api``, the HTTP service apps call)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from streamrec.settings.base import Section


class ApiSettings(Section):
    """The HTTP API. Every ``/v1`` route needs a bearer token from ``tokens`` (a Kubernetes
    Secret in k8s/): several, comma-separated, so a token can be rotated without downtime."""

    host: str = Field("0.0.0.0", description="bind address of the HTTP API")
    port: int = Field(8080, ge=0, le=65535, description="port of the HTTP API (0 = any free)")
    tokens: SecretStr = Field(
        SecretStr(""), description="comma-separated bearer tokens accepted on /v1 (secret: never printed)"
    )
    allow_anonymous: bool = Field(
        False, description="serve /v1 without a token (local trials only; without it, no tokens = refuse to start)"
    )
    max_batch_events: int = Field(1000, ge=1, le=100_000, description="most events one POST /v1/events may carry")
    publish_timeout_s: float = Field(10.0, gt=0, description="how long a POST waits for the broker's acks")
