"""Parse, validate and inject an article received by POST.

Article format is RFC 5536, injection RFC 5537, overview RFC 3977 8.3.2.
This sits on the POST hot path, so header lines are split by hand rather
than with the ``email`` parser. Stored bytes stay byte-exact: a header line
is only ever kept verbatim, dropped, or (for Path) rewritten as a whole.
Where a str is needed, bytes decode as UTF-8 with ``surrogateescape`` so
that encoding back the same way restores the original octets.

``prepare_article(raw, path_host=..., now=...)`` is the entry point; it
raises ``ArticleRejected`` whose text the server sends after 441.
"""

from __future__ import annotations

import math
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime, formataddr, getaddresses, parseaddr, parsedate_to_datetime
from functools import lru_cache

__all__ = [
    "ArticleRejected",
    "PreparedArticle",
    "split_article",
    "parse_headers",
    "header_value",
    "sanitize_overview",
    "is_valid_message_id",
    "is_valid_group_name",
    "format_date",
    "prepare_article",
    "PosterIdentity",
    "TRUSTED_ROLES",
]

CRLF = b"\r\n"
MAX_MESSAGE_ID = 250  # RFC 5536 3.1.3
MAX_DATE_AHEAD = timedelta(hours=24)
MAX_GROUP_NAME = 497  # RFC 3977 3.1 argument limit, RFC 5536 3.1.4

# Headers only the server may set (RFC 5537 3.5); a poster's copies are dropped.
RESERVED_HEADERS = frozenset({
    "xref", "injection-info", "injection-date", "x-poster-role",
    "nntp-posting-host", "nntp-posting-date", "x-trace",
})
REQUIRED_HEADERS = ("From", "Newsgroups", "Subject")  # RFC 5536 3.1
UNIQUE_HEADERS = ("From", "Subject", "Newsgroups", "Message-ID", "Date", "References", "Path")
_UNIQUE_LOWER = {name.lower(): name for name in UNIQUE_HEADERS}

_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 2.2: printable ASCII except ':'
_MESSAGE_ID = re.compile(r"<[!-;=?-~]+@[!-;=?-~]+>")  # printable, no '<' '>' inside
_MESSAGE_ID_CANDIDATE = re.compile(r"<[^<>\s]*>")
_GROUP_NAME = re.compile(r"[A-Za-z0-9+_-]+(?:\.[A-Za-z0-9+_-]+)*")
_WSP_RUN = re.compile(r"[ \t]+")


TRUSTED_ROLES = frozenset({"staff", "mvp"})


@dataclass(frozen=True, slots=True)
class PosterIdentity:
    """An authenticated poster as the server knows it from the account, never from headers."""

    email: str
    display_name: str = ""
    role: str | None = None  # "staff", "mvp" or None for members


class ArticleRejected(Exception):
    """Why a POST is refused; the server answers 441 with str(exc)."""


@dataclass(frozen=True, slots=True)
class PreparedArticle:
    message_id: str
    newsgroups: tuple[str, ...]
    header: bytes
    body: bytes
    subject: str
    from_: str
    date: str
    references: str
    thread_key: str
    bytes: int
    lines: int
    overview: str
    headers: tuple[tuple[str, str], ...]
    control: str | None
    approved: str | None


def _quote(text: str, limit: int = 60) -> str:
    """Client text for an error line: short and ASCII, so it cannot break the status line."""
    return ascii(text[:limit] + ("..." if len(text) > limit else ""))


def split_article(raw: bytes) -> tuple[bytes, bytes]:
    """Split at the first empty line -> (header block without the blank line, each line CRLF-terminated; body). No empty line: all header, body b""."""
    if raw.startswith(CRLF):
        return b"", raw[2:]
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        if raw and not raw.endswith(CRLF):
            raw += CRLF
        return raw, b""
    return raw[: end + 2], raw[end + 4 :]


def _fields(header: bytes) -> list[tuple[str, str, bytes]]:
    """(name, unfolded value, raw field bytes incl. continuations and CRLFs).

    The raw bytes let prepare_article drop or keep a whole field verbatim.
    Bytes and decoded text split into the same lines because CR and LF are
    ASCII and never part of a multi-octet or escaped sequence.
    """
    text = header.decode("utf-8", "surrogateescape")
    pairs = text.count("\r\n")
    if text.count("\r") != pairs or text.count("\n") != pairs:
        raise ArticleRejected("Malformed header: bare CR or LF in a header line")
    lines = text.split("\r\n")
    raw_lines = header.split(CRLF)
    if lines[-1] == "":
        lines.pop()
        raw_lines.pop()
        raw_lines = [ln + CRLF for ln in raw_lines]
    else:
        raw_lines = [ln + CRLF for ln in raw_lines[:-1]] + [raw_lines[-1]]
    out: list[tuple[str, str, bytes]] = []
    name = ""
    parts: list[str] = []
    raws: list[bytes] = []
    for number, (line, raw) in enumerate(zip(lines, raw_lines), 1):
        if line[:1] in (" ", "\t"):
            if not raws:
                raise ArticleRejected(f"Malformed header: continuation line {number} before any header")
            parts.append(line)
            raws.append(raw)
            continue
        colon = line.find(":")
        if colon <= 0 or not _NAME.fullmatch(line, 0, colon):
            raise ArticleRejected(f"Malformed header line {number}: {_quote(line)}")
        if raws:
            out.append((name, "".join(parts).strip(" \t"), b"".join(raws)))
        name, parts, raws = line[:colon], [line[colon + 1 :]], [raw]
    if raws:
        out.append((name, "".join(parts).strip(" \t"), b"".join(raws)))
    return out


def parse_headers(header: bytes) -> list[tuple[str, str]]:
    """Header lines -> (name, unfolded value). Continuation lines (starting with space/tab) are unfolded (CRLF removed, whitespace kept). Raises ArticleRejected for a line that is neither 'Name: value' (name = printable ASCII 33-126 except ':') nor a continuation, or a continuation before any header.

    Leading and trailing SP/TAB of the value are not part of it (RFC 5322 2.2).
    A header line containing a bare CR or LF is also rejected: stored as is,
    it could read as an extra header line to a lenient client.
    """
    return [(name, value) for name, value, _ in _fields(header)]


@lru_cache(maxsize=256)
def _header_pattern(name: str) -> re.Pattern[bytes]:
    escaped = re.escape(name.encode("ascii"))
    return re.compile(rb"(?:\A|(?<=\n))" + escaped + rb":([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)", re.IGNORECASE)


def header_value(header: bytes, name: str) -> str | None:
    """Value of the first header `name` (case-insensitive) in a header block, unfolded; None if absent. Used by HDR/XHDR/XPAT for non-overview headers, so make it cheap (no full parse if possible).

    One regex search over the stored bytes; only the match is decoded.
    Assumes a block that passed prepare_article (no bare CR/LF).
    """
    if not _NAME.fullmatch(name):
        return None
    match = _header_pattern(name).search(header)
    if match is None:
        return None
    value = match.group(1).replace(CRLF, b"")
    return value.decode("utf-8", "surrogateescape").strip(" \t")


def sanitize_overview(value: str) -> str:
    """RFC 3977 8.3.2: replace each TAB, CR, LF by a single space (after unfolding)."""
    return value.replace("\t", " ").replace("\r", " ").replace("\n", " ")


def is_valid_message_id(value: str) -> bool:
    """RFC 3977 3.6 / RFC 5536 3.1.3: '<' id-left '@' id-right '>', printable ASCII 33-126 only, no '<' '>' inside, total <= 250 octets."""
    return len(value) <= MAX_MESSAGE_ID and _MESSAGE_ID.fullmatch(value) is not None


def is_valid_group_name(name: str) -> bool:
    """RFC 5536 3.1.4: dot-separated non-empty components of [A-Za-z0-9+_-], <= 497 octets.

    A component made only of digits is refused (the RFC says SHOULD NOT):
    such names collide with article numbers in some software. Reserved
    names such as 'all' or 'ctl' are left to group administration.
    """
    if len(name) > MAX_GROUP_NAME or _GROUP_NAME.fullmatch(name) is None:
        return False
    return not any(component.isdigit() for component in name.split("."))


def _utc(dt: datetime) -> datetime:
    """Naive datetimes are taken as UTC: the server runs in UTC."""
    if dt.tzinfo is None:
        return dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def format_date(dt: datetime) -> str:
    """RFC 5322 3.3 date in GMT, e.g. 'Tue, 01 Jul 2025 12:00:00 GMT'."""
    return _format_second(math.floor(_utc(dt).timestamp()))


@lru_cache(maxsize=4)
def _format_second(timestamp: int) -> str:
    """Every POST in the same second gets the same Injection-Date: format it once."""
    return format_datetime(datetime.fromtimestamp(timestamp, timezone.utc), usegmt=True)


def _parse_date(value: str) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed is not None and parsed.tzinfo is None:  # "-0000": UTC, zone unknown
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed


def _count_lines(body: bytes) -> int:
    lines = body.count(CRLF)
    return lines + 1 if body and not body.endswith(CRLF) else lines


def _thread_key(references: str, message_id: str) -> str:
    """The thread root: first valid id in References, so a reply that arrives
    before its parent already files under the root's id (RFC 5537 3.4.4)."""
    for match in _MESSAGE_ID_CANDIDATE.finditer(references):
        if is_valid_message_id(match.group()):
            return match.group()
    return message_id


def _mailboxes(from_: str) -> list[str]:
    """The addresses From names; more than one needs a Sender (RFC 5322 3.6.2).

    Only a From with a comma can name several, so the usual one skips the
    list parser. Entries without '@' are not mailboxes: an unquoted
    'Doe, John <j@example.com>' names one.
    """
    if "," not in from_:
        return [parseaddr(from_)[1]]
    return [address for _, address in getaddresses([from_]) if "@" in address]


def _field(name: str, value: str) -> tuple[str, str, bytes]:
    return name, value, f"{name}: {value}\r\n".encode("utf-8", "surrogateescape")


def _sender(identity: PosterIdentity) -> str:
    """The account as a mailbox (RFC 5322 3.4) on one line: a name with specials is
    quoted, a non-ASCII one becomes RFC 2047 encoded-words (at most 75 characters
    each), and a control character from an old account record never splits the field."""
    name = re.sub(r"[\x00-\x1f\x7f]+", " ", identity.display_name).strip()
    if not name.isascii():
        from email.header import Header
        name = Header(name, "utf-8", maxlinelen=75).encode(linesep=" ")
    return formataddr((name, re.sub(r"[\x00-\x20\x7f]", "", identity.email)))


def prepare_article(
    raw: bytes,
    *,
    path_host: str,
    now: datetime,
    identity: PosterIdentity | None = None,
    max_headers: int = 0,
    max_header_bytes: int = 0,
    relayed: bool = False,
) -> PreparedArticle:
    """Validate a POSTed article (RFC 5536) and inject it (RFC 5537 3.5).

    Rejects what cannot be stored safely or threaded; drops headers only the
    server may set; adds Message-ID, Date, Injection-Date and the Path entry.
    For an authenticated poster (``identity``) it also vouches for who
    posted: a Sender with the account's address when From names someone
    else (a client's own Sender is dropped), and ``X-Poster-Role`` for staff
    and MVP accounts. Every other header line is kept byte for byte.
    ``max_headers``/``max_header_bytes`` (0 = no limit) bound the header block.

    ``relayed`` is for IHAVE from a sender that is not a trusted peer (no peer
    is trusted before [[peers]] exists): such an article is injected here as
    a POST is (every reserved header and any Sender dropped, Injection-Date
    added), so nothing it carries looks vouched for by an earlier server;
    but its Message-ID and Date are required and kept. A trusted peer's
    articles would keep their injection headers (RFC 5537 3.6).

    A From naming several mailboxes needs a Sender: for an account the server
    adds its own; an anonymous poster must send one (a relayed one is dropped),
    else the article is refused.
    """
    if b"\x00" in raw:
        raise ArticleRejected("Article contains a NUL octet (RFC 3977 3.6)")
    if raw.count(b"\r") != raw.count(CRLF):
        raise ArticleRejected("Article contains a CR that does not end a line (RFC 3977 3.6)")
    header, body = split_article(raw)
    if max_header_bytes and len(header) > max_header_bytes:
        raise ArticleRejected(f"Header block too large (max {max_header_bytes} bytes)")
    fields = _fields(header)
    if max_headers and len(fields) > max_headers:
        raise ArticleRejected(f"Too many header fields (max {max_headers})")

    first: dict[str, str] = {}
    seen: set[str] = set()
    for name, value, _ in fields:
        key = name.lower()
        if key in seen:
            if key in _UNIQUE_LOWER:
                raise ArticleRejected(f"Duplicate {_UNIQUE_LOWER[key]} header")
        else:
            seen.add(key)
            first[key] = value

    for name in REQUIRED_HEADERS:
        value = first.get(name.lower())
        if value is None:
            raise ArticleRejected(f"Missing {name} header")
        if not value.strip():
            raise ArticleRejected(f"Empty {name} header")

    newsgroups_value = first["newsgroups"]
    if "=?" in newsgroups_value:
        raise ArticleRejected("Newsgroups header is RFC 2047-encoded; send plain group names")
    groups: list[str] = []
    for group in newsgroups_value.split(","):
        group = group.strip(" \t")
        if not group or group in groups:
            continue
        if not is_valid_group_name(group):
            raise ArticleRejected(f"Invalid group name {_quote(group)} in Newsgroups header")
        groups.append(group)
    if not groups:
        raise ArticleRejected("Newsgroups header names no group")

    if relayed:
        for name in ("Message-ID", "Date"):
            if name.lower() not in first:
                raise ArticleRejected(f"Missing {name} header")
    message_id = first.get("message-id")
    if message_id is not None and not is_valid_message_id(message_id):
        raise ArticleRejected(f"Invalid Message-ID header: {_quote(message_id)}")
    date = first.get("date")
    if date is not None:
        parsed = _parse_date(date)
        if parsed is None:
            raise ArticleRejected(f"Unparsable Date header: {_quote(date)}")
        if parsed > _utc(now) + MAX_DATE_AHEAD:
            # RFC 5537 3.5: an injecting agent should refuse dates over 24 hours ahead.
            raise ArticleRejected("Date header is more than 24 hours in the future")

    final: list[tuple[str, str, bytes]] = []
    for field in fields:
        key = field[0].lower()
        if key in RESERVED_HEADERS or (
            (identity is not None or relayed) and key == "sender"
        ):
            continue
        if key == "path":
            field = _field(field[0], f"{path_host}!{field[1] or 'not-for-mail'}")
        final.append(field)
    if "path" not in first:
        final.insert(0, _field("Path", f"{path_host}!not-for-mail"))
    now = _utc(now)
    if message_id is None:
        message_id = f"<{int(now.timestamp() * 1000):x}.{secrets.token_hex(6)}@{path_host}>"
        final.append(_field("Message-ID", message_id))
    injection_date = format_date(now)
    if date is None:
        date = injection_date
        final.append(_field("Date", date))
    final.append(_field("Injection-Date", injection_date))
    if identity is None and (relayed or not first.get("sender", "").strip()):
        if "," in first["from"] and len(_mailboxes(first["from"])) > 1:
            raise ArticleRejected("From names several mailboxes, so a Sender header must name the one who"
                                  " posted (RFC 5322 3.6.2)" + ("; a relayed Sender is not kept" if relayed else ""))
    if identity is not None:
        mailboxes = _mailboxes(first["from"])
        if len(mailboxes) != 1 or mailboxes[0].lower() != identity.email.lower():
            final.append(_field("Sender", _sender(identity)))
        if identity.role in TRUSTED_ROLES:
            final.append(_field("X-Poster-Role", identity.role))

    new_header = b"".join(raw_field for _, _, raw_field in final)
    size = len(new_header) + 2 + len(body)
    lines = _count_lines(body)
    references = _WSP_RUN.sub(" ", first.get("references", "")).strip(" ")
    subject, from_ = first["subject"], first["from"]
    overview = "\t".join(
        sanitize_overview(v)
        for v in (subject, from_, date, message_id, references, str(size), str(lines))
    )
    return PreparedArticle(
        message_id=message_id,
        newsgroups=tuple(groups),
        header=new_header,
        body=body,
        subject=subject,
        from_=from_,
        date=date,
        references=references,
        thread_key=_thread_key(references, message_id),
        bytes=size,
        lines=lines,
        overview=overview,
        headers=tuple((name, value) for name, value, _ in final),
        control=first.get("control"),
        approved=first.get("approved"),
    )

