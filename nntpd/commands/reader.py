"""GROUP, LISTGROUP, LAST, NEXT, ARTICLE, HEAD, BODY, STAT (RFC 3977 6.1, 6.2)."""

from __future__ import annotations

from typing import TYPE_CHECKING, AsyncIterator

from storage import ArticleData, GroupInfo, view_of

from ..protocol import (
    CRLF,
    NNTPError,
    Response,
    encode_text,
    is_message_id_arg,
    parse_number,
    parse_range,
    syntax_error,
)
from . import command

if TYPE_CHECKING:
    from ..session import Session


async def find_group(session: Session, name: str) -> GroupInfo:
    """A readable group or view by name; views answer 411 to those who may not see them."""
    view = view_of(name)
    base_name = view[1] if view else name
    group = await session.store.group(base_name)
    if group is None or (view and not session.views_visible):
        raise NNTPError(411, f"No such newsgroup {name}")
    if not session.can_read(base_name):
        if view:
            raise NNTPError(411, f"No such newsgroup {name}")
        raise session.denied(f"reading {name}")
    return await session.store.view_group(view[0], group) if view else group


async def select_group(session: Session, name: str) -> GroupInfo:
    group = await find_group(session, name)
    session.group = group
    session.article_number = group.low if group.count else None
    return group


@command("GROUP", "GROUP group")
async def handle_group(session: Session, args: tuple[str, ...]) -> Response:
    if len(args) != 1:
        raise syntax_error("Usage: GROUP group")
    g = await select_group(session, args[0])
    return Response(211, f"{g.count} {g.low} {g.high} {g.name}")


@command("LISTGROUP", "LISTGROUP [group [range]]")
async def handle_listgroup(session: Session, args: tuple[str, ...]) -> Response:
    if len(args) > 2:
        raise syntax_error("Usage: LISTGROUP [group [range]]")
    if args:
        g = await select_group(session, args[0])
    else:
        g = session.require_group()
        g = await select_group(session, g.name)
    rng = parse_range(args[1]) if len(args) == 2 else None
    low, high = (rng.low, rng.high) if rng else (g.low, g.high)

    async def numbers() -> AsyncIterator[bytes]:
        async for rows in session.store.numbers(g.id, low, high, g.view):
            yield b"".join(b"%d\r\n" % r[0] for r in rows)

    return Response(211, f"{g.count} {g.low} {g.high} {g.name} list follows", chunks=numbers())


@command("LAST", "LAST")
async def handle_last(session: Session, args: tuple[str, ...]) -> Response:
    return await _move(session, args, forward=False)


@command("NEXT", "NEXT")
async def handle_next(session: Session, args: tuple[str, ...]) -> Response:
    return await _move(session, args, forward=True)


async def _move(session: Session, args: tuple[str, ...], forward: bool) -> Response:
    if args:
        raise syntax_error()
    group, current = session.require_current()
    store = session.store
    number = await (store.next_number if forward else store.previous_number)(group.id, current, group.view)
    if number is None:
        if forward:
            raise NNTPError(421, "No next article in this group")
        raise NNTPError(422, "No previous article in this group")
    article = await store.article_by_number(group.id, number, group.view)
    if article is None:
        raise NNTPError(421 if forward else 422, "No such article")
    session.article_number = number
    return Response(223, f"{number} {article.message_id} retrieved")


async def select_article(session: Session, args: tuple[str, ...]) -> ArticleData:
    """Resolve the article argument (RFC 3977 6.2.1): none, number or message-id."""
    if len(args) > 1:
        raise syntax_error()
    store = session.store
    if not args:
        group, number = session.require_current()
        article = await store.article_by_number(group.id, number, group.view)
        if article is None:
            raise NNTPError(420, "Current article number is invalid")
        return article
    arg = args[0]
    if is_message_id_arg(arg):
        article = await store.article_by_id(arg)
        if article is None or not readable(session, article.xref):
            raise NNTPError(430, "No article with that message-id")
        return article
    group = session.require_group()
    number = parse_number(arg)
    article = await store.article_by_number(group.id, number, group.view)
    if article is None:
        raise NNTPError(423, f"No article with number {number}")
    session.article_number = number
    return article


def xref_groups(xref: str) -> list[str]:
    """The groups of a stored Xref value (``path_host group:number ...``)."""
    return [entry.rpartition(":")[0] for entry in xref.split()[1:]]


def readable(session: Session, xref: str) -> bool:
    """An article fetched by message-id is readable if any of its groups is."""
    return any(session.can_read(group) for group in xref_groups(xref))


def header_with_xref(article: ArticleData) -> bytes:
    """The stored header block plus the Xref line added on the way out (RFC 5537 3.2)."""
    return article.header + b"Xref: " + article.xref.encode("utf-8", "surrogateescape") + CRLF


@command("ARTICLE", "ARTICLE [message-id|number]")
async def handle_article(session: Session, args: tuple[str, ...]) -> Response:
    a = await select_article(session, args)
    data = encode_text(header_with_xref(a) + CRLF + a.body)
    return Response(220, f"{a.number} {a.message_id}", data=data)


@command("HEAD", "HEAD [message-id|number]")
async def handle_head(session: Session, args: tuple[str, ...]) -> Response:
    a = await select_article(session, args)
    return Response(221, f"{a.number} {a.message_id}", data=encode_text(header_with_xref(a)))


@command("BODY", "BODY [message-id|number]")
async def handle_body(session: Session, args: tuple[str, ...]) -> Response:
    a = await select_article(session, args)
    return Response(222, f"{a.number} {a.message_id}", data=encode_text(a.body))


@command("STAT", "STAT [message-id|number]")
async def handle_stat(session: Session, args: tuple[str, ...]) -> Response:
    a = await select_article(session, args)
    return Response(223, f"{a.number} {a.message_id}")
