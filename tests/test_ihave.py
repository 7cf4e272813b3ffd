"""IHAVE (RFC 3977 6.3.2) from senders that are not trusted peers (issue 13 point 6).

IHAVE is for peers: off unless ``[server] feed_access`` admits the client, and
since no peer is trusted yet, an article fed by IHAVE meets the group rules of
POST and loses every header this server would seem to vouch for.
"""

from __future__ import annotations

import sqlite3

from conftest import Client, connected, running
from nntpd.config import AccessRule, AuthSettings, Settings
from nntpd.passwords import hash_password

PASSWORD = "feed-password"
STAFF_ONLY = Settings(
    auth=AuthSettings(failure_delay=0.0),
    access=(AccessRule(groups="*", read="anyone", post="loopback"),
            AccessRule(groups="local.staff", read="anyone", post="trusted")),
)


def relayed(mid: str, groups: str = "local.test", extra: str = "") -> str:
    return (f"Path: far.example!not-for-mail\r\nFrom: Far <far@example.net>\r\nNewsgroups: {groups}\r\n"
            f"Subject: fed {mid}\r\nMessage-ID: {mid}\r\nDate: Mon, 30 Nov 2026 10:00:00 GMT\r\n"
            f"{extra}\r\nbody\r\n")


async def ihave(client: Client, mid: str, text: str) -> str:
    """Offer ``mid``; when asked for it, send the article; the last status line."""
    status = await client.cmd(f"IHAVE {mid}")
    if not status.startswith("335"):
        return status
    await client.send(text.encode() + b".\r\n")
    return await client.line()


async def capabilities(client: Client) -> list[str]:
    assert (await client.cmd("CAPABILITIES")).startswith("101")
    return await client.block()


async def add_account(handle, name: str, role: str) -> None:  # type: ignore[no-untyped-def]
    await handle.store.add_account(name, email=f"{name}@example.com",
                                   password_hash=hash_password(PASSWORD, n=2**10))
    if role != "member":
        await handle.store.set_role(name, role, changed_by="test")


async def test_ihave_is_off_by_default_even_for_loopback_and_staff(tmp_path):
    """RFC 3977 5.2/6.3.2: feed_access defaults to nobody, so IHAVE is not advertised and is
    refused (502: logging in would not help) for an anonymous loopback client and for staff."""
    settings = Settings(auth=AuthSettings(failure_delay=0.0))
    async with running(tmp_path, settings) as handle:
        await add_account(handle, "sam", "staff")
        async with connected(handle) as anonymous, connected(handle, "sam", PASSWORD) as staff:
            for client in (anonymous, staff):
                assert "IHAVE" not in await capabilities(client)
                status = await ihave(client, "<off@x>", relayed("<off@x>"))
                assert status.startswith("502"), status
            assert (await anonymous.cmd("STAT <off@x>")).startswith("430")


async def test_ihave_into_a_staff_only_group_is_rejected_and_nothing_stored(tmp_path):
    """Issue 13 point 6: with feed_access admitting the sender, the group rules of POST still
    apply: an anonymous loopback client or a member cannot feed local.staff (437, alone or
    cross-posted), while local.test takes the feed (235)."""
    async with running(tmp_path, STAFF_ONLY, feed_access="loopback") as handle:
        await handle.store.create_group("local.staff", creator="test")
        await add_account(handle, "max", "member")
        async with connected(handle) as anonymous, connected(handle, "max", PASSWORD) as member:
            assert "IHAVE" in await capabilities(anonymous)
            for n, (client, groups) in enumerate([(anonymous, "local.staff"), (member, "local.staff"),
                                                  (anonymous, "local.test,local.staff")]):
                mid = f"<closed{n}@x>"
                status = await ihave(client, mid, relayed(mid, groups))
                assert status.startswith("437") and "local.staff" in status, status
                assert (await client.cmd(f"STAT {mid}")).startswith("430")
            assert (await anonymous.cmd("GROUP local.staff")).startswith("211 0 ")
            assert (await ihave(anonymous, "<open@x>", relayed("<open@x>"))).startswith("235")


async def test_ihave_does_not_store_headers_this_server_would_vouch_for(tmp_path):
    """Issue 13 point 6 / RFC 5537 3.5: no sender is a trusted peer yet, so a fed article is
    injected here: its Injection-Info, Injection-Date, Sender, X-Poster-Role and Xref are
    dropped (Xref and Injection-Date are this server's), the rest is kept byte for byte."""
    forged = ("Injection-Info: far.example; posting-account=\"sam\"\r\n"
              "Injection-Date: Mon, 30 Nov 2026 10:00:01 GMT\r\n"
              "Sender: Sam Staff <sam@example.com>\r\nX-Poster-Role: staff\r\n"
              "Xref: far.example local.test:77\r\nUser-Agent: feeder 1.0\r\n")
    async with running(tmp_path, feed_access="loopback") as handle, connected(handle) as client:
        assert (await ihave(client, "<forged@x>", relayed("<forged@x>", extra=forged))).startswith("235")
        assert (await client.cmd("HEAD <forged@x>")).startswith("221")
        head = await client.block()
        names = [line.split(":", 1)[0].lower() for line in head]
        assert not {"injection-info", "sender", "x-poster-role"} & set(names), head
        assert [ln for ln in head if ln.startswith("Xref:")] == ["Xref: test.example local.test:1"]
        assert names.count("injection-date") == 1
        assert "Injection-Date: Mon, 30 Nov 2026 10:00:01 GMT" not in head
        assert "User-Agent: feeder 1.0" in head and "Path: test.example!far.example!not-for-mail" in head
        assert (await client.cmd("OVER <forged@x>")).startswith("224")
        (line,) = await client.block()
        assert line.split("\t")[-1] == ""  # no X-Poster-Role overview field


async def test_ihave_refusals_keep_their_codes(tmp_path):
    """RFC 3977 6.3.2: an offered article the server has is 435; a Message-ID that differs from
    the offer, or an article without Date, is 437."""
    async with running(tmp_path, feed_access="loopback") as handle, connected(handle) as client:
        assert (await ihave(client, "<a@x>", relayed("<a@x>"))).startswith("235")
        assert (await client.cmd("IHAVE <a@x>")).startswith("435")
        assert (await ihave(client, "<b@x>", relayed("<c@x>"))).startswith("437")
        no_date = relayed("<d@x>").replace("Date: Mon, 30 Nov 2026 10:00:00 GMT\r\n", "")
        assert (await ihave(client, "<d@x>", no_date)).startswith("437")


async def test_feed_access_levels_refuse_with_480_or_502_and_store_nothing(tmp_path):
    """Issue 14 section 6 / RFC 3977 6.3.2, RFC 4643 2.1: at feed_access = trusted, IHAVE is
    not advertised to an anonymous client or a member; the anonymous one gets 480 (logging in
    could help), the member 502; neither is asked for the article and nothing is stored.
    An MVP and staff are admitted (335, then 235)."""
    settings = Settings(auth=AuthSettings(failure_delay=0.0))
    async with running(tmp_path, settings, feed_access="trusted") as handle:
        for name, role in (("max", "member"), ("mia", "mvp"), ("sam", "staff")):
            await add_account(handle, name, role)
        async with connected(handle) as anonymous, connected(handle, "max", PASSWORD) as member:
            for client, code in ((anonymous, "480"), (member, "502")):
                assert "IHAVE" not in await capabilities(client)
                status = await client.cmd("IHAVE <refused@x>")
                assert status.startswith(code), status
                assert (await client.cmd("STAT <refused@x>")).startswith("430")
        for n, name in enumerate(("mia", "sam")):
            async with connected(handle, name, PASSWORD) as trusted:
                assert "IHAVE" in await capabilities(trusted)
                mid = f"<fed{n}@x>"
                assert (await ihave(trusted, mid, relayed(mid))).startswith("235")
                assert (await trusted.cmd(f"STAT {mid}")).startswith("223")


async def test_feed_access_authenticated_refuses_anonymous_loopback_with_480(tmp_path):
    """RFC 3977 6.3.2 / RFC 4643 2.1: at feed_access = authenticated, being on loopback is not
    enough (480); a logged-in member may feed (235)."""
    settings = Settings(auth=AuthSettings(failure_delay=0.0))
    async with running(tmp_path, settings, feed_access="authenticated") as handle:
        await add_account(handle, "max", "member")
        async with connected(handle) as anonymous, connected(handle, "max", PASSWORD) as member:
            assert "IHAVE" not in await capabilities(anonymous)
            assert (await anonymous.cmd("IHAVE <a1@x>")).startswith("480")
            assert "IHAVE" in await capabilities(member)
            assert (await ihave(member, "<a1@x>", relayed("<a1@x>"))).startswith("235")


async def test_storage_failure_is_436_and_the_same_offer_succeeds_later(tmp_path):
    """RFC 3977 6.3.2: a transfer that fails for a transient reason is 436 (try again later),
    not 437 (never retry), and nothing is stored; once storage works, the same offer is 335
    then 235. The failure is a trigger, added to the database file by another connection,
    that writes to a missing table (an OperationalError in the writer)."""
    async with running(tmp_path, feed_access="loopback") as handle, connected(handle) as client:
        with sqlite3.connect(handle.db_path) as db:
            db.execute("CREATE TRIGGER broken BEFORE INSERT ON articles "
                       "BEGIN INSERT INTO no_such_table VALUES (1); END")
        status = await ihave(client, "<t1@x>", relayed("<t1@x>"))
        assert status.startswith("436"), status
        assert (await client.cmd("STAT <t1@x>")).startswith("430")
        with sqlite3.connect(handle.db_path) as db:
            db.execute("DROP TRIGGER broken")
        assert (await ihave(client, "<t1@x>", relayed("<t1@x>"))).startswith("235")
        assert (await client.cmd("STAT <t1@x>")).startswith("223")
