"""The effective settings and where each value came from (``streamrec config show``).

Precedence is the one :func:`streamrec.settings.cli.settings_from_args` applies: a flag beats
a ``STREAMREC_*`` variable (the nested one, or a section given whole as JSON), which beats the
default. Secrets print as ``****``; a URL prints with its password masked.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from streamrec.config import Settings
from streamrec.settings.cli import SECRET_PATHS, env_of, flag_of, settings_fields

MASK = "****"


@dataclass(frozen=True)
class Row:
    """One setting as ``config show`` prints it."""

    name: str
    value: str
    source: str
    env: str
    flag: str


def mask(value: Any, secret: bool) -> str:
    """The printable form of a value: secrets masked, URLs with their password masked."""
    if hasattr(value, "get_secret_value"):
        return MASK if value.get_secret_value() else ""
    text = "" if value is None else str(value)
    if not secret or not text:
        return text
    try:
        parts = urlsplit(text)
        password = parts.password
    except ValueError:
        return MASK
    if not password:
        return text
    return text.replace(f":{password}@", f":{MASK}@", 1)


def source_of(path: tuple[str, ...], args: argparse.Namespace, environ: Mapping[str, str]) -> str:
    """Where a field's value came from: ``flag --x``, ``env STREAMREC_X`` or ``default``."""
    if getattr(args, "set__" + "__".join(path), None) is not None:
        return f"flag {flag_of(path)}"
    env = {k.upper() for k in environ}  # pydantic-settings reads names case-insensitively
    if env_of(path) in env:
        return f"env {env_of(path)}"
    if len(path) > 1 and env_of(path[:1]) in env:
        return f"env {env_of(path[:1])} (JSON)"
    return "default"


def effective_settings(
    settings: Settings, args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> list[Row]:
    """Every field of ``settings`` with its masked value and its source."""
    environ = os.environ if environ is None else environ
    rows = []
    for path, _info in settings_fields(Settings):
        value: Any = settings
        for p in path:
            value = getattr(value, p)
        shown = mask(value, path in SECRET_PATHS)
        rows.append(Row(".".join(path), shown, source_of(path, args, environ), env_of(path), flag_of(path)))
    return rows
