"""Typed settings from TOML, with every default in one place.

Lookup order (the CLI applies it): ``--config FILE``, else the
``NNTPD_CONFIG`` environment variable, else ``./nntpd.toml`` when present,
else the built-in defaults below. Every key is documented in
``config.example.toml``.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///nntpd.sqlite3"


class ConfigError(Exception):
    """A configuration file that cannot be used; shown to the operator as one line."""


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 1119
    path_host: str = "nntpd.local"
    max_connections: int = 5000
    max_connections_per_address: int = 500
    idle_timeout: float = 600.0  # RFC 3977 3.1: at least 3 minutes for readers
    max_article_bytes: int = 1_000_000


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = DEFAULT_DATABASE_URL


@dataclass(frozen=True)
class LoggingSettings:
    level: str = "INFO"


@dataclass(frozen=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)


def _section(cls: type, data: dict[str, Any], name: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    unknown = set(data) - set(known)
    if unknown:
        raise ConfigError(f"unknown key(s) in [{name}]: {', '.join(sorted(unknown))}")
    values = {}
    for key, value in data.items():
        default = getattr(cls(), key)
        if isinstance(default, float) and isinstance(value, int):
            value = float(value)
        if type(value) is not type(default):
            raise ConfigError(f"[{name}] {key} must be {type(default).__name__}")
        values[key] = value
    return cls(**values)


def settings_from_dict(data: dict[str, Any]) -> Settings:
    sections = {f.name: f for f in fields(Settings)}
    unknown = set(data) - set(sections)
    if unknown:
        raise ConfigError(f"unknown section(s): {', '.join(sorted(unknown))}")
    parts = {}
    for name, f in sections.items():
        cls = type(getattr(Settings(), name))
        parts[name] = _section(cls, data.get(name, {}), name)
    return Settings(**parts)


def config_path(explicit: str | None) -> Path | None:
    if explicit:
        return Path(explicit)
    env = os.environ.get("NNTPD_CONFIG")
    if env:
        return Path(env)
    local = Path("nntpd.toml")
    return local if local.exists() else None


def load_settings(explicit: str | None = None, database_url: str | None = None) -> Settings:
    path = config_path(explicit)
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    settings = settings_from_dict(data)
    if database_url:
        settings = replace(settings, database=DatabaseSettings(url=database_url))
    return settings
