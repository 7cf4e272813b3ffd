"""storage/compiled.py: the SQLite fast path answers exactly as SQLAlchemy does, on public API.

- The project's hot statements (store.py's article and overview reads, the
  writer's group-commit statements) give, through ``DriverStatements``, the
  rows ``Connection.execute`` gives on the same SQLite file: values, their
  types, UTC datetimes to the microsecond, bytes that are not UTF-8, NULLs,
  booleans, and IN lists of several lengths (empty included).
- The writes (``many``, ``insert_ids``) leave the same tables behind as
  ``Connection.execute`` does on a copy of the same file, and the same ids.
- No private SQLAlchemy name is used anywhere in storage/.
"""

from __future__ import annotations

import ast
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import storage.compiled as compiled_module
from nntpd.article import prepare_article
from storage import Poster, Store
from storage.compiled import CoreStatements, DriverStatements, StatementCache
from storage.models import Article, Base, Thread
from storage.store import (
    _ARTICLE_BY_ID,
    _ARTICLE_BY_NUMBER,
    _ARTICLE_BY_NUMBER_IN,
    _ARTICLES_BY_ID,
    _ARTICLES_BY_NUMBER,
    _HEADERS_RANGE_IN,
    _OVERVIEW_BY_ID,
    _OVERVIEW_RANGE,
    _OVERVIEW_RANGE_IN,
    _SELECT_GROUP,
    _SELECT_GROUPS,
)
from storage.writer import (
    _BUMP_GROUP,
    _GROUP_STATUS,
    _INSERT_ARTICLE,
    _INSERT_HELD,
    _INSERT_MEMBERSHIP,
    _INSERT_THREAD,
    _KNOWN_IDS,
    _KNOWN_PARTICIPANTS,
    _THREAD_AUTHORS,
    _THREADS,
    _UPDATE_THREAD,
    _UPDATE_THREAD_COUNTS,
)

STORAGE = Path(__file__).resolve().parent.parent / "storage"
ARTICLES = 24
# The seeded articles' Date (their arrival times, stored and read back, are the real clock's).
AT = datetime(2026, 11, 27, 9, 30, 15, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30)))


def mid(i: int) -> str:
    return f"<c{i}@example.com>"


def raw_article(i: int) -> bytes:
    groups = "local.test,local.other" if i % 3 == 0 else "local.test"
    refs = f"References: {mid(i - i % 4)}\r\n" if i % 4 else ""
    # Bytes that are not UTF-8 in the header and the body, a dot-line and trailing spaces.
    return (f"From: p{i % 5}@example.com\r\nNewsgroups: {groups}\r\nSubject: caf\xe9 {i}\r\n"
            f"Message-ID: {mid(i)}\r\n{refs}\r\n").encode("latin-1") + (
            b"body \xff\xfe line\r\n..dot\r\ntrailing  \r\n" * (1 + i % 3))


async def seeded(path: Path) -> Store:
    """A store with two groups and ARTICLES posts (cross-posts, replies, staff posts)."""
    store = Store(f"sqlite+aiosqlite:///{path}")
    await store.init_schema()
    await store.create_group("local.test")
    await store.create_group("local.other")
    for i in range(ARTICLES):
        role = "staff" if i % 7 == 3 else None
        poster = Poster(f"p{i % 5}", f"p{i % 5}" if role else None, role)
        article = prepare_article(raw_article(i), path_host="test", now=AT + timedelta(seconds=i))
        await store.post(article, poster)
    return store


@pytest.fixture
async def store(tmp_path: Path):
    store = await seeded(tmp_path / "news.sqlite3")
    yield store
    await store.close()


def typed(rows: Any) -> list[tuple[Any, ...]]:
    """Rows with each value's type (and a datetime's tzinfo) beside it: 1 == True, naive != aware."""
    return [tuple((v, type(v), getattr(v, "tzinfo", None)) for v in row) for row in rows]


def same_rows(conn: Any, st: DriverStatements, stmt: Any, params: dict[str, Any]) -> list[Any]:
    fast = st.all(stmt, params)
    core = conn.execute(stmt, params).all()
    assert typed(fast) == typed(core), stmt
    return fast


async def test_hot_reads_return_what_connection_execute_returns(store):
    db = store._db
    test = await store.group("local.test")
    other = await store.group("local.other")
    ids = [mid(i) for i in range(ARTICLES)]

    def read(conn: Any) -> dict[str, Any]:
        st = db.statements(conn)
        assert isinstance(st, DriverStatements), "SQLite must take the fast path"
        seen: dict[str, Any] = {}
        for gid in (test.id, other.id):
            for num in (1, 2, 5, test.high, test.high + 1):
                seen[f"by_number {gid} {num}"] = same_rows(
                    conn, st, _ARTICLE_BY_NUMBER, {"gid": gid, "num": num})
                for view, stmt in _ARTICLE_BY_NUMBER_IN.items():
                    same_rows(conn, st, stmt, {"gid": gid, "num": num})
            for lo, hi, lim in ((1, test.high, 1000), (3, 9, 4), (50, 60, 10)):
                params = {"gid": gid, "lo": lo, "hi": hi, "lim": lim}
                seen[f"overview {gid} {lo}"] = same_rows(conn, st, _OVERVIEW_RANGE, params)
                for stmt in (*_OVERVIEW_RANGE_IN.values(), *_HEADERS_RANGE_IN.values()):
                    same_rows(conn, st, stmt, params)
        for message_id in (ids[0], ids[7], "<missing@example.com>"):
            seen[message_id] = same_rows(conn, st, _ARTICLE_BY_ID, {"mid": message_id})
            same_rows(conn, st, _OVERVIEW_BY_ID, {"mid": message_id})
        # IN lists of several lengths, each length twice (the second from the cache),
        # with missing and repeated ids.
        for n in (0, 1, 2, 3, 5, 8, 17, ARTICLES, 1, 17, 0):
            mids = ids[:n] + (["<missing@example.com>", ids[0]] if n % 2 else [])
            seen[f"in {n}"] = same_rows(conn, st, _ARTICLES_BY_ID, {"mids": mids})
            same_rows(conn, st, _ARTICLES_BY_NUMBER, {"gid": test.id, "nums": list(range(1, n + 1))})
        for name in ("local.test", "local.other", "nope"):
            same_rows(conn, st, _SELECT_GROUP, {"name": name})
        same_rows(conn, st, _SELECT_GROUPS, {})
        return seen

    seen = await db.read(read)
    # The comparisons above were not all of empty results.
    first = seen["by_number %d 1" % test.id][0]
    assert first[1] == mid(0) and isinstance(first[2], bytes) and b"\xff\xfe" in first[3]
    assert len(seen[f"overview {test.id} 1"]) == ARTICLES
    assert len(seen[f"in {ARTICLES}"]) == ARTICLES and seen["in 0"] == []
    assert len(seen["in 17"]) == 17  # a repeated id matches once, a missing one not at all
    assert seen["<missing@example.com>"] == []


async def test_group_commit_reads_return_what_connection_execute_returns(store):
    db = store._db
    keys = sorted({mid(i - i % 4) for i in range(ARTICLES)})
    authors = [f"p{i}" for i in range(5)]

    def read(conn: Any) -> list[Any]:
        st = db.statements(conn)
        threads = []
        for n in (0, 1, 2, len(keys)):
            threads.append(same_rows(conn, st, _THREADS, {"keys": keys[:n] + ["<none@x>"]}))
            same_rows(conn, st, _KNOWN_PARTICIPANTS,
                      {"keys": keys[:n], "authors": authors[: n + 1], "batch": [1, 2, 3][:n]})
            same_rows(conn, st, _KNOWN_IDS,
                      {"ids": [mid(i) for i in range(n * 3)], "held": [mid(1)] * (n % 2)})
            same_rows(conn, st, _GROUP_STATUS, {"names": ["local.test", "local.other", "x"][:n]})
        for key in keys:
            same_rows(conn, st, _THREAD_AUTHORS, {"key": key})
        return threads

    threads = (await db.read(read))[-1]
    columns = [c.name for c in Thread.__table__.c]
    row = dict(zip(columns, threads[0]))
    assert isinstance(row["started_at"], datetime) and row["started_at"].tzinfo is timezone.utc
    assert isinstance(row["root_present"], bool)
    assert any(dict(zip(columns, t))["first_staff_at"] is not None for t in threads)
    assert all(dict(zip(columns, t))["resolved_at"] is None for t in threads)  # NULLs


def dump(conn: Any) -> dict[str, list[Any]]:
    """Every table, read back through Connection.execute in primary-key order."""
    return {table.name: typed(conn.execute(select(table).order_by(*table.primary_key.columns)))
            for table in Base.metadata.sorted_tables}


async def test_writes_leave_what_connection_execute_leaves(tmp_path):
    """The group commit's writes through the fast path and through Connection.execute,
    on two copies of one file: the same ids come back and the same rows are stored."""
    path = tmp_path / "news.sqlite3"
    await (await seeded(path)).close()  # closing checkpoints the WAL into the file
    copies = {}
    for name in ("fast", "core"):
        shutil.copy(path, tmp_path / f"{name}.sqlite3")
        copies[name] = Store(f"sqlite+aiosqlite:///{tmp_path / f'{name}.sqlite3'}")
    test = await copies["fast"].group("local.test")
    at = datetime(2027, 1, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=-7)))
    article_rows = [{
        "message_id": f"<w{i}@example.com>", "header": b"Subject: \xe9\r\n", "body": b"\x00\xff\r\n" * i,
        "date": "d", "from": "f", "subject": "s\u00e9", "references": "", "bytes": 10 + i,
        "lines": i, "arrived_at": at + timedelta(microseconds=i), "thread_key": "<t@x>",
        "xref": "x", "author_key": "a", "poster_account": None if i % 2 else "acc",
        "poster_role": None if i % 2 else "mvp",
    } for i in range(5)]
    thread = {c.name: None for c in Thread.__table__.c}
    thread.update(key="<t@x>", group_name="local.test", subject="s", root_present=True,
                  op_key="a", op_from="f", started_at=at, last_post_at=at, posts=5,
                  participants=1)
    held = {"message_id": "<h@x>", "newsgroups": "local.test", "subject": "s", "from": "f",
            "received_at": at, "header": b"\xfe", "body": b"", "fields": "{}",
            "poster_account": None, "poster_role": None}

    def write(st: Any):
        def run(conn: Any) -> tuple[Any, ...]:
            statements = st(conn)
            (bumped,) = statements.all(_BUMP_GROUP, {"b_name": "local.test", "n": 5})
            ids = statements.insert_ids(_INSERT_ARTICLE, article_rows)
            statements.many(_INSERT_MEMBERSHIP, [
                {"group_id": test.id, "number": bumped[1] - 4 + k, "article_id": article_id,
                 "thread_key": "<t@x>", "overview": b"o\xff"} for k, article_id in enumerate(ids)])
            statements.many(_INSERT_THREAD, [thread])
            statements.many(_UPDATE_THREAD_COUNTS, [
                {"posts": 6, "participants": 2, "last_post_at": at + timedelta(hours=1), "b_key": "<t@x>"}])
            fixed = {**thread, "first_reply_at": at, "resolved_at": None, "b_key": "<t@x>"}
            del fixed["key"]
            statements.many(_UPDATE_THREAD, [fixed])
            statements.many(_INSERT_HELD, [held])
            return tuple(bumped), ids
        return run

    fast = await copies["fast"]._db.write(write(copies["fast"]._db.statements))
    core = await copies["core"]._db.write(write(CoreStatements))
    assert fast == core
    assert fast[1] == list(range(ARTICLES + 1, ARTICLES + 6))
    tables = {name: await s._db.read(dump) for name, s in copies.items()}
    assert tables["fast"] == tables["core"]
    stored = [r for r in tables["fast"]["articles"] if r[1][0].startswith("<w")]
    assert [r[10][0] for r in stored] == [at + timedelta(microseconds=i) for i in range(5)]
    assert all(r[10][0].tzinfo is timezone.utc for r in stored)
    assert stored[3][3][0] == b"\x00\xff\r\n" * 3
    for s in copies.values():
        await s.close()


async def test_expanded_variants_are_bounded_and_stay_right(store, monkeypatch):
    """One SQL variant per combination of IN-list lengths, the oldest dropped past the bound."""
    monkeypatch.setattr(compiled_module, "EXPANDED_VARIANTS", 4)
    cache = StatementCache(store._db._read_sync.dialect)
    ids = [mid(i) for i in range(ARTICLES)]

    def read(conn: Any) -> None:
        st = DriverStatements(conn.connection.dbapi_connection, cache)
        for n in (*range(10), 3, 9, 0):
            same_rows(conn, st, _ARTICLES_BY_ID, {"mids": ids[:n]})
            same_rows(conn, st, _KNOWN_IDS, {"ids": ids[:n], "held": ids[: 9 - n]})

    await store._db.read(read)
    for stmt, keep in ((_ARTICLES_BY_ID, [(9,), (3,), (0,)]), (_KNOWN_IDS, [(9, 0), (3, 6), (0, 9)])):
        compiled = cache.get(stmt, {})
        assert len(compiled._expanded) == 4
        assert list(compiled._expanded)[-3:] == keep


# Names of SQLAlchemy internals the fast path once used, and the marker of its
# private post-compile rendering.
FORBIDDEN = ("_bind_processors", "_result_columns", "_cached_result_processor",
             "_cached_bind_processor", "_type_affinity", "_process_parameters_for_postcompile",
             "_dialect_info", "_gen_dialect_impl", "POSTCOMPILE")


def own_private_names(roots: list[Path]) -> set[str]:
    """Underscore names this project defines itself (functions, classes, attributes, slots)."""
    names: set[str] = set()
    for root in roots:
        for path in root.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    names.add(node.name)
                elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                    names.add(node.id)
                elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                    names.add(node.attr)
                elif isinstance(node, ast.arg):
                    names.add(node.arg)
                elif (isinstance(node, ast.Assign) and isinstance(node.value, ast.Tuple)
                      and any(isinstance(t, ast.Name) and t.id == "__slots__" for t in node.targets)):
                    names.update(e.value for e in node.value.elts if isinstance(e, ast.Constant))
    return names


def test_storage_uses_no_private_sqlalchemy_name():
    root = STORAGE.parent
    ours = own_private_names([STORAGE, root / "nntpd"])
    found = []
    for path in sorted(STORAGE.rglob("*.py")):
        text = path.read_text()
        found += [f"{path.name}: {name}" for name in FORBIDDEN if name in text]
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
                found += [f"{path.name}:{node.lineno}: from {node.module} import {a.name}"
                          for a in node.names if a.name.startswith("_")]
                if any(part.startswith("_") for part in (node.module or "").split(".")):
                    found.append(f"{path.name}:{node.lineno}: from {node.module}")
            elif isinstance(node, ast.Attribute):
                attr = node.attr
                if attr.startswith("_") and not attr.startswith("__") and attr not in ours:
                    found.append(f"{path.name}:{node.lineno}: .{attr}")
    assert found == []


def test_datetime_processors_are_recognised_through_type_decorators():
    """Datetime conversions are memoized (compiled._memoized): UTCDateTime must count as one."""
    from sqlalchemy import Boolean, DateTime, Integer, LargeBinary
    from sqlalchemy.sql.sqltypes import NullType

    from storage.compiled import _is_datetime
    from storage.models import IdType, UTCDateTime

    assert _is_datetime(UTCDateTime()) and _is_datetime(DateTime())
    assert not any(_is_datetime(t) for t in (IdType, Integer(), Boolean(), LargeBinary(), NullType()))


def test_literal_execute_parameters_are_refused():
    """Their values belong in the SQL text, which the fast path never renders: refuse them."""
    from sqlalchemy import bindparam
    from sqlalchemy.dialects import sqlite

    stmt = select(Article.__table__.c.id).where(
        Article.__table__.c.id == bindparam("x", literal_execute=True))
    cache = StatementCache(sqlite.dialect(paramstyle="qmark"))
    with pytest.raises(ValueError, match="literal_execute"):
        cache.get(stmt, {"x": 1})
