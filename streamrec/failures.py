"""Known failures of the services and files a command touches, as the one line the user sees.

A client library raises its own exception types from deep inside a call (redis-py when a
feed is read, kafka-python when a producer connects); the CLI and the API turn the ones that
mean "bad input" or "service down" into a line naming what is wrong and how to fix it, instead
of a traceback. Types are looked up in ``sys.modules`` so that this module imports no client
library a command did not load itself.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from streamrec.errors import ServiceUnavailable, UserError

BAD_INPUT, SERVICE_DOWN = 2, 1


@dataclass(frozen=True)
class Failure:
    """What the user is told, and the exit code (2: fix the input; 1: a service is down)."""

    code: int
    message: str


def _types(module: str, *names: str) -> tuple[type[BaseException], ...]:
    mod = sys.modules.get(module)
    return tuple(getattr(mod, n) for n in names if mod is not None and hasattr(mod, n))


def _redis_failure(exc: BaseException, redis_url: str) -> Failure | None:
    where = f" at {redis_url}" if redis_url else ""
    if isinstance(exc, _types("redis.exceptions", "AuthenticationError", "AuthorizationError")):
        return Failure(BAD_INPUT, f"Redis{where} refused the credentials ({exc}): check the password in --redis")
    if isinstance(exc, _types("redis.exceptions", "ConnectionError", "TimeoutError")):
        return Failure(
            SERVICE_DOWN,
            f"Redis{where} does not answer ({exc}): start redis-server or point --redis / STREAMREC_REDIS "
            "at a running one",
        )
    if isinstance(exc, _types("redis.exceptions", "ResponseError")) and "NOAUTH" in str(exc):
        return Failure(BAD_INPUT, f"Redis{where} needs a password: put it in the URL, redis://:PASSWORD@HOST:PORT")
    return None


def _kafka_failure(exc: BaseException, broker: str) -> Failure | None:
    kinds = _types("kafka.errors", "NoBrokersAvailable", "KafkaTimeoutError", "KafkaConnectionError")
    kinds += _types("aiokafka.errors", "KafkaConnectionError")
    if isinstance(exc, kinds):
        return Failure(
            SERVICE_DOWN,
            f"no Kafka broker answers at {broker or 'the configured address'} ({type(exc).__name__}): start one "
            "(streamrec up --services-only) or point --broker / STREAMREC_BROKER at a running one",
        )
    return None


def _file_failure(exc: BaseException) -> Failure | None:
    if isinstance(exc, FileNotFoundError):
        return Failure(BAD_INPUT, f"{exc.filename}: no such file or directory")
    if isinstance(exc, PermissionError):
        return Failure(BAD_INPUT, f"{exc.filename}: permission denied")
    if isinstance(exc, IsADirectoryError | NotADirectoryError):
        return Failure(BAD_INPUT, f"{exc.filename}: {exc.strerror}")
    if isinstance(exc, _types("streamrec.serving.artifact", "ArtifactError")):
        return Failure(BAD_INPUT, f"unusable model: {exc}")
    return None


# top-level module -> the extra that installs it (pyproject.toml)
EXTRA_OF = {
    "faust": "worker",
    "mode": "worker",
    "onnxruntime": "worker",
    "aiokafka": "worker",
    "tokenizers": "worker",
    "torch": "train",
    "transformers": "train",
    "onnx": "train",
    "fastapi": "api",
    "starlette": "api",
    "uvicorn": "api",
    "numpy": "tools",
    "rich": "tools",
    "tqdm": "tools",
    "prometheus_client": "tools",
    "pyarrow": "parquet",
    "matplotlib": "plot",
    "rocksdict": "rocksdb",
}


def missing_extra(exc: BaseException) -> Failure | None:
    """A module of an extra that is not installed: which extra to install."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    top = exc.name.split(".")[0]
    extra = EXTRA_OF.get(top)
    if extra is None:
        return None
    gpu = " ('streamrec[gpu]' on a GPU machine)" if extra == "worker" else ""
    return Failure(BAD_INPUT, f"{top} is not installed: pip install 'streamrec[{extra}]'{gpu}")


def explain(exc: BaseException, broker: str = "", redis_url: str = "") -> Failure | None:
    """The one-line failure for a known exception, or None (a bug: let its traceback show).
    ``redis_url`` must already have its password masked."""
    if isinstance(exc, UserError):
        return Failure(BAD_INPUT, str(exc))
    if isinstance(exc, ServiceUnavailable):
        return Failure(SERVICE_DOWN, str(exc))
    return _redis_failure(exc, redis_url) or _kafka_failure(exc, broker) or _file_failure(exc) or missing_extra(exc)
