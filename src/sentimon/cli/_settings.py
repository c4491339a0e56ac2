"""Flags mirror settings: each flag's help is the setting's docstring, its env var is shown."""

from __future__ import annotations

from typing import Any

import typer
from pydantic import ValidationError

from sentimon.config import Settings


def flag(name: str, *param_decls: str) -> Any:
    field = Settings.model_fields[name]
    env = f"SENTIMON_{name.upper()}"
    return typer.Option(*param_decls, help=f"{field.description} (env: {env})", show_default=False)


def settings_from(**overrides: Any) -> Settings:
    """Settings from the environment, with the flags that were given on top."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise typer.BadParameter(problems) from None
