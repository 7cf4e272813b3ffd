"""Session and listing commands over TCP, and the command-line rules.

RFC 3977 sections 3.1 (command lines, pipelining), 5 (CAPABILITIES, MODE
READER, QUIT), 7 (DATE, HELP, NEWGROUPS, NEWNEWS, LIST) and 4 (wildmat).
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from nntp_helpers import post_ok


async def caps(client) -> list[str]:
    status = await client.cmd("CAPABILITIES")
    assert status.startswith("101"), status
    return await client.block()


async def listing(client, command: str, code: str = "215") -> list[str]:
    status = await client.cmd(command)
    assert status.startswith(code), status
    return await client.block()


def names(lines: list[str]) -> list[str]:
    return sorted(line.split()[0] for line in lines)


@pytest.fixture
async def groups(server):
    """local.test (y) plus local.other (y), local.ro (n), comp.lang.python (m)."""
    await server.store.create_group("local.other", description="Other things", creator="ops@example.com")
    await server.store.create_group("local.ro", description="Read only", status="n")
    await server.store.create_group("comp.lang.python", description="Python", status="m")
    return server


# --- CAPABILITIES, MODE READER, HELP, DATE, QUIT -----------------------------


async def test_capabilities_first_line_is_version_2(client):
    """RFC 3977 5.2.2: VERSION MUST be the first capability, and this is version 2."""
    assert (await caps(client))[0] == "VERSION 2"


async def test_capabilities_lists_reader_features(client):
    """RFC 3977 5.2.2 / 3.3.2: READER, POST, OVER, HDR, NEWNEWS and LIST with its keywords."""
    lines = await caps(client)
    words = {line.split()[0]: line.split()[1:] for line in lines}
    for cap in ("READER", "POST", "OVER", "HDR", "NEWNEWS", "LIST"):
        assert cap in words, lines
    listed = set(words["LIST"])
    # READER requires ACTIVE and NEWSGROUPS (7.6.1); OVER requires OVERVIEW.FMT (8.4); HDR requires HEADERS (8.6).
    assert {"ACTIVE", "NEWSGROUPS", "OVERVIEW.FMT", "HEADERS"} <= listed
    assert "MODE-READER" not in words  # 5.3.2: not advertised together with READER


async def test_capabilities_lines_are_keywords(client):
    """RFC 3977 3.3.1: each capability line starts with a keyword of letters, digits, dot or dash."""
    for line in await caps(client):
        keyword = line.split()[0]
        assert keyword == keyword.upper()
        assert all(c.isalnum() or c in ".-" for c in keyword)


async def test_mode_reader_is_200(client):
    """RFC 3977 5.3.2: MODE READER answers 200 when posting is allowed."""
    assert (await client.cmd("MODE READER")).startswith("200")
    assert (await caps(client))[0] == "VERSION 2"


async def test_help_is_100_with_a_block(client):
    """RFC 3977 7.2.2: HELP answers 100 followed by a multi-line block of text."""
    status = await client.cmd("HELP")
    assert status.startswith("100")
    text = await client.block()
    assert text
    assert any("GROUP" in line for line in text)
    assert (await client.cmd("DATE")).startswith("111")


async def test_date_is_111_with_14_digits_in_utc(client):
    """RFC 3977 7.1.2: 111 yyyymmddhhmmss, the server's time in UTC."""
    status = await client.cmd("DATE")
    code, stamp = status.split()
    assert code == "111"
    assert len(stamp) == 14 and stamp.isdigit()
    when = datetime.strptime(stamp, "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)
    assert abs((when - datetime.now(timezone.utc)).total_seconds()) < 60


async def test_quit_is_205_and_closes(client):
    """RFC 3977 5.4.2: QUIT answers 205 and the server closes the connection."""
    assert (await client.cmd("QUIT")).startswith("205")
    rest = await asyncio.wait_for(client.reader.read(), 5)
    assert rest == b""


# --- LIST variants -----------------------------------------------------------


async def test_list_is_list_active(groups, client):
    """RFC 3977 7.6.1, 7.6.3: bare LIST is LIST ACTIVE: 'name high low status'."""
    await post_ok(client)
    bare = await listing(client, "LIST")
    assert bare == await listing(client, "LIST ACTIVE")
    rows = {line.split()[0]: line.split()[1:] for line in bare}
    assert rows["local.test"] == ["1", "1", "y"]
    assert rows["local.ro"][2] == "n"
    assert rows["comp.lang.python"][2] == "m"
    high, low = (int(x) for x in rows["local.other"][:2])
    assert high == low - 1  # empty group (6.1.1.2)
    assert all(len(line.split()) == 4 for line in bare)


@pytest.mark.parametrize(
    "wildmat, expected",
    [
        ("local.*", ["local.other", "local.ro", "local.test"]),
        ("local.test", ["local.test"]),
        ("local.*,!local.ro", ["local.other", "local.test"]),
        ("*,!local.*", ["comp.lang.python"]),
        ("comp.*,local.test", ["comp.lang.python", "local.test"]),
        ("!local.*", []),
        ("local.?o", ["local.ro"]),
        ("nothing.*", []),
    ],
)
async def test_list_active_wildmat(groups, client, wildmat, expected):
    """RFC 3977 7.6.3 with 4.1-4.2: wildmat with '*', '?', ',' lists and '!' (the last match decides)."""
    assert names(await listing(client, f"LIST ACTIVE {wildmat}")) == expected


async def test_list_active_times(groups, client):
    """RFC 3977 7.6.4: 'name seconds-since-epoch creator' per group."""
    lines = await listing(client, "LIST ACTIVE.TIMES")
    rows = {line.split()[0]: line.split()[1:] for line in lines}
    assert set(rows) == {"local.test", "local.other", "local.ro", "comp.lang.python"}
    now = datetime.now(timezone.utc).timestamp()
    for fields in rows.values():
        assert len(fields) == 2
        assert abs(int(fields[0]) - now) < 300
    assert rows["local.other"][1] == "ops@example.com"
    assert names(await listing(client, "LIST ACTIVE.TIMES local.o*")) == ["local.other"]


async def test_list_newsgroups(groups, client):
    """RFC 3977 7.6.6: 'name' then whitespace then the description."""
    lines = await listing(client, "LIST NEWSGROUPS")
    rows = dict(line.split(None, 1) if len(line.split(None, 1)) == 2 else (line, "") for line in lines)
    assert rows["local.test"] == "Sample group"
    assert rows["local.other"] == "Other things"
    assert names(await listing(client, "LIST NEWSGROUPS *.python")) == ["comp.lang.python"]


async def test_list_distrib_pats(client):
    """RFC 3977 7.6.5: 215 with 'weight:wildmat:value' lines, or 503 if not maintained."""
    status = await client.cmd("LIST DISTRIB.PATS")
    assert status[:3] in ("215", "503"), status
    if status.startswith("215"):
        for line in await client.block():
            assert len(line.split(":")) == 3


async def test_list_distrib_pats_with_argument_is_501(client):
    """RFC 3977 7.6.1: an argument to a keyword that takes none gives 501."""
    assert (await client.cmd("LIST DISTRIB.PATS *")).startswith("501")


async def test_list_unknown_keyword_is_501(client):
    """RFC 3977 7.6.1: an unrecognised LIST keyword gives 501."""
    assert (await client.cmd("LIST NOSUCHTHING")).startswith("501")
    assert (await client.cmd("DATE")).startswith("111")


# --- NEWGROUPS / NEWNEWS -----------------------------------------------------


def stamp(delta: timedelta, fmt: str = "%Y%m%d") -> tuple[str, str]:
    when = datetime.now(timezone.utc) + delta
    return when.strftime(fmt), when.strftime("%H%M%S")


@pytest.mark.parametrize("fmt", ["%Y%m%d", "%y%m%d"])
@pytest.mark.parametrize("gmt", [" GMT", ""])
async def test_newgroups_since_yesterday(groups, client, fmt, gmt):
    """RFC 3977 7.3.2: NEWGROUPS date time [GMT] with yyyymmdd or yymmdd -> 231 with active-style lines."""
    date, time = stamp(timedelta(days=-1), fmt)
    lines = await listing(client, f"NEWGROUPS {date} {time}{gmt}", "231")
    assert names(lines) == ["comp.lang.python", "local.other", "local.ro", "local.test"]
    rows = {line.split()[0]: line.split()[1:] for line in lines}
    assert rows["local.ro"][2] == "n"


async def test_newgroups_in_the_future_is_empty(groups, client):
    """RFC 3977 7.3.2: no group was created after a future date: empty 231 list."""
    date, time = stamp(timedelta(days=2))
    assert await listing(client, f"NEWGROUPS {date} {time} GMT", "231") == []


async def test_newgroups_bad_date_is_501(client):
    """RFC 3977 7.3.2 / 3.2.1: a malformed date is a syntax error."""
    assert (await client.cmd("NEWGROUPS 2025-01-01 000000")).startswith("501")
    assert (await client.cmd("NEWGROUPS 20251301 000000")).startswith("501")


async def test_newnews_with_wildmat(groups, client):
    """RFC 3977 7.4.2: NEWNEWS wildmat date time -> 230 and the message-ids in matching groups."""
    in_test = await post_ok(client, newsgroups="local.test")
    in_other = await post_ok(client, newsgroups="local.other")
    both = await post_ok(client, newsgroups="local.test,local.other")
    date, time = stamp(timedelta(days=-1))
    assert sorted(await listing(client, f"NEWNEWS local.test {date} {time} GMT", "230")) == sorted(
        [in_test, both]
    )
    everything = await listing(client, f"NEWNEWS local.* {date} {time} GMT", "230")
    assert sorted(everything) == sorted([in_test, in_other, both])  # a cross-post appears once
    # The cross-post is also in local.other, which matches, so it is listed (7.4.2).
    assert sorted(await listing(client, f"NEWNEWS *,!local.test {date} {time}", "230")) == sorted(
        [in_other, both]
    )
    assert await listing(client, f"NEWNEWS comp.* {date} {time}", "230") == []


async def test_newnews_in_the_future_is_empty(client):
    """RFC 3977 7.4.2: nothing arrived after a future date: empty 230 list."""
    await post_ok(client)
    date, time = stamp(timedelta(days=2))
    assert await listing(client, f"NEWNEWS * {date} {time} GMT", "230") == []


async def test_newnews_lists_articles_on_or_after_the_given_second(server, client):
    """RFC 3977 7.4.1: NEWNEWS lists articles that arrived "on or after" the date and time.
    Arrival times are set in the database file: one exactly at the given second and one
    within it are listed; one a microsecond before and one a second before are not."""
    times = {
        "<before-second@x>": "2026-03-01 11:59:59.000000",
        "<before-micro@x>": "2026-03-01 11:59:59.999999",
        "<exact@x>": "2026-03-01 12:00:00.000000",
        "<within@x>": "2026-03-01 12:00:00.500000",
    }
    for mid in times:
        await post_ok(client, message_id=mid)
    with sqlite3.connect(server.db_path) as db:
        stored = db.execute("SELECT arrived_at FROM articles LIMIT 1").fetchone()[0]
        assert len(stored) == len("2026-03-01 12:00:00.000000"), stored  # the column's own format
        for mid, at in times.items():
            assert db.execute("UPDATE articles SET arrived_at = ? WHERE message_id = ?",
                              (at, mid)).rowcount == 1
    listed = await listing(client, "NEWNEWS local.test 20260301 120000 GMT", "230")
    assert sorted(listed) == ["<exact@x>", "<within@x>"]
    listed = await listing(client, "NEWNEWS local.test 20260301 115959 GMT", "230")
    assert sorted(listed) == sorted(times)
    assert await listing(client, "NEWNEWS local.test 20260301 120001 GMT", "230") == []


# --- command-line rules (3.1, 3.2) -------------------------------------------


async def test_unknown_command_is_500(client):
    """RFC 3977 3.2.1: an unknown command gives 500."""
    assert (await client.cmd("FROBNICATE")).startswith("500")
    assert (await client.cmd("FROBNICATE with args")).startswith("500")
    assert (await client.cmd("DATE")).startswith("111")


@pytest.mark.parametrize("command, code", [
    ("group local.test", "211"), ("Group local.test", "211"), ("date", "111"),
    ("mode reader", "200"), ("list active", "215"), ("capabilities", "101"),
])
async def test_commands_are_case_insensitive(client, command, code):
    """RFC 3977 3.1: command keywords are case-insensitive."""
    status = await client.cmd(command)
    assert status.startswith(code), status
    if code in ("215", "101"):
        await client.block()


async def test_empty_command_lines_are_ignored(client):
    """RFC 3977 3.1 (a command is a keyword plus arguments; Outlook Express sends stray empty lines)."""
    await client.send("\r\n\r\n \r\nDATE\r\n\r\nGROUP local.test\r\n")
    assert (await client.line()).startswith("111")
    assert (await client.line()).startswith("211")
    assert (await client.cmd("HELP")).startswith("100")


async def test_command_line_of_512_octets_is_accepted(client):
    """RFC 3977 3.1: a command line is at most 512 octets including CRLF; 512 is allowed."""
    line = "LIST ACTIVE  " + "x" * 497
    assert len(line) + 2 == 512
    assert await listing(client, line) == []


async def test_command_line_over_512_octets_is_501_and_connection_works(client):
    """RFC 3977 3.1 / 3.2.1: a line longer than 512 octets is refused (501); the session continues."""
    line = "LIST ACTIVE   " + "x" * 497
    assert len(line) + 2 == 513
    assert (await client.cmd(line)).startswith("501")
    assert (await client.cmd("GROUP " + "a" * 600)).startswith("501")
    assert (await client.cmd("DATE")).startswith("111")
    assert (await client.cmd("GROUP local.test")).startswith("211")


async def test_huge_command_line_is_501_and_connection_works(client):
    """RFC 3977 3.1: even a 200 kB line is consumed, answered 501, and the session continues."""
    assert (await client.cmd("XHDR " + "h" * 200_000)).startswith("501")
    assert (await client.cmd("DATE")).startswith("111")


async def test_argument_over_497_octets_is_501(client):
    """RFC 3977 3.1: an argument is at most 497 octets."""
    assert (await client.cmd("GROUP " + "g" * 498)).startswith("501")
    assert (await client.cmd("DATE")).startswith("111")


async def test_pipelined_commands_answered_in_order(client):
    """RFC 3977 3.5: commands sent in one write are answered in order, one response each."""
    mid = await post_ok(client)
    await client.send(
        "DATE\r\nGROUP local.test\r\nHELP\r\nSTAT 1\r\nLIST ACTIVE local.test\r\n"
    )
    assert (await client.line()).startswith("111")
    assert await client.line() == "211 1 1 1 local.test"
    assert (await client.line()).startswith("100")
    assert await client.block()
    assert (await client.line()).startswith(f"223 1 {mid}")
    assert (await client.line()).startswith("215")
    assert await client.block() == ["local.test 1 1 y"]


async def test_pipelined_errors_do_not_desynchronise(client):
    """RFC 3977 3.5: failing commands in a pipeline still get exactly one response each, in order."""
    await client.send("NOPE\r\nSTAT 1\r\nGROUP no.such\r\nLIST BOGUS\r\nDATE\r\n")
    codes = [(await client.line())[:3] for _ in range(5)]
    assert codes == ["500", "412", "411", "501", "111"]
