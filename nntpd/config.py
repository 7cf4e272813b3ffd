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
    max_header_count: int = 500
    max_header_bytes: int = 64 * 1024
    posts_per_minute: int = 30  # per account, or per address for anonymous posters; 0 = no limit
    tls_port: int = 0  # implicit TLS listener (563 in production); 0 = off
    feed_access: str = "nobody"  # who may relay articles with IHAVE (an access level); IHAVE is for peers
    workers: int = 1  # server processes sharing the port (SO_REUSEPORT) and the limits' counts
    writer_process: bool = True  # SQLite, several workers: one process commits all posts (writer_link.py)


@dataclass(frozen=True)
class TLSSettings:
    certificate: str = ""  # PEM certificate chain; STARTTLS and tls_port need both files
    key: str = ""


@dataclass(frozen=True)
class AuthSettings:
    allow_cleartext: bool = False  # allow AUTHINFO on unencrypted non-loopback connections
    loopback_is_secure: bool = True  # treat 127.0.0.1/::1 as private enough for AUTHINFO
    failure_delay: float = 1.0  # seconds added per recent failed login from one address
    max_failure_delay: float = 10.0
    lockout_failures: int = 10  # attempts at one account from one address before that pair is locked
    lockout_failures_any_address: int = 100  # attempts at one account from anywhere before it is locked; 0 = off
    lockout_seconds: float = 900.0


ACCESS_LEVELS = ("anyone", "loopback", "authenticated", "trusted", "nobody")


@dataclass(frozen=True)
class AccessRule:
    """Who may read and post in the groups a wildmat names; the last matching rule wins.

    Levels: anyone; loopback (anonymous on loopback, or any account);
    authenticated (any account); trusted (staff or MVP accounts); nobody.
    """

    groups: str = "*"
    read: str = "anyone"
    post: str = "loopback"


@dataclass(frozen=True)
class ViewSettings:
    visible_to: str = "trusted"  # who sees unanswered.* and awaiting-staff.*: trusted or anyone


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
    tls: TLSSettings = field(default_factory=TLSSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    views: ViewSettings = field(default_factory=ViewSettings)
    access: tuple[AccessRule, ...] = (AccessRule(),)


def _section(cls: type, data: dict[str, Any], name: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"[{name}] must be a table")
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
    parts: dict[str, Any] = {}
    for name in sections:
        if name == "access":
            continue
        cls = type(getattr(Settings(), name))
        parts[name] = _section(cls, data.get(name, {}), name)
    if "access" in data:
        rules = data["access"]
        if not isinstance(rules, list):
            raise ConfigError("access must be an array of tables ([[access]])")
        parts["access"] = tuple(_access_rule(rule) for rule in rules)
    settings = Settings(**parts)
    for key in ("port", "tls_port"):
        port = getattr(settings.server, key)
        if not 0 <= port <= 65535:
            raise ConfigError(f"[server] {key} must be a TCP port from 0 to 65535, not {port}")
    if settings.server.idle_timeout < 180:
        raise ConfigError("[server] idle_timeout must be at least 180 seconds (RFC 3977 3.1)")
    if settings.server.feed_access not in ACCESS_LEVELS:
        raise ConfigError(f"[server] feed_access must be one of {', '.join(ACCESS_LEVELS)}")
    if settings.views.visible_to not in ("trusted", "anyone"):
        raise ConfigError("[views] visible_to must be 'trusted' or 'anyone'")
    return settings


def _access_rule(data: dict[str, Any]) -> AccessRule:
    rule = _section(AccessRule, data, "access")
    for key in ("read", "post"):
        if getattr(rule, key) not in ACCESS_LEVELS:
            raise ConfigError(f"[[access]] {key} must be one of {', '.join(ACCESS_LEVELS)}")
    return rule


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
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    settings = settings_from_dict(data)
    if database_url:
        settings = replace(settings, database=DatabaseSettings(url=database_url))
    return settings
