"""The store: the one async API the server and the CLI call.

Only this package knows SQL. Hot reads use prebuilt SQLAlchemy Core
statements and plain rows (never ORM objects per row); writes of new
articles go through one writer task per process that commits concurrent
posts together (group commit), and a POST is answered only after its
transaction committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Index,
    Integer,
    MetaData,
    Table,
    bindparam,
    delete,
    func,
    insert,
    inspect,
    null,
    select,
    tuple_,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, ProgrammingError

from .community import CommunityStore, OpenThread, ThreadArticle, as_view, open_condition
from .accounts import AccountError, AccountInfo, AccountStore, RoleChangeInfo
from .batching import Batcher
from .engine import Database
from .models import (
    SCHEMA_VERSION,
    Article,
    Base,
    Group,
    HeldArticle,
    Membership,
    Meta,
    Thread,
)
from .threads import rebuild
from .writer import ArticleWriter, DuplicateArticle, Poster, PostOutcome, PostRejected
from .writer_link import WriterGone, WriterLink, WriterLost

__all__ = [
    "OpenThread",
    "ThreadArticle",
    "VIEW_KINDS",
    "view_of",
    "as_view",
    "AccountError",
    "AccountInfo",
    "RoleChangeInfo",
    "Store",
    "StoreError",
    "GroupInfo",
    "ArticleData",
    "Poster",
    "PostOutcome",
    "PostRejected",
    "HeldInfo",
]

OVERVIEW_CHUNK = 2000
# Whole header blocks (up to max_header_bytes each) are larger than overview lines:
# fewer per read keep each of its steps on the event loop short (HDR of any header).
HEADERS_CHUNK = 100


class StoreError(Exception):
    """An operator-facing failure (no database, group exists, ...)."""


@dataclass(frozen=True, slots=True)
class GroupInfo:
    id: int
    name: str
    description: str
    status: str
    created_at: datetime
    creator: str
    high: int
    count: int
    view: str | None = None  # "unanswered" or "awaiting-staff" for a view of group `id`
    first: int | None = None  # lowest number present (None: empty)

    @property
    def low(self) -> int:
        """Low water mark; an empty group reports high = low - 1 (RFC 3977 6.1.1.2)."""
        if not self.count or self.first is None:
            return self.high + 1
        return self.first


@dataclass(frozen=True, slots=True)
class ArticleData:
    number: int
    message_id: str
    header: bytes
    body: bytes
    xref: str


@dataclass(frozen=True, slots=True)
class HeldInfo:
    id: int
    message_id: str
    newsgroups: str
    subject: str
    from_: str
    received_at: datetime


_G = Group.__table__
_A = Article.__table__
_M = Membership.__table__
_H = HeldArticle.__table__

# The low water mark is the lowest number present (cancels can remove the first
# articles); min() over the (group, number) primary key is one index probe.
_FIRST_NUMBER = (
    select(func.min(_M.c.number)).where(_M.c.group_id == _G.c.id).scalar_subquery()
)
_GROUP_COLUMNS = (_G.c.id, _G.c.name, _G.c.description, _G.c.status, _G.c.created_at,
                  _G.c.creator, _G.c.high, _G.c.count, null().label("view"), _FIRST_NUMBER)
_SELECT_GROUP = select(*_GROUP_COLUMNS).where(_G.c.name == bindparam("name"))
_SELECT_GROUPS = select(*_GROUP_COLUMNS).order_by(_G.c.name)
_ARTICLE_BY_NUMBER = (
    select(_M.c.number, _A.c.message_id, _A.c.header, _A.c.body, _A.c.xref)
    .join(_A, _A.c.id == _M.c.article_id)
    .where(_M.c.group_id == bindparam("gid"), _M.c.number == bindparam("num"))
)
_HELD_COPY = select(_H.c.header, _H.c.body).where(_H.c.message_id == bindparam("mid"))
_ARTICLE_BY_ID = select(_A.c.message_id, _A.c.header, _A.c.body, _A.c.xref).where(
    _A.c.message_id == bindparam("mid")
)
_ARTICLES_BY_ID = select(_A.c.message_id, _A.c.header, _A.c.body, _A.c.xref).where(
    _A.c.message_id.in_(bindparam("mids", expanding=True))
)
_ARTICLES_BY_NUMBER = (
    select(_M.c.number, _A.c.message_id, _A.c.header, _A.c.body, _A.c.xref)
    .join(_A, _A.c.id == _M.c.article_id)
    .where(_M.c.group_id == bindparam("gid"), _M.c.number.in_(bindparam("nums", expanding=True)))
)
_OVERVIEW_RANGE = (
    select(_M.c.number, _M.c.overview)
    .where(_M.c.group_id == bindparam("gid"), _M.c.number.between(bindparam("lo"), bindparam("hi")))
    .order_by(_M.c.number)
    .limit(bindparam("lim"))
)
_HEADERS_RANGE = (
    select(_M.c.number, _A.c.header)
    .join(_A, _A.c.id == _M.c.article_id)
    .where(_M.c.group_id == bindparam("gid"), _M.c.number.between(bindparam("lo"), bindparam("hi")))
    .order_by(_M.c.number)
    .limit(bindparam("lim"))
)
_OVERVIEW_BY_ID = (
    select(_M.c.overview).join(_A, _A.c.id == _M.c.article_id)
    .where(_A.c.message_id == bindparam("mid")).limit(1)
)
_NUMBERS_RANGE = (
    select(_M.c.number)
    .where(_M.c.group_id == bindparam("gid"), _M.c.number.between(bindparam("lo"), bindparam("hi")))
    .order_by(_M.c.number)
    .limit(bindparam("lim"))
)
_NEXT_NUMBER = select(func.min(_M.c.number)).select_from(_M).where(
    _M.c.group_id == bindparam("gid"), _M.c.number > bindparam("num")
)
_PREV_NUMBER = select(func.max(_M.c.number)).select_from(_M).where(
    _M.c.group_id == bindparam("gid"), _M.c.number < bindparam("num")
)

_T = Thread.__table__
VIEW_KINDS = ("unanswered", "awaiting-staff")


def view_of(name: str) -> tuple[str, str] | None:
    """``unanswered.G`` -> ("unanswered", "G"); None for a name that is not a view."""
    prefix, dot, base = name.partition(".")
    if dot and base and prefix in VIEW_KINDS:
        return prefix, base
    return None


def _viewed(stmt: Any) -> dict[str | None, Any]:
    """The statement for the group itself and for each view of it."""
    variants: dict[str | None, Any] = {None: stmt}
    for kind in VIEW_KINDS:
        variants[kind] = stmt.join(_T, _T.c.key == _M.c.thread_key).where(open_condition(kind))
    return variants


_ARTICLE_BY_NUMBER_IN = _viewed(_ARTICLE_BY_NUMBER)
_OVERVIEW_RANGE_IN = _viewed(_OVERVIEW_RANGE)
_HEADERS_RANGE_IN = _viewed(_HEADERS_RANGE)
_NUMBERS_RANGE_IN = _viewed(_NUMBERS_RANGE)
_NEXT_NUMBER_IN = _viewed(_NEXT_NUMBER)
_PREV_NUMBER_IN = _viewed(_PREV_NUMBER)


VIEW_SPAN = 20_000  # article numbers one read of a view may look at
NEWNEWS_PAGE = 1000  # rows per read of NEWNEWS


def _span(view: str | None) -> int | None:
    return None if view is None else VIEW_SPAN


def storable(key: str) -> bool:
    """Whether a client's key can be in the database at all: keys are stored as UTF-8,
    and a client's undecodable bytes arrive as surrogates that no engine accepts."""
    try:
        key.encode()
    except UnicodeEncodeError:
        return False
    return "\x00" not in key


def _group(row: Any) -> GroupInfo:
    return GroupInfo(*row)


class Store(AccountStore, CommunityStore):
    """Async access to groups, articles and accounts, on SQLite or PostgreSQL."""

    def __init__(self, url: str, *, path_host: str = "nntpd.local") -> None:
        self.url = url
        self.path_host = path_host
        self._db = Database(url)
        self._writer = ArticleWriter(self._db, path_host)
        self._link: WriterLink | None = None
        # On SQLite a lookup is a direct read on the loop's connection; on
        # engines reached through awaits, lookups that arrive together share a query.
        self._batch_lookups = not self._db.reads_inline
        self._by_id: Batcher[str, ArticleData] = Batcher(self._articles_by_id)
        self._by_number: Batcher[tuple[int, int], ArticleData] = Batcher(self._articles_by_number)

    async def close(self) -> None:
        await self._by_id.close()
        await self._by_number.close()
        if self._link is not None:
            await self._link.close()
        await self._writer.close()
        await self._db.dispose()

    # Short reads: point lookups and bounded pages (see Database.read_short).
    async def _first(self, stmt: Any, params: dict[str, Any] | None = None) -> Any:
        return await self._db.read_short(lambda conn: conn.execute(stmt, params).first())

    async def _scalar(self, stmt: Any, params: dict[str, Any] | None = None) -> Any:
        return await self._db.read_short(lambda conn: conn.execute(stmt, params).scalar())

    async def _all(self, stmt: Any, params: dict[str, Any] | None = None) -> list[Any]:
        return await self._db.read_short(lambda conn: conn.execute(stmt, params).all())

    # -- schema ---------------------------------------------------------

    async def init_schema(self) -> bool:
        """Create missing tables and indexes, drop obsolete ones; True if the database was new."""

        def run(conn: Connection) -> bool:
            existed = conn.dialect.has_table(conn, Meta.__tablename__)
            Base.metadata.create_all(conn)
            # create_all adds missing tables, not indexes added to existing ones.
            for table in Base.metadata.sorted_tables:
                for index in table.indexes:
                    index.create(conn, checkfirst=True)
            _drop_obsolete(conn)
            conn.execute(delete(Meta).where(Meta.key == "schema_version"))
            conn.execute(insert(Meta).values(key="schema_version", value=str(SCHEMA_VERSION)))
            return not existed

        return await self._db.write(run)

    async def check_schema(self) -> None:
        """Raise StoreError if ``nntpd init`` has not been run on this database."""
        try:
            version = await self._scalar(select(Meta.value).where(Meta.key == "schema_version"))
        except (OperationalError, ProgrammingError):
            version = None
        except DBAPIError as exc:  # e.g. the database itself does not exist
            raise StoreError(f"cannot open {self.url}: {str(exc.orig or exc).splitlines()[0]}") from None
        if version is None:
            raise StoreError(f"no database at {self.url}: run 'nntpd init' first")
        if int(version) > SCHEMA_VERSION:
            raise StoreError(f"database schema {version} is newer than this nntpd ({SCHEMA_VERSION})")

    # -- groups ---------------------------------------------------------

    async def create_group(
        self, name: str, *, description: str = "", status: str = "y", creator: str = ""
    ) -> GroupInfo:
        if view_of(name) is not None:
            raise StoreError(
                f"group name {name} is reserved: {name.split('.')[0]}.* names are views of other groups"
            )
        stmt = insert(_G).values(
            name=name, description=description, status=status,
            created_at=datetime.now(timezone.utc), creator=creator, high=0, count=0,
        )
        try:
            await self._db.write(lambda conn: conn.execute(stmt))
        except IntegrityError:
            raise StoreError(f"group {name} already exists") from None
        group = await self.group(name)
        assert group is not None
        return group

    async def update_group(
        self, name: str, *, description: str | None = None, status: str | None = None
    ) -> GroupInfo:
        values: dict[str, Any] = {}
        if description is not None:
            values["description"] = description
        if status is not None:
            values["status"] = status
        if values:
            stmt = update(_G).where(_G.c.name == name).values(**values)
            await self._db.write(lambda conn: conn.execute(stmt))
        group = await self.group(name)
        if group is None:
            raise StoreError(f"no such group: {name}")
        return group

    async def remove_group(self, name: str) -> None:
        """Remove a group and the articles that were only in it."""
        if not await self._db.write(_remove_group, name):
            raise StoreError(f"no such group: {name}")

    async def group(self, name: str) -> GroupInfo | None:
        if not storable(name):
            return None
        row = await self._first(_SELECT_GROUP, {"name": name})
        return _group(row) if row else None

    async def groups(self) -> list[GroupInfo]:
        return [_group(r) for r in await self._all(_SELECT_GROUPS)]

    async def groups_created_since(self, since: datetime) -> list[GroupInfo]:
        return [g for g in await self.groups() if g.created_at >= since]

    # -- posting --------------------------------------------------------

    async def post(self, article: Any, poster: Poster) -> PostOutcome:
        """Store a prepared article; raises PostRejected (answered 441)."""
        if self._link is not None and self._link.usable:
            try:
                return await self._link.submit(article, poster)
            except WriterLost:
                return await self._post_again(article, poster)
            except WriterGone:
                pass
        return await self._writer.submit(article, poster)

    async def _post_again(self, article: Any, poster: Poster) -> PostOutcome:
        """A post the writer process got before it went away: store it here unless it did."""
        try:
            return await self._writer.submit(article, poster)
        except DuplicateArticle:
            ours = (article.header, article.body)
            stored = await self.article_by_id(article.message_id)
            if stored is not None and (stored.header, stored.body) == ours:
                return PostOutcome(article.message_id, {})  # the writer committed it
            held = await self._first(_HELD_COPY, {"mid": article.message_id})
            if held is not None and tuple(held) == ours:
                return PostOutcome(article.message_id, {}, held=True)  # the writer held it
            raise  # another article (or a held one) has this Message-ID

    async def use_writer_process(self, link: WriterLink) -> None:
        """Send posts to a writer process (writer_link.py) while it is there."""
        self._link = link
        await link.open()

    @property
    def article_writer(self) -> ArticleWriter:
        return self._writer

    async def cancel(self, message_id: str, requester: Poster,
                     unlock: Callable[[bytes], str | None] = lambda header: "no Cancel-Key given") -> None:
        """Withdraw an article (a cancel control message, RFC 5537 5.3).

        Allowed for staff accounts, for the account that posted it, and for
        an anonymous requester on an anonymous original when ``unlock`` (given
        the original's header block, inside the transaction) returns None: the
        caller checks its Cancel-Key against the stored Cancel-Lock (RFC 8315).
        A From anyone can type decides nothing. Its numbers are not reused;
        thread figures are recomputed. Raises PostRejected when not found or
        not allowed.
        """
        await self._db.write(_cancel, message_id, requester, unlock)

    async def held(self) -> list[HeldInfo]:
        H = HeldArticle.__table__
        rows = await self._all(
            select(H.c.id, H.c.message_id, H.c.newsgroups, H.c.subject, H.c["from"],
                   H.c.received_at).order_by(H.c.id)
        )
        return [HeldInfo(*r) for r in rows]

    async def approve(self, held_id: int) -> PostOutcome:
        return await self._writer.approve(held_id)

    async def reject(self, held_id: int) -> None:
        H = HeldArticle.__table__
        stmt = delete(H).where(H.c.id == held_id)
        if not await self._db.write(lambda conn: conn.execute(stmt).rowcount):
            raise StoreError(f"no held article with id {held_id}")

    # -- reading --------------------------------------------------------

    async def article_by_number(self, group_id: int, number: int,
                                view: str | None = None) -> ArticleData | None:
        if view is None and self._batch_lookups:
            return await self._by_number.get((group_id, number))
        params = {"gid": group_id, "num": number}
        if view is None:
            found = await self._db.rows(_ARTICLE_BY_NUMBER, params)
            return ArticleData(*found[0]) if found else None
        row = await self._first(_ARTICLE_BY_NUMBER_IN[view], params)
        return ArticleData(*row) if row else None

    async def article_by_id(self, message_id: str) -> ArticleData | None:
        if not storable(message_id):
            return None
        if self._batch_lookups:
            return await self._by_id.get(message_id)
        found = await self._db.rows(_ARTICLE_BY_ID, {"mid": message_id})
        return ArticleData(0, *found[0]) if found else None

    async def _articles_by_id(self, ids: list[str]) -> dict[str, ArticleData]:
        rows = await self._all(_ARTICLES_BY_ID, {"mids": ids})
        return {r[0]: ArticleData(0, *r) for r in rows}

    async def _articles_by_number(self, keys: list[tuple[int, int]]) -> dict[tuple[int, int], ArticleData]:
        by_group: dict[int, list[int]] = {}
        for gid, number in keys:
            by_group.setdefault(gid, []).append(number)

        def run(conn: Connection) -> dict[tuple[int, int], ArticleData]:
            found = {}
            for gid, numbers in by_group.items():
                for r in conn.execute(_ARTICLES_BY_NUMBER, {"gid": gid, "nums": numbers}):
                    found[(gid, r[0])] = ArticleData(*r)
            return found

        return await self._db.read(run)

    async def next_number(self, group_id: int, after: int, view: str | None = None) -> int | None:
        return await self._scalar(_NEXT_NUMBER_IN[view], {"gid": group_id, "num": after})

    async def previous_number(self, group_id: int, before: int, view: str | None = None) -> int | None:
        return await self._scalar(_PREV_NUMBER_IN[view], {"gid": group_id, "num": before})

    async def _chunks(self, stmt: Any, group_id: int, low: int, high: int,
                      chunk: int, span: int | None = None) -> AsyncIterator[list[Any]]:
        """Keyset-paged range read, the next chunk read while the last is written.

        Short statements (no snapshot held open), never the whole group in memory:
        at most two chunks exist at a time. On SQLite a read runs on the event
        loop, so each must be short: ``span`` bounds the numbers one read may
        look at, for statements that filter rows out (a view of a large group
        with few open threads would otherwise scan all of it in one read).
        """

        def fetch(lo: int) -> tuple[Awaitable[list[Any]], int]:
            hi = high if span is None else min(high, lo + span - 1)
            params = {"gid": group_id, "lo": lo, "hi": hi, "lim": chunk}
            return asyncio.ensure_future(self._db.rows(stmt, params)), hi

        pending, hi = fetch(low) if low <= high else (None, high)
        try:
            while pending is not None:
                rows = await pending
                pending = None
                if len(rows) == chunk and rows[-1][0] < high:
                    pending, hi = fetch(rows[-1][0] + 1)
                elif hi < high:
                    pending, hi = fetch(hi + 1)
                if rows:
                    yield rows
                else:
                    await asyncio.sleep(0)  # an empty span: let other clients in
        finally:
            if pending is not None:
                pending.cancel()  # type: ignore[attr-defined]

    def overview(self, group_id: int, low: int, high: int, view: str | None = None,
                 chunk: int = OVERVIEW_CHUNK) -> AsyncIterator[list[Any]]:
        """(number, overview-after-number) rows in ordered chunks."""
        return self._chunks(_OVERVIEW_RANGE_IN[view], group_id, low, high, chunk, _span(view))

    def headers(self, group_id: int, low: int, high: int, view: str | None = None,
                chunk: int = HEADERS_CHUNK) -> AsyncIterator[list[Any]]:
        """(number, header block) rows in ordered chunks, for HDR of other headers."""
        return self._chunks(_HEADERS_RANGE_IN[view], group_id, low, high, chunk, _span(view))

    def numbers(self, group_id: int, low: int, high: int, view: str | None = None,
                chunk: int = 5000) -> AsyncIterator[list[Any]]:
        return self._chunks(_NUMBERS_RANGE_IN[view], group_id, low, high, chunk, _span(view))

    async def overview_by_id(self, message_id: str) -> bytes | None:
        if not storable(message_id):
            return None
        return await self._scalar(_OVERVIEW_BY_ID, {"mid": message_id})

    async def new_articles(self, since: datetime) -> AsyncIterator[tuple[str, str]]:
        """(message_id, group name) of articles that arrived at or after ``since``."""
        # Keyset-paged on the article id: no cursor held open (works in
        # autocommit on every engine) and never the whole result in memory.
        # Keyset-paged in arrival order on the arrived_at index, which also holds
        # the id: a page reads only index entries and the start of each article's
        # row (the message_id), never the large header and body that lie before
        # arrived_at in the row. On SQLite every read runs on the event loop.
        stmt = (
            select(_A.c.id, _A.c.message_id, _G.c.name, _A.c.arrived_at)
            .join(_M, _M.c.article_id == _A.c.id)
            .join(_G, _G.c.id == _M.c.group_id)
            .where(_A.c.arrived_at >= since,
                   tuple_(_A.c.arrived_at, _A.c.id)
                   > tuple_(bindparam("at", type_=_A.c.arrived_at.type), bindparam("after")))
            .order_by(_A.c.arrived_at, _A.c.id)
            .limit(NEWNEWS_PAGE)
        )
        at, after = since, 0
        while True:
            rows = await self._all(stmt, {"at": at, "after": after})
            if not rows:
                return
            last_id = rows[-1][0]
            # The last article's rows may continue in the next page: leave them for it.
            complete = [r for r in rows if r[0] != last_id] if len(rows) == NEWNEWS_PAGE else rows
            if not complete:  # one article in more groups than a page holds: emit what we have
                complete = rows
            for row in complete:
                yield row[1], row[2]
            at, after = complete[-1][3], complete[-1][0]
            await asyncio.sleep(0)  # SQLite reads run on the loop: let other clients in

    async def thread(self, key: str) -> dict[str, Any] | None:
        T = Thread.__table__
        stmt = select(T).where(T.c.key == key)
        row = await self._db.read(lambda conn: conn.execute(stmt).mappings().first())
        return dict(row) if row else None

    async def participants(self, key: str) -> list[str]:
        rows = await self._all(select(_A.c.author_key).where(_A.c.thread_key == key).distinct())
        return sorted(r[0] for r in rows)


# Schema 1 had these; every post still paid for them. Schema 2 finds participants and a
# thread's numbers through ix_articles_thread_author.
_OBSOLETE_INDEXES = (("articles", "ix_articles_thread_key"), ("memberships", "ix_memberships_thread_group"))
_OBSOLETE_TABLES = ("thread_participants",)


def _drop_obsolete(conn: Connection) -> None:
    inspector = inspect(conn)
    for table, index in _OBSOLETE_INDEXES:
        if index in {i["name"] for i in inspector.get_indexes(table)}:
            Index(index, _bare_table(table).c.id).drop(conn)
    for table in _OBSOLETE_TABLES:
        if inspector.has_table(table):
            _bare_table(table).drop(conn)


def _bare_table(name: str) -> Table:
    """A Table object just good enough to name ``name`` in DROP statements."""
    return Table(name, MetaData(), Column("id", Integer))


def _cancel_refusal(requester: Poster, account: str | None, header: bytes,
                    unlock: Callable[[bytes], str | None]) -> str | None:
    """Why ``requester`` may not cancel an article posted by ``account`` (None: allowed)."""
    if requester.role == "staff":
        return None
    if requester.account is not None:
        return None if requester.account == account else "you may cancel only your own articles"
    if account is not None:
        return "it was posted from an account; log in as that account to cancel it"
    return unlock(header)


def _cancel(conn: Connection, message_id: str, requester: Poster,
            unlock: Callable[[bytes], str | None]) -> None:
    row = conn.execute(
        select(_A.c.id, _A.c.thread_key, _A.c.poster_account, _A.c.header)
        .where(_A.c.message_id == message_id).with_for_update()  # two cancels: one wins
    ).first()
    if row is None:
        raise PostRejected(f"Cannot cancel {message_id}: no such article")
    article_id, key, account, header = row
    refused = _cancel_refusal(requester, account, header, unlock)
    if refused is not None:
        raise PostRejected(f"Cannot cancel {message_id}: {refused}")
    # The writer's lock order: group rows by name, then the thread row.
    groups = conn.execute(
        select(_M.c.group_id).join(_G, _G.c.id == _M.c.group_id)
        .where(_M.c.article_id == article_id).order_by(_G.c.name)
    ).scalars().all()
    conn.execute(delete(_M).where(_M.c.article_id == article_id))
    for gid in groups:
        conn.execute(update(_G).where(_G.c.id == gid).values(count=_G.c.count - 1))
    conn.execute(delete(_A).where(_A.c.id == article_id))
    conn.execute(select(_T.c.key).where(_T.c.key == key).with_for_update())
    remaining = conn.execute(
        select(_A.c.message_id, _A.c.author_key, _A.c.poster_role, _A.c.arrived_at)
        .where(_A.c.thread_key == key).order_by(_A.c.arrived_at, _A.c.id)
    ).all()
    if not remaining:
        conn.execute(delete(_T).where(_T.c.key == key))
        return
    thread = dict(conn.execute(select(_T).where(_T.c.key == key)).mappings().one())
    rebuild(thread, [tuple(r) for r in remaining])
    conn.execute(update(_T).where(_T.c.key == key).values(
        {k: v for k, v in thread.items() if k != "key"}))


def _remove_group(conn: Connection, name: str) -> bool:
    gid = conn.execute(select(_G.c.id).where(_G.c.name == name)).scalar()
    if gid is None:
        return False
    only_here = (
        select(_M.c.article_id).where(_M.c.group_id == gid)
        .except_(select(_M.c.article_id).where(_M.c.group_id != gid))
    )
    doomed = [r[0] for r in conn.execute(only_here)]
    conn.execute(delete(_M).where(_M.c.group_id == gid))
    for start in range(0, len(doomed), 500):
        conn.execute(delete(_A).where(_A.c.id.in_(doomed[start : start + 500])))
    conn.execute(delete(_G).where(_G.c.id == gid))
    # Threads that lost all their articles go too (they would show as unanswered).
    empty = select(_T.c.key).where(~select(_A.c.id).where(_A.c.thread_key == _T.c.key).exists())
    keys = [r[0] for r in conn.execute(empty)]
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        conn.execute(delete(_T).where(_T.c.key.in_(chunk)))
    return True

