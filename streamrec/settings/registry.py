"""Settings section owned by the export package: where versioned artifacts live."""

from __future__ import annotations

from pydantic import Field, field_validator

from streamrec.settings.base import Section


class RegistrySettings(Section):
    """Model registry location. ``url`` empty = ``<data_dir>/registry`` on local disk."""

    url: str = Field(
        "",
        repr=False,  # a redis:// URL carries the password (the k8s overlays take it from the Redis Secret)
        description="registry: a directory, file://PATH, or redis://HOST:PORT/DB (shared by pods)",
    )
    keep: int = Field(5, ge=1, description="versions kept when pruning")
    fp16: bool = Field(
        False, description="export an fp16 variant and serve it on CUDA (on the CPU the worker serves fp32 or int8)"
    )
    int8: bool = Field(
        True, description="export an int8-scoring variant and serve it on CPU (exact fp32 re-score of its candidates)"
    )
    int8_min_items: int = Field(
        20_000, ge=0, description="serve int8 only from this catalogue size (below, fp32 is as fast: bench/RESULTS.md)"
    )

    @field_validator("url")
    @classmethod
    def _url_has_a_known_scheme(cls, value: str) -> str:
        """Refused here (one line naming the setting) rather than when a command opens it."""
        if "://" in value and not value.startswith(("file://", "redis://", "rediss://", "unix://")):
            raise ValueError("use a directory, file://PATH or redis://HOST:PORT/DB")
        return value
