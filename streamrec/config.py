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

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streamrec.settings.api import ApiSettings
from streamrec.settings.base import Section
from streamrec.settings.encoder import EncoderSettings, RetrainSettings, TrainerSettings
from streamrec.settings.experiment import ExperimentSettings
from streamrec.settings.hybrid import HybridSettings
from streamrec.settings.registry import RegistrySettings
from streamrec.settings.serving import ServingSettings
from streamrec.settings.worker import WorkerSettings

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class TopicSettings(Section):
    """Kafka topic names (docs/architecture.md, contracts)."""

    events: str = Field("streamrec.events", min_length=1, description="click events in, keyed by user id")
    dlq: str = Field("streamrec.events.dlq", min_length=1, description="dead letters: refused events and the reason")
    items: str = Field("streamrec.items", min_length=1, description="the catalogue (compacted; a tombstone withdraws)")
    training: str = Field("streamrec.training", min_length=1, description="training batches, worker to trainer")
    models: str = Field("streamrec.models", min_length=1, description="model announcements (compacted)")
    erasures: str = Field(
        "streamrec.erasures",
        min_length=1,
        description="user erasures, keyed by user id (compacted; as many partitions as the events topic)",
    )


class KafkaSecurity(Section):
    """Broker auth. SASL without TLS is refused at connect time: faust falls back to PLAIN
    over plaintext when given no ssl_context, which would send the password in the clear."""

    protocol: Literal["PLAINTEXT", "SSL", "SASL_SSL", "SASL_PLAINTEXT"] = Field(
        "PLAINTEXT", description="Kafka security protocol (SASL_PLAINTEXT is refused: the password would go in clear)"
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "PLAIN", description="SASL mechanism (with protocol SASL_SSL)"
    )
    sasl_username: str = Field("", description="SASL user name")
    sasl_password: SecretStr = Field(SecretStr(""), description="SASL password (secret: never printed)")
    ca_file: Path | None = Field(None, description="CA bundle that signs the brokers' certificates (SSL, SASL_SSL)")


class RedisTls(Section):
    """TLS for ``rediss://`` URLs (feeds, and a Redis registry). Files are checked when a client is
    built: a missing or unreadable one is a one-line error, not a failing retry loop."""

    ca_file: Path | None = Field(
        None, description="CA bundle that signs the Redis server certificate (default: system CAs)"
    )
    cert_file: Path | None = Field(None, description="client certificate, for servers that require one (with key_file)")
    key_file: Path | None = Field(None, description="private key of cert_file")
    verify: Literal["full", "ca", "none"] = Field(
        "full",
        description="full: the CA and the host name; ca: the CA only (a server reached by an address its "
        "certificate does not name); none: nothing (encrypts, proves nothing: tests only)",
    )

    @model_validator(mode="after")
    def _cert_and_key_together(self) -> RedisTls:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("redis_tls.cert_file and redis_tls.key_file go together: give both or neither")
        return self


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
    pool: int = Field(
        4,
        ge=1,
        le=50,
        description="the serving graph returns k x pool candidates (its exported K); the worker's MMR "
        "(worker.mmr_lambda) re-ranks them to k",
    )
    session_length: int = Field(50, ge=2, le=1024, description="items kept per user session (L)")
    device: Literal["auto", "cuda", "cpu"] = Field("auto", description="inference/training device")
    feed_prefix: str = Field("streamrec:feed:", min_length=1, description="Redis key prefix of feeds")
    feed_ttl_s: int = Field(7 * 24 * 3600, ge=1, description="TTL of a feed key")
    max_event_bytes: int = Field(64 * 1024, ge=256, description="larger events go to the DLQ")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="log level of every process")

    topics: TopicSettings = TopicSettings()
    kafka_security: KafkaSecurity = KafkaSecurity()
    redis_tls: RedisTls = RedisTls()
    encoder: EncoderSettings = EncoderSettings()
    registry: RegistrySettings = RegistrySettings()
    serving: ServingSettings = ServingSettings()
    worker: WorkerSettings = WorkerSettings()
    trainer: TrainerSettings = TrainerSettings()
    retrain: RetrainSettings = RetrainSettings()
    hybrid: HybridSettings = HybridSettings()
    experiment: ExperimentSettings = ExperimentSettings()
    api: ApiSettings = ApiSettings()

    @property
    def pool_size(self) -> int:
        """Candidates per session the serving graph returns (the K models are exported with)."""
        return self.k * self.pool

    @field_validator("broker")
    @classmethod
    def _broker_is_host_ports(cls, value: str) -> str:
        """``host:port`` entries, so a URL or a typo fails here, in one line, instead of deep in a
        Kafka client as a traceback."""
        for entry in filter(None, (e.strip() for e in value.split(","))):
            host, _, port = entry.rpartition(":")
            if "://" in entry or "/" in entry or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{entry!r} is not host:port (e.g. localhost:9092; no scheme, no path)")
        return value

    @field_validator("redis")
    @classmethod
    def _redis_is_a_url(cls, value: str) -> str:
        if value and not value.startswith(REDIS_SCHEMES):
            hint = f" (did you mean redis://{value}?)" if "://" not in value else ""
            raise ValueError(f"a Redis URL starts with redis://, rediss:// or unix://{hint}")
        return value
