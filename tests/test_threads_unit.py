"""Thread figures as pure functions (storage/threads.py), no database.

The caller (storage/writer.py) creates the dict with ``new_thread`` for the
first article of a thread, passes ``new_participant`` = first article of
that author in that thread, and calls ``recompute_replies`` with the
thread's (author_key, arrived_at) list, oldest first, when ``apply_arrival``
returns True.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from storage.threads import TRUSTED_ROLES, Arrival, apply_arrival, new_thread, recompute_replies

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
ROOT = "<root@example.com>"


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def arrival(msgid: str, author: str, minutes: int, role: str | None = None, subject: str = "Help") -> Arrival:
    return Arrival(
        thread_key=ROOT, message_id=msgid, group_name="local.test",
        subject=subject if msgid == ROOT else f"Re: {subject}",
        from_=f"{author} <{author}@example.com>", author_key=author, role=role, at=at(minutes),
    )


class Thread:
    """Drives the functions the way the writer does, tracking participants and history."""

    def __init__(self) -> None:
        self.figures: dict | None = None
        self.seen: set[str] = set()
        self.history: list[tuple[str, datetime]] = []
        self.recomputed = 0

    def add(self, a: Arrival) -> bool:
        if self.figures is None:
            self.figures = new_thread(a)
        is_new = a.author_key not in self.seen
        self.seen.add(a.author_key)
        self.history.append((a.author_key, a.at))
        changed = apply_arrival(self.figures, a, is_new)
        if changed:
            self.recomputed += 1
            recompute_replies(self.figures, sorted(self.history, key=lambda p: p[1]))
        return changed


# -- new_thread ---------------------------------------------------------------


def test_new_thread_starts_empty():
    t = new_thread(arrival(ROOT, "op", 0))
    assert t["key"] == ROOT
    assert t["posts"] == 0 and t["participants"] == 0
    assert t["root_present"] is False  # set by apply_arrival
    assert t["op_key"] == "op"
    assert t["started_at"] == t["last_post_at"] == at(0)
    assert t["first_reply_at"] is None and t["first_staff_at"] is None and t["resolved_at"] is None


def test_trusted_roles():
    assert TRUSTED_ROLES == {"staff", "mvp"}


# -- a root, then replies -------------------------------------------------------


def test_root_alone_is_unanswered_and_awaiting_staff():
    th = Thread()
    assert th.add(arrival(ROOT, "op", 0)) is False
    t = th.figures
    assert t["root_present"] is True
    assert (t["posts"], t["participants"]) == (1, 1)
    assert t["first_reply_at"] is None
    assert t["first_staff_at"] is None
    assert t["subject"] == "Help" and t["op_from"] == "op <op@example.com>"


def test_reply_by_op_does_not_answer_the_thread():
    th = Thread()
    th.add(arrival(ROOT, "op", 0))
    th.add(arrival("<r1@x>", "op", 5))
    t = th.figures
    assert t["first_reply_at"] is None
    assert (t["posts"], t["participants"]) == (2, 1)
    assert t["last_post_at"] == at(5)


def test_reply_by_other_answers_the_thread():
    th = Thread()
    th.add(arrival(ROOT, "op", 0))
    th.add(arrival("<r1@x>", "helper", 7))
    t = th.figures
    assert t["first_reply_at"] == at(7)
    assert t["first_staff_at"] is None  # a plain user is not staff
    assert (t["posts"], t["participants"]) == (2, 2)


def test_first_reply_time_is_kept_by_later_replies():
    th = Thread()
    th.add(arrival(ROOT, "op", 0))
    th.add(arrival("<r1@x>", "helper", 7))
    th.add(arrival("<r2@x>", "other", 9))
    assert th.figures["first_reply_at"] == at(7)
    assert th.figures["last_post_at"] == at(9)


def test_reply_by_staff_answers_and_clears_awaiting_staff():
    th = Thread()
    th.add(arrival(ROOT, "op", 0))
    th.add(arrival("<r1@x>", "agent", 3, role="staff"))
    t = th.figures
    assert t["first_reply_at"] == at(3)
    assert t["first_staff_at"] == at(3)


def test_reply_by_mvp_counts_as_staff():
    th = Thread()
    th.add(arrival(ROOT, "op", 0))
    th.add(arrival("<r1@x>", "guru", 4, role="mvp"))
    assert th.figures["first_staff_at"] == at(4)


def test_unknown_role_is_not_staff():
    th = Thread()
    th.add(arrival(ROOT, "op", 0))
    th.add(arrival("<r1@x>", "mod", 4, role="moderator"))
    assert th.figures["first_staff_at"] is None
    assert th.figures["first_reply_at"] == at(4)


def test_first_staff_time_is_kept_by_later_staff_replies():
    th = Thread()
    th.add(arrival(ROOT, "op", 0))
    th.add(arrival("<r1@x>", "helper", 2))
    th.add(arrival("<r2@x>", "agent", 6, role="staff"))
    th.add(arrival("<r3@x>", "agent2", 8, role="staff"))
    t = th.figures
    assert t["first_reply_at"] == at(2)
    assert t["first_staff_at"] == at(6)


def test_staff_op_thread_is_not_awaiting_staff_but_is_unanswered():
    # Awaiting staff = no article from a staff/MVP account (the OP's included).
    th = Thread()
    th.add(arrival(ROOT, "agent", 0, role="staff"))
    t = th.figures
    assert t["first_staff_at"] == at(0)
    assert t["first_reply_at"] is None


# -- participants ---------------------------------------------------------------


def test_participants_count_distinct_authors():
    th = Thread()
    th.add(arrival(ROOT, "op", 0))
    th.add(arrival("<r1@x>", "a", 1))
    th.add(arrival("<r2@x>", "op", 2))
    th.add(arrival("<r3@x>", "a", 3))
    th.add(arrival("<r4@x>", "b", 4, role="staff"))
    t = th.figures
    assert t["posts"] == 5
    assert t["participants"] == 3


def test_participants_follow_the_new_participant_flag():
    t = new_thread(arrival(ROOT, "op", 0))
    apply_arrival(t, arrival(ROOT, "op", 0), True)
    apply_arrival(t, arrival("<r1@x>", "op", 1), False)
    apply_arrival(t, arrival("<r2@x>", "x", 2), True)
    assert (t["posts"], t["participants"]) == (3, 2)


# -- a reply before its root -------------------------------------------------


def test_reply_before_root_uses_first_author_as_stand_in_op():
    th = Thread()
    assert th.add(arrival("<r1@x>", "helper", 5)) is False
    t = th.figures
    assert t["root_present"] is False
    assert t["op_key"] == "helper"
    assert t["first_reply_at"] is None  # nobody but the (stand-in) OP yet
    assert (t["posts"], t["participants"]) == (1, 1)


def test_root_after_reply_replaces_op_and_reports_change():
    th = Thread()
    th.add(arrival("<r1@x>", "helper", 5))
    assert th.add(arrival(ROOT, "op", 8)) is True
    t = th.figures
    assert t["root_present"] is True
    assert t["op_key"] == "op"
    assert t["op_from"] == "op <op@example.com>"
    assert t["subject"] == "Help"  # the root's subject, not "Re: Help"


def test_root_after_reply_recomputes_first_reply():
    # Once the real OP is known, the earlier article by someone else is a reply.
    th = Thread()
    th.add(arrival("<r1@x>", "helper", 5))
    th.add(arrival(ROOT, "op", 8))
    assert th.recomputed == 1
    assert th.figures["first_reply_at"] == at(5)
    assert (th.figures["posts"], th.figures["participants"]) == (2, 2)


def test_root_after_reply_by_same_author_needs_no_recompute():
    th = Thread()
    th.add(arrival("<r1@x>", "op", 5))
    assert th.add(arrival(ROOT, "op", 8)) is False
    t = th.figures
    assert t["first_reply_at"] is None
    assert (t["posts"], t["participants"]) == (2, 1)


def test_replies_by_two_authors_before_root_then_root_by_second():
    # Stand-in OP "a" makes b's reply count; when the root shows b is the OP,
    # the first reply is a's article.
    th = Thread()
    th.add(arrival("<r1@x>", "a", 1))
    th.add(arrival("<r2@x>", "b", 2))
    assert th.figures["first_reply_at"] == at(2)
    assert th.add(arrival(ROOT, "b", 3)) is True
    assert th.figures["op_key"] == "b"
    assert th.figures["first_reply_at"] == at(1)


def test_root_by_the_stand_in_op_keeps_the_figures():
    th = Thread()
    th.add(arrival("<r1@x>", "a", 1))
    th.add(arrival("<r2@x>", "op", 2))
    assert th.figures["first_reply_at"] == at(2)  # op looked like a replier to stand-in a
    th.add(arrival("<r3@x>", "a", 3))
    th.add(arrival(ROOT, "a", 4))  # a was the OP all along: same author, no change
    assert th.figures["first_reply_at"] == at(2)


def test_started_and_last_post_bracket_all_arrivals():
    th = Thread()
    th.add(arrival("<r1@x>", "helper", 5))
    th.add(arrival(ROOT, "op", 2))  # an earlier timestamp than the first arrival
    th.add(arrival("<r2@x>", "op", 9))
    t = th.figures
    assert t["started_at"] == at(2)
    assert t["last_post_at"] == at(9)


def test_staff_reply_before_root_sets_first_staff():
    th = Thread()
    th.add(arrival("<r1@x>", "agent", 5, role="staff"))
    th.add(arrival(ROOT, "op", 8))
    assert th.figures["first_staff_at"] == at(5)
    assert th.figures["first_reply_at"] == at(5)


# -- recompute_replies ---------------------------------------------------------


def test_recompute_replies_picks_first_non_op_author():
    t = new_thread(arrival(ROOT, "op", 0))
    recompute_replies(t, [("op", at(0)), ("op", at(1)), ("x", at(2)), ("y", at(3))])
    assert t["first_reply_at"] == at(2)


def test_recompute_replies_only_op_gives_none():
    t = new_thread(arrival(ROOT, "op", 0))
    t["first_reply_at"] = at(1)
    recompute_replies(t, [("op", at(0)), ("op", at(1))])
    assert t["first_reply_at"] is None


def test_recompute_replies_empty_history_gives_none():
    t = new_thread(arrival(ROOT, "op", 0))
    recompute_replies(t, [])
    assert t["first_reply_at"] is None
