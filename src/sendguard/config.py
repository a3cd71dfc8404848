"""The sendguard configuration file: TOML, validated, with environment overrides.

`SENDGUARD_<SECTION>__<KEY>=value` overrides `[section] key` (values that
look like JSON lists or objects are parsed as JSON). Relative paths are
relative to the configuration file's folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo
from pydantic.functional_validators import AfterValidator

__all__ = ["Config", "ConfigError", "ConfigPath", "DirectoryConfig", "RulesConfig", "load_config"]


class ConfigError(ValueError):
    """The configuration is invalid; the message names file and field."""


def _resolve(p: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    return p if p.is_absolute() or base is None else (Path(base) / p)


ConfigPath = Annotated[Path, AfterValidator(_resolve)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DirectoryConfig(_Section):
    sources: list[ConfigPath] = Field(default_factory=list)
    """FHIR JSON/NDJSON and CSV files or folders that make up the directory."""
    snapshot: ConfigPath | None = None
    """Compiled directory file: rebuilt when the sources change, mapped in a
    second otherwise (recommended above ~100 000 entries)."""
    region: str = "GB"
    """Country whose dialling rules apply to numbers written without +CC."""


class RulesConfig(_Section):
    defaults: list[ConfigPath] | None = None
    """Folders or files of default rules; unset means the shipped rules."""
    local: list[ConfigPath] = Field(default_factory=list)
    """Folders or files of local rules, merged over the defaults by rule name."""


class Config(_Section):
    directory: DirectoryConfig = Field(default_factory=DirectoryConfig)
    rules: RulesConfig = Field(default_factory=RulesConfig)
    source: Path | None = Field(default=None, exclude=True)


def _env_overrides(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    for key, value in environ.items():
        if not key.startswith("SENDGUARD_") or "__" not in key:
            continue
        path = key[len("SENDGUARD_") :].lower().split("__")
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            v: Any = value
            if value[:1] in "[{":
                with contextlib.suppress(json.JSONDecodeError):
                    v = json.loads(value)
            node[path[-1]] = v


def load_config(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """Read a configuration file (or none: all defaults) plus the environment."""
    data: dict[str, Any] = {}
    base = None
    name = "(defaults)"
    if path is not None:
        p = Path(path)
        name = str(p)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{name}: cannot read: {exc.strerror or exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{name}: not valid TOML: {exc}") from None
        base = p.resolve().parent
    _env_overrides(data, os.environ if environ is None else environ)
    try:
        cfg = Config.model_validate(data, context={"base_dir": base})
    except ValidationError as exc:
        lines = [f"{name}: {'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None
    cfg.source = Path(path) if path is not None else None
    return cfg
