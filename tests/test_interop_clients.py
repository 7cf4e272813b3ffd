"""Interoperability with tin, slrn and suck/rpost.

The command sequences replayed here were recorded with a logging TCP proxy in
front of `nntpd serve` while tin 2.6.2, slrn 1.0.3 and suck/rpost 4.3.4 (the
Debian packages) were driven by hand: connecting, listing groups, reading
threads, posting, following up and logging in. Each replay test sends what
the client sent, in its spelling (suck writes lower-case commands), and
checks the answers the client relies on.

At the end, the real programs run against the test server where they work
without a terminal: suck and rpost in batch, `tin -Z` (check for news),
`slrn -d` (fetch descriptions) and `slrn --create`. Each is skipped when the
binary is missing. Interactive reading and posting (tin `w`/`f`, slrn
`P`/`f`) need a terminal and an editor and are not run here; `tin -o` (post
the postponed articles) needs a pseudo-terminal and sleeps about 4 s in tin.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import AsyncIterator

import pytest

from conftest import Client, ServerHandle, connected, running, start_server_on
from nntp_helpers import make_article, unique_id, unstuff
from nntpd.config import AccessRule, AuthSettings, Settings
from nntpd.passwords import hash_password

PASSWORD = "interop-password"
STAFF = "sam"
MEMBER = "max"

ROOT = "<root1@seed.example>"
REPLY1 = "<reply1@seed.example>"
REPLY2 = "<reply2@seed.example>"
ROOT2 = "<root2@seed.example>"
REPLY3 = "<reply3@seed.example>"

# Threaded articles as seeded with nntplib for the manual sessions (a dot-leading
# body line and UTF-8 in a body included).
SEED = [
    (ROOT, "", "How do I reset my widget?", "Alice <alice@example.com>",
     b"My widget is stuck.\r\nHelp!\r\n"),
    (REPLY1, ROOT, "Re: How do I reset my widget?", "Bob <bob@example.com>",
     b"> My widget is stuck.\r\nHold the button 10 s.\r\n.leading dot line\r\n"),
    (REPLY2, f"{ROOT} {REPLY1}", "Re: How do I reset my widget?", "Alice <alice@example.com>",
     b"Thanks, that worked.\r\n"),
    (ROOT2, "", "Firmware 2.0 released", "Staff <staff@example.com>", b"Release notes follow.\r\n"),
    (REPLY3, ROOT2, "Re: Firmware 2.0 released", "Carol <carol@example.com>",
     "Caf\u00e9 unicode body \u20ac\r\n".encode()),
]

# What tin 2.6.2 sent for `w` (new article) and `f` (follow-up): no Message-ID and
# no Date (the server adds both), "Path: not-for-mail", and a body whose first
# line is empty.
TIN_POST = (b"Path: not-for-mail\r\n"
            b"From: Tin Tester <tintester@example.com>\r\n"
            b"Subject: Posted from tin\r\n"
            b"Newsgroups: local.test\r\n"
            b"User-Agent: tin/2.6.2-20221225 (\"Pittyvaich\") (Linux/6.18.44 (x86_64))\r\n"
            b"\r\n"
            b"\r\n"
            b"Body written by the test editor.\r\n")
TIN_FOLLOWUP = (b"Path: not-for-mail\r\n"
                b"From: Tin Tester <tintester@example.com>\r\n"
                b"Subject: Re: How do I reset my widget?\r\n"
                b"Newsgroups: local.test\r\n"
                b"References: " + f"{ROOT} {REPLY1} {REPLY2}".encode() + b"\r\n"
                b"User-Agent: tin/2.6.2-20221225 (\"Pittyvaich\") (Linux/6.18.44 (x86_64))\r\n"
                b"\r\n"
                b"Alice <alice@example.com> wrote:\r\n"
                b"> Thanks, that worked.\r\n"
                b"Body written by the test editor.\r\n")

# What slrn 1.0.3 sent for `P` and `f`: Newsgroups first, no Path, Message-ID or Date.
SLRN_POST = (b"Newsgroups: local.test\r\n"
             b"From: Slrn Tester <slrnuser@example.com>\r\n"
             b"Subject: Posted from slrn\r\n"
             b"User-Agent: slrn/1.0.3 (Linux)\r\n"
             b"\r\n"
             b"Body written by the test editor.\r\n")
SLRN_FOLLOWUP = (b"Newsgroups: local.test\r\n"
                 b"From: Slrn Tester <slrnuser@example.com>\r\n"
                 b"Subject: Re: How do I reset my widget?\r\n"
                 b"References: " + f"{ROOT} {REPLY1}".encode() + b"\r\n"
                 b"User-Agent: slrn/1.0.3 (Linux)\r\n"
                 b"\r\n"
                 b"On 2026-11-27, Bob <bob@example.com> wrote:\r\n"
                 b">> My widget is stuck.\r\n"
                 b"> Hold the button 10 s.\r\n"
                 b"> .leading dot line\r\n"
                 b"Body written by the test editor.\r\n")

# rpost sends the file it is given, dot-stuffing lines that start with "." itself.
RPOST_ARTICLE = (b"Newsgroups: local.test\r\n"
                 b"From: Rpost Tester <rpost@example.com>\r\n"
                 b"Subject: Posted with rpost\r\n"
                 b"Message-ID: <rpost1@interop.example>\r\n"
                 b"\r\n"
                 b"Body line one.\r\n"
                 b".dot line from rpost\r\n"
                 b"..two dots\r\n"
                 b".\r\n"
                 b"last line\r\n")


# ---------------------------------------------------------------- helpers


def seed_article(mid: str, refs: str, subject: str, from_: str, body: bytes) -> bytes:
    extra = (f"References: {refs}",) if refs else ()
    return make_article(message_id=mid, subject=subject, from_=from_, extra=extra, body=body)


async def seed(client: Client) -> None:
    for item in SEED:
        status = await client.post(seed_article(*item))
        assert status.startswith("240"), status


def stuff(article: bytes) -> bytes:
    """CRLF article -> dot-stuffed lines plus the terminating '.' line (RFC 3977 3.1.1)."""
    lines = article.split(b"\r\n")[:-1]
    return b"".join((b"." + ln if ln.startswith(b".") else ln) + b"\r\n" for ln in lines) + b".\r\n"


async def post_raw(client: Client, article: bytes) -> str:
    """POST exactly these (CRLF) bytes, as the client sent them; returns the final status."""
    status = await client.cmd("POST")
    assert status.startswith("340"), status
    await client.send(stuff(article))
    return await client.line()


def message_id_of(status: str) -> str:
    """tin shows 'Article posted: <id>' from the 240 line when it made no Message-ID itself."""
    found = re.search(r"<[^<>\s]+@[^<>\s]+>", status)
    assert found, status
    return found.group(0)


async def multiline(client: Client, command: str, code: str) -> list[str]:
    status = await client.cmd(command)
    assert status.startswith(code), (command, status)
    return await client.block()


def head_of(lines: list[str]) -> list[str]:
    """The header lines of an ARTICLE answer (all of a HEAD answer)."""
    return lines[: lines.index("")] if "" in lines else lines


def header(lines: list[str], name: str) -> str | None:
    for ln in head_of(lines):
        if ln.lower().startswith(name.lower() + ":"):
            return ln.split(":", 1)[1].strip()
    return None


def newgroups_date(days_ago: int = 1) -> tuple[str, str]:
    when = datetime.now(timezone.utc) - timedelta(days=days_ago)
    return when.strftime("%y%m%d"), when.strftime("%H%M%S")


@asynccontextmanager
async def serving(tmp_path: Path, settings: Settings | None = None,
                  passwords: dict[str, str] | None = None) -> AsyncIterator[ServerHandle]:
    """A server with a staff account (sam) and a member (max); no login slowdown."""
    settings = replace(settings or Settings(), auth=AuthSettings(failure_delay=0.0))
    async with running(tmp_path, settings=settings) as handle:
        passwords = passwords or {}
        for name, role in ((STAFF, "staff"), (MEMBER, "member")):
            await handle.store.add_account(
                name, email=f"{name}@support.example", display_name=name.title(),
                password_hash=hash_password(passwords.get(name, PASSWORD), n=2**10))
            if role != "member":
                await handle.store.set_role(name, role, changed_by="test")
        yield handle


async def login(client: Client, user: str, password: str = PASSWORD) -> None:
    assert (await client.cmd(f"AUTHINFO USER {user}")).startswith("381")
    status = await client.cmd(f"AUTHINFO PASS {password}")
    assert status.startswith("281"), status


# ---------------------------------------------------------------- tin


async def test_tin_startup_sequence(client):
    """tin (nntplib.c, active.c): CAPABILITIES first; MODE READER only when MODE-READER is
    advertised; then LIST OVERVIEW.FMT, bare LIST, GROUP of each subscribed group,
    NEWGROUPS *without* GMT (tin formats its last check with localtime()) and LIST
    NEWSGROUPS. RFC 3977 5.2, 7.3, 7.6.3, 7.6.6, 8.4."""
    assert client.greeting.startswith("200")
    caps = await multiline(client, "CAPABILITIES", "101")
    assert caps[0] == "VERSION 2" and "READER" in caps
    assert "MODE-READER" not in caps  # tin would otherwise send MODE READER and ask again
    assert any(c.split()[0] == "LIST" and "OVERVIEW.FMT" in c.split() for c in caps)
    assert "OVER" in {c.split()[0] for c in caps}  # tin then uses OVER, not XOVER

    fmt = await multiline(client, "LIST OVERVIEW.FMT", "215")
    # After CAPABILITIES, the RFC 3977 names (tin understands both spellings).
    assert fmt[:7] == ["Subject:", "From:", "Date:", "Message-ID:", "References:", ":bytes", ":lines"]
    assert "Xref:full" in fmt

    active = await multiline(client, "LIST", "215")
    # tin's parse_active_line: "name high low status", single spaces.
    assert re.fullmatch(r"local\.test \d+ \d+ [ymn]", active[0]), active
    assert (await client.cmd("GROUP local.test")) == "211 0 1 0 local.test"  # empty: high = low - 1

    date, time_ = newgroups_date()
    new = await multiline(client, f"NEWGROUPS {date} {time_}", "231")
    assert [ln.split()[0] for ln in new] == ["local.test"]
    descriptions = await multiline(client, "LIST NEWSGROUPS", "215")
    assert descriptions == ["local.test\tSample group"]


async def test_tin_enters_group_and_reads_thread(client):
    """tin (art.c): LISTGROUP group (no range), then OVER lo-hi, then ARTICLE n per article
    read. RFC 3977 6.1.2 (LISTGROUP 211 + numbers), 8.3 (OVER fields: number, the seven
    fields, then 'Xref: ...' with its name), 6.2.1 (ARTICLE 220 n <id>)."""
    await seed(client)
    status = await client.cmd("LISTGROUP local.test")
    assert status.startswith("211 5 1 5 local.test"), status
    assert await client.block() == ["1", "2", "3", "4", "5"]

    over = await multiline(client, "OVER 1-5", "224")
    assert len(over) == 5
    for n, (line, (mid, refs, subject, from_, _)) in enumerate(zip(over, SEED), 1):
        fields = line.split("\t")
        assert fields[0] == str(n)
        assert fields[1:3] == [subject, from_]
        assert fields[4:6] == [mid, refs]
        assert fields[6].isdigit() and fields[7].isdigit()
        assert fields[8] == f"Xref: test.example local.test:{n}"

    for n, (mid, *_rest, body) in enumerate(SEED[:3], 1):
        lines = await multiline(client, f"ARTICLE {n}", f"220 {n} {mid}")
        assert "\r\n".join(lines[lines.index("") + 1:]).encode() + b"\r\n" == body


async def test_tin_posts_and_follows_up(client):
    """tin `w` and `f`: POST with 'Path: not-for-mail' and neither Message-ID nor Date; tin
    reports the Message-ID from the 240 line. RFC 3977 6.3.1 (340/240), RFC 5537 3.5
    (the server prepends its path identity to Path and adds Message-ID and Date), RFC 5536
    3.2.10 (References kept as sent)."""
    await seed(client)
    posted = message_id_of(await post_raw(client, TIN_POST))
    lines = await multiline(client, f"HEAD {posted}", f"221 0 {posted}")
    assert header(lines, "Path") == "test.example!not-for-mail"
    assert header(lines, "Date")
    assert header(lines, "Message-ID") == posted

    followup = message_id_of(await post_raw(client, TIN_FOLLOWUP))
    assert (await client.cmd("GROUP local.test")) == "211 7 1 7 local.test"
    (line,) = await multiline(client, f"OVER {followup}", "224")
    assert line.split("\t")[5] == f"{ROOT} {REPLY1} {REPLY2}"
    body = await multiline(client, f"BODY {followup}", "222")
    assert body == ["Alice <alice@example.com> wrote:", "> Thanks, that worked.",
                    "Body written by the test editor."]


async def test_tin_login_first_and_staff_post(tmp_path):
    """`tin -A` with ~/.newsauth: CAPABILITIES, AUTHINFO USER/PASS at once, CAPABILITIES
    again (RFC 4643 2.3, 3977 5.2: AUTHINFO is no longer listed), then the usual start.
    A staff account's post carries X-Poster-Role: staff, in HEAD and as the overview
    field after Xref (spec; slrn and tin can score on it)."""
    async with serving(tmp_path) as handle, connected(handle) as client:
        caps = await multiline(client, "CAPABILITIES", "101")
        assert any(c.split()[0] == "AUTHINFO" and "USER" in c.split() for c in caps)
        await login(client, STAFF)
        caps = await multiline(client, "CAPABILITIES", "101")
        assert not any(c.startswith("AUTHINFO") for c in caps)
        assert "POST" in caps
        await multiline(client, "LIST OVERVIEW.FMT", "215")
        await multiline(client, "LIST", "215")
        posted = message_id_of(await post_raw(client, TIN_POST.replace(b"Posted from tin", b"Staff post")))
        lines = await multiline(client, f"HEAD {posted}", "221")
        assert header(lines, "X-Poster-Role") == "staff"
        assert header(lines, "Sender") == "Sam <sam@support.example>"
        (line,) = await multiline(client, f"OVER {posted}", "224")
        assert line.split("\t")[-1] == "X-Poster-Role: staff"


async def test_tin_and_slrn_send_passwords_with_spaces_verbatim(tmp_path):
    """tin's ~/.newsauth allows a quoted password with spaces, slrn's nnrpaccess too; both
    send `AUTHINFO PASS <password>` with the spaces as they are. RFC 4643 section 3.1
    (erratum 1787): a server MAY accept SP and TAB inside the password, and the README's
    own example password ('a long password') has spaces. A 501 here makes slrn exit with
    'Failed to initialize server' and tin fall back to prompting."""
    spaced = "staff password 1"
    async with serving(tmp_path, passwords={STAFF: spaced}) as handle, connected(handle) as client:
        assert (await client.cmd(f"AUTHINFO USER {STAFF}")).startswith("381")
        status = await client.cmd(f"AUTHINFO PASS {spaced}")
        assert status.startswith("281"), status


def auth_required() -> Settings:
    return Settings(access=(AccessRule(groups="*", read="authenticated", post="authenticated"),))


async def test_tin_logs_in_when_list_asks_for_it(tmp_path):
    """tin without -A authenticates only when a command is answered 480, then resends it
    (tin doc/auth.txt; Thunderbird and rpost do the same). With reading restricted to
    accounts, an anonymous bare LIST must therefore be 480, as INN's nnrpd answers: an
    empty 215 makes tin exit with 'servers active-file contains no newsgroups'.
    RFC 4643 2.1 / RFC 3977 3.2.1 (480 when authentication would help)."""
    async with serving(tmp_path, auth_required()) as handle, connected(handle) as client:
        assert client.greeting.startswith("201")
        await multiline(client, "CAPABILITIES", "101")
        await multiline(client, "LIST OVERVIEW.FMT", "215")
        status = await client.cmd("LIST")
        if status.startswith("215"):
            await client.block()
        assert status.startswith("480"), status
        await login(client, MEMBER)
        assert [ln.split()[0] for ln in await multiline(client, "LIST", "215")] == ["local.test"]


# ---------------------------------------------------------------- slrn


async def test_slrn_startup_probes(client):
    """slrn (nntplib.c, xover.c): MODE READER; XOVER and XHDR Path with no group selected
    as capability probes (anything but 500 means supported: 412 here, RFC 3977 8.3.2/8.5.2
    and the notes' pitfall); LIST OVERVIEW.FMT *without* CAPABILITIES must use the RFC 2980
    names, since ':bytes' makes slrn drop XOVER; LIST; LIST SUBSCRIPTIONS (RFC 6048,
    unknown keyword: 501 is fine, RFC 3977 7.6.1); NEWGROUPS ... GMT; GROUP."""
    assert (await client.cmd("MODE READER")).startswith("200")
    assert (await client.cmd("XOVER")).startswith("412")
    assert (await client.cmd("XHDR Path")).startswith("412")
    fmt = await multiline(client, "LIST OVERVIEW.FMT", "215")
    assert fmt[5:7] == ["Bytes:", "Lines:"] and ":bytes" not in fmt
    assert fmt[7:] == ["Xref:full", "X-Poster-Role:full"]
    active = await multiline(client, "LIST", "215")
    assert active[0].split()[0] == "local.test"
    status = await client.cmd("LIST SUBSCRIPTIONS")
    assert status[:3] in ("215", "501", "503"), status
    if status.startswith("215"):
        await client.block()
    date, time_ = newgroups_date()
    await multiline(client, f"NEWGROUPS {date} {time_} GMT", "231")
    assert (await client.cmd("GROUP local.test")).startswith("211 0 1 0 local.test")


async def test_slrn_reads_scores_and_rebuilds_threads(tmp_path):
    """slrn in a group: XOVER lo-hi (it scored staff posts on the X-Poster-Role field listed
    after Xref:full in OVERVIEW.FMT, field empty when absent: RFC 3977 8.3.2); ARTICLE n;
    ESC-p fetches a missing parent with HEAD <id> (221 0 <id>, RFC 3977 6.2.2); ESC-^P
    probes XPAT bare (not 500) then runs 'XPAT References lo-hi *<id>*' (RFC 2980 2.9)."""
    async with serving(tmp_path) as handle, connected(handle) as client:
        await seed(client)
        async with connected(handle) as staff:
            await login(staff, STAFF)
            status = await post_raw(staff, SLRN_POST.replace(b"Posted from slrn", b"Staff post from slrn"))
            assert status.startswith("240"), status
        assert (await client.cmd("MODE READER")).startswith("200")
        await multiline(client, "LIST OVERVIEW.FMT", "215")
        assert (await client.cmd("GROUP local.test")).startswith("211 6 1 6 local.test")
        over = await multiline(client, "XOVER 1-6", "224")
        assert [ln.split("\t")[0] for ln in over] == ["1", "2", "3", "4", "5", "6"]
        assert all(ln.split("\t")[9] == "" for ln in over[:5])
        assert over[5].split("\t")[9] == "X-Poster-Role: staff"

        lines = await multiline(client, "ARTICLE 5", f"220 5 {REPLY3}")
        assert lines[-1] == "Caf\u00e9 unicode body \u20ac"

        lines = await multiline(client, f"HEAD {REPLY1}", f"221 0 {REPLY1}")
        assert header(lines, "References") == ROOT

        assert not (await client.cmd("XPAT")).startswith("500")
        matches = await multiline(client, f"XPAT References 1-6 *{REPLY1}*", "221")
        assert matches == [f"3 {ROOT} {REPLY1}"]


async def test_slrn_login_post_probe_post_and_followup(tmp_path):
    """slrn with nnrpaccess after a 201 greeting: MODE READER, AUTHINFO USER/PASS, then an
    empty POST ('POST', '.') to learn whether posting is now allowed: it must be refused
    (441) and store nothing. Then `P` and `f` as slrn sent them (RFC 3977 6.3.1)."""
    settings = Settings(access=(AccessRule(groups="*", read="anyone", post="authenticated"),))
    async with serving(tmp_path, settings) as handle, connected(handle) as client:
        assert client.greeting.startswith("201")
        assert (await client.cmd("MODE READER")).startswith("201")
        await login(client, MEMBER)
        assert (await client.cmd("POST")).startswith("340")
        await client.send(".\r\n")
        assert (await client.line()).startswith("441")
        assert (await client.cmd("GROUP local.test")) == "211 0 1 0 local.test"

        await seed(client)
        assert (await post_raw(client, SLRN_POST)).startswith("240")
        followup = message_id_of(await post_raw(client, SLRN_FOLLOWUP))
        (line,) = await multiline(client, "XOVER 7", "224")
        fields = line.split("\t")
        assert fields[4:6] == [followup, f"{ROOT} {REPLY1}"]
        body = await multiline(client, f"BODY {followup}", "222")
        assert body[3] == "> .leading dot line"


# ---------------------------------------------------------------- suck and rpost


async def test_suck_pipelined_pull_is_byte_exact(client):
    """suck (default mode): lower-case 'group', 'xhdr Message-ID lo-hi' (RFC 2980 2.6: 221,
    'n <id>' lines), then pipelined 'article <id>' commands written before the answers are
    read (RFC 3977 3.5), answered '220 0 <id>' in order; the articles must come back
    byte-exact; 'quit' 205."""
    await seed(client)
    assert (await client.cmd("group local.test")).startswith("211 5 1 5 local.test")
    xhdr = await multiline(client, "xhdr Message-ID 1-5", "221")
    assert xhdr == [f"{n} {item[0]}" for n, item in enumerate(SEED, 1)]
    await client.send("".join(f"article {item[0]}\r\n" for item in SEED))
    for mid, refs, subject, from_, body in SEED:
        assert (await client.line()) == f"220 0 {mid}"
        article = unstuff(await client.raw_block())
        head, _, got_body = article.partition(b"\r\n\r\n")
        assert got_body == body
        sent_head = seed_article(mid, refs, subject, from_, body).partition(b"\r\n\r\n")[0]
        for sent_line in sent_head.split(b"\r\n"):
            assert sent_line in head.split(b"\r\n")
    assert (await client.cmd("quit")).startswith("205")


async def test_suck_number_and_xover_modes(client):
    """suck -M -n -Z: 'mode reader', 'list overview.fmt' (no CAPABILITIES: 'Bytes:' names),
    'xover lo-hi', then 'GROUP' again and 'article n' (220 n <id>, RFC 3977 6.2.1)."""
    await seed(client)
    assert (await client.cmd("mode reader")).startswith("200")
    assert (await multiline(client, "list overview.fmt", "215"))[5] == "Bytes:"
    assert (await client.cmd("group local.test")).startswith("211")
    over = await multiline(client, "xover 3-5", "224")
    assert [ln.split("\t")[4] for ln in over] == [REPLY2, ROOT2, REPLY3]
    assert (await client.cmd("GROUP local.test")).startswith("211")
    await multiline(client, "article 4", f"220 4 {ROOT2}")


@pytest.fixture
async def feeder(tmp_path: Path) -> AsyncIterator[Client]:
    """A client of a server that takes IHAVE feeds from loopback (feed_access defaults to nobody)."""
    async with running(tmp_path, feed_access="loopback") as handle, connected(handle) as client:
        yield client


async def test_suck_batch_post_feeds_with_ihave(feeder):
    """suck -bp -hl host: offers each pulled article with IHAVE (RFC 3977 6.3.2), to a server
    whose feed_access admits it: an article the server has is 435 (suck deletes it as not
    wanted), a new one 335 then 235; a relayed article keeps its other headers, Path gets
    this server prepended, and the sender's Xref and Injection-Date are replaced by this
    server's own (no sender is a trusted peer, so the feed is injected here)."""
    await seed(feeder)
    assert (await feeder.cmd(f"IHAVE {ROOT}")).startswith("435")
    mid = unique_id("suck")
    relayed = (b"Path: other.example!not-for-mail\r\n"
               b"From: Far Away <far@example.net>\r\n"
               b"Newsgroups: local.test\r\n"
               b"Subject: relayed by suck\r\n"
               b"Message-ID: " + mid.encode() + b"\r\n"
               b"Date: Fri, 27 Nov 2026 07:55:27 GMT\r\n"
               b"Injection-Date: Fri, 27 Nov 2026 07:55:27 GMT\r\n"
               b"Xref: other.example local.test:42\r\n"
               b"\r\n"
               b".dot first\r\nsecond\r\n")
    assert (await feeder.cmd(f"IHAVE {mid}")).startswith("335")
    await feeder.send(stuff(relayed))
    assert (await feeder.line()).startswith("235")
    lines = await multiline(feeder, f"ARTICLE {mid}", "220")
    assert header(lines, "Path") == "test.example!other.example!not-for-mail"
    assert header(lines, "Xref") == "test.example local.test:6"
    assert header(lines, "Injection-Date") != "Fri, 27 Nov 2026 07:55:27 GMT"
    assert lines[lines.index("") + 1:] == [".dot first", "second"]


async def test_rpost_posts_stuffed_article_and_sees_duplicates(client):
    """rpost: 'POST', the file with its '.'-lines doubled (RFC 3977 3.1.1), '.'; 240 and the
    body unchanged. A second post of the same Message-ID must be a 441 whose text
    contains 'Duplicate': rpost (do_article) counts that as 'Duplicate article', not a
    failure (it also accepts '441 435 ...' and DNews's 'Already got')."""
    status = await post_raw(client, RPOST_ARTICLE)
    assert status.startswith("240") and "<rpost1@interop.example>" in status
    body = await multiline(client, "BODY <rpost1@interop.example>", "222")
    assert body == ["Body line one.", ".dot line from rpost", "..two dots", ".", "last line"]
    status = await post_raw(client, RPOST_ARTICLE)
    assert status.startswith("441") and "Duplicate" in status, status
    assert (await client.cmd("quit")).startswith("205")


# ---------------------------------------------------------------- the real programs

needs = {name: pytest.mark.skipif(shutil.which(name) is None, reason=f"{name} is not installed")
         for name in ("suck", "rpost", "tin", "slrn")}


async def run(*argv: str, cwd: Path, env: dict[str, str] | None = None, stdin: bytes = b"",
              timeout: float = 15.0) -> tuple[int, str]:
    """Run a client without a terminal; returns (exit status, stdout+stderr)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("NNTP")}
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, env={**base, **(env or {})}, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, out.decode("utf-8", "replace")


def suck_dirs(tmp_path: Path, sucknewsrc: str) -> tuple[Path, Path, Path]:
    data, tmp, msgs = (tmp_path / d for d in ("data", "tmp", "msgs"))
    for d in (data, tmp, msgs):
        d.mkdir(parents=True)
    (data / "sucknewsrc").write_text(sucknewsrc)
    return data, tmp, msgs


@needs["suck"]
async def test_real_suck_pulls_articles_byte_exact(server, client, tmp_path):
    """suck -m (multifile) pulls local.test; each file is the article as ARTICLE returns it,
    dot-unstuffed, with LF line ends, and suck.newrc records the high-water mark."""
    await seed(client)
    data, tmp, msgs = suck_dirs(tmp_path, "local.test -100\n")
    rc, out = await run("suck", "127.0.0.1", "-N", str(server.port), "-m", "-H", "-K", "-q",
                        "-dd", str(data), "-dt", str(tmp), "-dm", str(msgs), cwd=tmp_path)
    assert rc == 0, out
    files = sorted(msgs.iterdir(), key=lambda p: int(p.name.split("-")[0]))
    assert len(files) == 5, out
    assert (await client.cmd("GROUP local.test")).startswith("211")
    for n, path in enumerate(files, 1):
        lines = await multiline(client, f"ARTICLE {n}", "220")
        assert path.read_bytes() == "\n".join(lines).encode() + b"\n"
    assert (tmp / "suck.newrc").read_text().split() == ["local.test", "5"]


async def start_peer(tmp_path: Path) -> ServerHandle:
    """A second server with its own path identity (start_server always uses test.example)
    that takes feeds from loopback (feed_access defaults to nobody)."""
    tmp_path.mkdir()
    db_path = tmp_path / "news.sqlite3"
    return await start_server_on(f"sqlite+aiosqlite:///{db_path}", db_path, path_host="peer.example",
                                 feed_access="loopback")


@needs["suck"]
async def test_real_suck_feeds_a_second_server_with_ihave(server, client, tmp_path):
    """suck -bp -hl host:port pulls from one server and offers the articles to another with
    IHAVE (RFC 3977 6.3.2): all arrive, Path gets the receiving server prepended
    (RFC 5537 3.8), bodies unchanged; offered again, every one is 435 (not wanted)."""
    await seed(client)
    peer = await start_peer(tmp_path / "peer")
    try:
        data, tmp, msgs = suck_dirs(tmp_path, "local.test -100\n")
        argv = ("suck", "127.0.0.1", "-N", str(server.port), "-H", "-K", "-q",
                "-dd", str(data), "-dt", str(tmp), "-dm", str(msgs), "-bp", "-hl", f"127.0.0.1:{peer.port}")
        rc, out = await run(*argv, cwd=tmp_path)
        assert rc == 0, out
        other = await peer.connect()
        try:
            assert (await other.cmd("GROUP local.test")).startswith("211 5 1 5 local.test")
            lines = await multiline(other, f"ARTICLE {REPLY1}", "220")
            assert header(lines, "Path") == "peer.example!test.example!not-for-mail"
            assert header(lines, "Xref") == "peer.example local.test:2"
            assert lines[lines.index("") + 1:] == ["> My widget is stuck.", "Hold the button 10 s.",
                                                  ".leading dot line"]
        finally:
            await other.close()
        data, tmp, msgs = suck_dirs(tmp_path / "again", "local.test -100\n")
        argv = ("suck", "127.0.0.1", "-N", str(server.port), "-H", "-K", "-q",
                "-dd", str(data), "-dt", str(tmp), "-dm", str(msgs), "-bp", "-hl", f"127.0.0.1:{peer.port}")
        rc, out = await run(*argv, cwd=tmp_path)
        assert rc == 0, out
        assert out.count("Article Not Wanted") == 5, out
    finally:
        await peer.server.close()
        await peer.store.close()


@needs["rpost"]
async def test_real_rpost_stdin_and_batch(server, client, tmp_path):
    """rpost host -N port < article (one POST); rpost -b batchfile -p dir (several POSTs);
    a duplicate in the batch is reported as 'Duplicate article', not a failure."""
    rc, out = await run("rpost", "127.0.0.1", "-N", str(server.port), cwd=tmp_path,
                        stdin=RPOST_ARTICLE.replace(b"\r\n", b"\n"))
    assert rc == 0 and any(ln.startswith("240 ") for ln in out.splitlines()), out
    body = await multiline(client, "BODY <rpost1@interop.example>", "222")
    assert body == ["Body line one.", ".dot line from rpost", "..two dots", ".", "last line"]

    (tmp_path / "b1").write_bytes(b"Newsgroups: local.test\nFrom: r@example.com\nSubject: batch 1\n\none\n")
    (tmp_path / "b2").write_bytes(b"Newsgroups: local.test\nFrom: r@example.com\nSubject: batch 2\n"
                                  b"References: <rpost1@interop.example>\n\ntwo\n")
    (tmp_path / "b3").write_bytes(RPOST_ARTICLE.replace(b"\r\n", b"\n"))
    (tmp_path / "batch").write_text("b1\nb2\nb3\n")
    rc, out = await run("rpost", "127.0.0.1", "-N", str(server.port), "-b", "batch",
                        "-p", str(tmp_path), cwd=tmp_path)
    assert rc == 0, out
    assert sum(ln.startswith("240 ") for ln in out.splitlines()) == 2, out
    assert "Duplicate article" in out, out
    assert not (tmp_path / "batch.fail").exists()
    assert (await client.cmd("GROUP local.test")) == "211 3 1 3 local.test"


@needs["tin"]
async def test_real_tin_checks_for_news(server, client, tmp_path):
    """tin -Z -v (check for unread news and exit: 2 when there is some) with a one-line
    .newsrc: CAPABILITIES, LIST OVERVIEW.FMT, LIST, GROUP, LISTGROUP, OVER."""
    await seed(client)
    home = tmp_path / "home"
    (home / ".tin").mkdir(parents=True)
    (home / ".newsrc").write_text("local.test: 1-2\n")
    (home / ".tin" / "tinrc").write_text("mail_address=Tin Tester <tin@example.com>\n")
    rc, out = await run("tin", "-Z", "-v", "-r", "-g", "127.0.0.1", "-p", str(server.port),
                        cwd=tmp_path, env={"HOME": str(home), "TERM": "dumb"})
    assert rc == 2, out
    assert re.search(r"\b3 unread .* in local\.test", out), out


@needs["slrn"]
async def test_real_slrn_fetches_descriptions(server, tmp_path):
    """slrn -d: MODE READER, the XOVER and XHDR probes, LIST NEWSGROUPS; writes the
    descriptions file and exits 0."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".slrnrc").write_text('set username "tester"\nset hostname "example.com"\n')
    rc, out = await run("slrn", "-h", f"127.0.0.1:{server.port}", "-d", cwd=tmp_path,
                        env={"HOME": str(home), "TERM": "xterm"})
    assert rc == 0, out
    assert (home / ".jnewsrc.dsc").read_text() == "local.test:Sample group\n"


@needs["slrn"]
async def test_real_slrn_creates_newsrc_from_list(server, tmp_path):
    """slrn --create builds ~/.jnewsrc from LIST (after MODE READER, the probes, LIST
    OVERVIEW.FMT) before it needs the terminal; without one it then stops, so only the
    file is checked."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".slrnrc").write_text('set username "tester"\nset hostname "example.com"\n')
    rc, out = await run("slrn", "-h", f"127.0.0.1:{server.port}", "--create", cwd=tmp_path,
                        env={"HOME": str(home), "TERM": "xterm"})
    newsrc = home / ".jnewsrc"
    assert newsrc.exists(), out
    assert newsrc.read_text().split() == ["local.test!"]
