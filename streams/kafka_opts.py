"""Broker security for faust, from the same :class:`streamrec.config.KafkaSecurity` (and the
same checks) as the kafka-python tools and the worker's aiokafka followers, which take
:func:`streamrec.kafka.security_kwargs` as is: aiokafka uses kafka-python's option names."""

from __future__ import annotations

from typing import Any

import faust

from streamrec.config import KafkaSecurity
from streamrec.kafka import security_kwargs


def faust_credentials(sec: KafkaSecurity) -> Any:
    """faust wants a credentials object, not options. The options are still built first: they
    refuse SASL_PLAINTEXT (faust would fall back to PLAIN over plaintext without an
    ssl_context, sending the password in the clear) and carry the SSL context."""
    opts = security_kwargs(sec)
    if sec.protocol == "SSL":
        return faust.SSLCredentials(opts["ssl_context"])
    if sec.protocol == "SASL_SSL":
        return faust.SASLCredentials(
            username=sec.sasl_username,
            password=sec.sasl_password.get_secret_value(),
            mechanism=sec.sasl_mechanism,
            ssl_context=opts["ssl_context"],
        )
    return None
