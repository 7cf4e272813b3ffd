"""IHAVE (RFC 3977 6.3.2): accept an article relayed by a peer server or a feeding tool."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from storage import PostRejected

from ..access import level_allows
from ..article import ArticleRejected, prepare_article
from ..protocol import NNTPError, Response, is_message_id_arg, syntax_error
from . import command
from .posting import anonymous_poster

if TYPE_CHECKING:
    from ..session import Session

log = logging.getLogger("nntpd.transit")


@command("IHAVE", "IHAVE message-id")
async def handle_ihave(session: Session, args: tuple[str, ...]) -> Response:
    if len(args) != 1 or not is_message_id_arg(args[0]):
        raise syntax_error("Usage: IHAVE message-id")
    if not level_allows(session.settings.server.feed_access, session.who):
        raise session.denied("transferring articles (IHAVE)")
    offered = args[0]
    if await session.store.article_by_id(offered) is not None:
        raise NNTPError(435, "Article not wanted")

    async def receive(raw: bytes) -> Response:
        try:
            article = prepare_article(
                raw, path_host=session.settings.server.path_host,
                now=datetime.now(timezone.utc), transit=True,
                max_headers=session.settings.server.max_header_count,
                max_header_bytes=session.settings.server.max_header_bytes,
            )
            if article.message_id != offered:
                raise ArticleRejected("Message-ID differs from the one offered")
            await session.store.post(article, anonymous_poster(article.from_))
        except (ArticleRejected, PostRejected) as exc:
            log.info("%s: IHAVE %s refused: %s", session.peer, offered, exc)
            if getattr(exc, "retry", False):
                return Response(436, f"Transfer failed; try again later: {exc}")
            return Response(437, f"Transfer rejected; do not retry: {exc}")
        return Response(235, "Article transferred OK")

    return Response(335, "Send it; end with <CR-LF>.<CR-LF>", then_read_block=receive)
