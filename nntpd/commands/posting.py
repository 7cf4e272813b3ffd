"""POST (RFC 3977 6.3.1) with injection per RFC 5537.

The poster's identity and role come from the authenticated account as it
stands when the article arrives (the account watch of auth.py: a role change
applies at once), never from headers: article.py drops any X-Poster-Role a
client sends.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from email.utils import parseaddr
from functools import lru_cache
from typing import TYPE_CHECKING

from storage import Poster, PostRejected, view_of

from .. import cancel_lock
from ..article import (
    ArticleRejected,
    PosterIdentity,
    PreparedArticle,
    header_value,
    is_valid_message_id,
    prepare_article,
)
from ..protocol import NNTPError, Response, syntax_error
from . import command
from .reader import readable, xref_groups

if TYPE_CHECKING:
    from ..session import Session

log = logging.getLogger("nntpd.posting")


@lru_cache(maxsize=4096)
def anonymous_poster(from_: str) -> Poster:
    """An unauthenticated poster is known by the address in From.

    Cached: the same few posters write most articles, and parsing the
    address costs ~15 us, a noticeable share of a POST.
    """
    address = parseaddr(from_)[1] or from_.strip()
    # A key every engine can store: UTF-8 without NUL, at most 255 characters (the column size).
    key = address.lower().encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return Poster(author_key=key.replace("\x00", "\ufffd")[:255])


async def _prepare(session: Session, raw: bytes) -> tuple[PreparedArticle, Poster]:
    cfg = session.settings.server
    identity = None
    if session.account is not None:
        account = await session.ctx.account_watch.account(session.account.name)
        if account is None or account.disabled:
            raise ArticleRejected("Your account is disabled")
        session.account = account
        identity = PosterIdentity(account.email, account.display_name,
                                  account.role if account.role != "member" else None)
    article = prepare_article(
        raw, path_host=cfg.path_host, now=datetime.now(timezone.utc), identity=identity,
        max_headers=cfg.max_header_count, max_header_bytes=cfg.max_header_bytes,
    )
    if session.account is None:
        return article, anonymous_poster(article.from_)
    account = session.account
    return article, Poster(author_key=account.name, account=account.name, role=account.role)


def _rate_key(session: Session) -> str | None:
    """Accounts are limited by name, anonymous posters by address; loopback anonymous is exempt."""
    if session.account is not None:
        return f"account:{session.account.name}"
    return None if session.loopback else f"address:{session.address}"


def refuse_groups(session: Session, groups: tuple[str, ...]) -> None:
    """The group rules of a POST, shared with IHAVE: no views, only groups the sender may post to."""
    views = [g for g in groups if view_of(g) is not None]
    if views:
        base = view_of(views[0])[1]  # type: ignore[index]
        raise ArticleRejected(f"{views[0]} is a read-only view; post to {base} instead")
    denied = [g for g in groups if not session.ctx.policy.can_post(g, session.who)]
    if denied:
        raise ArticleRejected(f"Posting to {denied[0]} is not allowed for you")


async def _check_cancel_groups(session: Session, target: str, poster: Poster) -> None:
    """A cancel reaches only into groups its sender may post to; staff reach every group.

    Without this, a cancel could withdraw an article from a group closed to
    its sender. A target in a group the sender cannot read gets the same
    answer as a missing one, so a cancel does not reveal private articles.
    """
    if poster.role == "staff":
        return
    stored = await session.store.article_by_id(target)
    if stored is None or not readable(session, stored.xref):
        raise ArticleRejected(f"Cannot cancel {target}: no such article")
    for group in xref_groups(stored.xref):
        if not session.ctx.policy.can_post(group, session.who):
            raise ArticleRejected(f"Cannot cancel {target}: posting to {group} is not allowed for you")


async def _control(session: Session, article: PreparedArticle, poster: Poster) -> str:
    """Act on a control message (RFC 5537 5): only cancel, as Thunderbird sends it.

    The cancel itself is not stored. Group control messages are refused:
    operators manage groups with the CLI. An anonymous cancel of an anonymous
    article needs a Cancel-Key that opens the original's Cancel-Lock (RFC 8315).
    """
    assert article.control is not None
    words = article.control.split()
    if len(words) == 2 and words[0].lower() == "cancel" and is_valid_message_id(words[1]):
        target = words[1]
        await _check_cancel_groups(session, target, poster)
        keys = next((v for n, v in article.headers if n.lower() == "cancel-key"), None)

        def unlock(header: bytes) -> str | None:
            return cancel_lock.refusal(keys, header_value(bytes(header), "Cancel-Lock"))

        await session.store.cancel(target, poster, unlock)
        log.info("%s: %s cancelled %s", session.peer, poster.author_key, target)
        return target
    raise ArticleRejected("Only 'Control: cancel <message-id>' is accepted; groups are managed by the operator")


@command("POST", "POST")
async def handle_post(session: Session, args: tuple[str, ...]) -> Response:
    if args:
        raise syntax_error("POST takes no arguments")
    if not session.posting_allowed:
        if session.account is None:
            raise NNTPError(480, "Authentication required for posting")
        raise NNTPError(440, "Posting not permitted")

    async def receive(raw: bytes) -> Response:
        try:
            article, poster = await _prepare(session, raw)
            refuse_groups(session, article.newsgroups)
            key = _rate_key(session)
            if key is not None and not session.ctx.post_rate.allow(key):
                limit = session.settings.server.posts_per_minute
                raise ArticleRejected(f"Posting rate limit exceeded ({limit} per minute)")
            if article.control is not None:
                target = await _control(session, article, poster)
                return Response(240, f"Article received {article.message_id} (cancelled {target})")
            outcome = await session.store.post(article, poster)
        except (ArticleRejected, PostRejected) as exc:
            log.info("%s: post refused: %s", session.peer, exc)
            return Response(441, f"Posting failed: {exc}")
        if outcome.held:
            return Response(240, f"Article received {outcome.message_id} (held for moderation)")
        return Response(240, f"Article received {outcome.message_id}")

    return Response(340, "Send article to be posted. End with <CR-LF>.<CR-LF>", then_read_block=receive)
