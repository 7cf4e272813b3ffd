"""Issue 14 section 4: the command line never shows a traceback.

Each failure below printed a 46-61 line traceback before; each must now be one
`Error: ...` line and a non-zero exit. They run the installed `nntpd` script in a
real subprocess, as an operator does, from an empty working directory that must
stay empty: a command that fails leaves no database file (nor lock file) behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from cli import main
from nntpd import __version__
from nntpd.config import ConfigError, settings_from_dict

SCRIPT = Path(sys.executable).with_name("nntpd")  # .venv/bin/nntpd, the entry point users run


def command(*args: str, python: str = "") -> list[str]:
    if not python and SCRIPT.exists():
        return [str(SCRIPT), *args]
    return [sys.executable, "-c", f"{python}from cli import main; main()", *args]


def nntpd(cwd: Path, *args: str, python: str = "", user: list[str] | None = None,
          ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "NNTPD_CONFIG"}
    return subprocess.run([*(user or []), *command(*args, python=python)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The single `Error: ...` line of a command that failed cleanly."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


@pytest.fixture
def empty(tmp_path: Path) -> Iterator[Path]:
    """A working directory that must hold nothing after the command."""
    folder = tmp_path / "cwd"
    folder.mkdir()
    yield folder
    assert sorted(p.name for p in folder.iterdir()) == []


# -- what printed a traceback before: real subprocesses ----------------------------------------


CASES = {
    "sqlite missing folder": ("sqlite:////nonexistent_dir/x.sqlite3", ["init"],
        "Error: cannot open database sqlite:////nonexistent_dir/x.sqlite3: folder /nonexistent_dir does not exist"),
    "aiosqlite missing folder": ("sqlite+aiosqlite:////nonexistent_dir/x.sqlite3", ["init"],
        "Error: cannot open database sqlite+aiosqlite:////nonexistent_dir/x.sqlite3: "
        "folder /nonexistent_dir does not exist"),
    "missing folder, group list": ("sqlite:////nonexistent_dir/x.sqlite3", ["group", "list"],
        "Error: cannot open database sqlite:////nonexistent_dir/x.sqlite3: folder /nonexistent_dir does not exist"),
    "unparsable": ("garbage", ["init"],
        "Error: invalid database URL 'garbage': use DIALECT[+DRIVER]://..., "
        "e.g. sqlite:///nntpd.sqlite3 or postgresql+asyncpg://user:pass@host/db"),
    "unparsable, group list": ("garbage", ["group", "list"], "Error: invalid database URL 'garbage'"),
    "port not a number": ("postgresql://u:pw@host:notaport/db", ["init"], "Error: invalid database URL"),
    "unknown driver": ("postgresql+nosuchdriver://x/y", ["init"],
        "Error: cannot use database postgresql+nosuchdriver://x/y: "
        "no database or driver named 'postgresql+nosuchdriver'"),
    "mysql": ("mysql://x/y", ["init"],
        "Error: cannot use database mysql://x/y: its driver mysqldb is not installed (no Python module 'MySQLdb')"),
    "mysql, serve": ("mysql://x/y", ["serve"],
        "Error: cannot use database mysql://x/y: its driver mysqldb is not installed"),
}


@pytest.mark.parametrize("url, command_args, expected", CASES.values(), ids=CASES.keys())
def test_unusable_database_url_is_one_line(empty, url, command_args, expected):
    assert one_line_error(nntpd(empty, "--database", url, *command_args)).startswith(expected)


def test_sqlite_path_under_a_file_is_one_line(empty, tmp_path):
    (tmp_path / "plain").write_text("")
    err = one_line_error(nntpd(empty, "--database", f"sqlite:///{tmp_path}/plain/x.sqlite3", "init"))
    assert err == f"Error: cannot open database sqlite:///{tmp_path}/plain/x.sqlite3: {tmp_path}/plain is not a folder"


def test_postgres_without_the_driver_says_how_to_install_it(empty):
    """`postgresql+asyncpg://` on a machine without the postgres extra: asyncpg cannot be imported."""
    result = nntpd(empty, "--database", "postgresql+asyncpg://ann:secret@db.example/news", "init",
                   python="import sys; sys.modules['asyncpg'] = None; ")
    assert one_line_error(result) == (
        "Error: cannot use database postgresql+asyncpg://ann:***@db.example/news: its driver asyncpg is "
        "not installed (install the postgres extra: pip install -e '.[postgres]')")


def test_unreachable_postgres_is_one_line_without_the_password(empty):
    result = nntpd(empty, "--database", "postgresql+asyncpg://ann:secret@127.0.0.1:1/news", "group", "list")
    err = one_line_error(result)
    assert err.startswith("Error: cannot ") and "ann:***@127.0.0.1:1/news" in err, err
    assert "secret" not in err


@pytest.mark.skipif(not os.environ.get("NNTPD_TEST_POSTGRES_URL"),
                    reason="set NNTPD_TEST_POSTGRES_URL to a PostgreSQL server (see tests/test_postgres.py)")
@pytest.mark.parametrize("args", [("init",), ("group", "list")])
def test_postgres_database_missing_on_the_server_is_one_line_without_the_password(empty, args):
    from sqlalchemy.engine import make_url

    url = make_url(os.environ["NNTPD_TEST_POSTGRES_URL"]).set(password="secret", database="nntpd_issue14_none")
    err = one_line_error(nntpd(empty, "--database", url.render_as_string(hide_password=False), *args))
    assert err.startswith("Error: cannot open ") and 'database "nntpd_issue14_none" does not exist' in err, err
    assert "secret" not in err and ":***@" in err


@pytest.fixture
def unwritable() -> Iterator[tuple[Path, list[str]]]:
    """A folder the command cannot write to, and how to run the command so (not as root)."""
    top = Path(tempfile.mkdtemp(prefix="nntpd-ro-"))  # not under pytest's 0700 folders: nobody enters it
    try:
        top.chmod(0o755)
        folder = top / "ro"
        folder.mkdir(mode=0o555)
        folder.chmod(0o555)
        if os.geteuid() != 0:
            yield folder, []
        elif shutil.which("setpriv"):
            yield folder, ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        else:
            pytest.skip("running as root without setpriv: no way to meet an unwritable folder")
        assert list(folder.iterdir()) == []
    finally:
        (top / "ro").chmod(0o755)
        shutil.rmtree(top)


def test_sqlite_in_unwritable_folder_is_one_line(unwritable):
    folder, user = unwritable
    result = nntpd(folder.parent, "--database", f"sqlite:///{folder}/x.sqlite3", "init", user=user)
    err = one_line_error(result)
    assert err.startswith(f"Error: cannot open database sqlite:///{folder}/x.sqlite3: "), err
    # Not root: the folder check sees it; as another user, whatever refuses first is named.
    assert "not writable" in err or "Permission denied" in err, err


def test_serve_port_out_of_range_is_a_usage_error(empty):
    result = nntpd(empty, "serve", "--port", "99999")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.splitlines()[-1] == (
        "Error: Invalid value for '--port': 99999 is not in the range 0<=x<=65535.")


@pytest.mark.parametrize("key, value", [("port", 99999), ("port", -1), ("tls_port", 65536)])
def test_config_port_out_of_range_is_one_line(tmp_path, empty, key, value):
    config = tmp_path / "nntpd.toml"
    config.write_text(f"[server]\n{key} = {value}\n", encoding="utf-8")
    err = one_line_error(nntpd(empty, "--config", str(config), "serve"))
    assert err == f"Error: [server] {key} must be a TCP port from 0 to 65535, not {value}"


@pytest.mark.parametrize("port", [0, 1, 1119, 65535])
def test_config_ports_in_range_load(port):
    settings = settings_from_dict({"server": {"port": port, "tls_port": port}})
    assert (settings.server.port, settings.server.tls_port) == (port, port)


def test_config_port_check_is_a_config_error():
    with pytest.raises(ConfigError, match="port must be a TCP port from 0 to 65535, not 70000"):
        settings_from_dict({"server": {"port": 70000}})


def test_version(empty):
    result = nntpd(empty, "--version")
    assert (result.returncode, result.stdout, result.stderr) == (0, f"nntpd {__version__}\n", "")
    assert "--version" in CliRunner().invoke(main, ["--help"]).stdout


# -- a missing database: no empty file left behind ---------------------------------------------


def test_missing_database_leaves_no_file_subprocess(empty):
    err = one_line_error(nntpd(empty, "--database", "sqlite:///x.sqlite3", "group", "list"))
    assert err == "Error: no database at sqlite:///x.sqlite3: run 'nntpd init' first"


# Every command but init, with the arguments it needs to reach the database.
NEEDS_DATABASE = {
    "serve": ["serve", "--port", "0"],
    "group create": ["group", "create", "support.widgets"],
    "group list": ["group", "list"],
    "group remove": ["group", "remove", "local.test"],
    "group set": ["group", "set", "local.test", "--read-only"],
    "queue list": ["queue", "list"],
    "queue approve": ["queue", "approve", "1"],
    "queue reject": ["queue", "reject", "1"],
    "user add": ["user", "add", "alice", "--email", "a@x", "--password-stdin"],
    "user passwd": ["user", "passwd", "alice", "--password-stdin"],
    "user flag": ["user", "flag", "alice", "--staff"],
    "user disable": ["user", "disable", "alice"],
    "user enable": ["user", "enable", "alice"],
    "user list": ["user", "list"],
    "threads unanswered": ["threads", "unanswered"],
    "threads show": ["threads", "show", "<a@b>"],
    "threads resolve": ["threads", "resolve", "<a@b>"],
    "threads reopen": ["threads", "reopen", "<a@b>"],
    "report": ["report"],
}


def leaf_commands(group: click.Group, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from leaf_commands(cmd, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", cmd


def test_the_list_names_every_command_but_init():
    assert set(NEEDS_DATABASE) == {name for name, _ in leaf_commands(main)} - {"init"}


@pytest.mark.parametrize("name", sorted(NEEDS_DATABASE))
@pytest.mark.parametrize("scheme", ["sqlite", "sqlite+aiosqlite"])
def test_missing_database_leaves_no_file(empty, monkeypatch, name, scheme):
    monkeypatch.chdir(empty)
    monkeypatch.delenv("NNTPD_CONFIG", raising=False)
    url = f"{scheme}:///x.sqlite3"
    result = CliRunner().invoke(main, ["--database", url, *NEEDS_DATABASE[name]], input="longpassword\n")
    assert result.exit_code == 1, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.stderr == f"Error: no database at {url}: run 'nntpd init' first\n"


def test_init_still_creates_a_relative_database(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NNTPD_CONFIG", raising=False)
    result = CliRunner().invoke(main, ["--database", "sqlite:///x.sqlite3", "init"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "x.sqlite3").stat().st_size > 0
    assert CliRunner().invoke(main, ["--database", "sqlite:///x.sqlite3", "group", "list"]).exit_code == 0


# -- help texts ------------------------------------------------------------------------------


def test_every_json_option_has_help():
    with_json = []
    for name, cmd in leaf_commands(main):
        for param in cmd.params:
            if isinstance(param, click.Option) and "--json" in param.opts:
                with_json.append(name)
                assert param.help and "JSON" in param.help, name
    assert sorted(with_json) == ["group list", "queue list", "report", "threads unanswered", "user list"]
