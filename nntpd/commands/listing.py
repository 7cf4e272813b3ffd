"""LIST variants, NEWGROUPS and NEWNEWS (RFC 3977 7.3, 7.4, 7.6, 8.4, 8.6)."""

from __future__ import annotations

from typing import TYPE_CHECKING, AsyncIterator, Callable

from storage import VIEW_KINDS, GroupInfo, as_view

from ..protocol import Response, parse_datetime, parse_wildmat, syntax_error
from . import command

if TYPE_CHECKING:
    from ..session import Session

# RFC 3977 8.4: the first seven fields are fixed; Xref is the usual extra, and
# X-Poster-Role (set only by the server, from the account) lets readers score staff/MVP posts.
OVERVIEW_FMT_RFC3977 = ["Subject:", "From:", "Date:", "Message-ID:", "References:",
                        ":bytes", ":lines", "Xref:full", "X-Poster-Role:full"]
# INN's answer to clients that did not send CAPABILITIES: slrn disables XOVER
# when it sees ':bytes' (see newsreaders.md), so keep the RFC 2980 names.
OVERVIEW_FMT_RFC2980 = ["Subject:", "From:", "Date:", "Message-ID:", "References:",
                        "Bytes:", "Lines:", "Xref:full", "X-Poster-Role:full"]


def _matcher(args: tuple[str, ...]) -> Callable[[str], bool]:
    return parse_wildmat(args[0]) if args else (lambda name: True)


def active_line(g: GroupInfo) -> bytes:
    return f"{g.name} {g.high} {g.low} {g.status}".encode()


async def _readable(session: Session) -> list[GroupInfo]:
    """The groups this session may read; 480 if that is none of them but logging in could help:
    tin, Thunderbird and rpost log in on a 480 and resend (as INN answers), while an empty
    list makes tin exit with "servers active-file contains no newsgroups" (RFC 4643 2.1)."""
    every = await session.store.groups()
    groups = [g for g in every if session.can_read(g.name)]
    if every and not groups and session.account is None:
        raise session.denied("listing newsgroups")
    return groups


async def _groups(session: Session, args: tuple[str, ...]) -> list[GroupInfo]:
    """Readable groups matching the wildmat, plus their views for those who may see them."""
    if len(args) > 1:
        raise syntax_error()
    match = _matcher(args)
    groups = await _readable(session)
    if session.views_visible:
        views = []
        for kind in VIEW_KINDS:
            stats = await session.store.view_stats(kind)
            views += [as_view(kind, g, *stats.get(g.id, (0, None))) for g in groups]
        groups += views
    return [g for g in groups if match(g.name)]


async def list_active(session: Session, args: tuple[str, ...]) -> Response:
    groups = await _groups(session, args)
    return Response(215, "List of newsgroups follows", lines=[active_line(g) for g in groups])


async def list_active_times(session: Session, args: tuple[str, ...]) -> Response:
    groups = await _groups(session, args)
    lines = [f"{g.name} {int(g.created_at.timestamp())} {g.creator or 'nntpd'}".encode() for g in groups]
    return Response(215, "Group creations follow", lines=lines)


async def list_newsgroups(session: Session, args: tuple[str, ...]) -> Response:
    groups = await _groups(session, args)
    lines = [f"{g.name}\t{g.description}".encode() for g in groups]
    return Response(215, "Descriptions follow", lines=lines)


async def list_overview_fmt(session: Session, args: tuple[str, ...]) -> Response:
    if args:
        raise syntax_error()
    names = OVERVIEW_FMT_RFC3977 if session.saw_capabilities else OVERVIEW_FMT_RFC2980
    return Response(215, "Order of fields in overview database", lines=[n.encode() for n in names])


async def list_headers(session: Session, args: tuple[str, ...]) -> Response:
    if len(args) > 1 or (args and args[0].upper() not in ("MSGID", "RANGE")):
        raise syntax_error("Usage: LIST HEADERS [MSGID|RANGE]")
    # Any header can be retrieved (":"), plus the two metadata items (RFC 3977 8.6).
    return Response(215, "Headers and metadata items supported", lines=[b":", b":bytes", b":lines"])


async def list_distrib_pats(session: Session, args: tuple[str, ...]) -> Response:
    if args:
        raise syntax_error()
    return Response(215, "Distribution patterns follow", lines=[])


LIST_HANDLERS = {
    "ACTIVE": list_active,
    "ACTIVE.TIMES": list_active_times,
    "NEWSGROUPS": list_newsgroups,
    "OVERVIEW.FMT": list_overview_fmt,
    "HEADERS": list_headers,
    "DISTRIB.PATS": list_distrib_pats,
}


@command("LIST", "LIST [ACTIVE|ACTIVE.TIMES|DISTRIB.PATS|HEADERS|NEWSGROUPS|OVERVIEW.FMT] [wildmat]")
async def handle_list(session: Session, args: tuple[str, ...]) -> Response:
    keyword = args[0].upper() if args else "ACTIVE"
    handler = LIST_HANDLERS.get(keyword)
    if handler is None:
        raise syntax_error(f"Unknown LIST keyword {keyword[:40]}")
    return await handler(session, args[1:])


@command("NEWGROUPS", "NEWGROUPS date time [GMT]")
async def handle_newgroups(session: Session, args: tuple[str, ...]) -> Response:
    if len(args) not in (2, 3):
        raise syntax_error("Usage: NEWGROUPS date time [GMT]")
    since = parse_datetime(args[0], args[1], args[2] if len(args) == 3 else None)
    if session.account is None:
        await _readable(session)  # 480 rather than an empty list when only login would help
    groups = [g for g in await session.store.groups_created_since(since) if session.can_read(g.name)]
    return Response(231, "List of new newsgroups follows", lines=[active_line(g) for g in groups])


@command("NEWNEWS", "NEWNEWS wildmat date time [GMT]")
async def handle_newnews(session: Session, args: tuple[str, ...]) -> Response:
    if len(args) not in (3, 4):
        raise syntax_error("Usage: NEWNEWS wildmat date time [GMT]")
    match = _matcher(args[:1])
    since = parse_datetime(args[1], args[2], args[3] if len(args) == 4 else None)

    async def ids() -> AsyncIterator[bytes]:
        # Rows come ordered by article, so a cross-post's rows are adjacent.
        last = None
        batch: list[bytes] = []
        async for message_id, group in session.store.new_articles(since):
            if message_id != last and match(group) and session.can_read(group):
                last = message_id
                batch.append(message_id.encode() + b"\r\n")
                if len(batch) >= 1000:
                    yield b"".join(batch)
                    batch = []
        if batch:
            yield b"".join(batch)

    return Response(230, "List of new articles follows", chunks=ids())

