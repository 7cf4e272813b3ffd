"""Cancel control messages (RFC 5537 5.3), as Thunderbird sends them, and the low water mark.

Anonymous cancels need a Cancel-Key that opens the original's Cancel-Lock
(RFC 8315); the keys and locks here are computed with hashlib and hmac, as a
newsreader computes them (RFC 8315 4), not with the server's own code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from conftest import connected, running
from nntpd.config import AccessRule, Settings
from nntpd.passwords import hash_password


def article(mid: str, *, from_: str = "ann@example.com", refs: str = "", extra: str = "") -> str:
    ref = f"References: {refs}\n" if refs else ""
    return (f"From: {from_}\nNewsgroups: local.test\nSubject: s {mid}\nMessage-ID: {mid}\n"
            f"{ref}{extra}\nbody\n")


def cancel(target: str, *, from_: str = "ann@example.com", key: str | None = None) -> str:
    key_line = f"Cancel-Key: {key}\n" if key else ""
    return (f"From: {from_}\nNewsgroups: local.test\nSubject: cmsg cancel {target}\n"
            f"Control: cancel {target}\n{key_line}\ncancel\n")


def key_and_lock(mid: str, scheme: str = "sha256", secret: bytes = b"ann's secret") -> tuple[str, str]:
    """RFC 8315 4: K = HMAC(secret, Message-ID), c-key = Base64(K), c-lock = Base64(hash(c-key))."""
    key = base64.b64encode(hmac.new(secret, mid.encode(), scheme).digest()).decode()
    lock = base64.b64encode(hashlib.new(scheme, key.encode()).digest()).decode()
    return f"{scheme}:{key}", f"{scheme}:{lock}"


def locked(mid: str, **kwargs: str) -> tuple[str, str]:
    """An anonymous article carrying a sha256 Cancel-Lock, and the Cancel-Key that opens it."""
    key, lock = key_and_lock(mid)
    return article(mid, extra=f"Cancel-Lock: {lock}\n", **kwargs), key


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
        assert (await client.post(locked(mid)[0])).startswith("240")
    status = await client.post(cancel("<c1@x>", key=locked("<c1@x>")[1]))
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


async def test_anonymous_cancel_without_cancel_key_is_refused(client):
    """RFC 8315 3: the same From is not enough; without a Cancel-Key the article stays (441)."""
    assert (await client.post(locked("<k1@x>")[0])).startswith("240")
    status = await client.post(cancel("<k1@x>"))
    assert status.startswith("441") and "Cancel-Key" in status, status
    assert (await client.cmd("ARTICLE <k1@x>")).startswith("220")
    await client.block()


async def test_anonymous_original_without_cancel_lock_cannot_be_cancelled_anonymously(client):
    """Issue 13 point 5: a From anyone can type decided before; with no Cancel-Lock to open,
    no anonymous cancel is honoured (441), whatever key it brings."""
    assert (await client.post(article("<k2@x>"))).startswith("240")
    status = await client.post(cancel("<k2@x>", key=key_and_lock("<k2@x>")[0]))
    assert status.startswith("441") and "no Cancel-Lock" in status, status
    assert (await client.cmd("STAT <k2@x>")).startswith("223")


async def test_anonymous_cancel_with_a_wrong_key_is_refused(client):
    """RFC 8315 3: a key whose hash is not among the original's locks opens nothing (441);
    neither does the public lock string sent back as a key."""
    text, _ = locked("<k3@x>")
    assert (await client.post(text)).startswith("240")
    guessed, lock = key_and_lock("<k3@x>", secret=b"mallory's guess")
    for key in (guessed, key_and_lock("<k3@x>")[1]):
        status = await client.post(cancel("<k3@x>", key=key))
        assert status.startswith("441") and "does not match" in status, status
    assert (await client.cmd("STAT <k3@x>")).startswith("223")


@pytest.mark.parametrize("scheme", ["sha256", "sha1"])
async def test_anonymous_cancel_with_the_matching_key_withdraws_the_article(client, scheme):
    """RFC 8315 3: a Cancel-Key whose hash is one of the Cancel-Locks authenticates the cancel
    (sha256 is the mandatory scheme, sha1 what Gnus sends); a lock list may hold several."""
    key, lock = key_and_lock("<k4@x>", scheme)
    _, other_lock = key_and_lock("<k4@x>", "sha512", secret=b"another device")
    extra = f"Cancel-Lock: {other_lock}\n {lock}\n"
    assert (await client.post(article("<k4@x>", from_="Ann <ann@example.com>", extra=extra))).startswith("240")
    status = await client.post(cancel("<k4@x>", from_="someone@else.example", key=key))
    assert status.startswith("240"), status
    assert (await client.cmd("STAT <k4@x>")).startswith("430")


async def test_rfc_8315_example_key_opens_the_example_lock_over_nntp(client):
    """RFC 8315 2.1/2.2: the example Cancel-Key 'sha1:aaaBBBcccDDDeeeFFF' opens the example
    Cancel-Lock 'sha1:bNXHc6ohSmeHaRHHW56BIWZJt+4='."""
    extra = "Cancel-Lock: sha1:bNXHc6ohSmeHaRHHW56BIWZJt+4=\n"
    assert (await client.post(article("<rfc@x>", extra=extra))).startswith("240")
    assert (await client.post(cancel("<rfc@x>", key="sha1:aaaBBBcccDDDeeeFFF"))).startswith("240")
    assert (await client.cmd("STAT <rfc@x>")).startswith("430")


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
    """An account's article can be cancelled by that account (no Cancel-Key needed), not
    anonymously: not by a From lookalike, not even with the key of its Cancel-Lock."""
    member = await server.connect()
    try:
        await login(member, server, "bob")
        text, key = locked("<b1@x>", from_="bob@example.com")
        assert (await member.post(text)).startswith("240")
        assert (await client.post(cancel("<b1@x>", from_="bob@example.com"))).startswith("441")
        assert (await client.post(cancel("<b1@x>", from_="bob@example.com", key=key))).startswith("441")
        assert (await member.post(cancel("<b1@x>", from_="bob@example.com"))).startswith("240")
    finally:
        await member.close()
    assert (await client.cmd("STAT <b1@x>")).startswith("430")


async def test_anonymous_cancel_that_looks_like_account_bob_cannot_cancel_bobs_post(client, server):
    """Issue 14 section 6 (cancel across anonymous and account posters), RFC 5537 5.3 /
    RFC 8315 3: an anonymous poster is known by the address in From, so "From: bob" gives
    the same author key as account bob. Neither that, nor bob's address with bob's name,
    nor the Cancel-Key of the lock bob put on his article cancels what bob posted logged in."""
    await server.store.add_account("bob", email="bob@example.com", display_name="Bob",
                                   password_hash=hash_password("pw-123456", n=2**10))
    text, key = locked("<ab1@x>", from_="Bob <bob@example.com>")
    async with connected(server, "bob", "pw-123456") as bob:
        assert (await bob.post(text)).startswith("240")
    for from_ in ("bob", "Bob <bob@example.com>", "bob <bob@example.com>", "bob@example.com"):
        for cancel_key in (None, key):
            status = await client.post(cancel("<ab1@x>", from_=from_, key=cancel_key))
            assert status.startswith("441") and "posted from an account" in status, (from_, status)
    assert (await client.cmd("STAT <ab1@x>")).startswith("223")
    assert await client.cmd("GROUP local.test") == "211 1 1 1 local.test"


async def test_account_cancels_only_its_own_posts_while_staff_cancel_any(client, server):
    """Issue 14 section 6, RFC 5537 5.3: a logged-in member may cancel only articles posted
    from that account: not another account's, and not an anonymous one, even one whose
    From is "bob" (the same author key as account bob) or bob's own address (441).
    Staff may cancel all of them."""
    for name in ("bob", "carol"):
        await server.store.add_account(name, email=f"{name}@example.com",
                                       password_hash=hash_password("pw-123456", n=2**10))
    async with connected(server, "carol", "pw-123456") as carol:
        assert (await carol.post(article("<ac1@x>", from_="carol@example.com"))).startswith("240")
    targets = ["<ac1@x>"]
    for n, from_ in enumerate(("bob", "bob@example.com", "Bob <bob@example.com>"), 2):
        assert (await client.post(locked(f"<ac{n}@x>", from_=from_)[0])).startswith("240")
        targets.append(f"<ac{n}@x>")
    async with connected(server, "bob", "pw-123456") as bob:
        for target in targets:
            status = await bob.post(cancel(target, from_="bob@example.com",
                                           key=key_and_lock(target)[0]))
            assert status.startswith("441") and "only your own" in status, (target, status)
    for target in targets:
        assert (await client.cmd(f"STAT {target}")).startswith("223"), target
    staff = await server.connect()
    try:
        await login(staff, server, "sam", "staff")
        for target in targets:
            assert (await staff.post(cancel(target, from_="sam@example.com"))).startswith("240"), target
    finally:
        await staff.close()
    for target in targets:
        assert (await client.cmd(f"STAT {target}")).startswith("430"), target
    assert await client.cmd("GROUP local.test") == "211 0 5 4 local.test"


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


async def test_cancel_needs_posting_rights_in_every_group_of_the_target(tmp_path):
    """Issue 13 point 6: a cancel reaches only groups its sender may post to. Anonymous
    articles posted while the rules were open, then local.staff made staff-only: the one
    cross-posted there is not cancelled anonymously, even with the right Cancel-Key (441),
    while one in an open group still is."""
    crossed, crossed_key = locked("<x1@x>")
    crossed = crossed.replace("Newsgroups: local.test", "Newsgroups: local.test,local.staff")
    plain, plain_key = locked("<x2@x>")
    async with running(tmp_path) as handle, connected(handle) as client:
        await handle.store.create_group("local.staff", creator="test")
        assert (await client.post(crossed)).startswith("240")
        assert (await client.post(plain)).startswith("240")
    closed = Settings(access=(AccessRule(groups="*", read="anyone", post="loopback"),
                              AccessRule(groups="local.staff", read="anyone", post="trusted")))
    async with running(tmp_path, closed) as handle, connected(handle) as client:
        status = await client.post(cancel("<x1@x>", key=crossed_key))
        assert status.startswith("441") and "local.staff" in status, status
        assert (await client.cmd("STAT <x1@x>")).startswith("223")
        assert (await client.cmd("GROUP local.staff")).startswith("211 1 ")
        assert (await client.post(cancel("<x2@x>", key=plain_key))).startswith("240")


async def test_cancel_of_an_unreadable_article_looks_like_a_missing_one(tmp_path):
    """A cancel must not reveal what the read paths hide: an article only in a group the
    sender cannot read gets the same 441 as one that does not exist."""
    hidden, key = locked("<h1@x>")
    hidden = hidden.replace("Newsgroups: local.test", "Newsgroups: local.staff")
    async with running(tmp_path) as handle, connected(handle) as client:
        await handle.store.create_group("local.staff", creator="test")
        assert (await client.post(hidden)).startswith("240")
    closed = Settings(access=(AccessRule(groups="*", read="anyone", post="loopback"),
                              AccessRule(groups="local.staff", read="trusted", post="trusted")))
    async with running(tmp_path, closed) as handle, connected(handle) as client:
        status = await client.post(cancel("<h1@x>", key=key))
        missing = await client.post(cancel("<none@x>", key=key))
        assert status.replace("<h1@x>", "<none@x>") == missing and missing.startswith("441"), status
    async with running(tmp_path) as handle, connected(handle) as client:
        assert (await client.cmd("STAT <h1@x>")).startswith("223")
