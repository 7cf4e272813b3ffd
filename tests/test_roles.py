"""Staff/MVP roles (the trusted X-Poster-Role header), Sender, role history and access rules.

The spec: a post's role comes from the authenticated account, read afresh
for every post, never from headers; X-Poster-Role is an overview field
(LIST OVERVIEW.FMT ends with X-Poster-Role:full); access rules choose who
may read and post per group, the last matching rule winning.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import AsyncContextManager, AsyncIterator

from conftest import Client, ServerHandle, running
from conftest import connected as login_connection
from nntpd.config import AccessRule, AuthSettings, Settings
from nntpd.passwords import hash_password

PASSWORD = "role-password"
ACCOUNTS = {  # name: (email, display name, role)
    "mia": ("mia@example.com", "Mia Mvp", "mvp"),
    "sam": ("sam@example.com", "Sam Staff", "staff"),
    "max": ("max@example.com", "Max Member", "member"),
}


@asynccontextmanager
async def serving(tmp_path: Path, settings: Settings | None = None) -> AsyncIterator[ServerHandle]:
    settings = replace(settings or Settings(), auth=AuthSettings(failure_delay=0.0))
    async with running(tmp_path, settings=settings) as handle:
        for name, (email, display, role) in ACCOUNTS.items():
            await handle.store.add_account(name, email=email, display_name=display,
                                           password_hash=hash_password(PASSWORD, n=2**10))
            if role != "member":
                await handle.store.set_role(name, role, changed_by="setup")
        yield handle


def connected(handle: ServerHandle, user: str | None = None) -> AsyncContextManager[Client]:
    """A connection, logged in as ``user`` with this module's password when given."""
    return login_connection(handle, user, PASSWORD)


def article(msgid: str, *, from_: str = "Someone <someone@example.com>", group: str = "local.test",
            extra: str = "", references: str = "") -> str:
    refs = f"References: {references}\n" if references else ""
    return (f"From: {from_}\nNewsgroups: {group}\nSubject: about {msgid}\nMessage-ID: <{msgid}@example.com>\n"
            f"{refs}{extra}\nbody of {msgid}\n")


async def head(client: Client, msgid: str) -> list[str]:
    status = await client.cmd(f"HEAD <{msgid}@example.com>")
    assert status.startswith("221"), status
    return await client.block()


def header_lines(lines: list[str], name: str) -> list[str]:
    return [ln for ln in lines if ln.lower().startswith(name.lower() + ":")]


async def over_fields(client: Client, msgid: str) -> list[str]:
    status = await client.cmd(f"OVER <{msgid}@example.com>")
    assert status.startswith("224"), status
    (line,) = await client.block()
    return line.split("\t")


# -- X-Poster-Role -------------------------------------------------------------


async def test_mvp_post_carries_role_in_head_and_overview(tmp_path):
    """Spec + RFC 3977 8.3.2/8.4: an MVP account's post has X-Poster-Role: mvp in HEAD and as the
    9th overview field (after Xref), which LIST OVERVIEW.FMT lists last as X-Poster-Role:full."""
    async with serving(tmp_path) as handle, connected(handle, "mia") as client:
        assert (await client.post(article("mvp-1", from_="Mia <mia@example.com>"))).startswith("240")
        assert header_lines(await head(client, "mvp-1"), "X-Poster-Role") == ["X-Poster-Role: mvp"]
        fields = await over_fields(client, "mvp-1")
        assert len(fields) == 10
        assert fields[8].startswith("Xref: ")
        assert fields[9] == "X-Poster-Role: mvp"
        assert (await client.cmd("GROUP local.test")).startswith("211")
        assert (await client.cmd("OVER 1")).startswith("224")
        (line,) = await client.block()
        assert line.split("\t")[9] == "X-Poster-Role: mvp"
        assert (await client.cmd("CAPABILITIES")).startswith("101")
        await client.block()
        assert (await client.cmd("LIST OVERVIEW.FMT")).startswith("215")
        fmt = await client.block()
        assert fmt[-1] == "X-Poster-Role:full"
        assert fmt[-2] == "Xref:full"
        assert fmt[:5] == ["Subject:", "From:", "Date:", "Message-ID:", "References:"]


async def test_overview_fmt_lists_role_last_without_capabilities(tmp_path):
    """RFC 3977 8.4.2 / RFC 2980 2.1.7: the legacy form (Bytes:, Lines:) also ends with X-Poster-Role:full."""
    async with serving(tmp_path) as handle, connected(handle) as client:
        assert (await client.cmd("LIST OVERVIEW.FMT")).startswith("215")
        fmt = await client.block()
        assert fmt[-1] == "X-Poster-Role:full" and len(fmt) == 9


async def test_staff_post_carries_role(tmp_path):
    """Spec: a staff account's post carries X-Poster-Role: staff."""
    async with serving(tmp_path) as handle, connected(handle, "sam") as client:
        assert (await client.post(article("staff-1", from_="sam@example.com"))).startswith("240")
        assert header_lines(await head(client, "staff-1"), "X-Poster-Role") == ["X-Poster-Role: staff"]
        assert (await over_fields(client, "staff-1"))[9] == "X-Poster-Role: staff"


async def test_forged_role_from_anonymous_is_removed(tmp_path):
    """Spec + RFC 5537 3.5: a forged X-Poster-Role from an anonymous poster is dropped (HEAD, OVER, HDR)."""
    async with serving(tmp_path) as handle, connected(handle) as client:
        forged = article("forged-anon", extra="X-Poster-Role: staff\nx-poster-role:   mvp\n")
        assert (await client.post(forged)).startswith("240")
        assert header_lines(await head(client, "forged-anon"), "X-Poster-Role") == []
        fields = await over_fields(client, "forged-anon")
        assert len(fields) == 10 and fields[9] == ""
        assert (await client.cmd("HDR X-Poster-Role <forged-anon@example.com>")).startswith("225")
        assert [ln.rstrip() for ln in await client.block()] == ["0"]


async def test_forged_role_from_member_is_removed(tmp_path):
    """Spec: a member's forged X-Poster-Role: staff is dropped; a member's post has no X-Poster-Role."""
    async with serving(tmp_path) as handle, connected(handle, "max") as client:
        assert (await client.post(article("forged-member", from_="max@example.com",
                                          extra="X-Poster-Role: staff\n"))).startswith("240")
        assert (await client.post(article("plain-member", from_="max@example.com"))).startswith("240")
        for msgid in ("forged-member", "plain-member"):
            assert header_lines(await head(client, msgid), "X-Poster-Role") == []
            assert (await over_fields(client, msgid))[9] == ""


async def test_folded_forged_role_is_removed(tmp_path):
    """RFC 5322 2.2.3 + spec: a folded forged X-Poster-Role (with a continuation line) is dropped whole."""
    async with serving(tmp_path) as handle, connected(handle, "max") as client:
        forged = article("folded", from_="max@example.com", extra="X-Poster-Role:\n staff\n")
        assert (await client.post(forged)).startswith("240")
        lines = await head(client, "folded")
        assert header_lines(lines, "X-Poster-Role") == []
        assert "staff" not in [ln.strip() for ln in lines]


async def test_mvp_forging_staff_gets_mvp(tmp_path):
    """Spec: the role comes from the account only: an MVP claiming staff is shown as mvp, once."""
    async with serving(tmp_path) as handle, connected(handle, "mia") as client:
        forged = article("mvp-claims-staff", from_="mia@example.com", extra="X-Poster-Role: staff\n")
        assert (await client.post(forged)).startswith("240")
        assert header_lines(await head(client, "mvp-claims-staff"), "X-Poster-Role") == ["X-Poster-Role: mvp"]


async def test_role_change_applies_to_next_post_in_same_session(tmp_path):
    """Spec: `user flag` (store.set_role) takes effect on the very next post, without reconnecting,
    in both directions."""
    async with serving(tmp_path) as handle, connected(handle, "max") as client:
        assert (await client.post(article("before-flag", from_="max@example.com"))).startswith("240")
        await handle.store.set_role("max", "staff", changed_by="admin")
        assert (await client.post(article("after-flag", from_="max@example.com"))).startswith("240")
        await handle.store.set_role("max", "member", changed_by="admin")
        assert (await client.post(article("after-unflag", from_="max@example.com"))).startswith("240")
        assert header_lines(await head(client, "before-flag"), "X-Poster-Role") == []
        assert header_lines(await head(client, "after-flag"), "X-Poster-Role") == ["X-Poster-Role: staff"]
        assert header_lines(await head(client, "after-unflag"), "X-Poster-Role") == []


async def test_role_changes_are_recorded(tmp_path):
    """Spec: every role change is recorded with old and new role, who made it and when."""
    async with serving(tmp_path) as handle:
        start = datetime.now(timezone.utc) - timedelta(seconds=5)
        await handle.store.set_role("max", "mvp", changed_by="carol")
        await handle.store.set_role("max", "mvp", changed_by="carol")  # no change, no record
        await handle.store.set_role("max", "staff", changed_by="dan")
        changes = await handle.store.role_changes("max")
        assert [(c.old_role, c.new_role, c.changed_by) for c in changes] == [
            ("member", "mvp", "carol"), ("mvp", "staff", "dan")]
        now = datetime.now(timezone.utc) + timedelta(seconds=5)
        for change in changes:
            at = change.changed_at if change.changed_at.tzinfo else change.changed_at.replace(tzinfo=timezone.utc)
            assert start <= at <= now
            assert change.account == "max"
        assert (await handle.store.account("max")).role == "staff"


async def test_hdr_poster_role_over_range(tmp_path):
    """RFC 3977 8.5 + spec: HDR X-Poster-Role over a range gives each article's role (empty for members)."""
    async with serving(tmp_path) as handle:
        for user, msgid in (("mia", "r1"), ("max", "r2"), ("sam", "r3")):
            async with connected(handle, user) as client:
                assert (await client.post(article(msgid, from_=ACCOUNTS[user][0]))).startswith("240")
        async with connected(handle) as client:
            assert (await client.cmd("GROUP local.test")).startswith("211 3 1 3")
            assert (await client.cmd("HDR X-Poster-Role 1-3")).startswith("225")
            assert [ln.rstrip() for ln in await client.block()] == ["1 mvp", "2", "3 staff"]
            assert (await client.cmd("XHDR X-Poster-Role 1-")).startswith("221")
            assert [ln.rstrip() for ln in await client.block()] == ["1 mvp", "2", "3 staff"]


# -- Sender (RFC 5536 3.1.2, spec) -------------------------------------------------


async def test_sender_added_when_from_differs(tmp_path):
    """RFC 5536 3.1.2 + spec: when From is not the account's address the server adds Sender with it."""
    async with serving(tmp_path) as handle, connected(handle, "max") as client:
        assert (await client.post(article("other-from", from_="Boss <boss@example.org>"))).startswith("240")
        lines = await head(client, "other-from")
        assert header_lines(lines, "Sender") == ["Sender: Max Member <max@example.com>"]
        assert header_lines(lines, "From") == ["From: Boss <boss@example.org>"]


async def test_no_sender_when_from_is_account_address(tmp_path):
    """Spec: From with the account's own address (any case) gets no Sender."""
    async with serving(tmp_path) as handle, connected(handle, "max") as client:
        assert (await client.post(article("own-from", from_="Max <MAX@Example.com>"))).startswith("240")
        assert header_lines(await head(client, "own-from"), "Sender") == []


async def test_client_sender_dropped_for_authenticated_post(tmp_path):
    """Spec: a client's Sender on an authenticated post is dropped; only the server's one remains."""
    async with serving(tmp_path) as handle, connected(handle, "max") as client:
        forged = article("fake-sender", from_="Boss <boss@example.org>", extra="Sender: ceo@example.org\n")
        assert (await client.post(forged)).startswith("240")
        assert header_lines(await head(client, "fake-sender"), "Sender") == [
            "Sender: Max Member <max@example.com>"]
        forged = article("fake-sender-2", from_="max@example.com", extra="Sender: ceo@example.org\n")
        assert (await client.post(forged)).startswith("240")
        assert header_lines(await head(client, "fake-sender-2"), "Sender") == []


async def test_sender_added_when_from_names_several_mailboxes(tmp_path):
    """RFC 5322 3.6.2: a From with several mailboxes needs a Sender; the account's own address
    listed first is not enough, the server adds its Sender (and drops the client's)."""
    async with serving(tmp_path) as handle, connected(handle, "max") as client:
        several = article("several", from_="max@example.com, Boss <boss@example.org>",
                          extra="Sender: boss@example.org\n")
        assert (await client.post(several)).startswith("240")
        (sender,) = header_lines(await head(client, "several"), "Sender")
        assert sender.endswith("<max@example.com>"), sender


async def test_anonymous_post_with_several_from_mailboxes_needs_its_own_sender(tmp_path):
    """RFC 5322 3.6.2: with no account to vouch for, an anonymous poster whose From names
    several mailboxes must send a Sender (441 without one); with one it is stored as sent."""
    async with serving(tmp_path) as handle, connected(handle) as client:
        from_ = "ann@example.com, Bob <bob@example.org>"
        status = await client.post(article("anon-several", from_=from_))
        assert status.startswith("441") and "Sender" in status, status
        assert (await client.cmd("STAT <anon-several@example.com>")).startswith("430")
        with_sender = article("anon-several", from_=from_, extra="Sender: ann@example.com\n")
        assert (await client.post(with_sender)).startswith("240")
        assert header_lines(await head(client, "anon-several"), "Sender") == ["Sender: ann@example.com"]


# -- thread figures (spec) -----------------------------------------------------------


async def test_thread_first_staff_at_set_by_mvp_reply(tmp_path):
    """Spec: a thread's first_staff_at is set by the first staff/MVP article, not by members or
    forged headers; the article records the poster's account and role."""
    async with serving(tmp_path) as handle:
        root = "<question@example.com>"
        async with connected(handle) as client:
            assert (await client.post(article("question", from_="asker@example.net"))).startswith("240")
        assert await handle.store.thread_key_of(root) == root
        thread = await handle.store.thread(root)
        assert thread is not None and thread["first_staff_at"] is None
        async with connected(handle, "max") as client:
            reply = article("member-reply", from_="max@example.com", references=root,
                            extra="X-Poster-Role: staff\n")
            assert (await client.post(reply)).startswith("240")
        thread = await handle.store.thread(root)
        assert thread["first_staff_at"] is None and thread["first_reply_at"] is not None
        async with connected(handle, "mia") as client:
            reply = article("mvp-reply", from_="mia@example.com", references=root)
            assert (await client.post(reply)).startswith("240")
        thread = await handle.store.thread(root)
        assert thread["first_staff_at"] is not None and thread["posts"] == 3
        by_id = {a.message_id: a for a in await handle.store.thread_articles(root)}
        assert by_id["<mvp-reply@example.com>"].author == "mia"
        assert by_id["<mvp-reply@example.com>"].role == "mvp"
        assert by_id["<member-reply@example.com>"].role in (None, "member")
        assert by_id["<question@example.com>"].role is None


async def test_anonymous_forged_role_does_not_count_as_staff(tmp_path):
    """Spec: a forged X-Poster-Role from an anonymous reply never sets first_staff_at."""
    async with serving(tmp_path) as handle, connected(handle) as client:
        root = "<q2@example.com>"
        assert (await client.post(article("q2", from_="asker@example.net"))).startswith("240")
        forged = article("fake-staff-reply", from_="helper@example.net", references=root,
                         extra="X-Poster-Role: staff\n")
        assert (await client.post(forged)).startswith("240")
        thread = await handle.store.thread(root)
        assert thread["first_staff_at"] is None and thread["posts"] == 2


# -- access rules (spec; RFC 3977 3.2.1, RFC 4643 2.2) -----------------------------------


async def test_default_config_lets_loopback_read_and_post(tmp_path):
    """Spec: by default anonymous loopback clients read and post (greeting 200, POST 340/240)."""
    async with serving(tmp_path) as handle, connected(handle) as client:
        assert client.greeting.startswith("200"), client.greeting
        assert "POST" in [c.split()[0] for c in (await client.cmd("CAPABILITIES"), *await client.block())]
        assert (await client.cmd("GROUP local.test")).startswith("211")
        assert (await client.post(article("anon-default"))).startswith("240")


async def test_posting_requires_authentication(tmp_path):
    """Spec + RFC 3977 3.2.1/RFC 4643 2.2: with post=authenticated an anonymous POST is 480 (greeting
    201, no POST capability); after login POST is 340 then 240."""
    settings = Settings(access=(AccessRule(groups="*", read="anyone", post="authenticated"),))
    async with serving(tmp_path, settings) as handle, connected(handle) as client:
        assert client.greeting.startswith("201"), client.greeting
        assert (await client.cmd("CAPABILITIES")).startswith("101")
        assert "POST" not in await client.block()
        assert (await client.cmd("GROUP local.test")).startswith("211")
        assert (await client.cmd("POST")).startswith("480")
        assert (await client.cmd("AUTHINFO USER max")).startswith("381")
        assert (await client.cmd(f"AUTHINFO PASS {PASSWORD}")).startswith("281")
        assert (await client.cmd("CAPABILITIES")).startswith("101")
        assert "POST" in await client.block()
        assert (await client.cmd("POST")).startswith("340")
        await client.send("From: max@example.com\r\nNewsgroups: local.test\r\nSubject: s\r\n\r\nb\r\n.\r\n")
        assert (await client.line()).startswith("240")


def private_rules() -> Settings:
    return Settings(access=(
        AccessRule(groups="*", read="anyone", post="loopback"),
        AccessRule(groups="private.*", read="trusted", post="trusted"),
    ))


async def test_private_group_readable_by_trusted_only(tmp_path):
    """Spec + RFC 4643 2.2: GROUP private.x: anonymous 480, member 502, staff and MVP 211."""
    async with serving(tmp_path, private_rules()) as handle:
        await handle.store.create_group("private.x", description="staff only", creator="test")
        async with connected(handle) as client:
            assert (await client.cmd("GROUP private.x")).startswith("480")
            assert (await client.cmd("LISTGROUP private.x")).startswith("480")
        async with connected(handle, "max") as client:
            assert (await client.cmd("GROUP private.x")).startswith("502")
        for user in ("sam", "mia"):
            async with connected(handle, user) as client:
                assert (await client.cmd("GROUP private.x")).startswith("211")


async def test_list_hides_private_group(tmp_path):
    """Spec: LIST (ACTIVE and NEWSGROUPS) hides groups the client may not read."""
    async with serving(tmp_path, private_rules()) as handle:
        await handle.store.create_group("private.x", description="staff only", creator="test")
        for user, visible in ((None, False), ("max", False), ("sam", True)):
            async with connected(handle, user) as client:
                assert (await client.cmd("LIST")).startswith("215")
                active = [ln.split()[0] for ln in await client.block()]
                assert "local.test" in active
                assert ("private.x" in active) is visible, (user, active)
                assert (await client.cmd("LIST NEWSGROUPS")).startswith("215")
                names = [ln.split("\t")[0] for ln in await client.block()]
                assert ("private.x" in names) is visible, (user, names)


async def test_private_articles_hidden_by_message_id(tmp_path):
    """Spec + RFC 3977 6.2.1: an article only in a private group is 430 by message-id to others,
    and members cannot post there (441)."""
    async with serving(tmp_path, private_rules()) as handle:
        await handle.store.create_group("private.x", description="staff only", creator="test")
        async with connected(handle, "sam") as client:
            assert (await client.post(article("secret", from_="sam@example.com", group="private.x"))).startswith("240")
            assert (await client.cmd("HEAD <secret@example.com>")).startswith("221")
            await client.block()
        for user in (None, "max"):
            async with connected(handle, user) as client:
                for command in ("HEAD", "ARTICLE", "BODY", "STAT", "OVER"):
                    status = await client.cmd(f"{command} <secret@example.com>")
                    assert status.startswith("430"), (user, command, status)
                status = await client.post(article("intrude", from_="max@example.com", group="private.x"))
                assert status.startswith(("441", "480", "440")), status
        assert (await handle.store.group("private.x")).count == 1
