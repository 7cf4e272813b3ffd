"""The storage fast paths give the same answers as SQLAlchemy's own execution.

- ``DriverStatements`` (prebuilt statements on the sqlite3 connection) against
  ``CoreStatements`` on the same SQLite file: datetimes, booleans, NULLs,
  expanding IN lists, RETURNING, executemany, and errors mapped to
  SQLAlchemy's exception classes.
- Inline writes (the group commit on the loop thread) fall back to the write
  thread when another process holds the write lock, and a post still lands.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from conftest import running, write_lock_held
from storage import Store
from storage.compiled import CoreStatements, DriverStatements, StatementCache
from storage.models import Group, Thread

_T = Thread.__table__
_G = Group.__table__

THREADS_BY_KEY = select(_T).where(_T.c.key.in_(bindparam("keys", expanding=True))).order_by(_T.c.key)
INSERT_THREAD = insert(_T)
BUMP = (update(_G).where(_G.c.name == bindparam("b_name"))
        .values(high=_G.c.high + bindparam("n")).returning(_G.c.id, _G.c.high))


def thread_row(key: str, at: datetime, **changes: object) -> dict[str, object]:
    row: dict[str, object] = {
        "key": key, "group_name": "local.test", "subject": "s", "root_present": False,
        "op_key": None, "op_from": "", "started_at": at, "last_post_at": at, "posts": 1,
        "participants": 1, "first_reply_at": None, "first_staff_at": None, "resolved_at": None,
    }
    row.update(changes)
    return row


@pytest.fixture
async def store(tmp_path):
    store = Store(f"sqlite+aiosqlite:///{tmp_path / 'news.sqlite3'}")
    await store.init_schema()
    await store.create_group("local.test")
    yield store
    await store.close()


async def test_driver_and_core_statements_read_back_the_same_rows(store):
    db = store._db
    at = datetime(2026, 11, 27, 9, 30, 15, 123456, tzinfo=timezone.utc)
    rows = [thread_row("<a@x>", at, root_present=True, op_key="op"),
            thread_row("<b@x>", at + timedelta(seconds=1), first_reply_at=at)]

    def write(conn):
        db.statements(conn).many(INSERT_THREAD, rows)

    await db.write(write)

    def read(conn):
        keys = {"keys": ["<b@x>", "<a@x>", "<missing@x>"]}
        return (list(map(tuple, db.statements(conn).all(THREADS_BY_KEY, keys))),
                list(map(tuple, CoreStatements(conn).all(THREADS_BY_KEY, keys))))

    driver_rows, core_rows = await db.read(read)
    assert driver_rows == core_rows
    assert len(driver_rows) == 2
    first = dict(zip((c.name for c in _T.c), driver_rows[0]))
    assert first["started_at"] == at and first["started_at"].tzinfo is not None
    assert first["root_present"] is True and first["first_reply_at"] is None
    second = dict(zip((c.name for c in _T.c), driver_rows[1]))
    assert second["first_reply_at"] == at


async def test_driver_statements_returning_and_empty_in_list(store):
    db = store._db

    def bump(conn):
        st = db.statements(conn)
        return st.all(BUMP, {"b_name": "local.test", "n": 3}), st.all(THREADS_BY_KEY, {"keys": []})

    (row,), none = await db.write(bump)
    assert tuple(row)[1] == 3
    assert none == []


async def test_driver_statements_raise_sqlalchemy_integrity_error(store):
    db = store._db
    at = datetime.now(timezone.utc)

    def twice(conn):
        db.statements(conn).many(INSERT_THREAD, [thread_row("<same@x>", at), thread_row("<same@x>", at)])

    with pytest.raises(IntegrityError):
        await db.write(twice)


def test_insert_missing_a_defaulted_column_is_refused():
    """Column defaults are SQLAlchemy's to fill; the fast path must not write NULL instead."""
    from sqlalchemy.dialects import sqlite

    cache = StatementCache(sqlite.dialect(paramstyle="qmark"))
    row = thread_row("<k@x>", datetime.now(timezone.utc))
    del row["posts"]
    with pytest.raises(ValueError, match="posts"):
        DriverStatements(None, cache).many(INSERT_THREAD, [row])


async def test_post_lands_while_another_process_holds_the_write_lock(tmp_path):
    """Inline writes never block the loop: with the lock held elsewhere the batch waits in
    the write thread, the server keeps answering, and the post commits once it is free."""
    async with running(tmp_path) as handle, write_lock_held(handle.db_path, 1.0):
        poster = await handle.connect()
        reader = await handle.connect()
        post = asyncio.create_task(poster.post(
            "From: a@example.com\r\nNewsgroups: local.test\r\nSubject: held lock\r\n"
            "Message-ID: <lock@example.com>\r\n\r\nbody\r\n"))
        await asyncio.sleep(0.3)
        assert not post.done(), "the post must wait for the lock"
        assert (await reader.cmd("DATE")).startswith("111"), "the loop keeps answering"
        assert (await asyncio.wait_for(post, 10)).startswith("240")
        assert (await reader.cmd("STAT <lock@example.com>")).startswith("223")
        await poster.close()
        await reader.close()


async def test_wal_stays_small_while_posts_keep_coming(store, tmp_path):
    """The WAL is checkpointed in the background and restarted, not left to grow:
    3,000 posts of ~3 KB write ~100 MB of WAL frames; the file must stay a few MB."""
    from nntpd.article import prepare_article
    from storage import Poster

    now = datetime.now(timezone.utc)
    body = ("x" * 70 + "\r\n") * 40

    async def post(i: int) -> None:
        raw = (f"From: p{i % 50}@example.com\r\nNewsgroups: local.test\r\nSubject: s{i}\r\n"
               f"Message-ID: <w{i}@example.com>\r\n\r\n{body}").encode()
        await store.post(prepare_article(raw, path_host="test", now=now), Poster(f"p{i % 50}"))

    for start in range(0, 3000, 50):
        await asyncio.gather(*(post(i) for i in range(start, start + 50)))
    wal = tmp_path / "news.sqlite3-wal"
    assert wal.stat().st_size < 16 * 1024 * 1024
    assert (await store.group("local.test")).count == 3000


async def test_init_drops_what_schema_1_had_and_every_post_paid_for(tmp_path):
    """`nntpd init` on a schema-1 database: the participants table and the two thread
    indexes go, the (thread, author) index comes, the version becomes 2, articles stay."""
    import sqlite3

    from sqlalchemy import text

    from storage.models import SCHEMA_VERSION

    url = f"sqlite+aiosqlite:///{tmp_path / 'old.sqlite3'}"
    store = Store(url)
    await store.init_schema()
    await store.create_group("local.test")

    def make_old(conn):
        conn.execute(text("CREATE TABLE thread_participants (thread_key VARCHAR(250), "
                          "author_key VARCHAR(255), PRIMARY KEY (thread_key, author_key))"))
        conn.execute(text("CREATE INDEX ix_articles_thread_key ON articles (thread_key)"))
        conn.execute(text("CREATE INDEX ix_memberships_thread_group ON memberships (thread_key, group_id)"))
        conn.execute(text("DROP INDEX ix_articles_thread_author"))
        conn.execute(text("UPDATE meta SET value = '1' WHERE key = 'schema_version'"))

    await store._db.write(make_old)
    await store.close()

    store = Store(url)
    await store.init_schema()
    await store.close()
    db = sqlite3.connect(tmp_path / "old.sqlite3")
    names = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
    db.close()
    assert "thread_participants" not in names
    assert not {"ix_articles_thread_key", "ix_memberships_thread_group"} & names
    assert "ix_articles_thread_author" in names
    assert version == str(SCHEMA_VERSION) == "2"
