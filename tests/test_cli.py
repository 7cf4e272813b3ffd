"""The operator CLI (cli.py) through click's CliRunner, on a temporary SQLite file.

Errors must be one clear line on stderr with a non-zero exit, never a traceback.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli import main


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    # Keep ./nntpd.toml and NNTPD_CONFIG of the developer's machine out of the way.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NNTPD_CONFIG", raising=False)
    return f"sqlite+aiosqlite:///{tmp_path}/x.sqlite3"


def run(db: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--database", db, *args])


def ok(db: str, *args: str) -> Result:
    result = run(db, *args)
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result


def fails(db: str, *args: str) -> str:
    """Run a command that must fail cleanly; return its one-line error message."""
    result = run(db, *args)
    assert result.exit_code != 0, (args, result.output)
    assert isinstance(result.exception, SystemExit), result.exception  # no traceback
    err = result.stderr.strip()
    assert err and "\n" not in err, err
    assert "Traceback" not in result.output
    return err


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One database made by `nntpd init`, copied for each test (init is the slow part)."""
    folder = tmp_path_factory.mktemp("template")
    result = CliRunner().invoke(main, ["--database", f"sqlite+aiosqlite:///{folder}/x.sqlite3", "init"])
    assert result.exit_code == 0, result.output
    return folder


@pytest.fixture
def inited(db: str, template: Path, tmp_path: Path) -> str:
    for f in template.glob("x.sqlite3*"):
        shutil.copy(f, tmp_path / f.name)
    return db


def groups(db: str) -> dict[str, dict]:
    data = json.loads(ok(db, "group", "list", "--json").stdout)
    assert isinstance(data, list)
    return {g["name"]: g for g in data}


# -- init -------------------------------------------------------------------------


def test_init_creates_database_and_sample_group(db):
    result = ok(db, "init")
    assert "Created" in result.stdout
    assert list(groups(db)) == ["local.test"]


def test_init_is_idempotent(db):
    ok(db, "init")
    second = ok(db, "init")
    assert "Upgraded" in second.stdout
    assert list(groups(db)) == ["local.test"]


def test_init_keeps_existing_groups(inited):
    ok(inited, "group", "create", "support.widgets")
    ok(inited, "init")
    assert set(groups(inited)) == {"local.test", "support.widgets"}


def test_init_no_sample(db):
    ok(db, "init", "--no-sample")
    assert groups(db) == {}


def test_sample_group_is_empty_and_open_for_posting(inited):
    g = groups(inited)["local.test"]
    assert g["status"] == "y"
    assert g["count"] == 0
    # RFC 3977 6.1.1: an empty group reports high = low - 1.
    assert g["high"] == g["low"] - 1


# -- group create / list ------------------------------------------------------


def test_group_create_with_description(inited):
    result = ok(inited, "group", "create", "support.widgets", "--description", "Widget help")
    assert "support.widgets" in result.stdout
    g = groups(inited)["support.widgets"]
    assert g["description"] == "Widget help"
    assert g["status"] == "y"
    assert g["creator"] == "cli"


def test_group_create_moderated(inited):
    ok(inited, "group", "create", "support.announce", "--moderated")
    assert groups(inited)["support.announce"]["status"] == "m"


def test_group_create_read_only(inited):
    ok(inited, "group", "create", "support.archive", "--read-only")
    assert groups(inited)["support.archive"]["status"] == "n"


def test_group_create_moderated_and_read_only_is_a_usage_error(inited):
    result = run(inited, "group", "create", "x.y", "--moderated", "--read-only")
    assert result.exit_code == 2, result.output
    # Issue 14: the message names the flags group create has (it has no --posting).
    assert result.stderr.splitlines()[-1] == "Error: choose one of --moderated, --read-only"
    assert "x.y" not in groups(inited)


def test_group_set_two_statuses_is_a_usage_error(inited):
    result = run(inited, "group", "set", "local.test", "--read-only", "--posting")
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[-1] == "Error: choose one of --moderated, --read-only, --posting"
    assert groups(inited)["local.test"]["status"] == "y"


def test_usage_errors_come_before_the_database(db, tmp_path):
    """Two status flags are refused as such, not as a missing database, and create no file."""
    result = run(db, "group", "create", "x.y", "--moderated", "--read-only")
    assert result.exit_code == 2, result.output
    assert "no database" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_group_create_existing_is_one_line_error(inited):
    err = fails(inited, "group", "create", "local.test")
    assert "local.test" in err and "exists" in err


def test_group_list_json_fields(inited):
    g = groups(inited)["local.test"]
    assert set(g) >= {"name", "status", "description", "low", "high", "count", "created", "creator"}
    assert isinstance(g["low"], int) and isinstance(g["high"], int) and isinstance(g["count"], int)


def test_group_list_text(inited):
    ok(inited, "group", "create", "support.widgets", "--description", "Widget help")
    out = ok(inited, "group", "list").stdout.splitlines()
    assert out[0].split()[:2] == ["GROUP", "STATUS"]
    rows = {line.split()[0]: line for line in out[1:]}
    assert set(rows) == {"local.test", "support.widgets"}
    assert rows["support.widgets"].endswith("Widget help")


# -- group names (RFC 5536 3.1.4) --------------------------------------------


@pytest.mark.parametrize("name", ["UPPER.ok", "a+b.c_d-e", "x.y2k", "single", "comp.lang.c++"])
def test_valid_group_names_are_accepted(inited, name):
    ok(inited, "group", "create", name)
    assert name in groups(inited)


@pytest.mark.parametrize(
    "name",
    [
        "bad..name",  # empty component
        ".lead",  # empty first component
        "trail.",  # empty last component
        "123.456",  # components of digits only (SHOULD NOT)
        "a/b",  # "/" is not a component-char
        "a b",  # whitespace
        "a:b",
        "caf\u00e9.test",  # component-char is ASCII only
        "a*",  # wildmat characters
        "a,b",
    ],
)
def test_invalid_group_names_are_refused(inited, name):
    err = fails(inited, "group", "create", name)
    assert "invalid group name" in err
    assert name not in groups(inited)


def test_group_name_longer_than_497_octets_is_refused(inited):
    # RFC 3977 3.1 argument limit: a longer name could never be selected.
    name = ".".join(["abcdefg"] * 63)  # 503 octets
    assert len(name) > 497
    fails(inited, "group", "create", name)


# -- group set / remove ------------------------------------------------------------


def test_group_set_read_only(inited):
    ok(inited, "group", "set", "local.test", "--read-only")
    assert groups(inited)["local.test"]["status"] == "n"


def test_group_set_moderated_then_posting(inited):
    ok(inited, "group", "set", "local.test", "--moderated")
    assert groups(inited)["local.test"]["status"] == "m"
    ok(inited, "group", "set", "local.test", "--posting")
    assert groups(inited)["local.test"]["status"] == "y"


def test_group_set_description_keeps_status(inited):
    ok(inited, "group", "set", "local.test", "--read-only")
    ok(inited, "group", "set", "local.test", "--description", "New text")
    g = groups(inited)["local.test"]
    assert (g["description"], g["status"]) == ("New text", "n")


def test_group_set_nothing_is_a_usage_error(inited):
    result = run(inited, "group", "set", "local.test")
    assert result.exit_code == 2, result.output


def test_group_set_unknown_group_is_one_line_error(inited):
    err = fails(inited, "group", "set", "no.such", "--read-only")
    assert "no.such" in err


def test_group_remove(inited):
    ok(inited, "group", "create", "support.widgets")
    result = ok(inited, "group", "remove", "support.widgets")
    assert "support.widgets" in result.stdout
    assert set(groups(inited)) == {"local.test"}


def test_group_remove_unknown_is_one_line_error(inited):
    err = fails(inited, "group", "remove", "no.such")
    assert "no.such" in err


def test_removed_group_can_be_created_again(inited):
    ok(inited, "group", "remove", "local.test")
    ok(inited, "group", "create", "local.test", "--read-only")
    assert groups(inited)["local.test"]["status"] == "n"


# -- commands before init ------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("group", "list"),
        ("group", "list", "--json"),
        ("group", "create", "support.widgets"),
        ("group", "set", "local.test", "--read-only"),
        ("group", "remove", "local.test"),
        ("queue", "list"),
        ("queue", "approve", "1"),
        ("queue", "reject", "1"),
    ],
    ids=lambda a: " ".join(a),
)
def test_commands_before_init_say_no_database(db, args):
    err = fails(db, *args)
    assert "no database" in err
    assert "nntpd init" in err


# -- queue -------------------------------------------------------------------------


def test_queue_list_empty(inited):
    result = ok(inited, "queue", "list")
    assert result.stdout.strip() == ""


def test_queue_list_empty_json(inited):
    assert json.loads(ok(inited, "queue", "list", "--json").stdout) == []


def test_queue_approve_unknown_id_is_one_line_error(inited):
    fails(inited, "queue", "approve", "999")


def test_queue_reject_unknown_id_is_one_line_error(inited):
    fails(inited, "queue", "reject", "999")


# -- configuration errors ----------------------------------------------------------


def test_bad_config_file_is_one_line_error(db, tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[server]\nbogus = 1\n", encoding="utf-8")
    err = CliRunner().invoke(main, ["--config", str(cfg), "--database", db, "group", "list"])
    assert err.exit_code != 0
    assert isinstance(err.exception, SystemExit), err.exception
    message = err.stderr.strip()
    assert "bogus" in message and "\n" not in message
