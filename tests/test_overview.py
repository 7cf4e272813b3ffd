"""OVER/XOVER, HDR/XHDR/XPAT and LIST OVERVIEW.FMT / HEADERS over TCP.

RFC 3977 sections 8.3-8.6; RFC 2980 2.6 (XHDR), 2.8 (XOVER), 2.9 (XPAT).
"""

from __future__ import annotations

import pytest

from nntp_helpers import post_ok, unique_id, unstuff

OVERVIEW_7 = ["Subject:", "From:", "Date:", "Message-ID:", "References:"]


async def three(client) -> list[str]:
    """Three articles in local.test: 1 and 3 carry X-Extra, 3 replies to 1."""
    first = await post_ok(client, subject="Alpha needle", extra=("X-Extra: one",),
                          body=b"a\r\nb\r\nc\r\n")
    second = await post_ok(client, subject="Beta", from_="Bob <bob@example.com>",
                           body=b"only\r\n")
    third = await post_ok(client, subject="Re: Alpha needle",
                          extra=("X-Extra: three", f"References: {first}"), body=b"x\r\ny\r\n")
    return [first, second, third]


async def over(client, command: str) -> list[list[str]]:
    status = await client.cmd(command)
    assert status.startswith("224"), status
    return [line.split("\t") for line in await client.block()]


async def article_size(client, mid: str) -> tuple[int, int]:
    """(octets of the article as ARTICLE returns it, lines of the body as BODY returns it)."""
    assert (await client.cmd(f"ARTICLE {mid}")).startswith("220")
    article = unstuff(await client.raw_block())
    assert (await client.cmd(f"BODY {mid}")).startswith("222")
    body = unstuff(await client.raw_block())
    return len(article), body.count(b"\r\n")


# --- OVER / XOVER ------------------------------------------------------------


async def test_over_range_gives_one_line_per_article_in_order(client):
    """RFC 3977 8.3.2: 224, one line per article in the range, sorted by number."""
    ids = await three(client)
    await client.cmd("GROUP local.test")
    rows = await over(client, "OVER 1-3")
    assert [r[0] for r in rows] == ["1", "2", "3"]
    assert [r[4] for r in rows] == ids


def check_row(row: list[str], fmt: list[str], number: int) -> None:
    """One OVER line against LIST OVERVIEW.FMT (RFC 3977 8.3.2, 8.4.2)."""
    assert row[0] == str(number)
    # The first 8 fields: number, 5 headers, :bytes, :lines; then Xref:full as the 8th overview field.
    assert len(row) >= 9, row
    assert row[6].isdigit() and row[7].isdigit()
    assert row[8] == f"Xref: test.example local.test:{number}"
    # Any further field is one LIST OVERVIEW.FMT names, given in full ("Name: value") or empty;
    # trailing empty fields may be omitted.
    assert len(row) <= 1 + len(fmt), (row, fmt)
    for field, name in zip(row[9:], fmt[8:]):
        assert name.lower().endswith(":full"), fmt
        assert field == "" or field.lower().startswith(name[: -len("full")].lower() + " "), (field, name)


async def test_over_fields_are_the_seven_then_xref_full(client):
    """RFC 3977 8.3.2 / 8.4.2: number, Subject, From, Date, Message-ID, References, :bytes, :lines, then Xref:full."""
    ids = await three(client)
    fmt = await list_lines(client, "LIST OVERVIEW.FMT")
    assert fmt[7].lower() == "xref:full"
    await client.cmd("GROUP local.test")
    rows = await over(client, "OVER 1-3")
    for n, row in enumerate(rows, 1):
        check_row(row, fmt, n)
    number, subject, from_, date, mid, refs = rows[2][:6]
    assert (number, subject, from_, mid, refs) == ("3", "Re: Alpha needle", "Ann <ann@example.com>", ids[2], ids[0])
    assert date
    assert rows[1][5] == ""  # no References header: empty field


async def test_over_lines_metadata_is_body_line_count(client):
    """RFC 3977 8.1.2: :lines MUST equal the number of lines BODY returns."""
    ids = await three(client)
    await client.cmd("GROUP local.test")
    rows = await over(client, "OVER 1-3")
    for row, mid in zip(rows, ids):
        _, body_lines = await article_size(client, mid)
        assert int(row[7]) == body_lines


async def test_over_bytes_metadata_equals_article_size(client):
    """RFC 3977 8.1.1: :bytes is the octets ARTICLE sends, the Xref line added on the way out included."""
    ids = await three(client)
    await client.cmd("GROUP local.test")
    rows = await over(client, "OVER 1-3")
    for row, mid in zip(rows, ids):
        octets, _ = await article_size(client, mid)
        assert int(row[6]) == octets


async def test_over_open_range(client):
    """RFC 3977 8.3.2: 'n-' means article n and all following."""
    await three(client)
    await client.cmd("GROUP local.test")
    assert [r[0] for r in await over(client, "OVER 2-")] == ["2", "3"]


async def test_over_single_number(client):
    """RFC 3977 8.3.2: a single number gives exactly one line."""
    ids = await three(client)
    await client.cmd("GROUP local.test")
    rows = await over(client, "OVER 2")
    assert len(rows) == 1 and rows[0][0] == "2" and rows[0][4] == ids[1]


async def test_over_current_article(client):
    """RFC 3977 8.3.2 (third form): no argument uses the current article number."""
    ids = await three(client)
    await client.cmd("GROUP local.test")
    assert [r[0] for r in await over(client, "OVER")] == ["1"]
    await client.cmd("STAT 3")
    rows = await over(client, "OVER")
    assert [(r[0], r[4]) for r in rows] == [("3", ids[2])]


async def test_over_message_id_without_group_uses_zero(client):
    """RFC 3977 8.3.2 (first form, OVER MSGID): the article number field is 0."""
    ids = await three(client)
    rows = await over(client, f"OVER {ids[1]}")
    assert len(rows) == 1
    assert rows[0][0] == "0"
    assert rows[0][4] == ids[1]
    assert rows[0][8] == "Xref: test.example local.test:2"


async def test_over_message_id_with_group_is_zero_or_number(client):
    """RFC 3977 8.3.2: by message-id the number is 0, or MAY be its number in the selected group."""
    ids = await three(client)
    await client.cmd("GROUP local.test")
    (row,) = await over(client, f"OVER {ids[2]}")
    assert row[0] in ("0", "3")


async def test_over_unknown_message_id_is_430(client):
    """RFC 3977 8.3.1: no article with that message-id gives 430."""
    await three(client)
    assert (await client.cmd(f"OVER {unique_id('none')}")).startswith("430")


@pytest.mark.parametrize("rng", ["10-20", "4", "50-", "3-1"])
async def test_over_empty_range_is_423(client, rng):
    """RFC 3977 8.3.1: no articles in the range gives 423."""
    await three(client)
    await client.cmd("GROUP local.test")
    assert (await client.cmd(f"OVER {rng}")).startswith("423")


@pytest.mark.parametrize("command", ["OVER", "OVER 1-3", "XOVER", "XOVER 1-3"])
async def test_over_without_group_is_412(client, command):
    """RFC 3977 8.3.1 / RFC 2980 2.8: no group selected gives 412 (slrn probes XOVER this way, never 500)."""
    await three(client)
    assert (await client.cmd(command)).startswith("412")


async def test_over_current_article_invalid_is_420(server, client):
    """RFC 3977 8.3.1 (third form): an invalid current article gives 420."""
    await server.store.create_group("local.empty")
    await client.cmd("GROUP local.empty")
    assert (await client.cmd("OVER")).startswith("420")


async def test_xover_range_same_as_over(client):
    """RFC 2980 2.8: XOVER [range] returns the same overview lines (224)."""
    await three(client)
    await client.cmd("GROUP local.test")
    assert await over(client, "XOVER 1-3") == await over(client, "OVER 1-3")
    assert await over(client, "XOVER 2-") == await over(client, "OVER 2-")


async def test_overview_field_unfolded_and_tabs_replaced(client):
    """RFC 3977 8.3.2: CRLF pairs removed, each TAB replaced with a space, in every field."""
    mid = unique_id()
    raw = (
        b"From: Ann <ann@example.com>\r\nNewsgroups: local.test\r\n"
        b"Subject: folded\r\n\tsubject\twith tab\r\nMessage-ID: " + mid.encode() + b"\r\n\r\nbody\r\n"
    )
    assert (await client.post(raw)).startswith("240")
    (row,) = await over(client, f"OVER {mid}")
    assert len(row) >= 9
    assert row[1] == "folded subject with tab"


# --- HDR (8.5) ---------------------------------------------------------------


async def hdr(client, command: str, code: str = "225") -> list[tuple[str, str]]:
    status = await client.cmd(command)
    assert status.startswith(code), status
    out = []
    for line in await client.block():
        key, _, value = line.partition(" ")
        out.append((key, value))
    return out


async def test_hdr_subject_range(client):
    """RFC 3977 8.5.2: 225, then 'number value' for each article in the range."""
    await three(client)
    await client.cmd("GROUP local.test")
    assert await hdr(client, "HDR Subject 1-3") == [
        ("1", "Alpha needle"), ("2", "Beta"), ("3", "Re: Alpha needle"),
    ]


async def test_hdr_name_is_case_insensitive(client):
    """RFC 3977 8.5.2: header names are not case sensitive."""
    await three(client)
    await client.cmd("GROUP local.test")
    assert await hdr(client, "HDR sUbJeCt 1-3") == await hdr(client, "HDR Subject 1-3")


async def test_hdr_message_id_range(client):
    """RFC 3977 8.5.2: HDR Message-ID gives each article's id."""
    ids = await three(client)
    await client.cmd("GROUP local.test")
    assert await hdr(client, "HDR Message-ID 1-") == [("1", ids[0]), ("2", ids[1]), ("3", ids[2])]


async def test_hdr_lines_and_bytes_metadata(client):
    """RFC 3977 8.5.2 with 8.1.1/8.1.2: :lines is the body line count; :bytes matches OVER."""
    await three(client)
    await client.cmd("GROUP local.test")
    assert await hdr(client, "HDR :lines 1-3") == [("1", "3"), ("2", "1"), ("3", "2")]
    rows = await over(client, "OVER 1-3")
    assert await hdr(client, "HDR :bytes 1-3") == [(r[0], r[6]) for r in rows]


async def test_hdr_header_present_in_some_articles(client):
    """RFC 3977 8.5.2: an article without the header still gets a line, with an empty value."""
    await three(client)
    await client.cmd("GROUP local.test")
    assert await hdr(client, "HDR X-Extra 1-3") == [("1", "one"), ("2", ""), ("3", "three")]


async def test_hdr_header_absent_everywhere(client):
    """RFC 3977 8.5.2: a header no article has gives one empty line per article."""
    await three(client)
    await client.cmd("GROUP local.test")
    assert await hdr(client, "HDR X-Nowhere 1-3") == [("1", ""), ("2", ""), ("3", "")]


async def test_hdr_message_id_form_uses_zero(client):
    """RFC 3977 8.5.2: by message-id (no group selected) the number is 0."""
    ids = await three(client)
    assert await hdr(client, f"HDR Subject {ids[1]}") == [("0", "Beta")]
    assert await hdr(client, f"HDR X-Extra {ids[2]}") == [("0", "three")]


async def test_hdr_current_article(client):
    """RFC 3977 8.5.2 (third form): no range uses the current article."""
    await three(client)
    await client.cmd("GROUP local.test")
    await client.cmd("STAT 2")
    assert await hdr(client, "HDR Subject") == [("2", "Beta")]


async def test_hdr_errors(server, client):
    """RFC 3977 8.5.1: 412 without a group, 423 for an empty range, 430 unknown id, 420 no current article."""
    await three(client)
    assert (await client.cmd("HDR Subject 1-3")).startswith("412")
    assert (await client.cmd(f"HDR Subject {unique_id('none')}")).startswith("430")
    await client.cmd("GROUP local.test")
    assert (await client.cmd("HDR Subject 7-9")).startswith("423")
    await server.store.create_group("local.empty")
    await client.cmd("GROUP local.empty")
    assert (await client.cmd("HDR Subject")).startswith("420")


async def test_hdr_folded_header_unfolded_and_tabs_replaced(client):
    """RFC 3977 8.5.2: header contents have CRLF pairs removed, then each TAB replaced by a space."""
    mid = await post_ok(client, extra=("X-Folded: first\tpart", "\tsecond part", " third"))
    await client.cmd("GROUP local.test")
    assert await hdr(client, "HDR X-Folded 1") == [("1", "first part second part third")]
    assert await hdr(client, f"HDR X-Folded {mid}") == [("0", "first part second part third")]


async def test_hdr_first_occurrence_only(client):
    """RFC 3977 8.5.2: a header occurring more than once gives the content of the first occurrence."""
    await post_ok(client, extra=("X-Dup: first", "X-Other: between", "X-Dup: second"))
    await client.cmd("GROUP local.test")
    assert await hdr(client, "HDR X-Dup 1-") == [("1", "first")]


async def test_hdr_xref(client):
    """RFC 3977 8.5.2 with RFC 5537 3.2: HDR Xref gives the Xref the server shows in HEAD."""
    await three(client)
    await client.cmd("GROUP local.test")
    assert await hdr(client, "HDR Xref 2-3") == [
        ("2", "test.example local.test:2"), ("3", "test.example local.test:3"),
    ]


async def test_hdr_and_over_keep_8bit_bytes(client):
    """RFC 3977 8.3.2 / 8.5.2 (header content unchanged but for CRLF/TAB): 8-bit bytes pass through."""
    subject = b"Subject: Caf\xe9 \xc3\xa9t\xc3\xa9"
    mid = unique_id()
    raw = b"From: a@example.com\r\nNewsgroups: local.test\r\n" + subject + (
        b"\r\nMessage-ID: " + mid.encode() + b"\r\n\r\nbody\r\n")
    assert (await client.post(raw)).startswith("240")
    await client.cmd("GROUP local.test")
    assert (await client.cmd("HDR Subject 1")).startswith("225")
    assert await client.raw_block() == b"1 Caf\xe9 \xc3\xa9t\xc3\xa9\r\n"
    assert (await client.cmd("OVER 1")).startswith("224")
    assert (await client.raw_block()).split(b"\t")[1] == b"Caf\xe9 \xc3\xa9t\xc3\xa9"


# --- XHDR / XPAT (RFC 2980) --------------------------------------------------


async def test_xhdr_range_is_221(client):
    """RFC 2980 2.6: XHDR header range -> 221, 'number value' lines."""
    await three(client)
    await client.cmd("GROUP local.test")
    assert await hdr(client, "XHDR Subject 1-3", "221") == [
        ("1", "Alpha needle"), ("2", "Beta"), ("3", "Re: Alpha needle"),
    ]


async def test_xhdr_message_id_first_word_is_message_id(client):
    """RFC 2980 2.6: with a message-id argument each line starts with the message-id."""
    ids = await three(client)
    assert await hdr(client, f"XHDR Subject {ids[0]}", "221") == [(ids[0], "Alpha needle")]


async def test_xhdr_without_group_is_412(client):
    """RFC 2980 2.6: XHDR with a range and no selected group gives 412."""
    await three(client)
    assert (await client.cmd("XHDR Subject 1-3")).startswith("412")


async def test_xhdr_lines_and_bytes_aliases(client):
    """RFC 2980 2.6 (Bytes/Lines as in OVERVIEW.FMT): XHDR Lines gives the body line counts."""
    await three(client)
    await client.cmd("GROUP local.test")
    assert await hdr(client, "XHDR Lines 1-3", "221") == [("1", "3"), ("2", "1"), ("3", "2")]


async def test_xpat_wildmat(client):
    """RFC 2980 2.9: XPAT header range pattern -> 221 with only the matching articles."""
    await three(client)
    await client.cmd("GROUP local.test")
    assert await hdr(client, "XPAT Subject 1-3 *needle*", "221") == [
        ("1", "Alpha needle"), ("3", "Re: Alpha needle"),
    ]


async def test_xpat_wildmat_with_negation(client):
    """RFC 2980 2.9 with RFC 3977 4.2: the last matching wildmat pattern decides."""
    await three(client)
    await client.cmd("GROUP local.test")
    assert await hdr(client, "XPAT Subject 1- *needle*,!Re:*", "221") == [("1", "Alpha needle")]


async def test_xpat_no_match_is_empty_221(client):
    """RFC 2980 2.9: no matching article gives 221 with an empty list."""
    await three(client)
    await client.cmd("GROUP local.test")
    assert await hdr(client, "XPAT Subject 1-3 *nothing*", "221") == []


async def test_xpat_message_id(client):
    """RFC 2980 2.9: a message-id argument selects that article."""
    ids = await three(client)
    assert await hdr(client, f"XPAT From {ids[1]} *bob*", "221") == [(ids[1], "Bob <bob@example.com>")]


# --- LIST OVERVIEW.FMT / LIST HEADERS ----------------------------------------


async def list_lines(client, command: str) -> list[str]:
    status = await client.cmd(command)
    assert status.startswith("215"), status
    return await client.block()


async def test_overview_fmt_before_capabilities_uses_rfc2980_names(client):
    """RFC 2980 2.1.7 names (Bytes:/Lines:) before CAPABILITIES, as INN does, so slrn keeps XOVER."""
    fmt = await list_lines(client, "LIST OVERVIEW.FMT")
    assert fmt[:7] == OVERVIEW_7 + ["Bytes:", "Lines:"]
    assert fmt[7].lower() == "xref:full"


async def test_overview_fmt_after_capabilities_uses_metadata_names(client):
    """RFC 3977 8.4.2: ':bytes' and ':lines' once the client has sent CAPABILITIES."""
    assert (await client.cmd("CAPABILITIES")).startswith("101")
    await client.block()
    fmt = await list_lines(client, "LIST OVERVIEW.FMT")
    assert fmt[:7] == OVERVIEW_7 + [":bytes", ":lines"]
    assert fmt[7].lower() == "xref:full"


async def test_overview_fmt_matches_over_field_count(client):
    """RFC 3977 8.4.2: OVER lines carry the fields LIST OVERVIEW.FMT lists, in that order."""
    await three(client)
    fmt = await list_lines(client, "LIST OVERVIEW.FMT")
    await client.cmd("GROUP local.test")
    for row in await over(client, "OVER 1-3"):
        assert len(row) == 1 + len(fmt)


async def test_list_headers(client):
    """RFC 3977 8.6.2: 215, ':' (any header) and the metadata items :bytes and :lines."""
    lines = await list_lines(client, "LIST HEADERS")
    assert ":bytes" in lines and ":lines" in lines
    if ":" in lines:  # any header: then no header names may be listed
        assert all(ln.startswith(":") for ln in lines), lines
    else:
        assert {"Subject", "Message-ID"} <= set(lines)


@pytest.mark.parametrize("variant", ["MSGID", "RANGE"])
async def test_list_headers_variants(client, variant):
    """RFC 3977 8.6.2: LIST HEADERS MSGID and LIST HEADERS RANGE are accepted."""
    lines = await list_lines(client, f"LIST HEADERS {variant}")
    assert lines
