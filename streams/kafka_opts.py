"""Broker security for the worker's two Kafka clients (faust, and aiokafka for the followers),
from the same :class:`streamrec.config.KafkaSecurity` the kafka-python tools use."""

from __future__ import annotations

import ssl
from typing import Any

import faust

from streamrec.config import KafkaSecurity
from streamrec.errors import UserError


def _ssl_context(sec: KafkaSecurity) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(sec.ca_file) if sec.ca_file else None)


def _refuse_plaintext_sasl(sec: KafkaSecurity) -> None:
    if sec.protocol == "SASL_PLAINTEXT":
        # faust falls back to PLAIN over plaintext without an ssl_context: the password would
        # cross the network in the clear.
        raise UserError("SASL_PLAINTEXT sends the password in clear text; use SASL_SSL")


def faust_credentials(sec: KafkaSecurity) -> Any:
    _refuse_plaintext_sasl(sec)
    if sec.protocol == "SSL":
        return faust.SSLCredentials(_ssl_context(sec))
    if sec.protocol == "SASL_SSL":
        return faust.SASLCredentials(
            username=sec.sasl_username,
            password=sec.sasl_password.get_secret_value(),
            mechanism=sec.sasl_mechanism,
            ssl_context=_ssl_context(sec),
        )
    return None


def aiokafka_security(sec: KafkaSecurity) -> dict[str, Any]:
    _refuse_plaintext_sasl(sec)
    out: dict[str, Any] = {"security_protocol": sec.protocol}
    if sec.protocol in ("SSL", "SASL_SSL"):
        out["ssl_context"] = _ssl_context(sec)
    if sec.protocol == "SASL_SSL":
        out |= {
            "sasl_mechanism": sec.sasl_mechanism,
            "sasl_plain_username": sec.sasl_username,
            "sasl_plain_password": sec.sasl_password.get_secret_value(),
        }
    return out
