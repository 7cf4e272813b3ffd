"""OVER/XOVER, HDR/XHDR and XPAT (RFC 3977 8.3 and 8.5, RFC 2980 2.6, 2.8, 2.9).

Overview lines were computed at arrival; a range is read in ordered chunks
and each chunk is written as soon as it is read, so a whole group is never
held in memory. Headers that are overview fields come from the same lines;
other headers are read from the stored header blocks, unfolded and with
each TAB, CR and LF turned into a space as section 8.5.2 asks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, AsyncIterator, Callable

from ..article import header_value, sanitize_overview
from ..protocol import (
    NNTPError,
    Response,
    encode_lines,
    is_message_id_arg,
    parse_range,
    parse_wildmat,
    syntax_error,
)
from . import command
from .reader import readable

if TYPE_CHECKING:
    from ..session import Session

# Position of each header/metadata item in a stored overview line (after the number).
OVERVIEW_INDEX = {
    "subject": 0, "from": 1, "date": 2, "message-id": 3, "references": 4,
    ":bytes": 5, ":lines": 6, "xref": 7, "x-poster-role": 8,
}
# RFC 2980 clients ask XHDR for Bytes/Lines; answer them from the overview too.
XHDR_ALIASES = {"bytes": ":bytes", "lines": ":lines"}

RowsToBytes = Callable[[list[Any]], bytes]


async def _peeked(source: AsyncIterator[list[Any]], render: RowsToBytes) -> AsyncIterator[bytes] | None:
    """None if the source yields nothing (so the caller can answer 423), else a stream."""
    first = None
    async for rows in source:
        first = render(rows)
        if first:
            break
    if not first:
        return None

    async def stream() -> AsyncIterator[bytes]:
        yield first
        async for rows in source:
            chunk = render(rows)
            if chunk:
                yield chunk

    return stream()


def _overview_rows(rows: list[Any]) -> bytes:
    return b"".join(b"%d\t%s\r\n" % (n, ov) for n, ov in rows)


def _range_of(session: Session, arg: str | None) -> tuple[int, int, int, str | None]:
    """(group id, low, high, view) for a range argument or the current article."""
    if arg is None:
        group, number = session.require_current()
        return group.id, number, number, group.view
    group = session.require_group()
    rng = parse_range(arg)
    return group.id, rng.low, rng.high, group.view


@command("OVER", "OVER [range|message-id]")
async def handle_over(session: Session, args: tuple[str, ...]) -> Response:
    if len(args) > 1:
        raise syntax_error()
    if args and is_message_id_arg(args[0]):
        overview = await session.store.overview_by_id(args[0])
        if overview is None or not readable(session, _field_value(overview, OVERVIEW_INDEX["xref"])):
            raise NNTPError(430, "No article with that message-id")
        return Response(224, "Overview information follows", lines=[b"0\t" + overview])
    gid, low, high, view = _range_of(session, args[0] if args else None)
    stream = await _peeked(session.store.overview(gid, low, high, view), _overview_rows)
    if stream is None:
        if not args:
            raise NNTPError(420, "Current article number is invalid")
        raise NNTPError(423, "No articles in that range")
    return Response(224, "Overview information follows", chunks=stream)


@command("XOVER", "XOVER [range]")
async def handle_xover(session: Session, args: tuple[str, ...]) -> Response:
    if args and is_message_id_arg(args[0]):
        raise syntax_error("XOVER takes a range; use OVER for a message-id")
    return await handle_over(session, args)


def _field_value(overview: bytes, index: int) -> str:
    fields = overview.decode("utf-8", "surrogateescape").split("\t")
    value = fields[index] if index < len(fields) else ""
    if index >= OVERVIEW_INDEX["xref"]:  # "full" fields carry their header name
        value = value.partition(":")[2].lstrip()
    return value


async def _header_values(
    session: Session, field: str, arg: str | None
) -> tuple[bool, AsyncIterator[list[tuple[Any, str]]]]:
    """(by message-id?, async chunks of (number or id, value)) for one header."""
    name = field.lower()
    index = OVERVIEW_INDEX.get(name)
    store = session.store
    if arg is not None and is_message_id_arg(arg):
        article = await store.article_by_id(arg)
        if article is None or not readable(session, article.xref):
            raise NNTPError(430, "No article with that message-id")
        if index is not None:
            overview = await store.overview_by_id(arg) or b""
            value = _field_value(overview, index)
        else:
            value = sanitize_overview(header_value(article.header, field) or "")

        async def one() -> AsyncIterator[list[tuple[Any, str]]]:
            yield [(article.message_id, value)]

        return True, one()
    gid, low, high, view = _range_of(session, arg)
    if index is not None:
        async def from_overview() -> AsyncIterator[list[tuple[Any, str]]]:
            async for rows in store.overview(gid, low, high, view):
                yield [(n, _field_value(ov, index)) for n, ov in rows]

        return False, from_overview()
    if name.startswith(":"):
        async def unknown() -> AsyncIterator[list[tuple[Any, str]]]:
            async for rows in store.numbers(gid, low, high, view):
                yield [(r[0], "") for r in rows]

        return False, unknown()

    async def from_headers() -> AsyncIterator[list[tuple[Any, str]]]:
        async for rows in store.headers(gid, low, high, view):
            yield [(n, sanitize_overview(header_value(h, field) or "")) for n, h in rows]

    return False, from_headers()


def _header_lines(pairs: list[tuple[Any, str]]) -> bytes:
    return encode_lines(f"{key} {value}".encode("utf-8", "surrogateescape") for key, value in pairs)


async def _hdr(session: Session, code: int, field: str, arg: str | None, msgid_key: bool,
               keep: Callable[[str], bool] | None = None) -> Response:
    by_id, source = await _header_values(session, field, arg)

    def render(rows: list[tuple[Any, str]]) -> bytes:
        if by_id and not msgid_key:
            rows = [(0, v) for _, v in rows]
        if keep is not None:
            rows = [(k, v) for k, v in rows if keep(v)]
            return _header_lines(rows)
        return _header_lines(rows)

    stream = await _peeked(source, render)
    if stream is None:
        if keep is not None:
            return Response(code, "Headers follow", lines=[])
        if arg is None:
            raise NNTPError(420, "Current article number is invalid")
        raise NNTPError(423, "No articles in that range")
    return Response(code, "Headers follow", chunks=stream)


@command("HDR", "HDR field [range|message-id]")
async def handle_hdr(session: Session, args: tuple[str, ...]) -> Response:
    if not 1 <= len(args) <= 2:
        raise syntax_error("Usage: HDR field [range|message-id]")
    return await _hdr(session, 225, args[0], args[1] if len(args) == 2 else None, msgid_key=False)


@command("XHDR", "XHDR header [range|message-id]")
async def handle_xhdr(session: Session, args: tuple[str, ...]) -> Response:
    if not 1 <= len(args) <= 2:
        raise syntax_error("Usage: XHDR header [range|message-id]")
    field = XHDR_ALIASES.get(args[0].lower(), args[0])
    return await _hdr(session, 221, field, args[1] if len(args) == 2 else None, msgid_key=True)


@command("XPAT", "XPAT header range|message-id pattern [pattern ...]")
async def handle_xpat(session: Session, args: tuple[str, ...]) -> Response:
    if len(args) < 3:
        raise syntax_error("Usage: XPAT header range|message-id pattern")
    field = XHDR_ALIASES.get(args[0].lower(), args[0])
    matches = parse_wildmat(" ".join(args[2:]))
    return await _hdr(session, 221, field, args[1], msgid_key=True, keep=matches)
