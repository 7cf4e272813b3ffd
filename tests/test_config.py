"""TOML settings (nntpd/config.py): defaults, lookup order, validation."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from nntpd.config import (
    DEFAULT_DATABASE_URL,
    ConfigError,
    Settings,
    config_path,
    load_settings,
    settings_from_dict,
)


@pytest.fixture
def clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory and no NNTPD_CONFIG in the environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NNTPD_CONFIG", raising=False)
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def assert_one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert message and "\n" not in message.strip(), message
    return message


# -- defaults -------------------------------------------------------------------


def test_defaults_without_any_file(clean):
    assert load_settings() == Settings()


def test_default_values(clean):
    s = load_settings()
    assert s.server.host == "127.0.0.1"
    assert s.server.port == 1119
    assert s.database.url == DEFAULT_DATABASE_URL == "sqlite+aiosqlite:///nntpd.sqlite3"
    assert s.logging.level == "INFO"


def test_default_idle_timeout_is_at_least_three_minutes(clean):
    # RFC 3977 3.1: a server MUST NOT time out a client in under three minutes.
    assert load_settings().server.idle_timeout >= 180


def test_config_path_is_none_without_any_source(clean):
    assert config_path(None) is None


def test_settings_are_immutable(clean):
    s = load_settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.server.port = 1  # type: ignore[misc]


# -- reading a file ---------------------------------------------------------


def test_explicit_file_values_override_defaults(clean):
    path = write(clean / "my.toml", '[server]\nport = 2119\nhost = "0.0.0.0"\n[logging]\nlevel = "DEBUG"\n')
    s = load_settings(str(path))
    assert (s.server.port, s.server.host, s.logging.level) == (2119, "0.0.0.0", "DEBUG")


def test_keys_not_in_file_keep_their_defaults(clean):
    s = load_settings(str(write(clean / "my.toml", "[server]\nport = 2119\n")))
    assert s.server.path_host == "nntpd.local"
    assert s.server.max_article_bytes == 1_000_000
    assert s.database.url == DEFAULT_DATABASE_URL


def test_empty_file_gives_defaults(clean):
    assert load_settings(str(write(clean / "empty.toml", ""))) == Settings()


def test_integer_is_accepted_for_float_setting(clean):
    s = load_settings(str(write(clean / "c.toml", "[server]\nidle_timeout = 300\n")))
    assert s.server.idle_timeout == 300.0
    assert isinstance(s.server.idle_timeout, float)


def test_database_url_from_file(clean):
    s = load_settings(str(write(clean / "c.toml", '[database]\nurl = "sqlite+aiosqlite:///other.db"\n')))
    assert s.database.url == "sqlite+aiosqlite:///other.db"


# -- unknown keys and bad values ------------------------------------------


def test_unknown_key_in_section_is_rejected(clean):
    path = write(clean / "c.toml", "[server]\nprot = 2119\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(str(path))
    message = assert_one_line(exc)
    assert "prot" in message and "server" in message


def test_unknown_section_is_rejected(clean):
    path = write(clean / "c.toml", "[sever]\nport = 2119\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(str(path))
    assert "sever" in assert_one_line(exc)


def test_unknown_top_level_key_is_rejected(clean):
    with pytest.raises(ConfigError):
        load_settings(str(write(clean / "c.toml", "debug = true\n")))


def test_nested_table_in_section_is_rejected(clean):
    with pytest.raises(ConfigError):
        load_settings(str(write(clean / "c.toml", "[server.tls]\ncert = \"x\"\n")))


def test_wrong_type_is_rejected(clean):
    path = write(clean / "c.toml", '[server]\nport = "2119"\n')
    with pytest.raises(ConfigError) as exc:
        load_settings(str(path))
    assert "port" in assert_one_line(exc)


def test_boolean_is_not_an_integer(clean):
    # bool is a subclass of int in Python; TOML true must not pass as a port.
    with pytest.raises(ConfigError):
        load_settings(str(write(clean / "c.toml", "[server]\nport = true\n")))


def test_float_is_not_an_integer(clean):
    with pytest.raises(ConfigError):
        load_settings(str(write(clean / "c.toml", "[server]\nmax_connections = 10.5\n")))


def test_section_that_is_not_a_table_is_rejected(clean):
    # "server = 1" is valid TOML but not a [server] table: a ConfigError, not a crash.
    with pytest.raises(ConfigError):
        load_settings(str(write(clean / "c.toml", "server = 1\n")))


def test_invalid_toml_is_a_one_line_config_error(clean):
    path = write(clean / "c.toml", "[server\nport = \n")
    with pytest.raises(ConfigError) as exc:
        load_settings(str(path))
    assert "c.toml" in assert_one_line(exc)


def test_missing_explicit_file_is_a_config_error(clean):
    with pytest.raises(ConfigError) as exc:
        load_settings(str(clean / "nope.toml"))
    assert "nope.toml" in assert_one_line(exc)


def test_directory_as_config_file_is_a_config_error(clean):
    (clean / "conf.d").mkdir()
    with pytest.raises(ConfigError):
        load_settings(str(clean / "conf.d"))


def test_non_utf8_file_is_a_config_error(clean):
    path = clean / "latin1.toml"
    path.write_bytes('[server]\npath_host = "caf\u00e9"\n'.encode("latin-1"))
    with pytest.raises(ConfigError):
        load_settings(str(path))


def test_settings_from_dict_rejects_unknown_key():
    with pytest.raises(ConfigError):
        settings_from_dict({"logging": {"level": "INFO", "format": "x"}})


def test_settings_from_dict_empty_is_defaults():
    assert settings_from_dict({}) == Settings()


# -- lookup order -------------------------------------------------------------


def test_env_var_is_used(clean, monkeypatch):
    path = write(clean / "env.toml", "[server]\nport = 3119\n")
    monkeypatch.setenv("NNTPD_CONFIG", str(path))
    assert config_path(None) == path
    assert load_settings().server.port == 3119


def test_local_nntpd_toml_is_used(clean):
    write(clean / "nntpd.toml", "[server]\nport = 4119\n")
    assert config_path(None) == Path("nntpd.toml")
    assert load_settings().server.port == 4119


def test_local_nntpd_toml_is_relative_to_working_directory(clean, monkeypatch):
    write(clean / "nntpd.toml", "[server]\nport = 4119\n")
    other = clean / "elsewhere"
    other.mkdir()
    monkeypatch.chdir(other)
    assert load_settings().server.port == 1119


def test_env_var_beats_local_file(clean, monkeypatch):
    write(clean / "nntpd.toml", "[server]\nport = 4119\n")
    path = write(clean / "env.toml", "[server]\nport = 3119\n")
    monkeypatch.setenv("NNTPD_CONFIG", str(path))
    assert load_settings().server.port == 3119


def test_explicit_file_beats_env_var_and_local_file(clean, monkeypatch):
    write(clean / "nntpd.toml", "[server]\nport = 4119\n")
    monkeypatch.setenv("NNTPD_CONFIG", str(write(clean / "env.toml", "[server]\nport = 3119\n")))
    explicit = write(clean / "explicit.toml", "[server]\nport = 5119\n")
    assert load_settings(str(explicit)).server.port == 5119


def test_env_var_pointing_to_missing_file_is_an_error(clean, monkeypatch):
    # An explicitly named file that is missing is an error, not a silent fallback.
    write(clean / "nntpd.toml", "[server]\nport = 4119\n")
    monkeypatch.setenv("NNTPD_CONFIG", str(clean / "missing.toml"))
    with pytest.raises(ConfigError):
        load_settings()


def test_empty_env_var_is_ignored(clean, monkeypatch):
    monkeypatch.setenv("NNTPD_CONFIG", "")
    assert load_settings() == Settings()


# -- --database override ------------------------------------------------------


def test_database_override_without_file(clean):
    s = load_settings(None, "sqlite+aiosqlite:///override.db")
    assert s.database.url == "sqlite+aiosqlite:///override.db"


def test_database_override_beats_file(clean):
    path = write(clean / "c.toml", '[database]\nurl = "sqlite+aiosqlite:///file.db"\n[server]\nport = 2119\n')
    s = load_settings(str(path), "sqlite+aiosqlite:///override.db")
    assert s.database.url == "sqlite+aiosqlite:///override.db"
    assert s.server.port == 2119  # the rest of the file still applies


def test_database_override_does_not_hide_config_errors(clean):
    path = write(clean / "c.toml", "[server]\nbogus = 1\n")
    with pytest.raises(ConfigError):
        load_settings(str(path), "sqlite+aiosqlite:///override.db")


def test_example_file_lists_the_built_in_defaults(clean):
    """config.example.toml says it shows every key with its default: it must load to exactly those."""
    example = Path(__file__).resolve().parent.parent / "config.example.toml"
    assert load_settings(str(example)) == Settings()
    text = example.read_text(encoding="utf-8")
    for section in dataclasses.fields(Settings):
        value = getattr(Settings(), section.name)
        if dataclasses.is_dataclass(value):
            for key in dataclasses.fields(value):
                assert f"\n{key.name} = " in text or f"\n# {key.name} = " in text, (section.name, key.name)
