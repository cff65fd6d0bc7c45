"""Broker security options: one source for kafka-python, aiokafka and faust."""

from __future__ import annotations

import ssl

import faust
import pytest

from streamrec.config import KafkaSecurity
from streamrec.errors import UserError
from streamrec.kafka import security_kwargs
from streamrec.streams.kafka_opts import faust_credentials


def test_plaintext_needs_no_credentials() -> None:
    assert security_kwargs(KafkaSecurity()) == {"security_protocol": "PLAINTEXT"}
    assert faust_credentials(KafkaSecurity()) is None


def test_sasl_over_plaintext_is_refused_for_every_client() -> None:
    sec = KafkaSecurity(protocol="SASL_PLAINTEXT", sasl_username="u", sasl_password="p")
    for build in (security_kwargs, faust_credentials):
        with pytest.raises(UserError, match="clear text"):
            build(sec)


def test_sasl_ssl_carries_the_password_and_an_ssl_context() -> None:
    sec = KafkaSecurity(protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512", sasl_username="u", sasl_password="p")
    opts = security_kwargs(sec)
    assert isinstance(opts["ssl_context"], ssl.SSLContext)
    assert (opts["sasl_mechanism"], opts["sasl_plain_username"], opts["sasl_plain_password"]) == (
        "SCRAM-SHA-512",
        "u",
        "p",
    )
    creds = faust_credentials(sec)
    assert isinstance(creds, faust.SASLCredentials) and creds.ssl_context is not None
