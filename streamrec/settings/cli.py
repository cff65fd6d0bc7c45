"""CLI flags generated from :class:`streamrec.config.Settings`, and the one-line error.

Generating flags from the model keeps one source of truth: a field added to a section is at
once an env var and a flag, with no second list to forget. Each command names the top-level
fields and sections it reads (``SETTINGS`` in its module), so its ``--help`` lists those flags
only; every field stays settable by its ``STREAMREC_*`` variable everywhere.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic.fields import FieldInfo

from streamrec.config import Settings


class SettingsError(Exception):
    """A bad setting, already phrased as the one line the user sees."""


def _is_secret(info: FieldInfo) -> bool:
    """Secrets and fields kept out of repr (URLs that carry a password) are never printed."""
    return info.annotation is SecretStr or info.repr is False


def settings_fields(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], FieldInfo]]:
    """Every leaf field of the settings model with its path (sections flattened)."""
    out: list[tuple[tuple[str, ...], FieldInfo]] = []
    for name, info in model.model_fields.items():
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out.extend(settings_fields(ann, (*prefix, name)))
        else:
            out.append(((*prefix, name), info))
    return out


ALL = "*"  # a command that reads every setting (or hands them all to child processes)
ALWAYS = ("log_level",)  # read by the CLI itself for every command


def flag_of(path: tuple[str, ...]) -> str:
    return "--" + "-".join(path).replace("_", "-")


def env_of(path: tuple[str, ...]) -> str:
    return "STREAMREC_" + "__".join(path).upper()


def used_fields(uses: Sequence[str]) -> list[tuple[tuple[str, ...], FieldInfo]]:
    """The fields a command reads: ``uses`` names top-level fields and sections (or ``ALL``)."""
    return [(p, i) for p, i in settings_fields(Settings) if ALL in uses or p[0] in uses or p[0] in ALWAYS]


def add_settings_flags(parser: argparse.ArgumentParser, uses: Sequence[str]) -> None:
    """Add ``--section-field VALUE`` for every settings field the command reads (values validated later)."""
    group = parser.add_argument_group("settings (each also a STREAMREC_* env var; see: streamrec config show)")
    for path, info in used_fields(uses):
        flag = flag_of(path)
        if flag in parser._option_string_actions:  # the command defines its own flag of that name
            continue
        group.add_argument(flag, dest="set__" + "__".join(path), default=None, metavar="V", help=info.description)


SECRET_PATHS = frozenset(p for p, i in settings_fields(Settings) if _is_secret(i))


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Build settings from env + the flags given; raise SettingsError with one line naming the field."""
    overrides: dict[str, Any] = {}
    for key, value in vars(args).items():
        if not key.startswith("set__") or value is None:
            continue
        node = overrides
        *parents, leaf = key[len("set__") :].split("__")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        path = tuple(str(p) for p in err["loc"])
        why = err["msg"].removeprefix("Value error, ")
        got = "" if path in SECRET_PATHS else f" (got {err.get('input')!r})"  # a URL may carry a password
        raise SettingsError(
            f"invalid setting {'.'.join(path)} (flag {flag_of(path)}, env {env_of(path)}): {why}{got}"
        ) from None


def settings_env(settings: Settings) -> dict[str, str]:
    """``STREAMREC_*`` variables reproducing every non-default field, so child processes
    (worker, trainer) see exactly the settings the parent was given by flag or env."""
    defaults = Settings.model_construct()
    out: dict[str, str] = {}
    for path, _info in settings_fields(Settings):
        value: Any = settings
        default: Any = defaults
        for p in path:
            value, default = getattr(value, p), getattr(default, p)
        if value == default:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        out[env_of(path)] = str(value).lower() if isinstance(value, bool) else str(value)
    return out
