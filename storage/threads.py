"""Thread bookkeeping on arrival, as plain functions over dicts.

A thread's key is its root Message-ID. Its original poster (OP) is the
author of the root; until the root arrives (a reply can come first) the
first article's author stands in and is replaced when the root shows up,
at which point the figures are recomputed from the thread's articles.

- unanswered: no article from anyone but the OP (``first_reply_at`` None)
- awaiting staff: no article from a staff or MVP account (``first_staff_at`` None)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

TRUSTED_ROLES = frozenset({"staff", "mvp"})


@dataclass(frozen=True, slots=True)
class Arrival:
    """What thread bookkeeping needs to know about one arriving article."""

    thread_key: str
    message_id: str
    group_name: str
    subject: str
    from_: str
    author_key: str
    role: str | None
    at: datetime


def new_thread(arrival: Arrival) -> dict[str, Any]:
    return {
        "key": arrival.thread_key,
        "group_name": arrival.group_name,
        "subject": arrival.subject,
        "root_present": False,
        "op_key": arrival.author_key,
        "op_from": arrival.from_,
        "started_at": arrival.at,
        "last_post_at": arrival.at,
        "posts": 0,
        "participants": 0,
        "first_reply_at": None,
        "first_staff_at": None,
        "resolved_at": None,
    }


def apply_arrival(thread: dict[str, Any], arrival: Arrival, new_participant: bool) -> bool:
    """Update ``thread`` in place for ``arrival``.

    Returns True when the OP changed (the root arrived after replies), so
    the caller must recompute the reply figures with ``recompute_replies``.
    """
    op_changed = False
    if arrival.message_id == thread["key"]:
        thread["root_present"] = True
        thread["group_name"] = arrival.group_name
        thread["subject"] = arrival.subject
        thread["op_from"] = arrival.from_
        op_changed = thread["posts"] > 0 and thread["op_key"] != arrival.author_key
        thread["op_key"] = arrival.author_key
    elif arrival.author_key != thread["op_key"] and thread["first_reply_at"] is None:
        thread["first_reply_at"] = arrival.at
    if arrival.role in TRUSTED_ROLES and thread["first_staff_at"] is None:
        thread["first_staff_at"] = arrival.at
    thread["posts"] += 1
    thread["participants"] += int(new_participant)
    if arrival.at > thread["last_post_at"]:
        thread["last_post_at"] = arrival.at
    if arrival.at < thread["started_at"]:
        thread["started_at"] = arrival.at
    return op_changed


def recompute_replies(thread: dict[str, Any], authors: list[tuple[str, datetime]]) -> None:
    """First reply time from the thread's (author_key, arrived_at), oldest first."""
    thread["first_reply_at"] = next(
        (at for author, at in authors if author != thread["op_key"]), None
    )


def rebuild(thread: dict[str, Any], articles: list[tuple[str, str, str | None, datetime]]) -> None:
    """Recompute a thread's figures from its remaining articles, after one was cancelled.

    ``articles`` are (message_id, author_key, role, arrived_at), oldest first and
    not empty. Subject, group and resolution are kept.
    """
    by_root = next((a for a in articles if a[0] == thread["key"]), None)
    op = (by_root or articles[0])[1]
    thread["root_present"] = by_root is not None
    thread["op_key"] = op
    thread["posts"] = len(articles)
    thread["participants"] = len({a[1] for a in articles})
    thread["started_at"] = articles[0][3]
    thread["last_post_at"] = max(a[3] for a in articles)
    thread["first_reply_at"] = next((a[3] for a in articles if a[1] != op), None)
    thread["first_staff_at"] = next((a[3] for a in articles if a[2] in TRUSTED_ROLES), None)
