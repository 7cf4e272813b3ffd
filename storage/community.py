"""Support-community queries: open threads, view groups, thread trees and the report.

Everything here reads the per-thread figures kept up to date on arrival
(storage/threads.py), so finding open threads reads a few indexed rows and
never scans all articles. The report reads the threads and the articles of
its time window only.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

from sqlalchemy import Connection, and_, func, select, update

from .models import Article, Group, Membership, Thread

if TYPE_CHECKING:
    from .engine import Database
    from .store import GroupInfo

_G = Group.__table__
_A = Article.__table__
_M = Membership.__table__
_T = Thread.__table__


# Above this many articles a view's GROUP starts from the open threads, not the group's numbers.
VIEW_SCAN_LIMIT = 10_000


def open_condition(kind: str) -> Any:
    """Open threads: nobody but the OP posted (unanswered) or no staff/MVP posted, not resolved."""
    column = _T.c.first_reply_at if kind == "unanswered" else _T.c.first_staff_at
    return and_(column.is_(None), _T.c.resolved_at.is_(None))


@dataclass(frozen=True, slots=True)
class OpenThread:
    key: str
    group: str
    subject: str
    author: str
    started_at: datetime
    last_post_at: datetime
    posts: int
    participants: int
    group_activity: int


@dataclass(frozen=True, slots=True)
class ThreadArticle:
    message_id: str
    references: str
    subject: str
    author: str
    from_: str
    role: str | None
    arrived_at: datetime


def as_view(kind: str, base: GroupInfo, count: int, first: int | None) -> GroupInfo:
    """A view of ``base`` (read-only, base's numbers and high water mark, so it never goes down)."""
    return replace(base, name=f"{kind}.{base.name}", status="n", view=kind, count=count,
                   first=first, description=f"{kind.replace('-', ' ').capitalize()} threads in {base.name}")


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


class CommunityStore:
    """Mixed into Store; needs ``_db``."""

    _db: Database

    async def view_group(self, kind: str, base: GroupInfo) -> GroupInfo:
        """The view ``name`` of ``base``: same numbers and high water mark, open threads only.

        Open threads -> their articles (by the (thread, author) index) -> numbers in
        the group (by article): an index on memberships by thread would cost every
        post one more random B-tree page, for queries only views make. Given
        ``group_id = ?`` SQLite (without statistics) starts from the group's
        numbers instead, which is right for a small group and reads every number
        of a large one (910 ms at 300,000); ``group_id + 0`` hides that index
        from it, so a large group's view costs what its open threads cost (106 ms).
        """
        in_group = _M.c.group_id == base.id
        if base.count > VIEW_SCAN_LIMIT:
            in_group = _M.c.group_id + 0 == base.id
        stmt = (
            select(func.count(), func.min(_M.c.number))
            .select_from(_T).join(_A, _A.c.thread_key == _T.c.key)
            .join(_M, and_(_M.c.article_id == _A.c.id, in_group))
            .where(open_condition(kind))
        )
        count, first = await self._db.read(lambda conn: conn.execute(stmt).one())
        return as_view(kind, base, count, first)

    async def view_stats(self, kind: str) -> dict[int, tuple[int, int]]:
        """{group id: (count, first number)} of every group's view of ``kind``, in one query."""
        stmt = (
            select(_M.c.group_id, func.count(), func.min(_M.c.number))
            .select_from(_T).join(_A, _A.c.thread_key == _T.c.key)
            .join(_M, _M.c.article_id == _A.c.id)
            .where(open_condition(kind)).group_by(_M.c.group_id)
        )
        rows = await self._db.read(lambda conn: conn.execute(stmt).all())
        return {r[0]: (r[1], r[2]) for r in rows}

    async def open_threads(
        self, *, kind: str = "unanswered", group_match: Callable[[str], bool] | None = None,
        older_than: datetime | None = None, limit: int | None = None, sort: str = "busiest",
        activity_since: datetime | None = None,
    ) -> list[OpenThread]:
        """Open threads, oldest first within the busiest groups first (or oldest first overall)."""
        stmt = select(_T.c.key, _T.c.group_name, _T.c.subject, _T.c.op_from, _T.c.started_at,
                      _T.c.last_post_at, _T.c.posts, _T.c.participants).where(open_condition(kind))
        if older_than is not None:
            stmt = stmt.where(_T.c.started_at <= older_than)
        activity_stmt = select(_G.c.name, _G.c.count)
        if activity_since is not None:
            activity_stmt = (
                select(_T.c.group_name, func.sum(_T.c.posts))
                .where(_T.c.last_post_at >= activity_since).group_by(_T.c.group_name)
            )

        def run(conn: Connection) -> tuple[list[Any], list[Any]]:
            return conn.execute(stmt).all(), conn.execute(activity_stmt).all()

        rows, activity_rows = await self._db.read(run)
        activity = {r[0]: int(r[1] or 0) for r in activity_rows}
        threads = [
            OpenThread(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], activity.get(r[1], 0))
            for r in rows if group_match is None or group_match(r[1])
        ]
        if sort == "age":
            threads.sort(key=lambda t: (t.started_at, t.group))
        else:
            threads.sort(key=lambda t: (-t.group_activity, t.group, t.started_at))
        return threads[:limit] if limit else threads

    async def thread_key_of(self, message_id: str) -> str | None:

        def run(conn: Connection) -> str | None:
            key = conn.execute(select(_A.c.thread_key).where(_A.c.message_id == message_id)).scalar()
            if key is None:
                key = conn.execute(select(_T.c.key).where(_T.c.key == message_id)).scalar()
            return key

        return await self._db.read(run)

    async def thread_articles(self, key: str) -> list[ThreadArticle]:
        stmt = (
            select(_A.c.message_id, _A.c.references, _A.c.subject, _A.c.author_key,
                   _A.c["from"], _A.c.poster_role, _A.c.arrived_at)
            .where(_A.c.thread_key == key).order_by(_A.c.arrived_at, _A.c.id)
        )
        return [ThreadArticle(*r) for r in await self._db.read(lambda conn: conn.execute(stmt).all())]

    async def set_resolved(self, key: str, resolved: bool) -> bool:
        value = datetime.now(timezone.utc) if resolved else None
        stmt = update(_T).where(_T.c.key == key).values(resolved_at=value)
        return await self._db.write(lambda conn: conn.execute(stmt).rowcount) > 0

    async def report(self, *, since: datetime,
                     group_match: Callable[[str], bool] | None = None, top: int = 10) -> dict[str, Any]:
        """Per-group figures for threads started since ``since`` plus the top answerers."""
        keep = group_match or (lambda name: True)

        def run(conn: Connection) -> tuple[Any, ...]:
            groups = [r[0] for r in conn.execute(select(_G.c.name).order_by(_G.c.name))
                      if keep(r[0])]
            articles = {
                r[0]: r[1] for r in conn.execute(
                    select(_G.c.name, func.count()).select_from(_M)
                    .join(_G, _G.c.id == _M.c.group_id).join(_A, _A.c.id == _M.c.article_id)
                    .where(_A.c.arrived_at >= since).group_by(_G.c.name)
                )
            }
            started = conn.execute(
                select(_T.c.group_name, _T.c.started_at, _T.c.first_reply_at, _T.c.first_staff_at)
                .where(_T.c.started_at >= since)
            ).all()
            open_now = {
                r[0]: r[1] for r in conn.execute(
                    select(_T.c.group_name, func.count())
                    .where(open_condition("unanswered")).group_by(_T.c.group_name)
                )
            }
            answerers = conn.execute(
                select(_A.c.author_key, _A.c.poster_role, func.count(), _T.c.group_name)
                .join(_T, _T.c.key == _A.c.thread_key)
                .where(_A.c.arrived_at >= since, _A.c.message_id != _T.c.key,
                       _A.c.author_key != _T.c.op_key)
                .group_by(_A.c.author_key, _A.c.poster_role, _T.c.group_name)
            ).all()
            return groups, articles, started, open_now, answerers

        groups, articles, started, open_now, answerers = await self._db.read(run)
        per_group: dict[str, list[Any]] = {g: [] for g in groups}
        for row in started:
            if row[0] in per_group:
                per_group[row[0]].append(row)
        rows = []
        for name in groups:
            threads = per_group[name]
            reply = [(r[2] - r[1]).total_seconds() for r in threads if r[2] is not None]
            staff = [(r[3] - r[1]).total_seconds() for r in threads if r[3] is not None]
            n = len(threads)
            rows.append({
                "group": name,
                "articles": articles.get(name, 0),
                "threads": n,
                "answered_share": len(reply) / n if n else None,
                "staff_answered_share": len(staff) / n if n else None,
                "reply_median_s": statistics.median(reply) if reply else None,
                "reply_p90_s": _percentile(reply, 0.9),
                "staff_reply_median_s": statistics.median(staff) if staff else None,
                "staff_reply_p90_s": _percentile(staff, 0.9),
                "unanswered_now": open_now.get(name, 0),
            })
        rows.sort(key=lambda r: (-r["articles"], r["group"]))
        totals: dict[tuple[str, str | None], int] = {}
        for author, role, count, group in answerers:
            if keep(group):
                totals[(author, role)] = totals.get((author, role), 0) + count
        top_rows = sorted(totals.items(), key=lambda item: (-item[1], item[0][0]))[:top]
        return {
            "since": since.isoformat(),
            "groups": rows,
            "top_answerers": [{"author": a, "role": r or "member", "replies": c} for (a, r), c in top_rows],
        }
