"""One settings object for ste-mcp: TOML file < environment (STE_MCP_*) < CLI flags.

Each architectural package owns its section (``ste_mcp/<package>/settings.py``); this module only
composes them. Environment variables use ``__`` for nesting, e.g. ``STE_MCP_LLM__BASE_URL``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ste_mcp.explorer.settings import ExplorerSettings
from ste_mcp.finetune.settings import FinetuneSettings
from ste_mcp.llm.settings import LLMSettings
from ste_mcp.memory.settings import MemorySettings
from ste_mcp.server.settings import ServerSettings
from ste_mcp.ui.settings import UISettings
from ste_mcp.upstream.settings import UpstreamSettings


def default_data_dir() -> Path:
    """Per-user data directory: $XDG_DATA_HOME/ste-mcp (or ~/.local/share/ste-mcp)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "ste-mcp"


RENAMED: dict[tuple[str, str], str] = {
    ("explorer", "idle_poll_s"): "poll_s",
    ("memory", "poll_interval_s"): "poll_s",
    ("finetune", "poll_seconds"): "poll_s",
}
"""Renamed settings keys, (section, old name) -> new name: still read, with a ``FutureWarning``. The
naming rule: a duration ends in its unit (``_s``, ``_minutes``); a loop's period is ``poll_s``."""


def config_file_from_env() -> Path | None:
    value = os.environ.get("STE_MCP_CONFIG")
    return Path(value) if value else None


class Settings(BaseSettings):
    """Everything configurable. Documented field by field in docs/CONFIG.md."""

    model_config = SettingsConfigDict(
        env_prefix="STE_MCP_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    data_dir: Path = Field(default_factory=default_data_dir, description="Everything ste-mcp writes.")
    specs: list[str] = Field(
        default_factory=list,
        description="OpenAPI / native YAML tool specs (paths or URLs). Empty: the offline toolbox.",
    )
    server: ServerSettings = Field(default_factory=ServerSettings)
    upstream: UpstreamSettings = Field(default_factory=UpstreamSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    explorer: ExplorerSettings = Field(default_factory=ExplorerSettings)
    memory: MemorySettings = Field(default_factory=MemorySettings)
    finetune: FinetuneSettings = Field(default_factory=FinetuneSettings)
    ui: UISettings = Field(default_factory=UISettings)

    @model_validator(mode="before")
    @classmethod
    def _renamed_keys(cls, data: Any) -> Any:
        """Read the old spelling of a renamed key (``RENAMED``) into the new one, with a warning."""
        if not isinstance(data, dict):
            return data
        for (section, old), new in RENAMED.items():
            values = data.get(section)
            if not isinstance(values, dict) or old not in values:
                continue
            warnings.warn(
                f"setting {section}.{old} is renamed {section}.{new}; the old name will stop working",
                FutureWarning,
                stacklevel=2,
            )
            values = dict(values)
            value = values.pop(old)
            values.setdefault(new, value)  # the new name wins when both are given
            data = {**data, section: values}
        return data

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    # where each kind of thing lives inside data_dir
    @property
    def db_dir(self) -> Path:
        return self.data_dir / "lancedb"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def adapters_dir(self) -> Path:
        return self.data_dir / "adapters"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _CONFIG_FILE or config_file_from_env()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


_CONFIG_FILE: Path | None = None


class ConfigError(Exception):
    """The configuration cannot be used; the message says where and why."""


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Build settings from an optional TOML file, the environment and explicit overrides (CLI flags).

    ``overrides`` may be nested dicts (``llm={"model": "packaged:smollm2-135m-instruct"}``); ``None``
    values are ignored so that unset CLI flags do not hide the file or environment.
    """
    global _CONFIG_FILE
    path = Path(config_file).expanduser() if config_file else None
    if path is not None and not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    clean = _drop_none(overrides)
    _CONFIG_FILE = path
    try:
        settings = Settings(**clean)
    except Exception as exc:  # pydantic ValidationError or TOML decode error
        raise ConfigError(f"invalid configuration{f' in {path}' if path else ''}: {exc}") from exc
    finally:
        _CONFIG_FILE = None
    # env/file sections are merged by pydantic-settings; explicit nested overrides win field by field
    return settings


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    return value
