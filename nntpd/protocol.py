"""The NNTP wire format without I/O (RFC 3977 section 3).

Theory of operation: the server feeds received lines in and gets values
out; it takes values in and gets bytes out. Nothing here touches a socket
or a database, so every rule about the wire is testable with plain calls.

- ``parse_command(line)`` -> ``Command`` (section 3.1: case-insensitive
  verb, arguments separated by whitespace, 512 octets including CRLF).
- ``status(code, text)`` / ``encode_block(lines)`` -> bytes; multi-line
  blocks are dot-stuffed and end with ``.`` (section 3.1.1).
- ``BlockReceiver`` collects a dot-terminated block sent by a client
  (POST data), unstuffs it and enforces a size limit.
- ``NNTPError`` carries a response code; handlers raise it and the server
  turns it into one status line in exactly one place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import AsyncIterator, Awaitable, Callable, Iterable

from .wildmat import WildmatError, compile_wildmat

MAX_COMMAND_LINE = 512  # octets including CRLF (RFC 3977 section 3.1)
MAX_ARGUMENT = 497  # section 3.1: each argument at most 497 octets
MAX_ARTICLE_NUMBER = 2_147_483_647  # section 6: numbers fit in 31 bits
CRLF = b"\r\n"
_SEPARATORS = re.compile(rb"[ \t]+")  # section 3.1: only space and TAB separate arguments


class NNTPError(Exception):
    """A failure that maps to one NNTP response code."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"{code} {text}")
        self.code = code
        self.text = text


def syntax_error(text: str = "Syntax error") -> NNTPError:
    return NNTPError(501, text)


@dataclass(frozen=True, slots=True)
class Command:
    verb: str
    args: tuple[str, ...]


def parse_command(line: bytes) -> Command | None:
    """One command line (with or without its CRLF) -> Command.

    Returns None for an empty line, which clients such as Outlook Express
    send and which a server should ignore. Raises NNTPError(501) for an
    over-long line or argument (section 3.1).
    """
    body = line.rstrip(b"\r\n")
    if len(body) + 2 > MAX_COMMAND_LINE:
        raise syntax_error("Command line too long (max 512 octets)")
    words = [w for w in _SEPARATORS.split(body) if w]
    if not words:
        return None
    if any(len(w) > MAX_ARGUMENT for w in words[1:]):
        raise syntax_error("Argument too long (max 497 octets)")
    if len(words) > 3 and words[0].upper() == b"AUTHINFO" and words[1].upper() in (b"USER", b"PASS"):
        # RFC 4643 3.1 (erratum 1787): a server MAY accept SP/TAB inside a username or
        # password; tin (.newsauth) and slrn (nnrpaccess) send them verbatim.
        words = words[:2] + [_SEPARATORS.split(body.strip(b" \t"), 2)[2]]
    text = [w.decode("utf-8", "surrogateescape") for w in words]
    return Command(text[0].upper(), tuple(text[1:]))


def printable(text: str) -> str:
    """``text`` with every control, separator or undecodable character shown as ``?``.

    Status lines echo client text (a group name, an unknown verb); a NUL, CR
    or raw 8-bit byte in it would corrupt the line or smuggle bytes through.
    """
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def status(code: int, text: str) -> bytes:
    """A single status line (section 3.2): printable UTF-8 of at most 512 octets with its
    CRLF (section 3.1), whatever client text it echoes (cut short with "...")."""
    line = f"{code} {printable(text)}".encode()
    if len(line) > MAX_COMMAND_LINE - 2:
        line = line[: MAX_COMMAND_LINE - 5].decode("utf-8", "ignore").encode() + b"..."
    return line + CRLF


def stuff_line(line: bytes) -> bytes:
    """Dot-stuff one line without its terminator (section 3.1.1)."""
    return b"." + line if line.startswith(b".") else line


def encode_lines(lines: Iterable[bytes]) -> bytes:
    """Lines (no terminators) -> stuffed CRLF-terminated bytes, no final dot."""
    return b"".join(stuff_line(ln) + CRLF for ln in lines)


def encode_text(text: bytes) -> bytes:
    """A CRLF-separated text (article, header block) -> stuffed bytes.

    Fast path for the common case of no line starting with a dot.
    """
    if text and not text.endswith(CRLF):
        text += CRLF
    if text.startswith(b".") or b"\n." in text:
        text = text.replace(b"\n.", b"\n..")
        if text.startswith(b"."):
            text = b"." + text
    return text


END_OF_BLOCK = b".\r\n"


def encode_block(lines: Iterable[bytes]) -> bytes:
    return encode_lines(lines) + END_OF_BLOCK


class BlockTooLarge(Exception):
    """The client's block exceeded the size limit; it is read to the end and dropped."""


class BlockReceiver:
    """Collects a dot-terminated block sent by the client (section 3.1.1).

    ``feed(data)`` takes received bytes that end at a line end: single
    lines, or the larger pieces a reader returns when it reads up to each
    line that starts with a dot (whole-article pieces are cheaper than
    lines). It returns True when ``data`` ended with the terminating ``.``
    line. ``result()`` gives the block unstuffed, with CRLF line ends.

    Line ends: CRLF, or a bare LF, as INN's nnrpd accepts. A bare LF is a
    line end wherever it stands (``.\n`` ends the block too), and is stored
    as CRLF, the canonical form; a lone CR is kept as it is. Past ``max_bytes`` it keeps consuming (so the
    connection stays in sync) but discards data, and ``result()`` raises
    BlockTooLarge.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._parts: list[bytes] = []
        self._size = 0
        self._at_line_start = True
        self.too_large = False

    @property
    def at_line_start(self) -> bool:
        """True when the bytes fed so far end at a line end (or none were fed)."""
        return self._at_line_start

    def feed(self, data: bytes) -> bool:
        if data.endswith(b".\r\n"):
            dot = len(data) - 3
        elif data.endswith(b".\n"):
            dot = len(data) - 2
        else:
            dot = -1
        done = dot >= 0 and (data[dot - 1 : dot] == b"\n" if dot else self._at_line_start)
        body = data[:dot] if done else data
        if body and not self.too_large:
            stuffed = body.count(b"\n.") + (self._at_line_start and body[:1] == b".")
            self._size += len(body) - stuffed
            if self._size > self.max_bytes:
                self.too_large = True
                self._parts.clear()
            else:
                self._parts.append(body)
        if data:
            self._at_line_start = data.endswith(b"\n")
        return done

    def result(self) -> bytes:
        if self.too_large:
            raise BlockTooLarge()
        data = b"".join(self._parts)
        if data.startswith(b"."):
            data = data[1:]
        data = data.replace(b"\n.", b"\n")
        if data.count(b"\n") != data.count(CRLF):
            data = _BARE_LF.sub(CRLF, data)
        return data


_BARE_LF = re.compile(rb"(?<!\r)\n")


@dataclass(frozen=True, slots=True)
class ArticleRange:
    """A range argument (section 3.1): ``n``, ``n-`` or ``n-m``."""

    low: int
    high: int  # MAX_ARTICLE_NUMBER for an open range


def parse_range(text: str) -> ArticleRange:
    """Parse ``n``, ``n-`` or ``n-m``; 501 on anything else."""
    low_text, dash, high_text = text.partition("-")
    try:
        low = parse_number(low_text)
        if not dash:
            return ArticleRange(low, low)
        high = parse_number(high_text) if high_text else MAX_ARTICLE_NUMBER
    except NNTPError:
        raise syntax_error(f"Bad range: {text}") from None
    return ArticleRange(low, high)


def parse_number(text: str) -> int:
    """An article number (section 6): 1..2,147,483,647, digits only (0 accepted as a bound)."""
    if not text.isdigit() or not text.isascii() or len(text) > 16:
        raise syntax_error(f"Bad article number: {text}")
    value = int(text)
    if value > MAX_ARTICLE_NUMBER:
        raise syntax_error(f"Article number out of range: {text}")
    return value


def parse_wildmat(text: str) -> Callable[[str], bool]:
    """A client's wildmat (RFC 3977 4) as a predicate; 501 if it cannot be used."""
    try:
        return compile_wildmat(text)
    except WildmatError as exc:
        raise syntax_error(str(exc)) from None


def is_keyword(text: str) -> bool:
    """RFC 3977 9.8: keyword = ALPHA 2*(ALPHA / DIGIT / "." / "-")."""
    return _KEYWORD.fullmatch(text) is not None


_KEYWORD = re.compile(r"[A-Za-z][A-Za-z0-9.-]{2,}")


def is_message_id_arg(text: str) -> bool:
    return text.startswith("<") and text.endswith(">") and len(text) > 2


def parse_datetime(date: str, time: str, gmt: str | None) -> datetime:
    """NEWGROUPS/NEWNEWS date and time (section 7.3.2): yymmdd or yyyymmdd, hhmmss.

    A two-digit year is in the current century if it is not after the
    current year, else in the previous one (section 7.3.2). A leap second
    (60) is read as 59. Without GMT the time is the server's local time.
    """
    if gmt is not None and gmt.upper() != "GMT":
        raise syntax_error("Expected GMT")
    if not (date.isdigit() and time.isdigit() and len(time) == 6 and len(date) in (6, 8)):
        raise syntax_error("Bad date or time")
    if len(date) == 6:
        now_year = datetime.now(timezone.utc).year
        yy = int(date[:2])
        century = now_year - now_year % 100
        year = century + yy if yy <= now_year % 100 else century - 100 + yy
        date = f"{year:04d}{date[2:]}"
    if time[4:] == "60":
        time = time[:4] + "59"
    try:
        parsed = datetime.strptime(date + time, "%Y%m%d%H%M%S")
    except ValueError:
        raise syntax_error("Bad date or time") from None
    if gmt is None:  # the server's local time (tin sends it so)
        return parsed.astimezone(timezone.utc)
    return parsed.replace(tzinfo=timezone.utc)


BlockHandler = Callable[[bytes], Awaitable["Response"]]


@dataclass(slots=True)
class Response:
    """One answer: a status line, optionally followed by a multi-line block.

    The block is either ``lines`` (unstuffed, no terminators), ``data``
    (already stuffed CRLF text, no final dot) or ``chunks`` (an async
    iterator of stuffed bytes, written as they come so large answers
    stream). ``then_read_block`` asks the server to read a dot-terminated
    block from the client (POST) and answer with what the handler returns;
    ``then_read_line`` the same for one line (a SASL continuation).
    ``start_tls`` asks for a TLS handshake right after this response.
    """

    code: int
    text: str
    lines: list[bytes] | None = None
    data: bytes | None = None
    chunks: AsyncIterator[bytes] | None = None
    then_read_block: BlockHandler | None = None
    then_read_line: BlockHandler | None = None
    start_tls: bool = False
    close: bool = False

    @property
    def multiline(self) -> bool:
        return self.lines is not None or self.data is not None or self.chunks is not None

    def head(self) -> bytes:
        """The status line plus whatever of the block is already in memory."""
        out = status(self.code, self.text)
        if self.lines is not None:
            return out + encode_block(self.lines)
        if self.data is not None:
            return out + self.data + END_OF_BLOCK
        return out
