"""The article writer: group commit of concurrent posts.

Every POST in this process goes through one queue. The writer task takes
whatever is waiting (up to ``MAX_BATCH``), stores it in one transaction
(numbers assigned by ``UPDATE groups SET high = high + n ... RETURNING``,
so they are strictly increasing and never reused, also across processes)
and only then answers each poster. One commit for many posts is what
makes posting fast on SQLite; 240 still means committed. On SQLite the
transaction runs on the event loop (see ``Database.write``) with its
statements compiled once (``compiled.py``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import bindparam, delete, insert, null, select, union_all, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy import Connection

from .batching import stop_task
from .compiled import Statements
from .engine import Database

from .models import Article, Group, HeldArticle, Membership, Thread
from .threads import TRUSTED_ROLES, Arrival, apply_arrival, new_thread, recompute_replies

log = logging.getLogger("nntpd.storage")

MAX_BATCH = 256
# Larger batches (a flood of posts) commit in the write thread, so reads go on meanwhile.
INLINE_BATCH = 32
GATHER_TURNS = 4

_G = Group.__table__
_A = Article.__table__
_M = Membership.__table__
_T = Thread.__table__
_H = HeldArticle.__table__

_HELD_FIELDS = ("newsgroups", "subject", "from_", "date", "references", "thread_key",
                "bytes", "lines", "overview")

# Built once: a Core statement built per call costs ~4x its execution here.
# Which of the batch's Message-IDs are stored (held_id NULL) or held for moderation.
_KNOWN_IDS = union_all(
    select(_A.c.message_id, null().label("held_id"))
    .where(_A.c.message_id.in_(bindparam("ids", expanding=True))),
    select(_H.c.message_id, _H.c.id).where(_H.c.message_id.in_(bindparam("held", expanding=True))),
)
_GROUP_STATUS = select(_G.c.name, _G.c.status).where(_G.c.name.in_(bindparam("names", expanding=True)))
_BUMP_GROUP = (
    update(_G).where(_G.c.name == bindparam("b_name"))
    .values(high=_G.c.high + bindparam("n"), count=_G.c.count + bindparam("n"))
    .returning(_G.c.id, _G.c.high)
)
# FOR UPDATE (ignored by SQLite, whose writers are serialized anyway): on PostgreSQL two
# processes posting to one thread from different groups must not both read the old figures.
_THREADS = (
    select(_T).where(_T.c.key.in_(bindparam("keys", expanding=True)))
    .order_by(_T.c.key).with_for_update()
)
# Who posted in these threads before this batch (read once the thread rows are locked).
_KNOWN_PARTICIPANTS = select(_A.c.thread_key, _A.c.author_key).distinct().where(
    _A.c.thread_key.in_(bindparam("keys", expanding=True)),
    _A.c.author_key.in_(bindparam("authors", expanding=True)),
    _A.c.id.not_in(bindparam("batch", expanding=True)),
)
_THREAD_AUTHORS = (
    select(_A.c.author_key, _A.c.arrived_at)
    .where(_A.c.thread_key == bindparam("key")).order_by(_A.c.arrived_at, _A.c.id)
)
_THREAD_COLUMNS = tuple(c.name for c in _T.c)
_INSERT_ARTICLE = insert(_A)
_INSERT_MEMBERSHIP = insert(_M)
_INSERT_THREAD = insert(_T)
_INSERT_HELD = insert(_H)
_THREAD_COUNTERS = ("posts", "participants", "last_post_at")
_THREAD_FIXED = tuple(c for c in _THREAD_COLUMNS if c not in (*_THREAD_COUNTERS, "key"))
_UPDATE_THREAD_COUNTS = (
    update(_T)
    .where(_T.c.key == bindparam("b_key"))
    .values({c: bindparam(c) for c in _THREAD_COUNTERS})
)
_UPDATE_THREAD = (
    update(_T)
    .where(_T.c.key == bindparam("b_key"))
    .values({c.name: bindparam(c.name) for c in _T.c if c.name != "key"})
)


@dataclass(frozen=True, slots=True)
class Poster:
    """Who posts, as the server knows it (never from client headers)."""

    author_key: str
    account: str | None = None
    role: str | None = None


@dataclass(frozen=True, slots=True)
class PostOutcome:
    message_id: str
    numbers: dict[str, int]
    held: bool = False


class PostRejected(Exception):
    """The article cannot be stored; the reason goes to the client with 441.

    ``retry`` marks a transient failure (storage trouble), which IHAVE
    answers with 436 (try again later) rather than 437.
    """

    def __init__(self, reason: str, *, retry: bool = False) -> None:
        super().__init__(reason)
        self.retry = retry


class DuplicateArticle(PostRejected):
    """An article with this Message-ID is already stored (or held)."""

    def __init__(self, message_id: str) -> None:
        super().__init__(f"Duplicate Message-ID {message_id}")


@dataclass(slots=True)
class StoredArticle:
    """A prepared article rebuilt from the moderation queue."""

    message_id: str
    header: bytes
    body: bytes
    newsgroups: tuple[str, ...]
    subject: str
    from_: str
    date: str
    references: str
    thread_key: str
    bytes: int
    lines: int
    overview: str


@dataclass(slots=True)
class _Pending:
    article: Any
    poster: Poster
    future: asyncio.Future[PostOutcome]
    approve_id: int | None = None
    numbers: dict[str, int] = field(default_factory=dict)


def _now() -> datetime:
    return datetime.now(timezone.utc)


class ArticleWriter:
    def __init__(self, db: Database, path_host: str) -> None:
        self._db = db
        self._path_host = path_host
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task[None] | None = None

    async def submit(self, article: Any, poster: Poster, approve_id: int | None = None) -> PostOutcome:
        # A poster that goes away cancels only its wait: the writer skips answering it.
        return await self.enqueue(article, poster, approve_id)

    def enqueue(self, article: Any, poster: Poster,
                approve_id: int | None = None) -> asyncio.Future[PostOutcome]:
        """Queue a post; the future is resolved once its batch is committed."""
        if self._task is None or self._task.done():
            self._queue = asyncio.Queue()
            self._task = asyncio.create_task(self._run(), name="article-writer")
        assert self._queue is not None
        future: asyncio.Future[PostOutcome] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(article, poster, future, approve_id))
        return future

    async def approve(self, held_id: int) -> PostOutcome:
        stmt = select(_H).where(_H.c.id == held_id)
        row = await self._db.read(lambda conn: conn.execute(stmt).mappings().first())
        if row is None:
            raise PostRejected(f"no held article with id {held_id}")
        data = json.loads(row["fields"])
        data["newsgroups"] = tuple(data["newsgroups"])
        author_key = data.pop("author_key")
        article = StoredArticle(message_id=row["message_id"], header=row["header"],
                                body=row["body"], **data)
        poster = Poster(author_key, row["poster_account"], row["poster_role"])
        return await self.submit(article, poster, approve_id=held_id)

    async def close(self) -> None:
        await stop_task(self._task)
        self._task = None

    async def _run(self) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            batch = [await queue.get()]
            await _gather(queue, batch)
            try:
                await self._commit(batch)
            except Exception as exc:  # noqa: BLE001 - reported to the posters
                if len(batch) == 1 and not isinstance(exc, IntegrityError):
                    log.exception("posting failed")
                    _fail(batch[0], PostRejected(f"storage error ({exc.__class__.__name__}); try again later", retry=True))
                    continue
                # A race with another process (same Message-ID), a deadlock, or one
                # article the database refuses: retry one by one so only that one fails.
                for pending in batch:
                    try:
                        await self._commit([pending])
                    except IntegrityError:
                        _fail(pending, DuplicateArticle(pending.article.message_id))
                    except Exception as exc:  # noqa: BLE001 - reported to the poster
                        log.exception("posting failed")
                        _fail(pending, PostRejected(f"storage error ({exc.__class__.__name__}); try again later", retry=True))

    async def _commit(self, batch: list[_Pending]) -> None:
        results: list[tuple[_Pending, PostOutcome | Exception]] = []
        accepted, held = await self._db.write(
            self._commit_sync, batch, results, _now(), inline=len(batch) <= INLINE_BATCH
        )
        for pending in accepted:
            results.append((pending, PostOutcome(pending.article.message_id, pending.numbers)))
        for pending in held:
            results.append((pending, PostOutcome(pending.article.message_id, {}, held=True)))
        for pending, outcome in results:
            if pending.future.done():
                continue
            if isinstance(outcome, Exception):
                pending.future.set_exception(outcome)
            else:
                pending.future.set_result(outcome)

    def _commit_sync(
        self, conn: Connection, batch: list[_Pending],
        results: list[tuple[_Pending, PostOutcome | Exception]], now: datetime,
    ) -> tuple[list[_Pending], list[_Pending]]:
        """The batch's one transaction (on the loop for small batches, else in the write thread)."""
        for pending in batch:
            pending.numbers.clear()  # a retried batch starts afresh
        st = self._db.statements(conn)
        accepted, held = self._sort(st, batch, results)
        if accepted:
            self._store(st, accepted, now)
        if held:
            st.many(_INSERT_HELD, [_held_row(p, now) for p in held])
        approved = [p.approve_id for p in accepted if p.approve_id is not None]
        if approved:
            conn.execute(delete(_H).where(_H.c.id.in_(approved)))
        return accepted, held

    def _sort(
        self, st: Statements, batch: list[_Pending],
        results: list[tuple[_Pending, PostOutcome | Exception]],
    ) -> tuple[list[_Pending], list[_Pending]]:
        """Split a batch into accepted, held and refused (refusals go into results)."""
        ids = [p.article.message_id for p in batch]
        taken: set[str] = set()
        held_ids: dict[str, int] = {}
        for mid, held_id in st.all(_KNOWN_IDS, {"ids": ids, "held": ids}):
            if held_id is None:
                taken.add(mid)
            else:
                held_ids[mid] = held_id
        names = {g for p in batch for g in p.article.newsgroups}
        status = {r[0]: r[1] for r in st.all(_GROUP_STATUS, {"names": list(names)})}
        accepted: list[_Pending] = []
        held: list[_Pending] = []
        for pending in batch:
            article = pending.article
            mid = article.message_id
            if mid in taken or (mid in held_ids and held_ids[mid] != pending.approve_id):
                results.append((pending, DuplicateArticle(mid)))
                continue
            missing = [g for g in article.newsgroups if g not in status]
            if missing:
                results.append((pending, PostRejected(f"No such newsgroup: {missing[0]}")))
                continue
            read_only = [g for g in article.newsgroups if status[g] == "n"]
            if read_only:
                results.append((pending, PostRejected(f"Newsgroup {read_only[0]} is read-only")))
                continue
            taken.add(mid)
            moderated = any(status[g] == "m" for g in article.newsgroups)
            # Staff accounts moderate: their posts go straight through.
            approved = pending.approve_id is not None or pending.poster.role == "staff"
            (held if moderated and not approved else accepted).append(pending)
        return accepted, held

    def _store(self, st: Statements, accepted: list[_Pending], now: datetime) -> None:
        counts = Counter(g for p in accepted for g in p.article.newsgroups)
        next_number: dict[str, int] = {}
        group_ids: dict[str, int] = {}
        # Lock the group rows in one global order (by name): processes sharing a
        # database would otherwise deadlock on cross-posts naming groups in other orders.
        for name, count in sorted(counts.items()):
            (row,) = st.all(_BUMP_GROUP, {"b_name": name, "n": count})
            group_ids[name] = row[0]
            next_number[name] = row[1] - count + 1
        article_rows = []
        for pending in accepted:
            article = pending.article
            for name in article.newsgroups:
                pending.numbers[name] = next_number[name]
                next_number[name] += 1
            xref = self._path_host + " " + " ".join(f"{g}:{n}" for g, n in pending.numbers.items())
            size = article.bytes + xref_line_bytes(xref)
            article_rows.append({
                "message_id": article.message_id, "header": article.header, "body": article.body,
                "date": _text(article.date), "from": _text(article.from_),
                "subject": _text(article.subject), "references": _text(article.references),
                "bytes": size, "lines": article.lines,
                "arrived_at": now, "thread_key": article.thread_key, "xref": xref,
                "author_key": pending.poster.author_key, "poster_account": pending.poster.account,
                "poster_role": pending.poster.role,
            })
        ids = st.insert_ids(_INSERT_ARTICLE, article_rows)
        membership_rows = []
        for pending, article_id, row in zip(accepted, ids, article_rows):
            role = pending.poster.role if pending.poster.role in TRUSTED_ROLES else None
            role_field = f"X-Poster-Role: {role}" if role else ""
            fields = pending.article.overview.rsplit("\t", 2)[0]  # without :bytes and :lines
            overview = _raw(f"{fields}\t{row['bytes']}\t{row['lines']}\tXref: {row['xref']}\t{role_field}")
            for name, number in pending.numbers.items():
                membership_rows.append({
                    "group_id": group_ids[name], "number": number, "article_id": article_id,
                    "thread_key": pending.article.thread_key, "overview": overview,
                })
        st.many(_INSERT_MEMBERSHIP, membership_rows)
        self._update_threads(st, accepted, ids, now)

    def _update_threads(self, st: Statements, accepted: list[_Pending], ids: list[int],
                        now: datetime) -> None:
        """Thread figures for the batch's articles (``ids``, already inserted)."""
        keys = {p.article.thread_key for p in accepted}
        threads = {
            r[0]: dict(zip(_THREAD_COLUMNS, r))
            for r in st.all(_THREADS, {"keys": list(keys)})
        }
        authors = {p.poster.author_key for p in accepted}
        known = {
            (r[0], r[1]) for r in st.all(
                _KNOWN_PARTICIPANTS, {"keys": list(keys), "authors": list(authors), "batch": ids})
        }
        before = {k: dict(t) for k, t in threads.items()}
        recompute = set()
        for pending in accepted:
            article = pending.article
            arrival = Arrival(
                thread_key=article.thread_key, message_id=article.message_id,
                group_name=article.newsgroups[0], subject=_text(article.subject),
                from_=_text(article.from_),
                author_key=pending.poster.author_key, role=pending.poster.role, at=now,
            )
            thread = threads.get(arrival.thread_key)
            if thread is None:
                thread = threads[arrival.thread_key] = new_thread(arrival)
            pair = (arrival.thread_key, arrival.author_key)
            is_new = pair not in known
            if is_new:
                known.add(pair)
            if apply_arrival(thread, arrival, is_new):
                recompute.add(arrival.thread_key)
        for key in recompute:
            rows = st.all(_THREAD_AUTHORS, {"key": key})
            recompute_replies(threads[key], [(r[0], r[1]) for r in rows])
        fresh = [t for k, t in sorted(threads.items()) if k not in before]
        # Most arrivals change only the counters: updating just those leaves the
        # open-thread indexes alone (SQLite rewrites every index a SET names).
        counts, full = [], []
        for key, thread in threads.items():
            old = before.get(key)
            if old is not None:
                only_counts = all(thread[c] == old[c] for c in _THREAD_FIXED)
                (counts if only_counts else full).append({**thread, "b_key": key})
        st.many(_INSERT_THREAD, fresh)
        st.many(_UPDATE_THREAD_COUNTS, [{c: t[c] for c in (*_THREAD_COUNTERS, "b_key")} for t in counts])
        st.many(_UPDATE_THREAD, full)


def _held_row(pending: _Pending, now: datetime) -> dict[str, Any]:
    article = pending.article
    fields = {name: getattr(article, name) for name in _HELD_FIELDS}
    fields["newsgroups"] = list(article.newsgroups)
    fields["author_key"] = pending.poster.author_key
    return {
        "message_id": article.message_id, "newsgroups": ",".join(article.newsgroups),
        "subject": _text(article.subject), "from": _text(article.from_), "received_at": now,
        "header": article.header, "body": article.body, "fields": json.dumps(fields),
        "poster_account": pending.poster.account, "poster_role": pending.poster.role,
    }


async def _gather(queue: asyncio.Queue[_Pending], batch: list[_Pending]) -> None:
    """Add the posts already waiting and those about to arrive.

    Posts whose data is already in the socket buffers need a few more loop
    turns to be parsed and queued; waiting those turns (while they still
    bring posts) makes the batches, and so the commits, several times
    fewer. When no new post comes in a turn, the batch goes.
    """
    for _ in range(GATHER_TURNS):
        before = len(batch)
        while len(batch) < MAX_BATCH and not queue.empty():
            batch.append(queue.get_nowait())
        if len(batch) >= MAX_BATCH or (len(batch) == before and before > 1):
            return
        await asyncio.sleep(0)
    while len(batch) < MAX_BATCH and not queue.empty():
        batch.append(queue.get_nowait())


def _fail(pending: _Pending, exc: Exception) -> None:
    if not pending.future.done():
        pending.future.set_exception(exc)


def xref_line_bytes(xref: str) -> int:
    """Octets of the ``Xref:`` line ARTICLE adds on the way out: part of :bytes (RFC 3977 8.1.1)."""
    return len(xref.encode("utf-8", "surrogateescape")) + len("Xref: \r\n")


def _raw(text: str) -> bytes:
    """Back to the bytes the client sent (header text is decoded with surrogateescape)."""
    return text.encode("utf-8", "surrogateescape")


def _text(text: str) -> str:
    """Text a database column can hold: bytes that are not UTF-8, and NUL (PostgreSQL), become U+FFFD."""
    if text.isascii() and "\x00" not in text:
        return text
    return _raw(text).decode("utf-8", "replace").replace("\x00", "\ufffd")
