"""Cancel control messages (RFC 5537 5.3), as Thunderbird sends them, and the low water mark."""

from __future__ import annotations

from nntpd.passwords import hash_password


def article(mid: str, *, from_: str = "ann@example.com", refs: str = "", extra: str = "") -> str:
    ref = f"References: {refs}\n" if refs else ""
    return (f"From: {from_}\nNewsgroups: local.test\nSubject: s {mid}\nMessage-ID: {mid}\n"
            f"{ref}{extra}\nbody\n")


def cancel(target: str, *, from_: str = "ann@example.com") -> str:
    return (f"From: {from_}\nNewsgroups: local.test\nSubject: cmsg cancel {target}\n"
            f"Control: cancel {target}\n\ncancel\n")


async def login(client, server, name: str, role: str = "member") -> None:
    await server.store.add_account(name, email=f"{name}@example.com",
                                   password_hash=hash_password("pw-123456", n=2**10))
    if role != "member":
        await server.store.set_role(name, role, changed_by="test")
    assert (await client.cmd(f"AUTHINFO USER {name}")).startswith("381")
    assert (await client.cmd("AUTHINFO PASS pw-123456")).startswith("281")


async def test_poster_cancels_own_article_and_numbers_are_not_reused(client, server):
    """RFC 5537 5.3: a cancel withdraws the article; RFC 3977 6.1.1.2: the low water mark rises
    when the first article goes, and numbers are never reused."""
    for mid in ("<c1@x>", "<c2@x>"):
        assert (await client.post(article(mid))).startswith("240")
    status = await client.post(cancel("<c1@x>"))
    assert status.startswith("240"), status
    assert (await client.cmd("ARTICLE <c1@x>")).startswith("430")
    assert await client.cmd("GROUP local.test") == "211 1 2 2 local.test"
    assert (await client.cmd("STAT 1")).startswith("423")
    assert (await client.post(article("<c3@x>"))).startswith("240")
    assert await client.cmd("GROUP local.test") == "211 2 2 3 local.test"
    # The cancel itself is not stored as an article.
    assert (await client.cmd("LISTGROUP local.test")).startswith("211")
    assert await client.block() == ["2", "3"]


async def test_cancel_of_someone_elses_article_is_refused(client, server):
    """RFC 5537 5.3: only the poster (or staff) may cancel; others get 441 and nothing changes."""
    assert (await client.post(article("<c1@x>"))).startswith("240")
    status = await client.post(cancel("<c1@x>", from_="mallory@example.com"))
    assert status.startswith("441"), status
    assert (await client.cmd("STAT <c1@x>")).startswith("223")


async def test_staff_may_cancel_any_article_and_thread_figures_follow(client, server):
    """Issue 4 figures stay right: cancelling the only reply makes the thread unanswered again."""
    assert (await client.post(article("<q@x>"))).startswith("240")
    assert (await client.post(article("<r@x>", from_="bob@example.com", refs="<q@x>"))).startswith("240")
    assert (await server.store.thread("<q@x>"))["first_reply_at"] is not None
    staff = await server.connect()
    try:
        await login(staff, server, "sam", "staff")
        assert (await staff.post(cancel("<r@x>", from_="sam@example.com"))).startswith("240")
    finally:
        await staff.close()
    thread = await server.store.thread("<q@x>")
    assert thread["posts"] == 1 and thread["first_reply_at"] is None
    assert await server.store.participants("<q@x>") == ["ann@example.com"]


async def test_account_cancels_its_own_post_but_anonymous_lookalike_cannot(client, server):
    """An account's article can be cancelled by that account, not by an anonymous From lookalike."""
    member = await server.connect()
    try:
        await login(member, server, "bob")
        assert (await member.post(article("<b1@x>", from_="bob@example.com"))).startswith("240")
        assert (await client.post(cancel("<b1@x>", from_="bob@example.com"))).startswith("441")
        assert (await member.post(cancel("<b1@x>", from_="bob@example.com"))).startswith("240")
    finally:
        await member.close()
    assert (await client.cmd("STAT <b1@x>")).startswith("430")


async def test_other_control_messages_are_refused(client):
    """RFC 5537 5.2: newgroup/rmgroup are for operators here; the post gets 441, no group appears."""
    raw = "From: a@b.c\nNewsgroups: local.test\nSubject: cmsg newgroup x.y\nControl: newgroup x.y\n\nx\n"
    assert (await client.post(raw)).startswith("441")
    assert (await client.cmd("GROUP x.y")).startswith("411")


async def test_staff_posts_to_moderated_group_are_not_held(client, server):
    """Spec: staff moderate, so their posts to a moderated (m) group are published at once."""
    await server.store.create_group("local.mod", status="m")
    raw = "From: sam@example.com\nNewsgroups: local.mod\nSubject: notice\nMessage-ID: <m1@x>\n\nhi\n"
    staff = await server.connect()
    try:
        await login(staff, server, "sam", "staff")
        status = await staff.post(raw)
        assert status.startswith("240") and "held" not in status, status
    finally:
        await staff.close()
    assert (await client.cmd("GROUP local.mod")).startswith("211 1 1 1")
    held = await client.post(raw.replace("<m1@x>", "<m2@x>").replace("sam@", "ann@"))
    assert "held" in held
