"""IHAVE (RFC 3977 6.3.2): accept an article relayed by a peer server or a feeding tool.

IHAVE is for peers. It is offered only at the ``[server] feed_access`` level,
which defaults to nobody. No peer is trusted yet (there is no peer
configuration), so every article that arrives by IHAVE is treated as an
injection here: the sender must be allowed to post to each of its groups, as
for POST, and every header only a server may set (Injection-Info,
Injection-Date, Xref, X-Poster-Role, ...) and any Sender are dropped, so the
stored article carries nothing that looks vouched for by this or an earlier
server. This departs from RFC 5537 3.6, which has a relay keep the injection
headers: that trust belongs to known peers. Its Message-ID and Date are
required and kept, and Path is extended.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from storage import PostRejected

from ..access import level_allows
from ..article import ArticleRejected, prepare_article
from ..protocol import NNTPError, Response, is_message_id_arg, syntax_error
from . import command
from .posting import anonymous_poster, refuse_groups

if TYPE_CHECKING:
    from ..session import Session

log = logging.getLogger("nntpd.transit")


def _require_feed_access(session: Session) -> None:
    """502 when no one may feed (logging in would not help), else 480/502 as for other commands."""
    level = session.settings.server.feed_access
    if level_allows(level, session.who):
        return
    if level == "nobody":
        raise NNTPError(502, "Access denied: this server takes no feeds (IHAVE)")
    raise session.denied("transferring articles (IHAVE)")


@command("IHAVE", "IHAVE message-id")
async def handle_ihave(session: Session, args: tuple[str, ...]) -> Response:
    if len(args) != 1 or not is_message_id_arg(args[0]):
        raise syntax_error("Usage: IHAVE message-id")
    _require_feed_access(session)
    offered = args[0]
    if await session.store.article_by_id(offered) is not None:
        raise NNTPError(435, "Article not wanted")

    async def receive(raw: bytes) -> Response:
        try:
            article = prepare_article(
                raw, path_host=session.settings.server.path_host,
                now=datetime.now(timezone.utc), relayed=True,
                max_headers=session.settings.server.max_header_count,
                max_header_bytes=session.settings.server.max_header_bytes,
            )
            if article.message_id != offered:
                raise ArticleRejected("Message-ID differs from the one offered")
            refuse_groups(session, article.newsgroups)
            await session.store.post(article, anonymous_poster(article.from_))
        except (ArticleRejected, PostRejected) as exc:
            log.info("%s: IHAVE %s refused: %s", session.peer, offered, exc)
            if getattr(exc, "retry", False):
                return Response(436, f"Transfer failed; try again later: {exc}")
            return Response(437, f"Transfer rejected; do not retry: {exc}")
        return Response(235, "Article transferred OK")

    return Response(335, "Send it; end with <CR-LF>.<CR-LF>", then_read_block=receive)
