"""The `nntpd user ...` commands (spec: accounts, passwords, staff/MVP flags), run with click's CliRunner
against a temporary SQLite database; one end-to-end test checks the running server sees the changes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli import main
from conftest import start_server
from nntpd.config import AccessRule, Settings
from nntpd.passwords import verify_password
from storage import Store


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Run `nntpd --database URL ARGS...` on an initialised database, isolated from any nntpd.toml."""
    monkeypatch.delenv("NNTPD_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    url = f"sqlite+aiosqlite:///{tmp_path}/x.sqlite3"
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Result:
        return runner.invoke(main, ["--database", url, *args], input=input)

    result = run("init")
    assert result.exit_code == 0, result.output
    run.url = url  # type: ignore[attr-defined]
    return run


def account(url: str, name: str):
    async def fetch():
        store = Store(url)
        try:
            return await store.account(name), await store.role_changes(name)
        finally:
            await store.close()

    return asyncio.run(fetch())


def listed(cli, *args: str) -> list[dict]:
    result = cli("user", "list", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def one_line_error(result: Result) -> str:
    assert result.exit_code != 0
    text = result.output.strip()
    assert text and "\n" not in text, text
    assert "Traceback" not in text
    return text


def test_user_add_with_password_on_stdin(cli):
    """Spec: `user add NAME --email --display-name --password-stdin` creates a member with a scrypt hash."""
    result = cli("user", "add", "alice", "--email", "a@x", "--display-name", "Alice A", "--password-stdin",
                 input="longpassword\n")
    assert result.exit_code == 0, result.output
    assert "alice" in result.output
    info, changes = account(cli.url, "alice")
    assert (info.email, info.display_name, info.role, info.disabled) == ("a@x", "Alice A", "member", False)
    assert info.password_hash.startswith("scrypt$")
    assert verify_password("longpassword", info.password_hash)
    assert not verify_password("longpassword\n", info.password_hash)
    assert "longpassword" not in info.password_hash
    assert changes == []


def test_user_add_duplicate_is_one_line_error(cli):
    """Spec: adding an existing user fails with a non-zero exit and a one-line error."""
    assert cli("user", "add", "alice", "--email", "a@x", "--password-stdin", input="longpassword\n").exit_code == 0
    result = cli("user", "add", "alice", "--email", "other@x", "--password-stdin", input="longpassword\n")
    assert "alice" in one_line_error(result)
    info, _ = account(cli.url, "alice")
    assert info.email == "a@x"


def test_user_add_short_password_refused(cli):
    """Spec: a password shorter than 8 characters is refused and no account is created."""
    result = cli("user", "add", "alice", "--email", "a@x", "--password-stdin", input="short\n")
    assert "short" in one_line_error(result).lower()
    assert account(cli.url, "alice")[0] is None


def test_user_add_rejects_bad_name_and_email(cli):
    """Spec: names are letters, digits, . _ - and emails need an @; both refused in one line."""
    one_line_error(cli("user", "add", "bad name", "--email", "a@x", "--password-stdin", input="longpassword\n"))
    one_line_error(cli("user", "add", "bob", "--email", "no-at-sign", "--password-stdin", input="longpassword\n"))
    assert listed(cli) == []


def test_user_flag_mvp_and_list_by_role(cli):
    """Spec: `user flag alice --mvp` then `user list --role mvp --json` shows her; the change is recorded."""
    cli("user", "add", "alice", "--email", "a@x", "--password-stdin", input="longpassword\n")
    cli("user", "add", "bob", "--email", "b@x", "--password-stdin", input="longpassword\n")
    result = cli("user", "flag", "alice", "--mvp", "--by", "carol")
    assert result.exit_code == 0, result.output
    mvps = listed(cli, "--role", "mvp")
    assert [(a["name"], a["role"], a["email"]) for a in mvps] == [("alice", "mvp", "a@x")]
    assert [a["name"] for a in listed(cli, "--role", "member")] == ["bob"]
    assert listed(cli, "--role", "staff") == []
    _, changes = account(cli.url, "alice")
    assert [(c.old_role, c.new_role, c.changed_by) for c in changes] == [("member", "mvp", "carol")]
    assert cli("user", "flag", "alice", "--staff").exit_code == 0
    assert [a["name"] for a in listed(cli, "--role", "staff")] == ["alice"]
    assert cli("user", "flag", "alice", "--member").exit_code == 0
    _, changes = account(cli.url, "alice")
    assert [(c.old_role, c.new_role) for c in changes] == [("member", "mvp"), ("mvp", "staff"), ("staff", "member")]
    assert all(c.changed_by for c in changes)


def test_user_flag_without_role_is_usage_error(cli):
    """Spec: `user flag NAME` without --staff/--mvp/--member is a usage error (exit 2), nothing changes."""
    cli("user", "add", "alice", "--email", "a@x", "--password-stdin", input="longpassword\n")
    result = cli("user", "flag", "alice")
    assert result.exit_code == 2, result.output
    assert account(cli.url, "alice")[0].role == "member"


@pytest.mark.parametrize("flags", [("--staff", "--mvp"), ("--mvp", "--staff"), ("--member", "--staff"),
                                   ("--staff", "--mvp", "--member")])
def test_user_flag_two_roles_is_usage_error(cli, flags):
    """Issue 14: `user flag --staff --mvp` is refused (exit 2, one error line); it used to pick one."""
    cli("user", "add", "alice", "--email", "a@x", "--password-stdin", input="longpassword\n")
    result = cli("user", "flag", "alice", *flags)
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[-1] == "Error: choose one of --staff, --mvp, --member"
    assert "Traceback" not in result.output
    info, changes = account(cli.url, "alice")
    assert (info.role, changes) == ("member", [])


def test_user_flag_unknown_user(cli):
    """Spec: flagging an unknown user is a one-line error."""
    assert "nobody" in one_line_error(cli("user", "flag", "nobody", "--staff"))


def test_user_disable_and_enable(cli):
    """Spec: `user disable` / `user enable` toggle the account's disabled flag."""
    cli("user", "add", "alice", "--email", "a@x", "--password-stdin", input="longpassword\n")
    assert cli("user", "disable", "alice").exit_code == 0
    assert [a["disabled"] for a in listed(cli)] == [True]
    assert account(cli.url, "alice")[0].disabled is True
    assert cli("user", "enable", "alice").exit_code == 0
    assert [a["disabled"] for a in listed(cli)] == [False]
    one_line_error(cli("user", "disable", "nobody"))


def test_user_passwd(cli):
    """Spec: `user passwd NAME --password-stdin` replaces the password; short ones are refused."""
    cli("user", "add", "alice", "--email", "a@x", "--password-stdin", input="longpassword\n")
    result = cli("user", "passwd", "alice", "--password-stdin", input="another-long-one\n")
    assert result.exit_code == 0, result.output
    info, _ = account(cli.url, "alice")
    assert verify_password("another-long-one", info.password_hash)
    assert not verify_password("longpassword", info.password_hash)
    one_line_error(cli("user", "passwd", "alice", "--password-stdin", input="tiny\n"))
    assert verify_password("another-long-one", account(cli.url, "alice")[0].password_hash)
    one_line_error(cli("user", "passwd", "nobody", "--password-stdin", input="another-long-one\n"))


def test_user_list_plain_text(cli):
    """Spec: `user list` shows name, role and email, marking disabled accounts."""
    cli("user", "add", "alice", "--email", "a@x", "--password-stdin", input="longpassword\n")
    cli("user", "flag", "alice", "--staff")
    cli("user", "disable", "alice")
    result = cli("user", "list")
    assert result.exit_code == 0
    header, line = result.stdout.strip().splitlines()
    assert header.split("\t") == ["NAME", "ROLE", "EMAIL", "DISPLAY NAME"]  # issue 14
    assert line.split("\t")[:3] == ["alice", "staff", "a@x"] and "disabled" in line


def test_user_list_header_without_accounts(cli):
    """Issue 14: the text listing starts with a header row; --json stays a bare list."""
    assert cli("user", "list").stdout == "NAME\tROLE\tEMAIL\tDISPLAY NAME\n"
    assert listed(cli) == []


async def test_cli_changes_reach_running_server(tmp_path, monkeypatch):
    """Spec: accounts made with the CLI log in to a running server, and `user flag --staff` applies to
    the very next post of an open session (no restart, no reconnect); after `user disable` the
    session is anonymous, and anonymous clients may not post here (480)."""
    monkeypatch.delenv("NNTPD_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    handle = await start_server(tmp_path, Settings(access=(AccessRule(post="authenticated"),)))
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Result:
        return runner.invoke(main, ["--database", handle.url, *args], input=input)

    try:
        result = await asyncio.to_thread(run, "user", "add", "alice", "--email", "alice@example.com",
                                         "--password-stdin", input="longpassword\n")
        assert result.exit_code == 0, result.output
        client = await handle.connect()
        try:
            assert (await client.cmd("AUTHINFO USER alice")).startswith("381")
            assert (await client.cmd("AUTHINFO PASS longpassword")).startswith("281")
            article = ("From: alice@example.com\nNewsgroups: local.test\nSubject: s\n"
                       "Message-ID: <cli-{}@example.com>\n\nbody\n")
            assert (await client.post(article.format(1))).startswith("240")
            result = await asyncio.to_thread(run, "user", "flag", "alice", "--staff", "--by", "carol")
            assert result.exit_code == 0, result.output
            assert (await client.post(article.format(2))).startswith("240")
            roles = []
            for n in (1, 2):
                assert (await client.cmd(f"HEAD <cli-{n}@example.com>")).startswith("221")
                roles.append([ln for ln in await client.block() if ln.startswith("X-Poster-Role:")])
            assert roles == [[], ["X-Poster-Role: staff"]]
            result = await asyncio.to_thread(run, "user", "disable", "alice")
            assert result.exit_code == 0
            assert (await client.post(article.format(3))).startswith("480")
        finally:
            await client.close()
        client = await handle.connect()
        try:
            assert (await client.cmd("AUTHINFO USER alice")).startswith("381")
            assert (await client.cmd("AUTHINFO PASS longpassword")).startswith("481")
        finally:
            await client.close()
    finally:
        await handle.server.close()
        await handle.store.close()


@pytest.mark.parametrize("bad", ["\r\n", "\n", "\r", "\t", "\x00", "\x1b", "\x7f"])
def test_user_add_refuses_control_characters_in_display_name(cli, bad):
    """Issue 13: a CR/LF in --display-name split the Sender header the server writes into a
    forged `X-Poster-Role: staff` line; any control character is refused in one line, exit 1."""
    result = cli("user", "add", "mallory", "--email", "m@x", "--display-name",
                 f"Mallory{bad}X-Poster-Role: staff", "--password-stdin", input="longpassword\n")
    assert result.exit_code == 1
    assert "control characters" in one_line_error(result)
    assert account(cli.url, "mallory")[0] is None


@pytest.mark.parametrize("args", [
    ("user", "add", "mallory", "--email", "m@x\r\nX: y", "--password-stdin"),
    ("user", "add", "mall\nory", "--email", "m@x", "--password-stdin"),
    ("user", "add", "mallory", "--email", "mä@x", "--password-stdin"),
    ("user", "flag", "alice", "--staff", "--by", "op\r\nX: y"),
    ("user", "disable", "ali\nce"),
    ("user", "passwd", "ali\rce", "--password-stdin"),
    ("group", "create", "local.new", "--description", "one\r\ntwo"),
    ("group", "set", "local.test", "--description", "one\ttwo"),
    ("group", "remove", "local.test\n"),
])
def test_every_operator_field_refuses_control_characters(cli, args):
    """Issue 13: names, addresses, --by and group descriptions are refused with a one-line error
    and a non-zero exit (no traceback) when they hold a control character; nothing changes."""
    cli("user", "add", "alice", "--email", "a@x", "--password-stdin", input="longpassword\n")
    one_line_error(cli(*args, input="longpassword\n"))
    assert [a["name"] for a in listed(cli)] == ["alice"]
    info, changes = account(cli.url, "alice")
    assert (info.role, info.disabled, changes) == ("member", False, [])
    groups = json.loads(cli("group", "list", "--json").stdout)
    assert [(g["name"], g["description"]) for g in groups] == [
        ("local.test", "A group to try reading and posting")]
