"""POST (RFC 3977 6.3.1) with injection per RFC 5537.

The poster's identity and role come from the authenticated account, read
afresh for every post (so a role change applies at once), never from
headers: article.py drops any X-Poster-Role a client sends.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from email.utils import parseaddr
from functools import lru_cache
from typing import TYPE_CHECKING

from storage import Poster, PostRejected, view_of

from ..article import (
    ArticleRejected,
    PosterIdentity,
    PreparedArticle,
    is_valid_message_id,
    prepare_article,
)
from ..protocol import NNTPError, Response, syntax_error
from . import command

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
        account = await session.store.account(session.account.name)
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


async def _control(session: Session, article: PreparedArticle, poster: Poster) -> str:
    """Act on a control message (RFC 5537 5): only cancel, as Thunderbird sends it.

    The cancel itself is not stored. Group control messages are refused:
    operators manage groups with the CLI.
    """
    assert article.control is not None
    words = article.control.split()
    if len(words) == 2 and words[0].lower() == "cancel" and is_valid_message_id(words[1]):
        await session.store.cancel(words[1], poster)
        log.info("%s: %s cancelled %s", session.peer, poster.author_key, words[1])
        return words[1]
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
            views = [g for g in article.newsgroups if view_of(g) is not None]
            if views:
                base = view_of(views[0])[1]  # type: ignore[index]
                raise ArticleRejected(f"{views[0]} is a read-only view; post to {base} instead")
            denied = [g for g in article.newsgroups if not session.ctx.policy.can_post(g, session.who)]
            if denied:
                raise ArticleRejected(f"Posting to {denied[0]} is not allowed for you")
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
