"""POST over TCP: RFC 3977 6.3.1, with article checks (RFC 5536) and injection (RFC 5537)."""

from __future__ import annotations

import asyncio
from email.utils import parsedate_to_datetime

import pytest

from conftest import start_server
from nntp_helpers import (
    group_info,
    listgroup,
    make_article,
    post_ok,
    unique_id,
    unstuff,
    until,
)


async def head_bytes(client, target: str) -> bytes:
    status = await client.cmd(f"HEAD {target}")
    assert status.startswith("221"), status
    return unstuff(await client.raw_block())


def header_lines(head: bytes) -> list[bytes]:
    return head.split(b"\r\n")[:-1]


def values(head: bytes, name: str) -> list[str]:
    prefix = name.lower().encode() + b":"
    return [
        ln[len(prefix):].strip().decode("utf-8", "surrogateescape")
        for ln in header_lines(head)
        if ln.lower().startswith(prefix)
    ]


# --- the exchange ------------------------------------------------------------


async def test_post_340_then_240(client):
    """RFC 3977 6.3.1.2: POST answers 340, the article follows, then 240."""
    assert (await client.cmd("POST")).startswith("340")
    await client.send(make_article(message_id="<exchange@example.com>") + b".\r\n")
    assert (await client.line()).startswith("240")
    assert (await client.cmd("STAT <exchange@example.com>")).startswith("223 0 <exchange@example.com>")


async def test_post_with_argument_is_501(client):
    """RFC 3977 6.3.1.1 / 3.2.1: POST takes no argument; an argument is a syntax error."""
    assert (await client.cmd("POST now")).startswith("501")
    assert (await client.cmd("DATE")).startswith("111")


@pytest.mark.parametrize("missing", ["from_", "newsgroups", "subject"])
async def test_missing_required_header_is_441(client, missing):
    """RFC 5536 3.1 (From, Newsgroups, Subject are mandatory); RFC 3977 6.3.1.2: 441."""
    mid = unique_id()
    status = await client.post(make_article(message_id=mid, **{missing: None}))
    assert status.startswith("441"), status
    assert (await client.cmd(f"STAT {mid}")).startswith("430")
    assert await group_info(client, "local.test") == (0, 1, 0, "local.test")


@pytest.mark.parametrize("bad", ["no-angle@example.com", "<no-at-sign>", "<two@at@x> <y@z>", "<sp ace@x>"])
async def test_invalid_message_id_is_441(client, bad):
    """RFC 5536 3.1.3 (msg-id syntax); RFC 3977 6.3.1.2: a malformed Message-ID is refused with 441."""
    status = await client.post(make_article(extra=(f"Message-ID: {bad}",)))
    assert status.startswith("441"), status
    assert (await group_info(client, "local.test"))[0] == 0


@pytest.mark.parametrize("bad", ["local..test", "local.test.", "local test", "local.test/x"])
async def test_invalid_newsgroup_name_is_441(client, bad):
    """RFC 5536 3.1.4 (newsgroup-name syntax); RFC 3977 6.3.1.2: 441."""
    status = await client.post(make_article(newsgroups=bad))
    assert status.startswith("441"), status
    assert (await client.cmd("DATE")).startswith("111")


async def test_nonexistent_group_is_441(client):
    """RFC 5537 3.5 (groups must be valid at the injecting agent); RFC 3977 6.3.1.2: 441."""
    mid = unique_id()
    status = await client.post(make_article(message_id=mid, newsgroups="no.such.group"))
    assert status.startswith("441"), status
    assert (await client.cmd(f"STAT {mid}")).startswith("430")


async def test_nonexistent_group_in_crosspost_is_441_and_nothing_stored(client):
    """RFC 5537 3.5 / RFC 3977 6.3.1.2: one unknown group refuses the whole post (no partial store)."""
    mid = unique_id()
    status = await client.post(make_article(message_id=mid, newsgroups="local.test,no.such.group"))
    assert status.startswith("441"), status
    assert (await group_info(client, "local.test"))[0] == 0


async def test_read_only_group_is_441(server, client):
    """RFC 3977 7.6.3 (status 'n': posting not permitted); 6.3.1.2: 441."""
    await server.store.create_group("local.readonly", status="n")
    mid = unique_id()
    status = await client.post(make_article(message_id=mid, newsgroups="local.readonly"))
    assert status.startswith("441"), status
    assert (await group_info(client, "local.readonly"))[0] == 0


async def test_duplicate_message_id_is_441(client):
    """RFC 5536 3.1.3 (Message-ID is unique); RFC 3977 6.3.1.2: a second copy is refused with 441."""
    mid = await post_ok(client, subject="first")
    status = await client.post(make_article(message_id=mid, subject="second"))
    assert status.startswith("441"), status
    assert (await group_info(client, "local.test"))[0] == 1
    head = await head_bytes(client, mid)
    assert values(head, "Subject") == ["first"]


async def test_duplicate_message_id_posted_at_once_stores_one(server, client):
    """RFC 5536 3.1.3: two simultaneous posts with one Message-ID: one 240, one 441, one article."""
    other = await server.connect()
    try:
        mid = unique_id("race")
        results = await asyncio.gather(
            client.post(make_article(message_id=mid, subject="a")),
            other.post(make_article(message_id=mid, subject="b")),
        )
    finally:
        await other.close()
    assert sorted(r[:3] for r in results) == ["240", "441"], results
    assert await listgroup(client, "local.test") == [1]


async def test_article_over_size_limit_is_441_and_connection_survives(tmp_path):
    """RFC 3977 6.3.1.2: a refused article gives 441 after the whole block was read; the session goes on."""
    handle = await start_server(tmp_path, max_article_bytes=2000)
    try:
        client = await handle.connect()
        try:
            mid = unique_id("big")
            big = make_article(message_id=mid, body=(b"y" * 78 + b"\r\n") * 60)
            assert (await client.post(big)).startswith("441")
            assert (await client.cmd("DATE")).startswith("111")
            assert (await client.cmd(f"STAT {mid}")).startswith("430")
            small = await post_ok(client, body=b"small\r\n")
            assert (await client.cmd(f"STAT {small}")).startswith(f"223 0 {small}")
            assert await group_info(client, "local.test") == (1, 1, 1, "local.test")
        finally:
            await client.close()
    finally:
        await handle.server.close()
        await handle.store.close()


async def test_article_with_very_long_line_over_limit_is_441(tmp_path):
    """RFC 3977 6.3.1.2 / 3.1.1: one huge line in the block is refused with 441 and the stream stays in sync."""
    handle = await start_server(tmp_path, max_article_bytes=2000)
    try:
        client = await handle.connect()
        try:
            big = make_article(body=b"z" * 100_000 + b"\r\n")
            assert (await client.post(big)).startswith("441")
            assert (await client.cmd("GROUP local.test")) == "211 0 1 0 local.test"
        finally:
            await client.close()
    finally:
        await handle.server.close()
        await handle.store.close()


async def test_rfc2047_encoded_newsgroups_is_441_and_no_crash(client):
    """RFC 5536 3.1.4 (Newsgroups is plain group names, never encoded words); RFC 3977 6.3.1.2: 441."""
    mid = unique_id()
    status = await client.post(
        make_article(message_id=mid, newsgroups="=?UTF-8?Q?local=2Etest?=")
    )
    assert status.startswith("441"), status
    assert (await client.cmd("DATE")).startswith("111")
    assert (await client.cmd(f"STAT {mid}")).startswith("430")


# --- injection (RFC 5537 3.5) ------------------------------------------------


async def test_injected_message_id_and_date_when_absent(client):
    """RFC 5537 3.5: the injecting agent adds Message-ID and Date when the poster left them out."""
    status = await client.post(make_article(subject="no ids"))
    assert status.startswith("240"), status
    await client.cmd("GROUP local.test")
    first = await client.cmd("HEAD 1")
    assert first.startswith("221 1 <")
    mid = first.split()[2]
    head = unstuff(await client.raw_block())
    assert values(head, "Message-ID") == [mid]
    (date,) = values(head, "Date")
    assert parsedate_to_datetime(date).tzinfo is not None


async def test_injected_path_and_injection_date(client):
    """RFC 5537 3.5 / 3.2.1: Path gets the server's path identity; Injection-Date is added."""
    mid = await post_ok(client)
    head = await head_bytes(client, mid)
    assert values(head, "Path") == ["test.example!not-for-mail"]
    (injection_date,) = values(head, "Injection-Date")
    assert parsedate_to_datetime(injection_date).tzinfo is not None


async def test_posters_message_id_and_date_are_kept(client):
    """RFC 5537 3.5: a valid Message-ID and Date from the poster are kept as they are."""
    date = "Mon, 30 Jun 2025 08:00:00 +0200"
    mid = await post_ok(client, extra=(f"Date: {date}",))
    head = await head_bytes(client, mid)
    assert values(head, "Message-ID") == [mid]
    assert values(head, "Date") == [date]


async def test_client_sent_reserved_headers_are_removed(client):
    """RFC 5537 3.5 (and 3.2 for Xref): Xref, Injection-Info, X-Poster-Role from a poster are dropped."""
    mid = await post_ok(
        client,
        extra=(
            "Xref: evil.example local.test:999",
            "Injection-Info: evil.example; posting-host=forged",
            "X-Poster-Role: staff",
            "Injection-Date: Mon, 01 Jan 2001 00:00:00 GMT",
        ),
    )
    head = await head_bytes(client, mid)
    assert values(head, "Xref") == ["test.example local.test:1"]
    assert values(head, "Injection-Info") == []
    assert values(head, "X-Poster-Role") == []
    assert len(values(head, "Injection-Date")) == 1
    assert b"evil" not in head and b"forged" not in head and b"2001" not in head


async def test_other_headers_preserved_byte_for_byte(client):
    """RFC 5537 3.5 / RFC 3977 6.2: headers other than the injected ones are kept byte for byte, in order."""
    mid = unique_id()
    sent_header = (
        b"From: =?UTF-8?Q?Ren=C3=A9?= <rene@example.fr>\r\n"
        b"NEWSGROUPS:   local.test\r\n"
        b"subject: Caf\xc3\xa9 \xe9 latin-1 \t \r\n"
        b"Message-ID: " + mid.encode() + b"\r\n"
        b"Date: Tue, 01 Jul 2025 12:00:00 +0000\r\n"
        b"X-Folded: first part\r\n"
        b"\tsecond part\r\n"
        b"   third part\r\n"
        b"User-Agent: test/1.0 (odd  spacing)\r\n"
        b"X-Empty:\r\n"
        b"Organization: Example\r\n"
    )
    status = await client.post(sent_header + b"\r\nbody\r\n")
    assert status.startswith("240"), status
    head = await head_bytes(client, mid)
    assert sent_header in head
    lines = header_lines(head)
    assert lines[0] == b"Path: test.example!not-for-mail"
    assert lines[-1] == b"Xref: test.example local.test:1"


# --- moderation --------------------------------------------------------------


async def test_moderated_post_is_held_not_published(server, client):
    """RFC 3977 7.6.3 (status 'm': posts go to the moderator) / RFC 5537 3.5.1: 240, but not in the group."""
    await server.store.create_group("local.moderated", status="m")
    mid = await post_ok(client, newsgroups="local.moderated", subject="please approve")
    assert (await group_info(client, "local.moderated"))[0] == 0
    assert (await client.cmd(f"STAT {mid}")).startswith("430")
    held = await server.store.held()
    assert [h.message_id for h in held] == [mid]
    assert held[0].subject == "please approve"


async def test_moderated_post_approved_is_published(server, client):
    """RFC 5537 3.5.1 / 5.2: once approved the article enters the group with a number."""
    await server.store.create_group("local.moderated", status="m")
    mid = await post_ok(client, newsgroups="local.moderated")
    (held,) = await server.store.held()
    await server.store.approve(held.id)
    assert await group_info(client, "local.moderated") == (1, 1, 1, "local.moderated")
    assert (await client.cmd("STAT 1")).startswith(f"223 1 {mid}")
    assert await server.store.held() == []
    head = await head_bytes(client, mid)
    assert values(head, "Xref") == ["test.example local.moderated:1"]


async def test_moderated_post_rejected_is_dropped(server, client):
    """RFC 5537 3.5.1: a rejected held article never appears."""
    await server.store.create_group("local.moderated", status="m")
    mid = await post_ok(client, newsgroups="local.moderated")
    (held,) = await server.store.held()
    await server.store.reject(held.id)
    assert await server.store.held() == []
    assert (await group_info(client, "local.moderated"))[0] == 0
    assert (await client.cmd(f"STAT {mid}")).startswith("430")


async def test_moderated_held_message_id_cannot_be_posted_again(server, client):
    """RFC 5536 3.1.3: a Message-ID waiting for moderation is taken; a second post of it is refused (441)."""
    await server.store.create_group("local.moderated", status="m")
    mid = await post_ok(client, newsgroups="local.moderated")
    status = await client.post(make_article(message_id=mid, newsgroups="local.test"))
    assert status.startswith("441"), status
    assert (await group_info(client, "local.test"))[0] == 0


# --- cross-posting -----------------------------------------------------------


async def test_crosspost_gets_a_number_in_each_group_and_xref_with_both(server, client):
    """RFC 5536 3.1.4 (Newsgroups list) / RFC 5537 3.2 (Xref): one number per group, Xref lists both."""
    await server.store.create_group("local.other")
    await post_ok(client, newsgroups="local.other", subject="filler")
    mid = await post_ok(client, newsgroups="local.test,local.other", subject="both")
    assert await group_info(client, "local.test") == (1, 1, 1, "local.test")
    assert (await client.cmd("STAT 1")).startswith(f"223 1 {mid}")
    assert await group_info(client, "local.other") == (2, 1, 2, "local.other")
    assert (await client.cmd("STAT 2")).startswith(f"223 2 {mid}")
    (xref,) = values(await head_bytes(client, mid), "Xref")
    host, *entries = xref.split()
    assert host == "test.example"
    assert sorted(entries) == ["local.other:2", "local.test:1"]


async def test_crosspost_repeated_group_counted_once(client):
    """RFC 5536 3.1.4: a group named twice in Newsgroups gets one article number."""
    mid = await post_ok(client, newsgroups="local.test, local.test")
    assert await listgroup(client, "local.test") == [1]
    assert values(await head_bytes(client, mid), "Xref") == ["test.example local.test:1"]


# --- threads -----------------------------------------------------------------


async def test_reply_is_filed_under_first_references_id(server, client):
    """RFC 5537 3.4.4 / RFC 5536 3.2.10: a reply's thread is the first id in References."""
    root = await post_ok(client, message_id="<root@example.com>", subject="question")
    await post_ok(client, subject="Re: question", extra=(f"References: {root}",),
                  from_="Bob <bob@example.com>")
    await post_ok(client, subject="Re: question",
                  extra=(f"References: {root} <child@example.com>",))
    thread = await server.store.thread(root)
    assert thread is not None
    assert thread["posts"] == 3
    assert thread["root_present"]
    assert await server.store.thread("<child@example.com>") is None


async def test_reply_before_parent_then_parent_arrives(server, client):
    """RFC 5537 3.4.4: a reply arriving first files under the root id; the root then joins that thread."""
    root = "<late-root@example.com>"
    await post_ok(client, subject="Re: late", extra=(f"References: {root}",),
                  from_="Bob <bob@example.com>")
    thread = await server.store.thread(root)
    assert thread is not None
    assert (thread["posts"], bool(thread["root_present"])) == (1, False)
    await post_ok(client, message_id=root, subject="late")
    thread = await server.store.thread(root)
    assert (thread["posts"], bool(thread["root_present"])) == (2, True)


# --- connection loss ---------------------------------------------------------


async def test_disconnect_mid_post_leaves_nothing(server, client):
    """RFC 3977 6.3.1.2 (240 only after the whole article): a connection dropped mid-block stores nothing."""
    before = await group_info(client, "local.test")
    dropper = await server.connect()
    assert (await dropper.cmd("POST")).startswith("340")
    mid = unique_id("half")
    article = make_article(message_id=mid, body=b"line\r\n" * 50)
    await dropper.send(article[: len(article) // 2])
    await asyncio.sleep(0.05)
    await dropper.close()
    assert await until(lambda: server.server._connections == 1)
    assert await group_info(client, "local.test") == before
    assert (await client.cmd(f"STAT {mid}")).startswith("430")
    fresh = await server.connect()
    try:
        assert fresh.greeting.startswith("200")
        await post_ok(fresh)
        assert await listgroup(fresh, "local.test") == [1]
    finally:
        await fresh.close()
