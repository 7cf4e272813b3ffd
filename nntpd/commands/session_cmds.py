"""CAPABILITIES, MODE READER, HELP, DATE, QUIT (RFC 3977 sections 5 and 7.1)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING

from .. import __version__
from ..access import level_allows
from ..protocol import Response, is_keyword, syntax_error
from . import REGISTRY, command

if TYPE_CHECKING:
    from ..session import Session

LIST_KEYWORDS = "ACTIVE ACTIVE.TIMES DISTRIB.PATS HEADERS NEWSGROUPS OVERVIEW.FMT"


def capabilities(session: Session) -> list[str]:
    """Only what works on this connection (RFC 3977 5.2)."""
    caps = ["VERSION 2", "READER"]
    if level_allows(session.settings.server.feed_access, session.who):
        caps.append("IHAVE")
    if session.posting_allowed:
        caps.append("POST")
    if not session.secure and session.account is None and session.ctx.tls is not None:
        caps.append("STARTTLS")  # RFC 4642 2.1
    # RFC 4643 2.2: AUTHINFO is not advertised once authenticated, but SASL
    # keeps its mechanism list (so a client can detect a downgrade).
    if session.account is None:
        caps.append("AUTHINFO USER SASL" if session.auth_allowed else "AUTHINFO")
    if session.account is not None or session.auth_allowed:
        caps.append("SASL PLAIN")
    caps += ["NEWNEWS", "OVER MSGID", "HDR", f"LIST {LIST_KEYWORDS}",
             f"IMPLEMENTATION nntpd-support {__version__}"]
    return caps


def greeting(session: Session) -> Response:
    if session.posting_allowed:
        return Response(200, "nntpd-support ready, posting allowed")
    return Response(201, "nntpd-support ready, posting prohibited")


@command("CAPABILITIES", "CAPABILITIES [keyword]")
async def handle_capabilities(session: Session, args: tuple[str, ...]) -> Response:
    if len(args) > 1 or (args and not is_keyword(args[0])):
        raise syntax_error("Usage: CAPABILITIES [keyword]")  # RFC 3977 5.2.2
    session.saw_capabilities = True
    return Response(101, "Capability list:", lines=[c.encode() for c in capabilities(session)])


@command("MODE", "MODE READER")
async def handle_mode(session: Session, args: tuple[str, ...]) -> Response:
    if len(args) != 1 or args[0].upper() != "READER":
        raise syntax_error("Only MODE READER is supported")
    return greeting(session)


@command("HELP", "HELP")
async def handle_help(session: Session, args: tuple[str, ...]) -> Response:
    if args:
        raise syntax_error("HELP takes no arguments")  # RFC 3977 3.2.1
    lines = [f"  {spec.syntax}".encode() for _, spec in sorted(REGISTRY.items())]
    return Response(100, "Help text follows", lines=lines)


@command("DATE", "DATE")
async def handle_date(session: Session, args: tuple[str, ...]) -> Response:
    if args:
        raise syntax_error()
    return Response(111, datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S"))


@command("QUIT", "QUIT")
async def handle_quit(session: Session, args: tuple[str, ...]) -> Response:
    return Response(205, "Bye", close=True)
