"""Scenario tests for the unanswered.G and awaiting-staff.G view groups (issue 4).

Definitions under test (issue 4):

- a thread is *unanswered* while no article in it comes from anyone other than
  its original poster (the same account, or the same From address for
  anonymous posts);
- a thread is *awaiting staff* while no staff or MVP account has posted in it
  (the role recorded when each article was posted);
- resolved threads leave the views; reopening brings them back.

Each group G has read-only views ``unanswered.G`` and ``awaiting-staff.G``
holding the articles of G's open threads under G's own article numbers. Their
high water mark is G's (so it never goes down), low is the lowest number in the
view (high + 1 when empty, RFC 3977 6.1.1.2) and the count is the number of
articles in the view. Everything runs over real TCP against a real server.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import Client, ServerHandle, start_server
from nntpd.config import Settings, ViewSettings
from nntpd.passwords import hash_password
import storage.community
from storage import StoreError

PASSWORD = "pw-123456"
TEST = "local.test"
OTHER = "local.other"
KINDS = ("unanswered", "awaiting-staff")

# name -> role; every account gets name@example.com as its address
ACCOUNTS = {"bob": "member", "carol": "member", "dave": "member", "mia": "mvp", "sam": "staff"}


def _article(*, from_: str, subject: str, message_id: str, groups: str = TEST,
             references: str | None = None, body: str = "Some text.") -> str:
    lines = [f"From: {from_}", f"Newsgroups: {groups}", f"Subject: {subject}",
             f"Message-ID: {message_id}"]
    if references:
        lines.append(f"References: {references}")
    return "\n".join(lines) + f"\n\n{body}\n"


class World:
    """A server with accounts, the posts made so far and the numbers they got."""

    def __init__(self, handle: ServerHandle) -> None:
        self.h = handle
        self.store = handle.store
        self.clients: list[Client] = []
        self.high: dict[str, int] = {TEST: 0, OTHER: 0}
        self.number: dict[tuple[str, str], int] = {}  # (group, message-id) -> number
        self.subject: dict[str, str] = {}  # message-id -> subject

    async def setup(self) -> None:
        await self.store.create_group(OTHER, description="Another group", creator="test")
        for name, role in ACCOUNTS.items():
            await self.store.add_account(name, email=f"{name}@example.com",
                                         password_hash=hash_password(PASSWORD, n=2**10))
            if role != "member":
                await self.store.set_role(name, role, changed_by="test")

    async def session(self, name: str | None = None) -> Client:
        """A connection, logged in as ``name`` (AUTHINFO on loopback) or anonymous."""
        c = await self.h.connect()
        self.clients.append(c)
        assert c.greeting.startswith("200"), c.greeting
        if name is not None:
            assert (await c.cmd(f"AUTHINFO USER {name}")).startswith("381")
            assert (await c.cmd(f"AUTHINFO PASS {PASSWORD}")).startswith("281")
        return c

    async def post(self, c: Client, *, from_: str, subject: str, message_id: str,
                   groups: tuple[str, ...] = (TEST,), references: str | None = None) -> None:
        status = await c.post(_article(from_=from_, subject=subject, message_id=message_id,
                                       groups=",".join(groups), references=references))
        assert status.startswith("240"), status
        for g in groups:
            self.high[g] += 1
            self.number[(g, message_id)] = self.high[g]
        self.subject[message_id] = subject

    async def post_as(self, c: Client, name: str, **kwargs: object) -> None:
        await self.post(c, from_=f"{name.capitalize()} <{name}@example.com>", **kwargs)  # type: ignore[arg-type]

    async def expect(self, c: Client, group: str, *, unanswered: set[str], awaiting: set[str]) -> None:
        """Both views of ``group`` hold exactly these message-ids, under ``group``'s numbers."""
        await self.expect_view(c, f"unanswered.{group}", group, unanswered)
        await self.expect_view(c, f"awaiting-staff.{group}", group, awaiting)

    async def expect_view(self, c: Client, view: str, group: str, ids: set[str]) -> None:
        high = self.high[group]
        numbers = sorted(self.number[(group, mid)] for mid in ids)
        low = numbers[0] if numbers else high + 1
        by_number = {self.number[(group, mid)]: mid for mid in ids}
        where = f"{view} holding {sorted(ids)}"

        # The base group's own figures are untouched by the views.
        assert (await c.cmd(f"GROUP {group}")).startswith(f"211 {high} 1 {high} {group}"), where

        # LIST ACTIVE (RFC 3977 7.6.3): name high low status; a view is read-only.
        assert (await c.cmd("LIST ACTIVE")).startswith("215")
        active = {ln.split()[0]: ln for ln in await c.block()}
        assert active.get(view) == f"{view} {high} {low} n", where

        # GROUP (RFC 3977 6.1.1): 211 count low high name.
        assert await c.cmd(f"GROUP {view}") == f"211 {len(numbers)} {low} {high} {view}", where

        # OVER (RFC 3977 8.3): only the view's articles, with the base group's numbers.
        status = await c.cmd(f"OVER 1-{high}")
        if numbers:
            assert status.startswith("224"), (where, status)
            rows = [ln.split("\t") for ln in await c.block()]
            assert [(int(r[0]), r[1], r[4]) for r in rows] == [
                (n, self.subject[by_number[n]], by_number[n]) for n in numbers
            ], where
        else:
            assert status.startswith("423"), (where, status)

        # ARTICLE n in the view: 220 for its articles, 423 for the others (RFC 3977 6.2.1).
        for n in range(1, high + 1):
            status = await c.cmd(f"ARTICLE {n}")
            if n in by_number:
                assert status == f"220 {n} {by_number[n]}", (where, n, status)
                lines = await c.block()
                assert f"Message-ID: {by_number[n]}" in lines, where
            else:
                assert status.startswith("423"), (where, n, status)

    async def close(self) -> None:
        for c in self.clients:
            await c.close()
        await self.h.server.close()
        await self.h.store.close()


async def _world(tmp_path: Path, settings: Settings | None = None) -> World:
    tmp_path.mkdir(parents=True, exist_ok=True)
    world = World(await start_server(tmp_path, settings=settings))
    try:
        await world.setup()
    except BaseException:
        await world.close()
        raise
    return world


@pytest.fixture(params=["from-group", "from-threads"])
async def world(tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """Every scenario runs with both ways a view's GROUP is counted (small and large groups)."""
    if request.param == "from-threads":
        monkeypatch.setattr(storage.community, "VIEW_SCAN_LIMIT", 0)
    w = await _world(tmp_path)
    try:
        yield w
    finally:
        await w.close()


async def test_views_follow_answers_by_others_and_by_staff(world: World) -> None:
    """Steps 1-4 of issue 4: question, OP follow-up, member answer, MVP answer."""
    staff = await world.session("sam")
    bob = await world.session("bob")
    carol = await world.session("carol")
    mia = await world.session("mia")

    # 1. A question by member bob: in both views.
    await world.post_as(bob, "bob", subject="Printer on fire", message_id="<q1@test>")
    await world.expect(staff, TEST, unanswered={"<q1@test>"}, awaiting={"<q1@test>"})

    # 2. The OP follows up himself: still unanswered, both articles in both views.
    await world.post_as(bob, "bob", subject="Re: Printer on fire", message_id="<q1-bob@test>",
                        references="<q1@test>")
    both = {"<q1@test>", "<q1-bob@test>"}
    await world.expect(staff, TEST, unanswered=both, awaiting=both)

    # 3. Member carol answers: gone from unanswered, still awaiting staff.
    await world.post_as(carol, "carol", subject="Re: Printer on fire", message_id="<q1-carol@test>",
                        references="<q1@test> <q1-bob@test>")
    await world.expect(staff, TEST, unanswered=set(),
                       awaiting=both | {"<q1-carol@test>"})

    # 4. MVP mia answers: gone from awaiting-staff too; the high water marks stay at 4.
    await world.post_as(mia, "mia", subject="Re: Printer on fire", message_id="<q1-mia@test>",
                        references="<q1@test> <q1-carol@test>")
    await world.expect(staff, TEST, unanswered=set(), awaiting=set())

    # A new question afterwards appears with number 5; low and count follow it.
    await world.post_as(bob, "bob", subject="Scanner jammed", message_id="<q2@test>")
    await world.expect(staff, TEST, unanswered={"<q2@test>"}, awaiting={"<q2@test>"})
    assert world.number[(TEST, "<q2@test>")] == 5


async def test_reply_arriving_before_its_parent(world: World) -> None:
    """Step 5: carol's reply to <q9@test> arrives first; bob's root then makes bob the OP."""
    staff = await world.session("sam")
    bob = await world.session("bob")
    carol = await world.session("carol")

    await world.post_as(carol, "carol", subject="Re: Wifi drops", message_id="<q9-carol@test>",
                        references="<q9@test>")
    # Only carol has posted so far: nobody else, so the thread is open in both views.
    await world.expect(staff, TEST, unanswered={"<q9-carol@test>"}, awaiting={"<q9-carol@test>"})
    early = await world.store.thread("<q9@test>")
    assert early is not None and early["root_present"] is False

    await world.post_as(bob, "bob", subject="Wifi drops", message_id="<q9@test>")
    thread = await world.store.thread("<q9@test>")
    assert thread is not None
    assert thread["root_present"] is True
    assert thread["op_key"] == "bob"
    assert thread["first_reply_at"] is not None  # carol is not the OP: answered
    assert thread["first_staff_at"] is None
    assert thread["posts"] == 2
    both = {"<q9-carol@test>", "<q9@test>"}
    await world.expect(staff, TEST, unanswered=set(), awaiting=both)


async def test_crossposted_question_in_both_groups_views(world: World) -> None:
    """Step 6: a crossposted question is in each group's views under that group's numbers."""
    staff = await world.session("sam")
    bob = await world.session("bob")
    carol = await world.session("carol")
    mia = await world.session("mia")

    # Different starting points: local.test gets an MVP announcement (unanswered, but an
    # MVP started it, so not awaiting staff); local.other an answered thread.
    await world.post_as(mia, "mia", subject="Release notes", message_id="<a1@test>")
    await world.post_as(carol, "carol", subject="Driver question", groups=(OTHER,),
                        message_id="<o1@test>")
    await world.post_as(mia, "mia", subject="Re: Driver question", groups=(OTHER,),
                        message_id="<o1-mia@test>", references="<o1@test>")
    await world.expect(staff, TEST, unanswered={"<a1@test>"}, awaiting=set())
    await world.expect(staff, OTHER, unanswered=set(), awaiting=set())

    await world.post_as(bob, "bob", subject="Cross question", groups=(TEST, OTHER),
                        message_id="<x1@test>")
    assert world.number[(TEST, "<x1@test>")] == 2
    assert world.number[(OTHER, "<x1@test>")] == 3
    await world.expect(staff, TEST, unanswered={"<a1@test>", "<x1@test>"}, awaiting={"<x1@test>"})
    await world.expect(staff, OTHER, unanswered={"<x1@test>"}, awaiting={"<x1@test>"})

    # carol answers in local.other only: the thread is answered in both groups' views.
    await world.post_as(carol, "carol", subject="Re: Cross question", groups=(OTHER,),
                        message_id="<x1-carol@test>", references="<x1@test>")
    await world.expect(staff, TEST, unanswered={"<a1@test>"}, awaiting={"<x1@test>"})
    await world.expect(staff, OTHER, unanswered=set(), awaiting={"<x1@test>", "<x1-carol@test>"})


async def _list(c: Client, what: str) -> list[str]:
    status = await c.cmd(what)
    assert status.startswith("215"), (what, status)
    return await c.block()


def _names(lines: list[str]) -> set[str]:
    return {ln.split()[0] for ln in lines}


VIEW_NAMES = {f"{kind}.{g}" for kind in KINDS for g in (TEST, OTHER)}


async def test_views_hidden_from_anonymous_and_members(world: World, tmp_path: Path) -> None:
    """Step 7: views are listed and selectable for staff/MVP only; 411 for others (RFC 3977 6.1.1.2)."""
    bob = await world.session("bob")
    await world.post_as(bob, "bob", subject="Printer on fire", message_id="<q1@test>")

    for who in (None, "carol"):
        c = await world.session(who)
        active = _names(await _list(c, "LIST ACTIVE"))
        assert {TEST, OTHER} <= active, who
        assert not active & VIEW_NAMES, (who, active)
        assert not _names(await _list(c, "LIST NEWSGROUPS")) & VIEW_NAMES, who
        assert await _list(c, "LIST ACTIVE unanswered.*") == [], who
        for view in sorted(VIEW_NAMES):
            status = await c.cmd(f"GROUP {view}")
            assert status.startswith("411"), (who, view, status)
        assert (await c.cmd(f"GROUP {TEST}")).startswith("211 1 1 1")

    for who in ("sam", "mia"):
        c = await world.session(who)
        assert VIEW_NAMES <= _names(await _list(c, "LIST ACTIVE")), who
        assert VIEW_NAMES <= _names(await _list(c, "LIST NEWSGROUPS")), who
        assert await c.cmd(f"GROUP unanswered.{TEST}") == f"211 1 1 1 unanswered.{TEST}"
        assert await c.cmd(f"GROUP awaiting-staff.{OTHER}") == f"211 0 1 0 awaiting-staff.{OTHER}"

    # visible_to = "anyone" opens the views to anonymous readers.
    opened = await _world(tmp_path / "open", Settings(views=ViewSettings(visible_to="anyone")))
    try:
        poster = await opened.session("bob")
        await opened.post_as(poster, "bob", subject="Printer on fire", message_id="<q1@test>")
        anon = await opened.session()
        assert VIEW_NAMES <= _names(await _list(anon, "LIST ACTIVE"))
        assert VIEW_NAMES <= _names(await _list(anon, "LIST NEWSGROUPS"))
        await opened.expect(anon, TEST, unanswered={"<q1@test>"}, awaiting={"<q1@test>"})
    finally:
        await opened.close()


def _names_group(text: str, group: str) -> bool:
    """True if ``group`` appears in ``text`` as a name of its own (not as the tail of a view name)."""
    return re.search(rf"(?<![\w.+-]){re.escape(group)}(?![\w+-]|\.\w)", text) is not None


async def test_posting_to_a_view_is_refused_naming_the_group(world: World) -> None:
    """Step 8: POST to a view answers 441 naming the real group (RFC 3977 6.3.1.2); nothing is stored."""
    bob = await world.session("bob")
    staff = await world.session("sam")
    await world.post_as(bob, "bob", subject="Printer on fire", message_id="<q1@test>")

    for groups, base in ((f"unanswered.{TEST}", TEST),
                         (f"awaiting-staff.{OTHER}", OTHER),
                         (f"{TEST},unanswered.{TEST}", TEST)):
        status = await bob.post(_article(from_="Bob <bob@example.com>", subject="Re: Printer on fire",
                                         message_id=f"<view-post-{len(groups)}@test>", groups=groups,
                                         references="<q1@test>"))
        assert status.startswith("441"), (groups, status)
        assert _names_group(status, base), (groups, status)

    # Nothing was stored anywhere; the thread is still unanswered.
    await world.expect(staff, TEST, unanswered={"<q1@test>"}, awaiting={"<q1@test>"})
    await world.expect(staff, OTHER, unanswered=set(), awaiting=set())


async def test_resolve_and_reopen(world: World) -> None:
    """Step 9: a resolved thread leaves both views (in every group); reopening brings it back."""
    staff = await world.session("sam")
    bob = await world.session("bob")
    carol = await world.session("carol")
    await world.post_as(bob, "bob", subject="Printer on fire", message_id="<q1@test>",
                        groups=(TEST, OTHER))
    await world.post_as(bob, "bob", subject="Re: Printer on fire", message_id="<q1-bob@test>",
                        references="<q1@test>")
    await world.post_as(carol, "carol", subject="Login fails", message_id="<q2@test>")
    thread = {"<q1@test>", "<q1-bob@test>"}
    await world.expect(staff, TEST, unanswered=thread | {"<q2@test>"}, awaiting=thread | {"<q2@test>"})
    await world.expect(staff, OTHER, unanswered={"<q1@test>"}, awaiting={"<q1@test>"})

    assert await world.store.set_resolved("<q1@test>", True) is True
    await world.expect(staff, TEST, unanswered={"<q2@test>"}, awaiting={"<q2@test>"})
    await world.expect(staff, OTHER, unanswered=set(), awaiting=set())

    assert await world.store.set_resolved("<q1@test>", False) is True
    await world.expect(staff, TEST, unanswered=thread | {"<q2@test>"}, awaiting=thread | {"<q2@test>"})
    await world.expect(staff, OTHER, unanswered={"<q1@test>"}, awaiting={"<q1@test>"})

    # Resolving the only open thread leaves empty views whose high water mark stays put.
    assert await world.store.set_resolved("<q1@test>", True) is True
    assert await world.store.set_resolved("<q2@test>", True) is True
    await world.expect(staff, TEST, unanswered=set(), awaiting=set())


async def test_anonymous_posters_are_identified_by_from_address(world: World) -> None:
    """Step 10: anonymous follow-ups from the OP's address keep the thread unanswered."""
    staff = await world.session("sam")
    anon = await world.session()

    await world.post(anon, from_="Alice <a@x.org>", subject="Battery dies", message_id="<an1@test>")
    await world.expect(staff, TEST, unanswered={"<an1@test>"}, awaiting={"<an1@test>"})

    await world.post(anon, from_="a@x.org", subject="Re: Battery dies", message_id="<an2@test>",
                     references="<an1@test>")
    both = {"<an1@test>", "<an2@test>"}
    await world.expect(staff, TEST, unanswered=both, awaiting=both)

    await world.post(anon, from_="Bea <b@x.org>", subject="Re: Battery dies", message_id="<an3@test>",
                     references="<an1@test> <an2@test>")
    await world.expect(staff, TEST, unanswered=set(), awaiting=both | {"<an3@test>"})
    thread = await world.store.thread("<an1@test>")
    assert thread is not None and thread["op_key"] == "a@x.org"


async def test_role_is_the_one_recorded_when_each_article_was_posted(world: World) -> None:
    """Awaiting staff depends on the poster's role at posting time (issue 4), not today's role."""
    staff = await world.session("sam")
    bob = await world.session("bob")
    dave = await world.session("dave")
    mia = await world.session("mia")

    await world.post_as(bob, "bob", subject="Printer on fire", message_id="<q1@test>")
    await world.post_as(dave, "dave", subject="Re: Printer on fire", message_id="<q1-dave@test>",
                        references="<q1@test>")
    thread = {"<q1@test>", "<q1-dave@test>"}
    await world.expect(staff, TEST, unanswered=set(), awaiting=thread)

    # Promoting dave afterwards does not turn his earlier reply into a staff reply ...
    await world.store.set_role("dave", "staff", changed_by="test")
    await world.expect(staff, TEST, unanswered=set(), awaiting=thread)
    # ... but his next post counts, without logging in again.
    await world.post_as(dave, "dave", subject="Re: Printer on fire", message_id="<q1-dave2@test>",
                        references="<q1@test>")
    await world.expect(staff, TEST, unanswered=set(), awaiting=set())

    # Demoting an MVP later does not reopen a thread she answered.
    await world.post_as(bob, "bob", subject="Scanner jammed", message_id="<q2@test>")
    await world.post_as(mia, "mia", subject="Re: Scanner jammed", message_id="<q2-mia@test>",
                        references="<q2@test>")
    await world.store.set_role("mia", "member", changed_by="test")
    await world.expect(staff, TEST, unanswered=set(), awaiting=set())


async def test_group_names_with_a_view_prefix_are_reserved(world: World) -> None:
    """A real group cannot be named like a view (issue 4)."""
    for name in ("unanswered.x", f"awaiting-staff.{TEST}", "unanswered.brand.new"):
        with pytest.raises(StoreError):
            await world.store.create_group(name, description="no", creator="test")
        assert await world.store.group(name) is None
