"""POST (RFC 3977 6.3.1) with injection per RFC 5537."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from email.utils import parseaddr
from typing import TYPE_CHECKING

from storage import Poster, PostRejected

from ..article import ArticleRejected, prepare_article
from ..protocol import NNTPError, Response, syntax_error
from . import command

if TYPE_CHECKING:
    from ..session import Session

log = logging.getLogger("nntpd.posting")


def anonymous_poster(from_: str) -> Poster:
    """An unauthenticated poster is known by the address in From."""
    address = parseaddr(from_)[1] or from_.strip()
    return Poster(author_key=address.lower())


@command("POST", "POST")
async def handle_post(session: Session, args: tuple[str, ...]) -> Response:
    if args:
        raise syntax_error("POST takes no arguments")
    if not session.posting_allowed:
        raise NNTPError(440, "Posting not permitted")

    async def receive(raw: bytes) -> Response:
        try:
            article = prepare_article(
                raw, path_host=session.settings.server.path_host, now=datetime.now(timezone.utc)
            )
            outcome = await session.store.post(article, session.poster_for(article))
        except (ArticleRejected, PostRejected) as exc:
            log.info("%s: post refused: %s", session.peer, exc)
            return Response(441, f"Posting failed: {exc}")
        if outcome.held:
            return Response(240, f"Article received {outcome.message_id} (held for moderation)")
        return Response(240, f"Article received {outcome.message_id}")

    return Response(340, "Send article to be posted. End with <CR-LF>.<CR-LF>", then_read_block=receive)
