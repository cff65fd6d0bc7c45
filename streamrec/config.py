"""The one typed settings object.

Read once at the entrypoint (CLI) and handed down as explicit arguments: library code never
reads the environment itself. Every field is settable by a ``STREAMREC_*`` variable (nested
sections use ``__``: ``STREAMREC_WORKER__BATCH_MAX_EVENTS=64``) and by a CLI flag generated
from the field (``--worker-batch-max-events 64``), flags winning over the environment.
Defaults run the embedded demo on one machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from streamrec.settings.base import Section
from streamrec.settings.encoder import EncoderSettings, TrainerSettings
from streamrec.settings.registry import RegistrySettings
from streamrec.settings.worker import WorkerSettings


class TopicSettings(Section):
    """Kafka topic names (docs/architecture.md, contracts)."""

    events: str = "streamrec.events"
    dlq: str = "streamrec.events.dlq"
    items: str = "streamrec.items"
    training: str = "streamrec.training"
    models: str = "streamrec.models"


class KafkaSecurity(Section):
    """Broker auth. SASL without TLS is refused at connect time: faust falls back to PLAIN
    over plaintext when given no ssl_context, which would send the password in the clear."""

    protocol: Literal["PLAINTEXT", "SSL", "SASL_SSL", "SASL_PLAINTEXT"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    sasl_username: str = ""
    sasl_password: SecretStr = SecretStr("")
    ca_file: Path | None = None


class Settings(BaseSettings):
    """Everything streamrec can be told. Empty ``broker``/``redis`` mean "start the embedded
    one" for commands that may start services (demo, up) and an error for the others."""

    model_config = SettingsConfigDict(
        env_prefix="STREAMREC_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    broker: str = Field("", description="Kafka bootstrap servers host:port[,host:port]; empty = embedded Tansu")
    # repr=False: the URL carries the Redis password; a logged or printed Settings must not show it.
    redis: str = Field(
        "", repr=False, description="Redis URL redis://[:password@]host:port/db; empty = embedded redis-server"
    )
    data_dir: Path = Field(Path(".streamrec"), description="local state: registry, tables, runs")
    partitions: int = Field(4, ge=1, le=1024, description="partitions of the events topic (= max workers)")
    replication: int = Field(1, ge=1, le=9, description="replication factor of created topics")
    k: int = Field(20, ge=1, le=1000, description="length of each user's feed (top-K)")
    session_length: int = Field(50, ge=2, le=1024, description="items kept per user session (L)")
    device: Literal["auto", "cuda", "cpu"] = Field("auto", description="inference/training device")
    feed_prefix: str = Field("streamrec:feed:", min_length=1, description="Redis key prefix of feeds")
    feed_ttl_s: int = Field(7 * 24 * 3600, ge=1, description="TTL of a feed key")
    max_event_bytes: int = Field(64 * 1024, ge=256, description="larger events go to the DLQ")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    topics: TopicSettings = TopicSettings()
    kafka_security: KafkaSecurity = KafkaSecurity()
    encoder: EncoderSettings = EncoderSettings()
    registry: RegistrySettings = RegistrySettings()
    worker: WorkerSettings = WorkerSettings()
    trainer: TrainerSettings = TrainerSettings()
