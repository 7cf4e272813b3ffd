"""Tests for nntpd.article: RFC 5536 format, RFC 5537 injection, RFC 3977 overview."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

import pytest

from nntpd.article import (
    ArticleRejected,
    format_date,
    header_value,
    is_valid_group_name,
    is_valid_message_id,
    parse_headers,
    prepare_article,
    sanitize_overview,
    split_article,
)

NOW = datetime(2025, 7, 1, 12, 0, 0, tzinfo=timezone.utc)
NOW_TEXT = "Tue, 01 Jul 2025 12:00:00 GMT"
HOST = "news.example.org"


def art(*header_lines: str | bytes, body: bytes = b"Hello\r\n") -> bytes:
    """Build raw article bytes from header lines (str or bytes) and a body."""
    lines = [ln.encode() if isinstance(ln, str) else ln for ln in header_lines]
    return b"".join(ln + b"\r\n" for ln in lines) + b"\r\n" + body


BASIC = ("From: Ann <ann@example.com>", "Newsgroups: comp.lang.python", "Subject: Hi")


def prep(raw: bytes) -> object:
    return prepare_article(raw, path_host=HOST, now=NOW)


def rejected(raw: bytes) -> str:
    with pytest.raises(ArticleRejected) as info:
        prep(raw)
    return str(info.value)


# --- split_article ---------------------------------------------------------


def test_split_at_first_empty_line_rfc5536_s2():
    raw = b"A: 1\r\nB: 2\r\n\r\nbody\r\n\r\nmore\r\n"
    assert split_article(raw) == (b"A: 1\r\nB: 2\r\n", b"body\r\n\r\nmore\r\n")


def test_split_without_empty_line_is_all_header_rfc5536_s2():
    assert split_article(b"A: 1\r\nB: 2\r\n") == (b"A: 1\r\nB: 2\r\n", b"")


def test_split_without_empty_line_terminates_last_header_line_rfc5536_s2():
    assert split_article(b"A: 1\r\nB: 2") == (b"A: 1\r\nB: 2\r\n", b"")


def test_split_leading_empty_line_means_empty_header_rfc5536_s2():
    assert split_article(b"\r\nbody\r\n") == (b"", b"body\r\n")


# --- parse_headers / header_value -------------------------------------------


def test_parse_headers_unfolds_continuations_rfc5322_s2_2_3():
    header = b"Subject: one\r\n two\r\n\tthree\r\nFrom: a@b\r\n"
    assert parse_headers(header) == [("Subject", "one two\tthree"), ("From", "a@b")]


def test_parse_headers_keeps_name_case_and_allows_no_space_rfc5322_s2_2():
    assert parse_headers(b"X-FOO:bar\r\n") == [("X-FOO", "bar")]


def test_parse_headers_rejects_line_without_colon_rfc5322_s2_2():
    with pytest.raises(ArticleRejected, match="Malformed header line 2"):
        parse_headers(b"From: a@b\r\nthis is not a header\r\n")


def test_parse_headers_rejects_space_in_name_rfc5322_s2_2():
    with pytest.raises(ArticleRejected, match="Malformed header"):
        parse_headers(b"Subject : hi\r\n")


def test_parse_headers_rejects_empty_name_rfc5322_s2_2():
    with pytest.raises(ArticleRejected, match="Malformed header"):
        parse_headers(b": value\r\n")


def test_parse_headers_rejects_non_ascii_name_rfc5322_s2_2():
    with pytest.raises(ArticleRejected, match="Malformed header"):
        parse_headers("Sübject: x\r\n".encode())


def test_parse_headers_rejects_leading_continuation_rfc5322_s2_2_3():
    with pytest.raises(ArticleRejected, match="continuation"):
        parse_headers(b" folded\r\nFrom: a@b\r\n")


def test_parse_headers_rejects_bare_lf_rfc5536_s2_2():
    """A bare LF would let a poster smuggle a header line past lenient readers."""
    with pytest.raises(ArticleRejected, match="bare CR or LF"):
        parse_headers(b"Subject: hi\nXref: evil 1:1\r\n")


def test_parse_headers_rejects_bare_cr_rfc5536_s2_2():
    with pytest.raises(ArticleRejected, match="bare CR or LF"):
        parse_headers(b"Subject: hi\rthere\r\n")


def test_header_value_is_case_insensitive_and_unfolded_rfc3977_s8_5():
    header = b"Subject: a\r\nX-Long: one\r\n two\r\nFrom: x@y\r\n"
    assert header_value(header, "x-long") == "one two"
    assert header_value(header, "FROM") == "x@y"
    assert header_value(header, "Subject") == "a"


def test_header_value_first_occurrence_and_absent_rfc3977_s8_5():
    header = b"Keywords: one\r\nKeywords: two\r\n"
    assert header_value(header, "Keywords") == "one"
    assert header_value(header, "Summary") is None


def test_header_value_does_not_match_name_suffix_or_body_of_value_rfc3977_s8_5():
    header = b"X-Subject: nope\r\nComment: Subject: nope\r\n"
    assert header_value(header, "Subject") is None


def test_header_value_agrees_with_parse_headers_rfc3977_s8_5():
    header = b"Subject:   caf\xc3\xa9 \r\n\tfolded  \r\nX-Raw: \xe9\r\n"
    parsed = dict(parse_headers(header))
    assert header_value(header, "subject") == parsed["Subject"]
    assert header_value(header, "x-raw") == parsed["X-Raw"]
    assert header_value(header, "x-raw").encode("utf-8", "surrogateescape") == b"\xe9"


def test_header_value_invalid_name_is_none_rfc5322_s2_2():
    assert header_value(b"A: 1\r\n", "A: 1") is None


# --- small validators -------------------------------------------------------


def test_sanitize_overview_replaces_tab_cr_lf_rfc3977_s8_3_2():
    assert sanitize_overview("a\tb\rc\nd\r\ne") == "a b c d  e"


@pytest.mark.parametrize("mid", ["<a@b>", "<a.b.c@example.com>", "<x$y%z@[1.2.3.4]>", "<\"q\"@h>"])
def test_message_id_valid_rfc5536_s3_1_3(mid):
    assert is_valid_message_id(mid)


@pytest.mark.parametrize(
    "mid",
    ["a@b", "<a@b", "a@b>", "<ab>", "<@b>", "<a@>", "<a b@c>", "<a<b@c>", "<a@b>c>", "<a@\u00e9>", "<a\x7f@b>", ""],
)
def test_message_id_invalid_rfc5536_s3_1_3(mid):
    assert not is_valid_message_id(mid)


def test_message_id_length_limit_250_rfc5536_s3_1_3():
    assert is_valid_message_id("<" + "a" * 246 + "@b>")
    assert not is_valid_message_id("<" + "a" * 247 + "@b>")


@pytest.mark.parametrize("name", ["comp.lang.python", "alt.test", "a+b_c-d.x2", "misc", "local.2nd"])
def test_group_name_valid_rfc5536_s3_1_4(name):
    assert is_valid_group_name(name)


@pytest.mark.parametrize(
    "name", ["", ".a", "a.", "a..b", "a b", "a,b", "a/b", "caf\u00e9", "a.123", "2025", "a.*"]
)
def test_group_name_invalid_rfc5536_s3_1_4(name):
    assert not is_valid_group_name(name)


def test_group_name_length_limit_497_rfc5536_s3_1_4():
    assert is_valid_group_name("a" * 497)
    assert not is_valid_group_name("a" * 498)


def test_format_date_is_rfc5322_gmt_rfc5322_s3_3():
    assert format_date(NOW) == NOW_TEXT


def test_format_date_converts_other_zones_to_gmt_rfc5322_s3_3():
    dt = datetime(2025, 7, 1, 14, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    assert format_date(dt) == NOW_TEXT


# --- prepare_article: rule 1, rejections ------------------------------------


@pytest.mark.parametrize("missing", ["From", "Newsgroups", "Subject"])
def test_reject_missing_required_header_rfc5536_s3_1(missing):
    lines = [ln for ln in BASIC if not ln.startswith(missing)]
    assert rejected(art(*lines)) == f"Missing {missing} header"


@pytest.mark.parametrize("empty", ["From", "Newsgroups", "Subject"])
def test_reject_whitespace_only_required_header_rfc5536_s3_1(empty):
    lines = [f"{empty}:  \t " if ln.startswith(empty) else ln for ln in BASIC]
    assert rejected(art(*lines)) == f"Empty {empty} header"


def test_reject_folded_whitespace_only_from_rfc5536_s3_1_2():
    lines = [ln for ln in BASIC if not ln.startswith("From")] + ["From:", "   "]
    assert rejected(art(*lines)) == "Empty From header"


def test_from_without_address_is_accepted_leniently_rfc5536_s3_1_2():
    lines = ["From: just a name" if ln.startswith("From") else ln for ln in BASIC]
    assert prep(art(*lines)).from_ == "just a name"


@pytest.mark.parametrize(
    "line",
    [
        "From: b@c",
        "Subject: again",
        "Newsgroups: alt.test",
        "Message-ID: <x@y>",
        "Date: " + NOW_TEXT,
        "References: <r@s>",
        "Path: a!b",
    ],
)
def test_reject_duplicate_single_instance_header_rfc5536_s3(line):
    name = line.split(":")[0]
    extra = [line.replace(name, name.upper(), 1), line] if name in ("Message-ID", "Date", "References", "Path") else [line]
    reason = rejected(art(*BASIC, *extra))
    assert reason == f"Duplicate {name} header"


def test_duplicate_check_is_case_insensitive_rfc5322_s1_2_2():
    assert rejected(art(*BASIC, "SUBJECT: again")) == "Duplicate Subject header"


def test_repeated_other_headers_are_allowed_rfc5322_s3_6():
    result = prep(art(*BASIC, "Keywords: a", "Keywords: b"))
    assert [v for n, v in result.headers if n == "Keywords"] == ["a", "b"]


def test_reject_bad_group_name_rfc5536_s3_1_4():
    raw = art("From: a@b", "Newsgroups: comp.lang.python, bad..name", "Subject: s")
    reason = rejected(raw)
    assert "Newsgroups" in reason and "bad..name" in reason


def test_reject_rfc2047_encoded_newsgroups_rfc5536_s3_1_4():
    raw = art("From: a@b", "Newsgroups: =?UTF-8?Q?alt.test?=", "Subject: s")
    assert rejected(raw) == "Newsgroups header is RFC 2047-encoded; send plain group names"


def test_reject_newsgroups_without_any_group_rfc5536_s3_1_4():
    raw = art("From: a@b", "Newsgroups: , ,", "Subject: s")
    assert rejected(raw) == "Newsgroups header names no group"


def test_reject_invalid_message_id_rfc5536_s3_1_3():
    reason = rejected(art(*BASIC, "Message-ID: not-an-id"))
    assert reason.startswith("Invalid Message-ID header")


def test_reject_empty_message_id_rfc5536_s3_1_3():
    assert rejected(art(*BASIC, "Message-ID:")).startswith("Invalid Message-ID header")


def test_reject_unparsable_date_rfc5536_s3_1_1():
    assert rejected(art(*BASIC, "Date: yesterday-ish")).startswith("Unparsable Date header")


def test_reject_malformed_header_line_rfc5536_s2_2():
    assert rejected(art(*BASIC, "no colon here")).startswith("Malformed header line 4")


def test_rejection_text_is_ascii_single_line_rfc3977_s3_2():
    """The reason goes on a 441 status line: no CR/LF, no raw 8-bit."""
    reason = rejected(art(*BASIC, b"Date: \xff\x1b[31m nonsense"))
    assert reason.isascii() and "\r" not in reason and "\n" not in reason and "\x1b" not in reason


# --- rule 2: reserved headers are removed -----------------------------------


def test_reserved_headers_removed_any_case_rfc5537_s3_5():
    raw = art(
        "xref: evil alt.test:1",
        *BASIC,
        "INJECTION-INFO: evil",
        "Injection-Date: " + NOW_TEXT,
        "x-poster-role: staff",
        "NNTP-Posting-Host: 1.2.3.4",
        "nntp-posting-date: " + NOW_TEXT,
        "X-Trace: evil",
    )
    result = prep(raw)
    names = [n.lower() for n, _ in result.headers]
    for reserved in ("xref", "injection-info", "x-poster-role", "nntp-posting-host",
                     "nntp-posting-date", "x-trace"):
        assert reserved not in names
    assert names.count("injection-date") == 1
    assert b"evil" not in result.header and b"staff" not in result.header


def test_reserved_header_removed_with_its_continuation_lines_rfc5537_s3_5():
    raw = art(*BASIC, "X-Trace: part one", "\tpart two", "  part three", "Keywords: k")
    result = prep(raw)
    assert b"part" not in result.header
    assert b"\r\nKeywords: k\r\n" in result.header


# --- rule 3: added headers and Path -----------------------------------------


def test_adds_message_id_date_injection_date_at_end_in_order_rfc5537_s3_5():
    result = prep(art(*BASIC))
    lines = result.header.split(b"\r\n")
    assert lines[-1] == b""
    assert lines[-4].startswith(b"Message-ID: <")
    assert lines[-3] == b"Date: " + NOW_TEXT.encode()
    assert lines[-2] == b"Injection-Date: " + NOW_TEXT.encode()


def test_generated_message_id_is_valid_sortable_and_uses_host_rfc5537_s3_5():
    result = prep(art(*BASIC))
    assert is_valid_message_id(result.message_id)
    millis = int(NOW.timestamp() * 1000)
    assert result.message_id.startswith(f"<{millis:x}.")
    assert result.message_id.endswith(f"@{HOST}>")
    assert prep(art(*BASIC)).message_id != result.message_id


def test_keeps_posters_message_id_and_date_rfc5537_s3_5():
    date = "Mon, 30 Jun 2025 08:00:00 +0200"
    result = prep(art(*BASIC, "Message-ID: <mine@example.com>", "Date: " + date))
    assert result.message_id == "<mine@example.com>"
    assert result.date == date
    assert [n for n, _ in result.headers].count("Message-ID") == 1
    assert [n for n, _ in result.headers].count("Date") == 1
    assert result.headers[-1] == ("Injection-Date", NOW_TEXT)


def test_injection_date_always_added_rfc5537_s3_5():
    result = prep(art(*BASIC, "Date: Mon, 30 Jun 2025 08:00:00 +0200"))
    assert header_value(result.header, "Injection-Date") == NOW_TEXT


def test_naive_now_is_taken_as_utc_rfc5537_s3_5():
    result = prepare_article(art(*BASIC), path_host=HOST, now=NOW.replace(tzinfo=None))
    assert result.date == NOW_TEXT


def test_added_date_parses_back_to_now_rfc5322_s3_3():
    assert parsedate_to_datetime(prep(art(*BASIC)).date) == NOW


def test_path_added_as_first_line_when_absent_rfc5537_s3_2_1():
    result = prep(art(*BASIC))
    assert result.header.startswith(f"Path: {HOST}!not-for-mail\r\n".encode())


def test_path_present_gets_host_prepended_in_place_rfc5537_s3_2_1():
    result = prep(art("From: a@b", "PATH: client!not-for-mail", "Newsgroups: alt.test", "Subject: s"))
    assert result.header.startswith(b"From: a@b\r\nPATH: " + HOST.encode() + b"!client!not-for-mail\r\n")
    assert ("PATH", f"{HOST}!client!not-for-mail") in result.headers


# --- rule 4: newsgroups -----------------------------------------------------


def test_newsgroups_split_stripped_deduplicated_in_order_rfc5536_s3_1_4():
    raw = art("From: a@b", "Newsgroups: b.two , a.one,,b.two,\tc.three,a.one", "Subject: s")
    assert prep(raw).newsgroups == ("b.two", "a.one", "c.three")


def test_folded_newsgroups_rfc5536_s3_1_4():
    raw = art("From: a@b", "Newsgroups: a.one,", " b.two", "Subject: s")
    assert prep(raw).newsgroups == ("a.one", "b.two")


# --- rule 5: references and thread key --------------------------------------


def test_references_unfolded_and_whitespace_collapsed_rfc5536_s3_2_10():
    raw = art(*BASIC, "References: <a@x>  <b@x>", " \t<c@x>   ")
    assert prep(raw).references == "<a@x> <b@x> <c@x>"


def test_thread_key_is_first_reference_rfc5537_s3_4_4():
    raw = art(*BASIC, "Message-ID: <c@x>", "References: <a@x> <b@x>")
    assert prep(raw).thread_key == "<a@x>"


def test_thread_key_is_own_id_without_references_rfc5537_s3_4_4():
    result = prep(art(*BASIC, "Message-ID: <root@x>"))
    assert result.thread_key == "<root@x>"
    assert result.references == ""


def test_thread_key_skips_invalid_leading_reference_rfc5536_s3_2_10():
    raw = art(*BASIC, "References: garbage <bad id@x> <root@x>")
    assert prep(raw).thread_key == "<root@x>"


def test_thread_key_without_spaces_between_ids_rfc5536_s3_2_10():
    assert prep(art(*BASIC, "References: <root@x><p@x>")).thread_key == "<root@x>"


def test_thread_key_own_id_when_no_valid_reference_rfc5536_s3_2_10():
    result = prep(art(*BASIC, "Message-ID: <me@x>", "References: junk"))
    assert result.thread_key == "<me@x>"


def test_reply_before_parent_shares_thread_key_rfc5537_s3_4_4():
    """A reply arriving first files under the root id its parent will carry."""
    reply = prep(art(*BASIC, "Message-ID: <reply@x>", "References: <root@x>"))
    root = prep(art(*BASIC, "Message-ID: <root@x>"))
    assert reply.thread_key == root.thread_key == "<root@x>"


# --- rule 6: overview, bytes, lines -----------------------------------------


def test_overview_fields_in_order_rfc3977_s8_3_2():
    raw = art(*BASIC, "Message-ID: <m@x>", "Date: " + NOW_TEXT, "References: <r@x>",
              body=b"one\r\ntwo\r\n")
    r = prep(raw)
    assert r.overview.split("\t") == [
        "Hi", "Ann <ann@example.com>", NOW_TEXT, "<m@x>", "<r@x>", str(r.bytes), "2",
    ]


def test_overview_fields_are_sanitised_rfc3977_s8_3_2():
    raw = art("From: a\tb@c", "Newsgroups: alt.test", "Subject: tab\there", "\tfolded")
    r = prep(raw)
    fields = r.overview.split("\t")
    assert len(fields) == 7
    assert fields[0] == "tab here folded"
    assert fields[1] == "a b@c"


def test_bytes_is_header_plus_blank_line_plus_body_rfc3977_s8_5_2():
    r = prep(art(*BASIC, body=b"abc\r\n"))
    assert r.bytes == len(r.header) + 2 + len(r.body) == len(r.header + b"\r\n" + r.body)


def test_lines_counts_crlf_terminated_lines_rfc3977_s8_5_2():
    assert prep(art(*BASIC, body=b"a\r\n\r\nc\r\n")).lines == 3


def test_lines_counts_final_unterminated_line_rfc3977_s8_5_2():
    assert prep(art(*BASIC, body=b"a\r\nb")).lines == 2


def test_article_without_body_rfc5536_s2():
    raw = b"".join(ln.encode() + b"\r\n" for ln in BASIC)  # no blank line at all
    r = prep(raw)
    assert r.body == b"" and r.lines == 0
    assert r.bytes == len(r.header) + 2
    assert prep(raw + b"\r\n").body == b""


# --- rule 7 and byte-exactness ----------------------------------------------


def test_headers_reflect_final_block_rfc5537_s3_5():
    r = prep(art(*BASIC, "X-Trace: gone"))
    assert tuple(parse_headers(r.header)) == r.headers
    assert r.headers[0] == ("Path", f"{HOST}!not-for-mail")


def test_header_ends_with_crlf_and_has_no_blank_line_rfc5536_s2():
    r = prep(art(*BASIC))
    assert r.header.endswith(b"\r\n") and b"\r\n\r\n" not in r.header


def test_eight_bit_headers_and_body_preserved_byte_exact_rfc5536_s2_1():
    utf8_subject = "Subject: Caf\u00e9 \u2603 na\u00efve".encode()
    latin1_from = b"From: Ren\xe9 <rene@example.fr>"
    odd = b"X-Odd:  \xff\xfe trailing \t"
    folded = [b"X-Folded: first", b"\t  second \xe9"]
    body = b"Gr\xc3\xbc\xc3\x9fe\r\nLatin \xe9\xe0\r\n\r\n.dot\r\nno newline \xff"
    lines = [b"Newsgroups: de.test", utf8_subject, latin1_from, odd, *folded]
    r = prep(art(*lines, body=body))
    kept = b"".join(ln + b"\r\n" for ln in lines)
    assert r.header == (f"Path: {HOST}!not-for-mail\r\n".encode() + kept
                        + b"Message-ID: " + r.message_id.encode() + b"\r\n"
                        + b"Date: " + NOW_TEXT.encode() + b"\r\n"
                        + b"Injection-Date: " + NOW_TEXT.encode() + b"\r\n")
    assert r.body == body
    assert r.from_.encode("utf-8", "surrogateescape") == b"Ren\xe9 <rene@example.fr>"
    assert r.subject == "Caf\u00e9 \u2603 na\u00efve"


def test_crlf_in_body_preserved_exactly_rfc5536_s2():
    body = b"\r\n\r\nline\r\n\r\n\r\nend\r\n\r\n"
    r = prep(art(*BASIC, body=body))
    assert r.body == body
    assert r.lines == 7


def test_control_and_approved_exposed_rfc5537_s5():
    r = prep(art(*BASIC, "Control: cancel <x@y>", "Approved: mod@example.com"))
    assert r.control == "cancel <x@y>"
    assert r.approved == "mod@example.com"
    assert prep(art(*BASIC)).control is None and prep(art(*BASIC)).approved is None


# --- speed ------------------------------------------------------------------


def test_prepare_article_is_fast_enough_for_post_rfc5537_s3_5():
    raws = [
        art(*BASIC, f"Message-ID: <m{i}@x>", "References: <root@x> <p@x>",
            "User-Agent: test", body=b"line\r\n" * 10)
        for i in range(10_000)
    ]
    start = time.perf_counter()
    for raw in raws:
        prep(raw)
    assert time.perf_counter() - start < 2.0


def test_date_more_than_24_hours_ahead_is_rejected_rfc5537_s3_5():
    """RFC 5537 3.5: an injecting agent SHOULD reject a Date over 24 hours in the future."""
    from datetime import timedelta

    from nntpd.article import ArticleRejected, format_date, prepare_article

    now = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
    ahead = format_date(now + timedelta(hours=25))
    raw = f"From: a@b.c\r\nNewsgroups: x.y\r\nSubject: s\r\nDate: {ahead}\r\n\r\nbody\r\n".encode()
    with pytest.raises(ArticleRejected, match="24 hours"):
        prepare_article(raw, path_host="h", now=now)
    soon = format_date(now + timedelta(hours=23))
    ok = raw.replace(ahead.encode(), soon.encode())
    assert prepare_article(ok, path_host="h", now=now).date == soon


# --- several mailboxes in From (RFC 5322 3.6.2) and relayed articles ------------


def test_account_post_with_several_from_mailboxes_gets_sender_rfc5322_s3_6_2():
    """RFC 5322 3.6.2: a From with more than one mailbox needs a Sender, even when the first
    one is the account's own address; one mailbox that is the account's needs none."""
    from nntpd.article import PosterIdentity

    me = PosterIdentity("ann@example.com", "Ann")
    for from_ in ("ann@example.com, bob@example.org", "Ann <ann@example.com>, \"Bob, B\" <bob@example.org>"):
        raw = art(f"From: {from_}", "Newsgroups: a.b", "Subject: s")
        senders = [v for n, v in prepare_article(raw, path_host=HOST, now=NOW, identity=me).headers
                   if n == "Sender"]
        assert len(senders) == 1 and "ann@example.com" in senders[0], senders
    raw = art('From: "Doe, Ann" <ann@example.com>', "Newsgroups: a.b", "Subject: s")
    assert all(n != "Sender" for n, _ in prepare_article(raw, path_host=HOST, now=NOW, identity=me).headers)


def test_anonymous_post_with_several_from_mailboxes_needs_sender_rfc5322_s3_6_2():
    """RFC 5322 3.6.2: no identity to vouch with, so the poster must name the sender."""
    several = ("From: ann@example.com, bob@example.org", "Newsgroups: a.b", "Subject: s")
    assert "Sender" in rejected(art(*several))
    assert "Sender" in rejected(art(*several, "Sender: "))
    assert ("Sender", "ann@example.com") in prep(art(*several, "Sender: ann@example.com")).headers
    prep(art("From: Doe, John <john@example.com>", "Newsgroups: a.b", "Subject: s"))  # one mailbox


def test_relayed_article_is_injected_here_rfc5537_s3_5():
    """IHAVE from a non-peer: reserved headers and Sender are dropped and Injection-Date is
    ours, as for a POST; Message-ID, Date and other headers are kept, Path is extended."""
    raw = art("Path: far.example!not-for-mail", *BASIC, "Message-ID: <r@x>",
              "Date: Mon, 30 Jun 2025 12:00:00 GMT", "Injection-Info: far.example; posting-account=boss",
              "Injection-Date: Mon, 30 Jun 2025 12:00:01 GMT", "Sender: staff@example.com",
              "X-Poster-Role: staff", "Xref: far.example comp.lang.python:9", "Cancel-Lock: sha1:abc=")
    article = prepare_article(raw, path_host=HOST, now=NOW, relayed=True)
    names = [n for n, _ in article.headers]
    assert not {"Injection-Info", "Sender", "X-Poster-Role", "Xref"} & set(names)
    assert ("Injection-Date", NOW_TEXT) in article.headers and names.count("Injection-Date") == 1
    assert ("Path", f"{HOST}!far.example!not-for-mail") in article.headers
    assert (article.message_id, article.date) == ("<r@x>", "Mon, 30 Jun 2025 12:00:00 GMT")
    assert ("Cancel-Lock", "sha1:abc=") in article.headers
    for missing in ("Message-ID", "Date"):
        kept = [ln for ln in (*BASIC, "Message-ID: <r@x>", "Date: Mon, 30 Jun 2025 12:00:00 GMT")
                if not ln.startswith(missing)]
        with pytest.raises(ArticleRejected, match=missing):
            prepare_article(art(*kept), path_host=HOST, now=NOW, relayed=True)
    several = art("From: a@example.com, b@example.com", "Newsgroups: a.b", "Subject: s",
                  "Message-ID: <s@x>", "Date: Mon, 30 Jun 2025 12:00:00 GMT", "Sender: a@example.com")
    with pytest.raises(ArticleRejected, match="relayed Sender"):
        prepare_article(several, path_host=HOST, now=NOW, relayed=True)
