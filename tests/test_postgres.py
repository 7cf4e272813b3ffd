"""The PostgreSQL path (asyncpg through SQLAlchemy's async engine), end to end over TCP.

Skipped unless ``NNTPD_TEST_POSTGRES_URL`` names a PostgreSQL server, so the
normal suite and CI stay SQLite-only. The URL's role needs CREATEDB: the
module creates its own database ``nntpd_test_<pid>_<random>`` on that server
(the database named in the URL is only used to connect and is never changed)
and drops it at the end; every test starts from an empty schema in it
(``Base.metadata.drop_all`` then ``init``).

Run it (needs ``pip install -e '.[postgres,test]'`` for asyncpg)::

    NNTPD_TEST_POSTGRES_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python -m pytest tests/test_postgres.py -v

A throwaway server for it, as a non-root user (Debian's PostgreSQL 15)::

    /usr/lib/postgresql/15/bin/initdb -D /tmp/pgdata -U postgres --auth=trust
    /usr/lib/postgresql/15/bin/pg_ctl -D /tmp/pgdata -l /tmp/pgdata/log \\
        -o '-p 5433 -h 127.0.0.1 -k /tmp/pgdata' -w start
    # ... NNTPD_TEST_POSTGRES_URL=postgresql+asyncpg://postgres@127.0.0.1:5433/postgres
    /usr/lib/postgresql/15/bin/pg_ctl -D /tmp/pgdata stop

"Two servers" below are two Store + NNTPServer pairs in this process, each
with its own engine, connection pool and writer task: to the database they
are two independent clients, exactly like two ``nntpd serve`` processes.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import secrets
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import pytest

URL = os.environ.get("NNTPD_TEST_POSTGRES_URL", "")
if not URL:
    pytest.skip(
        "PostgreSQL tests need NNTPD_TEST_POSTGRES_URL "
        "(e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/postgres); see tests/test_postgres.py",
        allow_module_level=True,
    )
asyncpg = pytest.importorskip("asyncpg", reason="pip install -e '.[postgres]' for the PostgreSQL tests")

from sqlalchemy.engine import URL as SAURL, make_url  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

from conftest import Client, ServerHandle, start_server_on  # noqa: E402
from nntp_helpers import group_info, listgroup, make_article, unique_id  # noqa: E402
from nntp_helpers import run_cli as cli  # noqa: E402
from nntpd.article import ArticleRejected, prepare_article  # noqa: E402
from nntpd.commands.posting import anonymous_poster  # noqa: E402
from nntpd.config import Settings  # noqa: E402
import storage.community  # noqa: E402
from storage import PostRejected  # noqa: E402
from storage.models import Base  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import nntplib

PASSWORD = "pw-123456"
TEST, OTHER = "local.test", "local.other"


# -- the database: one per module, a fresh schema per test ---------------------

def _asyncpg_args(url: SAURL) -> dict[str, Any]:
    return {"host": url.host or "127.0.0.1", "port": url.port or 5432, "user": url.username,
            "password": url.password, "database": url.database or "postgres"}


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A database of our own on the server in NNTPD_TEST_POSTGRES_URL, dropped afterwards."""
    base = make_url(URL)
    if not base.drivername.startswith("postgresql"):
        pytest.fail(f"NNTPD_TEST_POSTGRES_URL must be a postgresql URL, not {base.drivername}")
    base = base.set(drivername="postgresql+asyncpg")
    name = f"nntpd_test_{os.getpid()}_{secrets.token_hex(4)}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(**_asyncpg_args(base))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def empty_db(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The module's database with no tables (and the CLI kept away from local config files)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NNTPD_CONFIG", raising=False)
    engine = create_async_engine(pg_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.drop_all)
    finally:
        await engine.dispose()
    return pg_url


async def start_pg_server(url: str, settings: Settings | None = None, **overrides: object) -> ServerHandle:
    """conftest.start_server on a PostgreSQL URL."""
    return await start_server_on(url, Path(url), settings, **overrides)


async def stop(handle: ServerHandle) -> None:
    await handle.server.close()
    await handle.store.close()


@pytest.fixture
async def pg(empty_db: str) -> AsyncIterator[ServerHandle]:
    handle = await start_pg_server(empty_db)
    await handle.store.create_group(OTHER, description="Other group", creator="test")
    try:
        yield handle
    finally:
        await stop(handle)


@pytest.fixture
async def pg2(pg: ServerHandle) -> AsyncIterator[ServerHandle]:
    """A second server on the same database."""
    handle = await start_pg_server(pg.url)
    try:
        yield handle
    finally:
        await stop(handle)


@pytest.fixture
async def client(pg: ServerHandle) -> AsyncIterator[Client]:
    c = await pg.connect()
    try:
        yield c
    finally:
        await c.close()


# -- helpers -------------------------------------------------------------------

def article(mid: str, *, groups: str = TEST, subject: str = "Subject", from_: str = "Ann <ann@example.com>",
            refs: str | None = None, body: str = "Body\n.dot line\n", lock: str = "") -> str:
    extra = f"References: {refs}\n" if refs else ""
    extra += f"Cancel-Lock: {lock}\n" if lock else ""
    return f"From: {from_}\nNewsgroups: {groups}\nSubject: {subject}\nMessage-ID: {mid}\n{extra}\n{body}"


def key_and_lock(mid: str) -> tuple[str, str]:
    """RFC 8315 4: c-key = Base64(HMAC-SHA256(secret, mid)), c-lock = Base64(SHA-256(c-key))."""
    key = base64.b64encode(hmac.new(b"poster's secret", mid.encode(), hashlib.sha256).digest()).decode()
    return f"sha256:{key}", "sha256:" + base64.b64encode(hashlib.sha256(key.encode()).digest()).decode()


def cancel(target: str, from_: str = "ann@example.com", key: str = "") -> str:
    key_line = f"Cancel-Key: {key}\n" if key else ""
    return f"From: {from_}\nNewsgroups: local.test\nSubject: cmsg\nControl: cancel {target}\n{key_line}\ncancel\n"


async def posted(c: Client, text: str) -> str:
    status = await c.post(text)
    assert status.startswith("240"), status
    return status


async def over(c: Client, group: str, rng: str = "1-") -> dict[int, list[str]]:
    assert (await c.cmd(f"GROUP {group}")).startswith("211")
    status = await c.cmd(f"OVER {rng}")
    assert status.startswith("224"), status
    return {int(r.split("\t")[0]): r.split("\t") for r in await c.block()}


async def login(c: Client, name: str) -> None:
    assert (await c.cmd(f"AUTHINFO USER {name}")).startswith("381")
    assert (await c.cmd(f"AUTHINFO PASS {PASSWORD}")).startswith("281")


async def assert_gap_free(c: Client, group: str) -> dict[int, list[str]]:
    """Numbers 1..high all present, count == high, each Xref names the article's own number."""
    count, low, high, _ = await group_info(c, group)
    assert await listgroup(c, group) == list(range(1, high + 1))
    assert (count, low) == (high, 1)
    rows = await over(c, group)
    for number, row in rows.items():
        assert f"{group}:{number}" in row[8].split(), row
    return rows


async def lock_waiters(conn: Any, n: int) -> None:
    """Wait until n other sessions of this database wait for a row lock."""
    for _ in range(500):
        waiting = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")
        if waiting >= n:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{n} sessions never waited for the lock")


async def blocker(url: str) -> Any:
    return await asyncpg.connect(**_asyncpg_args(make_url(url)))


# -- schema and CLI ----------------------------------------------------------

async def test_init_creates_then_upgrades_and_commands_need_it(empty_db):
    err = await cli(empty_db, "group", "list", ok=False)
    assert "run 'nntpd init' first" in err
    assert "Created database" in await cli(empty_db, "init")
    assert "Upgraded database" in await cli(empty_db, "init")
    assert "local.test" in await cli(empty_db, "group", "list")


# -- reading and posting ---------------------------------------------------------

async def test_post_crosspost_replies_and_read_back(client, pg):
    """RFC 3977 6.1-6.3 on PostgreSQL: numbers, Xref, lookups by number and Message-ID."""
    await posted(client, article("<q@x>", subject="Question"))
    await posted(client, article("<x@x>", groups=f"{TEST},{OTHER}", subject="Cross"))
    await posted(client, article("<r@x>", subject="Re: Question", refs="<q@x>", from_="Carl <c@example.com>"))
    # A reply that arrives before its parent files under the root's thread.
    await posted(client, article("<late-r@x>", subject="Re: Late", refs="<late@x>", from_="Carl <c@example.com>"))
    await posted(client, article("<late@x>", subject="Late", from_="Dora <d@example.com>"))
    assert (await client.post(article("<q@x>"))).startswith("441")
    assert (await client.post(article("<n@x>", groups="local.nosuch"))).startswith("441")

    assert await group_info(client, TEST) == (5, 1, 5, TEST)
    assert await group_info(client, OTHER) == (1, 1, 1, OTHER)
    assert await listgroup(client, TEST) == [1, 2, 3, 4, 5]
    assert (await client.cmd(f"LISTGROUP {TEST} 2-3")).startswith("211")
    assert await client.block() == ["2", "3"]
    assert (await client.cmd("GROUP local.test")).startswith("211")
    assert (await client.cmd("ARTICLE 1")) == "220 1 <q@x>"
    lines = await client.block()
    assert "Subject: Question" in lines and ".dot line" in lines and lines[-2:] == ["Body", ".dot line"]
    assert (await client.cmd("ARTICLE <x@x>")) == "220 0 <x@x>"
    assert "Xref: test.example local.test:2 local.other:1" in await client.block()
    assert (await client.cmd("HEAD 3")) == "221 3 <r@x>"
    assert "References: <q@x>" in await client.block()
    assert (await client.cmd("BODY <r@x>")) == "222 0 <r@x>"
    assert await client.block() == ["Body", ".dot line"]
    assert await client.cmd("STAT 4") == "223 4 <late-r@x>"
    assert await client.cmd("STAT <late@x>") == "223 0 <late@x>"
    assert (await client.cmd("STAT 99")).startswith("423")
    assert (await client.cmd("STAT <none@x>")).startswith("430")
    assert await client.cmd("STAT 1") == "223 1 <q@x>"
    assert (await client.cmd("NEXT")).startswith("223 2 ")
    assert (await client.cmd("LAST")).startswith("223 1 ")
    thread = await pg.store.thread("<late@x>")
    assert thread is not None
    assert (thread["posts"], thread["participants"], thread["root_present"]) == (2, 2, True)


async def test_overview_hdr_xhdr_xpat(client):
    """RFC 3977 8.3-8.5 and the XHDR/XPAT extensions on PostgreSQL."""
    for i in range(1, 6):
        await posted(client, article(f"<o{i}@x>", subject=f"Topic {i}", refs="<o1@x>" if i > 1 else None))
    rows = await over(client, TEST, "2-4")
    assert sorted(rows) == [2, 3, 4] and rows[2][1] == "Topic 2" and rows[2][5] == "<o1@x>"
    assert sorted(await over(client, TEST, "4-")) == [4, 5]
    assert (await client.cmd("XOVER 1-2")).startswith("224")
    assert [r.split("\t")[0] for r in await client.block()] == ["1", "2"]
    assert (await client.cmd("OVER <o3@x>")).startswith("224")
    assert [r.split("\t")[:2] for r in await client.block()] == [["0", "Topic 3"]]
    assert (await client.cmd("HDR Subject 1-3")).startswith("225")
    assert await client.block() == ["1 Topic 1", "2 Topic 2", "3 Topic 3"]
    assert (await client.cmd("HDR Message-ID <o5@x>")).startswith("225")
    assert await client.block() == ["0 <o5@x>"]
    assert (await client.cmd("HDR Path 1-2")).startswith("225")  # not in the overview
    assert await client.block() == ["1 test.example!not-for-mail", "2 test.example!not-for-mail"]
    assert (await client.cmd("XHDR From 5")).startswith("221")
    assert await client.block() == ["5 Ann <ann@example.com>"]
    assert (await client.cmd("XPAT Subject 1-5 *4")).startswith("221")
    assert await client.block() == ["4 Topic 4"]


async def test_newnews_newgroups_and_list_variants(client, pg):
    since = datetime.now(timezone.utc) - timedelta(minutes=1)
    stamp = since.strftime("%Y%m%d %H%M%S")
    await posted(client, article("<a@x>"))
    await posted(client, article("<b@x>", groups=OTHER))
    assert (await client.cmd(f"NEWNEWS * {stamp} GMT")).startswith("230")
    assert sorted(await client.block()) == ["<a@x>", "<b@x>"]
    assert (await client.cmd(f"NEWNEWS local.other {stamp} GMT")).startswith("230")
    assert await client.block() == ["<b@x>"]
    later = (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%Y%m%d %H%M%S")
    assert (await client.cmd(f"NEWNEWS * {later} GMT")).startswith("230")
    assert await client.block() == []
    await pg.store.create_group("local.new", description="New one")
    assert (await client.cmd(f"NEWGROUPS {stamp} GMT")).startswith("231")
    assert sorted(line.split()[0] for line in await client.block()) == ["local.new", OTHER, TEST]
    assert (await client.cmd("LIST")).startswith("215")
    assert sorted(await client.block()) == ["local.new 0 1 y", "local.other 1 1 y", "local.test 1 1 y"]
    assert (await client.cmd("LIST ACTIVE local.o*")).startswith("215")
    assert await client.block() == ["local.other 1 1 y"]
    assert (await client.cmd("LIST NEWSGROUPS local.new")).startswith("215")
    assert await client.block() == ["local.new\tNew one"]
    for variant in ("ACTIVE.TIMES", "OVERVIEW.FMT", "HEADERS", "DISTRIB.PATS"):
        assert (await client.cmd(f"LIST {variant}")).startswith("215"), variant
        await client.block()


async def test_nntplib_client(pg):
    """The standard library's client against the PostgreSQL-backed server."""

    def session() -> tuple[Any, ...]:
        s = nntplib.NNTP(pg.host, pg.port, timeout=10)
        try:
            s.post(make_article(message_id="<lib1@x>", subject="lib 1"))
            s.post(make_article(message_id="<lib2@x>", subject="lib 2", extra=("References: <lib1@x>",)))
            _, count, first, last, _ = s.group(TEST)
            _, ov = s.over((first, last))
            _, info = s.article("<lib2@x>")
            _, ids = s.newnews(TEST, datetime.now(timezone.utc) - timedelta(minutes=1))
            return count, first, last, [(n, o["subject"], o["references"]) for n, o in ov], info, ids
        finally:
            s.quit()

    count, first, last, ov, info, ids = await asyncio.to_thread(session)
    assert (count, first, last) == (2, 1, 2)
    assert ov == [(1, "lib 1", ""), (2, "lib 2", "<lib1@x>")]
    assert info.message_id == "<lib2@x>" and b"Xref: test.example local.test:2" in info.lines
    assert sorted(ids) == ["<lib1@x>", "<lib2@x>"]


# -- operator commands -------------------------------------------------------------

async def test_moderation_queue(client, pg):
    await cli(pg.url, "group", "create", "local.mod", "--moderated")
    for mid in ("<m1@x>", "<m2@x>"):
        status = await client.post(article(mid, groups="local.mod"))
        assert status.startswith("240") and "held" in status, status
    assert await group_info(client, "local.mod") == (0, 1, 0, "local.mod")
    held = json.loads(await cli(pg.url, "queue", "list", "--json"))
    assert [h["message_id"] for h in held] == ["<m1@x>", "<m2@x>"]
    assert "-> local.mod:1" in await cli(pg.url, "queue", "approve", str(held[0]["id"]))
    await cli(pg.url, "queue", "reject", str(held[1]["id"]))
    assert "no held article" in await cli(pg.url, "queue", "reject", "999999", ok=False)
    assert await cli(pg.url, "queue", "list") == ""
    assert await group_info(client, "local.mod") == (1, 1, 1, "local.mod")
    assert await client.cmd("STAT <m1@x>") == "223 0 <m1@x>"
    assert (await client.cmd("STAT <m2@x>")).startswith("430")


@pytest.mark.parametrize("view_scan_limit", [10_000, 0], ids=["from-group", "from-threads"])
async def test_accounts_roles_views_threads_and_report(client, pg, view_scan_limit, monkeypatch):
    """Issue 4 on PostgreSQL: roles, X-Poster-Role, the view groups, `threads` and `report`."""
    monkeypatch.setattr(storage.community, "VIEW_SCAN_LIMIT", view_scan_limit)
    for name in ("bob", "sam"):
        await cli(pg.url, "user", "add", name, "--email", f"{name}@example.com", "--password-stdin",
                  input=PASSWORD + "\n")
    assert "already exists" in await cli(pg.url, "user", "add", "bob", "--email", "b@example.com",
                                         "--password-stdin", input=PASSWORD + "\n", ok=False)
    assert "sam is now staff" in await cli(pg.url, "user", "flag", "sam", "--staff", "--by", "test")
    listed = json.loads(await cli(pg.url, "user", "list", "--json"))
    assert [(a["name"], a["role"]) for a in listed] == [("bob", "member"), ("sam", "staff")]

    bob, sam = await pg.connect(), await pg.connect()
    try:
        await login(bob, "bob")
        await login(sam, "sam")
        await posted(bob, article("<bq@x>", subject="Bob asks", from_="bob@example.com"))
        await posted(client, article("<aq@x>", subject="Ann asks"))
        await posted(client, article("<ar@x>", subject="Re: Ann asks", refs="<aq@x>", from_="c@example.com"))
        # Views are for staff: hidden from anonymous clients.
        assert (await client.cmd(f"GROUP unanswered.{TEST}")).startswith("411")
        assert (await sam.cmd(f"GROUP unanswered.{TEST}")) == f"211 1 1 3 unanswered.{TEST}"
        assert (await sam.cmd(f"GROUP awaiting-staff.{TEST}")) == f"211 3 1 3 awaiting-staff.{TEST}"
        await posted(sam, article("<sr@x>", subject="Re: Bob asks", refs="<bq@x>", from_="sam@example.com"))
        assert (await sam.cmd("HEAD <sr@x>")).startswith("221")
        assert "X-Poster-Role: staff" in await sam.block()
        assert (await sam.cmd(f"GROUP unanswered.{TEST}")) == f"211 0 5 4 unanswered.{TEST}"
        assert (await sam.cmd(f"LISTGROUP awaiting-staff.{TEST}")).startswith("211 2 2 4")
        assert await sam.block() == ["2", "3"]
        assert (await sam.cmd("LIST ACTIVE awaiting-staff.*")).startswith("215")
        assert len(await sam.block()) == 2
        assert (await sam.post(article("<v@x>", groups=f"unanswered.{TEST}"))).startswith("441")
    finally:
        await bob.close()
        await sam.close()

    assert await cli(pg.url, "threads", "unanswered", "--json") == "[]\n"
    waiting = json.loads(await cli(pg.url, "threads", "unanswered", "--awaiting-staff", "--json"))
    assert [t["message_id"] for t in waiting] == ["<aq@x>"]
    shown = await cli(pg.url, "threads", "show", "<sr@x>")
    assert "2 posts, 2 participants, answered, staff/MVP replied" in shown and "[staff]" in shown
    assert "resolved <aq@x>" in await cli(pg.url, "threads", "resolve", "<ar@x>")
    assert await cli(pg.url, "threads", "unanswered", "--awaiting-staff", "--json") == "[]\n"
    await cli(pg.url, "threads", "reopen", "<aq@x>")
    assert "<aq@x>" in await cli(pg.url, "threads", "unanswered", "--awaiting-staff")
    assert "no article or thread" in await cli(pg.url, "threads", "show", "<none@x>", ok=False)
    report = json.loads(await cli(pg.url, "report", "--json"))
    row = next(g for g in report["groups"] if g["group"] == TEST)
    assert (row["articles"], row["threads"], row["answered_share"], row["staff_answered_share"]) == (4, 2, 1.0, 0.5)
    assert {(a["author"], a["role"], a["replies"]) for a in report["top_answerers"]} == {
        ("sam", "staff", 1), ("c@example.com", "member", 1)}


async def test_group_remove_keeps_crossposted_articles(client, pg):
    await cli(pg.url, "group", "create", "local.gone")
    await posted(client, article("<only@x>", groups="local.gone"))
    await posted(client, article("<both@x>", groups=f"local.gone,{OTHER}"))
    assert "removed local.gone" in await cli(pg.url, "group", "remove", "local.gone")
    assert "no such group" in await cli(pg.url, "group", "remove", "local.gone", ok=False)
    assert (await client.cmd("GROUP local.gone")).startswith("411")
    assert (await client.cmd("STAT <only@x>")).startswith("430")
    assert await client.cmd("STAT <both@x>") == "223 0 <both@x>"
    assert await pg.store.thread("<only@x>") is None
    assert await group_info(client, OTHER) == (1, 1, 1, OTHER)


async def test_cancel_withdraws_the_article_and_raises_the_low_water_mark(client, pg):
    """RFC 5537 5.3 on PostgreSQL: numbers are not reused, thread figures follow; an anonymous
    cancel needs the Cancel-Key of the original's Cancel-Lock (RFC 8315)."""
    await posted(client, article("<c1@x>", lock=key_and_lock("<c1@x>")[1]))
    await posted(client, article("<c2@x>", refs="<c1@x>", from_="bob@example.com", lock=key_and_lock("<c2@x>")[1]))
    status = await client.post(cancel("<c1@x>", from_="mallory@example.com"))
    assert status.startswith("441"), status
    await posted(client, cancel("<c2@x>", from_="bob@example.com", key=key_and_lock("<c2@x>")[0]))
    assert (await client.cmd("STAT <c2@x>")).startswith("430")
    thread = await pg.store.thread("<c1@x>")
    assert thread is not None and (thread["posts"], thread["first_reply_at"]) == (1, None)
    await posted(client, cancel("<c1@x>", key=key_and_lock("<c1@x>")[0]))
    assert await client.cmd("GROUP local.test") == "211 0 3 2 local.test"
    await posted(client, article("<c3@x>"))
    assert await client.cmd("GROUP local.test") == "211 1 3 3 local.test"
    assert await pg.store.thread("<c1@x>") is None


# -- concurrency -------------------------------------------------------------------

async def test_fifty_concurrent_posters_get_increasing_gap_free_numbers(pg):
    clients = [await pg.connect() for _ in range(50)]

    async def poster(i: int, c: Client) -> list[str]:
        mids = []
        for j in range(4):
            mid = unique_id(f"c{i}p{j}")
            groups = f"{TEST},{OTHER}" if (i + j) % 3 == 0 else TEST
            await posted(c, article(mid, groups=groups, subject=f"client {i} post {j}"))
            assert await c.cmd(f"STAT {mid}") == f"223 0 {mid}"  # 240 means committed
            mids.append(mid)
        return mids

    try:
        per_client = await asyncio.wait_for(asyncio.gather(*(poster(i, c) for i, c in enumerate(clients))), 60)
        rows = await assert_gap_free(clients[0], TEST)
        assert len(rows) == 200
        await assert_gap_free(clients[0], OTHER)
    finally:
        for c in clients:
            await c.close()
    number = {row[4]: n for n, row in rows.items()}
    for mids in per_client:
        assert [number[m] for m in mids] == sorted(number[m] for m in mids)


async def test_two_servers_post_concurrently(pg, pg2):
    clients = [await (pg if i % 2 else pg2).connect() for i in range(20)]

    async def poster(i: int, c: Client) -> None:
        for j in range(10):
            groups = TEST if j % 2 else f"{OTHER},{TEST}"
            await posted(c, article(unique_id(f"s{i}p{j}"), groups=groups))

    try:
        await asyncio.wait_for(asyncio.gather(*(poster(i, c) for i, c in enumerate(clients))), 60)
        assert len(await assert_gap_free(clients[0], TEST)) == 200
        assert len(await assert_gap_free(clients[1], OTHER)) == 100
    finally:
        for c in clients:
            await c.close()


async def test_two_servers_crossposting_in_opposite_group_orders_do_not_deadlock(pg, pg2):
    """Both writers wait on a row lock; released together they must not deadlock (441)."""
    a, b = await pg.connect(), await pg2.connect()
    hold = await blocker(pg.url)
    try:
        tx = hold.transaction()
        await tx.start()
        await hold.execute("SELECT 1 FROM groups WHERE name = ANY($1::text[]) FOR UPDATE", [TEST, OTHER])
        posts = [asyncio.ensure_future(a.post(article("<ab@x>", groups=f"{TEST},{OTHER}"))),
                 asyncio.ensure_future(b.post(article("<ba@x>", groups=f"{OTHER},{TEST}")))]
        await lock_waiters(hold, 2)
        await tx.commit()
        statuses = await asyncio.wait_for(asyncio.gather(*posts), 20)
        assert all(s.startswith("240") for s in statuses), statuses
        await assert_gap_free(a, TEST)
        await assert_gap_free(a, OTHER)
    finally:
        await hold.close()
        await a.close()
        await b.close()


@pytest.mark.parametrize("same_author", [False, True], ids=["two-authors", "one-author"])
async def test_replies_in_two_groups_from_two_servers_keep_thread_figures_exact(pg, pg2, same_author):
    """Two writers that share no group update one thread: neither update may be lost, and an
    author replying through both at once is one participant (read under the thread lock)."""
    a, b = await pg.connect(), await pg2.connect()
    hold = await blocker(pg.url)
    second = "ra@example.com" if same_author else "rb@example.com"
    try:
        await posted(a, article("<root@x>"))
        tx = hold.transaction()
        await tx.start()
        await hold.execute("SELECT 1 FROM threads WHERE key = '<root@x>' FOR UPDATE")
        posts = [asyncio.ensure_future(a.post(article("<ra@x>", refs="<root@x>", from_="ra@example.com"))),
                 asyncio.ensure_future(b.post(article("<rb@x>", groups=OTHER, refs="<root@x>",
                                                      from_=second)))]
        await lock_waiters(hold, 2)
        await tx.commit()
        statuses = await asyncio.wait_for(asyncio.gather(*posts), 20)
        assert all(s.startswith("240") for s in statuses), statuses
        thread = await pg.store.thread("<root@x>")
        assert thread is not None
        participants = 2 if same_author else 3
        assert (thread["posts"], thread["participants"]) == (3, participants)
        assert len(await pg.store.participants("<root@x>")) == participants
    finally:
        await hold.close()
        await a.close()
        await b.close()


async def test_two_servers_cancelling_one_article_keep_the_count_right(pg, pg2):
    """Both cancels wait on a lock; released together, the article's groups lose it once."""
    a, b = await pg.connect(), await pg2.connect()
    hold = await blocker(pg.url)
    try:
        await posted(a, article("<keep@x>", groups=f"{TEST},{OTHER}"))
        await posted(a, article("<doomed@x>", groups=f"{TEST},{OTHER}", lock=key_and_lock("<doomed@x>")[1]))
        tx = hold.transaction()
        await tx.start()
        await hold.execute("SELECT 1 FROM memberships m JOIN articles a ON a.id = m.article_id "
                           "WHERE a.message_id = '<doomed@x>' FOR UPDATE OF m")
        doom = cancel("<doomed@x>", key=key_and_lock("<doomed@x>")[0])
        posts = [asyncio.ensure_future(a.post(doom)), asyncio.ensure_future(b.post(doom))]
        await lock_waiters(hold, 2)
        await tx.commit()
        statuses = await asyncio.wait_for(asyncio.gather(*posts), 20)
        assert any(s.startswith("240") for s in statuses), statuses
        for group in (TEST, OTHER):
            assert await group_info(a, group) == (1, 1, 2, group)
    finally:
        await hold.close()
        await a.close()
        await b.close()


# -- what PostgreSQL refuses but SQLite stores -----------------------------------------

ODD_ARTICLES = {
    "nul-subject": b"From: a@example.com\r\nSubject: a\x00b\r\n",
    "nul-references": b"From: a@example.com\r\nSubject: s\r\nReferences: <r@x> x\x00y\r\n",
    "long-from": b"From: " + b"x" * 300 + b"\r\nSubject: s\r\n",
    "long-address": b"From: A <" + b"a" * 300 + b"@example.com>\r\nSubject: s\r\n",
    "non-utf8-address": b"From: caf\xe9@example.com\r\nSubject: s\r\n",
}


async def test_odd_header_text_never_fails_the_posts_committed_with_it(pg):
    """Group commit on PostgreSQL: text a column refuses (NUL, > VARCHAR(255), non-UTF-8)
    may at most refuse that one article, never the good ones in the same batch."""
    now = datetime.now(timezone.utc)
    prepared = []
    for i, (tag, head) in enumerate([("good-0", b"From: g@example.com\r\nSubject: ok\r\n"),
                                     *ODD_ARTICLES.items(),
                                     ("good-1", b"From: g@example.com\r\nSubject: ok\r\n")]):
        raw = head + f"Newsgroups: {TEST}\r\nMessage-ID: <{tag}.{i}@x>\r\n\r\nbody\r\n".encode()
        try:
            prepared.append((tag, prepare_article(raw, path_host="test.example", now=now)))
        except ArticleRejected:  # refused on purpose before storage (a NUL: RFC 3977 3.6)
            assert tag in ODD_ARTICLES

    async def post(a: Any) -> Any:
        try:
            return await pg.store.post(a, anonymous_poster(a.from_))
        except PostRejected as exc:
            return exc

    # Submitted in one loop iteration: the writer commits them as one batch.
    outcomes = dict(zip([t for t, _ in prepared], await asyncio.gather(*(post(a) for _, a in prepared))))
    for tag in ("good-0", "good-1"):
        assert not isinstance(outcomes[tag], Exception), (tag, outcomes[tag])
    for tag in ODD_ARTICLES.keys() & outcomes.keys():
        outcome = outcomes[tag]
        # Stored, or refused on purpose -- not a storage failure ("try again later").
        assert not (isinstance(outcome, PostRejected) and outcome.retry), (tag, outcome)
    c = await pg.connect()
    try:
        await assert_gap_free(c, TEST)
    finally:
        await c.close()


async def test_odd_header_text_over_tcp(client):
    status = await client.post(b"From: a@example.com\r\nNewsgroups: local.test\r\nSubject: a\x00b\r\n"
                               b"Message-ID: <nul@x>\r\n\r\nbody\r\n")
    assert status.startswith("441") and "NUL" in status, status  # RFC 3977 3.6, never a DBAPIError
    assert (await client.cmd("HEAD <nul@x>")).startswith("430")
