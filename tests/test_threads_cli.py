"""The operator's view of support threads (issue 4): `nntpd threads ...` and `nntpd report`.

The database is built once through a real server over TCP (accounts log in with
AUTHINFO and post), then the server is closed and the CLI runs against the same
database file with click's CliRunner.

The scenario, in posting order (numbers are per group):

  local.other  <o1@test>  carol  "Driver question"            alone            -> unanswered
  local.test   <q1@test>  bob    "Printer on fire"            + bob's own reply -> unanswered
  local.test   <q2@test>  carol  "Login fails"                + bob answers     -> awaiting staff
  local.test   <q3@test>  bob    "Crash on start"             + mia (MVP), carol, mia again
  local.other  <o2@test>  carol  "Scanner offline"            + sam (staff)

local.test: 8 articles, 3 threads (2 answered, 1 by staff/MVP), 1 unanswered now.
local.other: 3 articles, 2 threads (1 answered, 1 by staff/MVP), 1 unanswered now.
Answerers (replies by someone other than the OP): mia 2 (mvp), bob 1, carol 1, sam 1 (staff).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli import main
from conftest import Client, start_server
from nntpd.passwords import hash_password

PASSWORD = "pw-123456"
TEST = "local.test"
OTHER = "local.other"
ACCOUNTS = {"bob": "member", "carol": "member", "mia": "mvp", "sam": "staff"}

# (poster, group(s), message-id, subject, references) in posting order
POSTS = [
    ("carol", (OTHER,), "<o1@test>", "Driver question", None),
    ("bob", (TEST,), "<q1@test>", "Printer on fire", None),
    ("bob", (TEST,), "<q1-bob@test>", "Re: Printer on fire", "<q1@test>"),
    ("carol", (TEST,), "<q2@test>", "Login fails", None),
    ("bob", (TEST,), "<q2-bob@test>", "Re: Login fails", "<q2@test>"),
    ("bob", (TEST,), "<q3@test>", "Crash on start", None),
    ("mia", (TEST,), "<q3-mia@test>", "Re: Crash on start", "<q3@test>"),
    ("carol", (TEST,), "<q3-carol@test>", "Re: Crash on start", "<q3@test> <q3-mia@test>"),
    ("mia", (TEST,), "<q3-mia2@test>", "Re: Crash on start",
     "<q3@test> <q3-mia@test> <q3-carol@test>"),
    ("carol", (OTHER,), "<o2@test>", "Scanner offline", None),
    ("sam", (OTHER,), "<o2-sam@test>", "Re: Scanner offline", "<o2@test>"),
]


async def _build(tmp_path: Path) -> str:
    handle = await start_server(tmp_path)
    clients: list[Client] = []
    try:
        store = handle.store
        await store.create_group(OTHER, description="Another group", creator="test")
        for name, role in ACCOUNTS.items():
            await store.add_account(name, email=f"{name}@example.com",
                                    password_hash=hash_password(PASSWORD, n=2**10))
            if role != "member":
                await store.set_role(name, role, changed_by="test")
        sessions: dict[str, Client] = {}
        for name in ACCOUNTS:
            c = await handle.connect()
            clients.append(c)
            assert (await c.cmd(f"AUTHINFO USER {name}")).startswith("381")
            assert (await c.cmd(f"AUTHINFO PASS {PASSWORD}")).startswith("281")
            sessions[name] = c
        for poster, groups, mid, subject, refs in POSTS:
            text = (f"From: {poster.capitalize()} <{poster}@example.com>\n"
                    f"Newsgroups: {','.join(groups)}\nSubject: {subject}\nMessage-ID: {mid}\n")
            if refs:
                text += f"References: {refs}\n"
            status = await sessions[poster].post(text + "\nSome text.\n")
            assert status.startswith("240"), (mid, status)
        return handle.url
    finally:
        for c in clients:
            await c.close()
        await handle.server.close()
        await handle.store.close()


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory):
    """Run the CLI against the scenario's database: cli("threads", "unanswered") -> Result."""
    tmp_path = tmp_path_factory.mktemp("threads_cli")
    url = asyncio.run(_build(tmp_path))
    config = tmp_path / "empty.toml"  # keep any nntpd.toml / NNTPD_CONFIG out of the way
    config.write_text("")
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(main, ["--config", str(config), "--database", url, *args])

    return run


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.exit_code, result.output, result.exception)
    return result.output


def unanswered_json(cli, *args: str) -> list[dict]:  # type: ignore[no-untyped-def]
    return json.loads(ok(cli("threads", "unanswered", "--json", *args)))


def ids(rows: list[dict]) -> list[str]:
    return [r["message_id"] for r in rows]


# -- threads unanswered ------------------------------------------------------

def test_unanswered_json_lists_exactly_the_open_threads_busiest_group_first(cli) -> None:
    """Busiest group first (local.test: 8 posts, local.other: 3), oldest first within a group."""
    rows = unanswered_json(cli)
    assert ids(rows) == ["<q1@test>", "<o1@test>"]
    q1, o1 = rows
    for row in rows:
        assert {"message_id", "group", "subject", "author", "posts", "age_seconds"} <= set(row)
        assert isinstance(row["age_seconds"], int) and 0 <= row["age_seconds"] < 600
    assert (q1["group"], q1["subject"], q1["posts"]) == (TEST, "Printer on fire", 2)
    assert (o1["group"], o1["subject"], o1["posts"]) == (OTHER, "Driver question", 1)
    assert "bob" in q1["author"].lower()
    assert "carol" in o1["author"].lower()


def test_unanswered_table(cli) -> None:
    lines = [ln for ln in ok(cli("threads", "unanswered")).splitlines() if ln.strip()]
    assert len(lines) == 3, lines  # header + one line per open thread
    header, first, second = lines
    assert "GROUP" in header and "SUBJECT" in header and "AUTHOR" in header and "POSTS" in header
    assert TEST in first and "Printer on fire" in first and "bob" in first.lower()
    assert "2" in first.split()
    assert OTHER in second and "Driver question" in second and "carol" in second.lower()
    assert "1" in second.split()
    for answered in ("Login fails", "Crash on start", "Scanner offline"):
        assert answered not in "\n".join(lines)


def test_awaiting_staff(cli) -> None:
    """<q2@test> was answered by a member only: still awaiting staff; <q3@test>/<o2@test> are not."""
    rows = unanswered_json(cli, "--awaiting-staff")
    assert ids(rows) == ["<q1@test>", "<q2@test>", "<o1@test>"]
    assert rows[1]["posts"] == 2 and rows[1]["subject"] == "Login fails"


def test_group_wildmat(cli) -> None:
    assert ids(unanswered_json(cli, "--group", OTHER)) == ["<o1@test>"]
    assert ids(unanswered_json(cli, "--group", "local.*,!local.other")) == ["<q1@test>"]
    assert ids(unanswered_json(cli, "--group", "local.*")) == ["<q1@test>", "<o1@test>"]
    assert unanswered_json(cli, "--group", "nothing.*") == []
    assert ids(unanswered_json(cli, "--awaiting-staff", "--group", TEST)) == ["<q1@test>", "<q2@test>"]


def test_older_than(cli) -> None:
    assert unanswered_json(cli, "--older-than", "1h") == []
    assert unanswered_json(cli, "--awaiting-staff", "--older-than", "2h") == []
    assert "No open threads" in ok(cli("threads", "unanswered", "--older-than", "1h"))
    assert ids(unanswered_json(cli, "--older-than", "0s")) == ["<q1@test>", "<o1@test>"]


def test_limit_and_sort(cli) -> None:
    assert ids(unanswered_json(cli, "--limit", "1")) == ["<q1@test>"]
    # --sort age: oldest first regardless of group (<o1@test> was the very first post).
    assert ids(unanswered_json(cli, "--sort", "age")) == ["<o1@test>", "<q1@test>"]
    assert ids(unanswered_json(cli, "--sort", "age", "--limit", "1")) == ["<o1@test>"]
    assert ids(unanswered_json(cli, "--awaiting-staff", "--sort", "age")) == [
        "<o1@test>", "<q1@test>", "<q2@test>"]


def test_bad_duration_is_a_usage_error(cli) -> None:
    result = cli("threads", "unanswered", "--older-than", "5x")
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "5x" in result.output


# -- threads show / resolve / reopen ----------------------------------------

def test_show_prints_the_tree_with_roles(cli) -> None:
    """Asked about a reply, `threads show` prints the whole thread, replies under their parent."""
    out = ok(cli("threads", "show", "<q3-carol@test>"))
    lines = out.splitlines()

    def line_of(mid: str) -> tuple[int, str]:
        found = [(i, ln) for i, ln in enumerate(lines) if ln.rstrip().endswith(mid)]
        assert len(found) == 1, (mid, out)
        return found[0]

    def indent(line: str) -> int:
        return len(line) - len(line.lstrip(" "))

    chain = [line_of(m) for m in ("<q3@test>", "<q3-mia@test>", "<q3-carol@test>", "<q3-mia2@test>")]
    assert [i for i, _ in chain] == sorted(i for i, _ in chain), out
    depths = [indent(ln) for _, ln in chain]
    assert depths == sorted(set(depths)), out  # each reply indented under its parent
    (_, root), (_, mia), (_, carol), (_, mia2) = chain
    assert "[mvp]" in mia and "[mvp]" in mia2
    assert "[mvp]" not in root and "[mvp]" not in carol
    assert "bob@example.com" in root and "carol@example.com" in carol
    assert "Crash on start" in root
    for other in ("<q1@test>", "<q2@test>", "<o1@test>", "<o2@test>"):
        assert other not in out


def test_resolve_then_reopen(cli) -> None:
    assert ok(cli("threads", "resolve", "<q1-bob@test>"))  # by a reply's id: its thread
    try:
        assert ids(unanswered_json(cli)) == ["<o1@test>"]
        assert ids(unanswered_json(cli, "--awaiting-staff")) == ["<q2@test>", "<o1@test>"]
        assert "Printer on fire" not in ok(cli("threads", "unanswered"))
    finally:
        ok(cli("threads", "reopen", "<q1@test>"))
    assert ids(unanswered_json(cli)) == ["<q1@test>", "<o1@test>"]
    assert ids(unanswered_json(cli, "--awaiting-staff")) == ["<q1@test>", "<q2@test>", "<o1@test>"]


@pytest.mark.parametrize("command", ["show", "resolve", "reopen"])
def test_unknown_message_id(cli, command: str) -> None:
    result = cli("threads", command, "<nope@test>")
    assert result.exit_code != 0, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert "<nope@test>" in result.output
    assert "Traceback" not in result.output


def test_group_create_with_view_prefix_is_refused(cli) -> None:
    for name in ("unanswered.x", "awaiting-staff.local.test"):
        result = cli("group", "create", name)
        assert result.exit_code != 0, result.output
        assert "Traceback" not in result.output
    names = [g["name"] for g in json.loads(ok(cli("group", "list", "--json")))]
    assert sorted(names) == [OTHER, TEST]


# -- report -----------------------------------------------------------------

def test_report_json(cli) -> None:
    data = json.loads(ok(cli("report", "--json")))
    groups = {row["group"]: row for row in data["groups"]}
    assert [row["group"] for row in data["groups"]] == [TEST, OTHER]  # most articles first
    t, o = groups[TEST], groups[OTHER]
    assert (t["articles"], t["threads"], t["unanswered_now"]) == (8, 3, 1)
    assert t["answered_share"] == pytest.approx(2 / 3)
    assert t["staff_answered_share"] == pytest.approx(1 / 3)
    assert (o["articles"], o["threads"], o["unanswered_now"]) == (3, 2, 1)
    assert o["answered_share"] == pytest.approx(1 / 2)
    assert o["staff_answered_share"] == pytest.approx(1 / 2)
    for row in (t, o):  # replies came within seconds of their questions
        assert 0 <= row["reply_median_s"] < 600
        assert 0 <= row["staff_reply_median_s"] < 600
    assert data["top_answerers"] == [
        {"author": "mia", "role": "mvp", "replies": 2},
        {"author": "bob", "role": "member", "replies": 1},
        {"author": "carol", "role": "member", "replies": 1},
        {"author": "sam", "role": "staff", "replies": 1},
    ]


def test_report_group_filter(cli) -> None:
    data = json.loads(ok(cli("report", "--json", "--group", OTHER)))
    assert [row["group"] for row in data["groups"]] == [OTHER]
    assert data["top_answerers"] == [{"author": "sam", "role": "staff", "replies": 1}]


def test_report_csv(cli) -> None:
    rows = list(csv.reader(io.StringIO(ok(cli("report", "--csv")))))
    header, *body = rows
    assert header[0] == "group" and "articles" in header and "unanswered_now" in header
    assert sorted(r[0] for r in body) == [OTHER, TEST]
    by_group = {r[0]: dict(zip(header, r)) for r in body}
    assert by_group[TEST]["articles"] == "8" and by_group[OTHER]["articles"] == "3"
    assert by_group[TEST]["threads"] == "3" and by_group[OTHER]["unanswered_now"] == "1"


def test_report_table(cli) -> None:
    out = ok(cli("report"))
    assert TEST in out and OTHER in out
    assert "mia" in out and "mvp" in out
    assert cli("report", "--json", "--csv").exit_code != 0  # one output format at a time
