"""CLI flags generated from :class:`streamrec.config.Settings`, and the one-line error.

Generating flags from the model keeps one source of truth: a field added to a section is at
once an env var and a flag, with no second list to forget.
"""

from __future__ import annotations

import argparse
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from streamrec.config import Settings


class SettingsError(Exception):
    """A bad setting, already phrased as the one line the user sees."""


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


def add_settings_flags(parser: argparse.ArgumentParser) -> None:
    """Add ``--section-field VALUE`` for every settings field (values validated later)."""
    group = parser.add_argument_group("settings (also STREAMREC_* env vars)")
    for path, info in settings_fields(Settings):
        flag = "--" + "-".join(path).replace("_", "-")
        if flag in parser._option_string_actions:  # the command defines its own flag of that name
            continue
        group.add_argument(
            flag, dest="set__" + "__".join(path), default=None, metavar="V", help=info.description or argparse.SUPPRESS
        )


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
        field = ".".join(str(p) for p in err["loc"])
        env = "STREAMREC_" + "__".join(str(p) for p in err["loc"]).upper()
        raise SettingsError(
            f"invalid setting {field} (flag --{field.replace('.', '-').replace('_', '-')}, env {env}): "
            f"{err['msg']} (got {err.get('input')!r})"
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
        out["STREAMREC_" + "__".join(path).upper()] = str(value).lower() if isinstance(value, bool) else str(value)
    return out
