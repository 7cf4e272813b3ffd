"""Reading commands over TCP: GROUP, LISTGROUP, LAST, NEXT, ARTICLE, HEAD, BODY, STAT.

RFC 3977 sections 6.1 and 6.2 (and section 6 for the article number range).
"""

from __future__ import annotations

import pytest

from nntp_helpers import group_info, post_ok, unique_id, unstuff

GROUP = "local.test"


async def post_three(client) -> list[str]:
    return [await post_ok(client, subject=f"Article {i}") for i in (1, 2, 3)]


# --- GROUP (6.1.1) -----------------------------------------------------------


async def test_group_reports_count_low_high_and_name(client):
    """RFC 3977 6.1.1.2: 211 number low high group."""
    await post_three(client)
    assert await client.cmd("GROUP local.test") == "211 3 1 3 local.test"


async def test_group_echoes_the_name_exactly(server, client):
    """RFC 3977 6.1.1.2: the group name in the 211 response is the selected group."""
    name = "Support.Mixed-Case_Group+x"
    await server.store.create_group(name, description="odd name")
    status = await client.cmd(f"GROUP {name}")
    assert status.startswith("211 "), status
    assert status.split()[4] == name


async def test_group_unknown_is_411(client):
    """RFC 3977 6.1.1.2: a group not available on the server gives 411."""
    assert (await client.cmd("GROUP no.such.group")).startswith("411")


async def test_group_unknown_keeps_selected_group_and_article(client):
    """RFC 3977 6.1.1.2: an invalid group leaves the selected group and current article unchanged."""
    ids = await post_three(client)
    await client.cmd("GROUP local.test")
    assert (await client.cmd("STAT 2")).startswith(f"223 2 {ids[1]}")
    assert (await client.cmd("GROUP no.such.group")).startswith("411")
    assert (await client.cmd("STAT")).startswith(f"223 2 {ids[1]}")


async def test_group_sets_current_article_to_first_even_when_reselected(client):
    """RFC 3977 6.1.1.2 and example 6.1.1.3: GROUP resets the current article to the first."""
    ids = await post_three(client)
    await client.cmd("GROUP local.test")
    assert (await client.cmd("STAT 3")).startswith("223 3")
    await client.cmd("GROUP local.test")
    assert (await client.cmd("STAT")).startswith(f"223 1 {ids[0]}")


async def test_empty_group_high_is_low_minus_one(server, client):
    """RFC 3977 6.1.1.2: an empty group reports count 0 and high = low - 1 (preferred form)."""
    await server.store.create_group("local.empty", description="nothing")
    count, low, high, name = await group_info(client, "local.empty")
    assert (count, name) == (0, "local.empty")
    assert high == low - 1
    assert low >= 1


async def test_empty_group_makes_current_article_invalid(server, client):
    """RFC 3977 6.1.1.2: selecting an empty group makes the current article number invalid."""
    await post_three(client)
    await client.cmd("GROUP local.test")
    await server.store.create_group("local.empty")
    await client.cmd("GROUP local.empty")
    assert (await client.cmd("STAT")).startswith("420")


# --- LISTGROUP (6.1.2) -------------------------------------------------------


async def test_listgroup_with_group_lists_all_numbers(client):
    """RFC 3977 6.1.2.2: 211 with the GROUP arguments, then the article numbers in order."""
    await post_three(client)
    status = await client.cmd("LISTGROUP local.test")
    assert status.split()[:5] == ["211", "3", "1", "3", "local.test"]
    assert await client.block() == ["1", "2", "3"]


async def test_listgroup_without_argument_uses_selected_group(client):
    """RFC 3977 6.1.2.2: with no group argument the currently selected newsgroup is used."""
    await post_three(client)
    await client.cmd("GROUP local.test")
    status = await client.cmd("LISTGROUP")
    assert status.split()[:5] == ["211", "3", "1", "3", "local.test"]
    assert await client.block() == ["1", "2", "3"]


async def test_listgroup_without_selected_group_is_412(client):
    """RFC 3977 6.1.2.2: no group argument and no selected group gives 412."""
    assert (await client.cmd("LISTGROUP")).startswith("412")


async def test_listgroup_unknown_group_is_411(client):
    """RFC 3977 6.1.2.2: an unknown group gives 411."""
    assert (await client.cmd("LISTGROUP no.such.group")).startswith("411")


@pytest.mark.parametrize(
    "rng, expected",
    [("2", ["2"]), ("2-3", ["2", "3"]), ("2-", ["2", "3"]), ("2-99", ["2", "3"]),
     ("50-", []), ("3-1", [])],
)
async def test_listgroup_with_range(client, rng, expected):
    """RFC 3977 6.1.2.2: only articles within the range are listed (empty if high < low)."""
    await post_three(client)
    status = await client.cmd(f"LISTGROUP local.test {rng}")
    assert status.split()[:5] == ["211", "3", "1", "3", "local.test"]
    assert await client.block() == expected


async def test_listgroup_sets_current_to_first_article_even_outside_range(client):
    """RFC 3977 6.1.2.2: LISTGROUP sets the current article to the first in the group."""
    ids = await post_three(client)
    await client.cmd("LISTGROUP local.test 2-3")
    await client.block()
    assert (await client.cmd("STAT")).startswith(f"223 1 {ids[0]}")


async def test_listgroup_empty_group_gives_empty_list(server, client):
    """RFC 3977 6.1.2.2: an empty group produces an empty list."""
    await server.store.create_group("local.empty")
    status = await client.cmd("LISTGROUP local.empty")
    count, low, high = (int(x) for x in status.split()[1:4])
    assert count == 0 and high == low - 1
    assert await client.block() == []


# --- LAST / NEXT (6.1.3, 6.1.4) ----------------------------------------------


async def test_next_moves_forward_then_421_at_the_end(client):
    """RFC 3977 6.1.4.2: NEXT gives 223 n message-id; 421 after the last article, current unchanged."""
    ids = await post_three(client)
    await client.cmd("GROUP local.test")
    assert (await client.cmd("NEXT")).startswith(f"223 2 {ids[1]}")
    assert (await client.cmd("NEXT")).startswith(f"223 3 {ids[2]}")
    assert (await client.cmd("NEXT")).startswith("421")
    assert (await client.cmd("STAT")).startswith(f"223 3 {ids[2]}")


async def test_last_moves_back_then_422_at_the_start(client):
    """RFC 3977 6.1.3.2: LAST gives 223 n message-id; 422 at the first article, current unchanged."""
    ids = await post_three(client)
    await client.cmd("GROUP local.test")
    assert (await client.cmd("STAT 3")).startswith("223 3")
    assert (await client.cmd("LAST")).startswith(f"223 2 {ids[1]}")
    assert (await client.cmd("LAST")).startswith(f"223 1 {ids[0]}")
    assert (await client.cmd("LAST")).startswith("422")
    assert (await client.cmd("STAT")).startswith(f"223 1 {ids[0]}")


@pytest.mark.parametrize("verb", ["LAST", "NEXT"])
async def test_last_next_without_group_is_412(client, verb):
    """RFC 3977 6.1.3.2, 6.1.4.2: no selected newsgroup gives 412."""
    assert (await client.cmd(verb)).startswith("412")


@pytest.mark.parametrize("verb", ["LAST", "NEXT"])
async def test_last_next_in_empty_group_is_420(server, client, verb):
    """RFC 3977 6.1.3.3, 6.1.4.3: an empty group has no current article: 420."""
    await server.store.create_group("local.empty")
    await client.cmd("GROUP local.empty")
    assert (await client.cmd(verb)).startswith("420")


# --- ARTICLE / HEAD / BODY / STAT by number (6.2) ----------------------------


async def test_article_by_number_returns_headers_blank_line_body(client):
    """RFC 3977 6.2.1.2: 220 n message-id, then headers, an empty line and the body."""
    mid = await post_ok(client, subject="Whole", body=b"line one\r\nline two\r\n")
    await client.cmd("GROUP local.test")
    assert (await client.cmd("ARTICLE 1")).startswith(f"220 1 {mid}")
    lines = await client.block()
    blank = lines.index("")
    assert "Subject: Whole" in lines[:blank]
    assert f"Message-ID: {mid}" in lines[:blank]
    assert lines[blank + 1 :] == ["line one", "line two"]


async def test_article_equals_head_blank_line_body(client):
    """RFC 3977 6.2.1.2, 6.2.2, 6.2.3: ARTICLE is exactly HEAD, an empty line, then BODY."""
    await post_ok(client, body=b"alpha\r\n.beta\r\n\r\ngamma\r\n")
    await client.cmd("GROUP local.test")
    assert (await client.cmd("ARTICLE 1")).startswith("220 1 ")
    article = unstuff(await client.raw_block())
    assert (await client.cmd("HEAD 1")).startswith("221 1 ")
    head = unstuff(await client.raw_block())
    assert (await client.cmd("BODY 1")).startswith("222 1 ")
    body = unstuff(await client.raw_block())
    assert article == head + b"\r\n" + body


@pytest.mark.parametrize("verb, code", [("ARTICLE", 220), ("HEAD", 221), ("BODY", 222), ("STAT", 223)])
async def test_by_number_sets_current_article(client, verb, code):
    """RFC 3977 6.2.1.2: a number argument makes that article the current article."""
    ids = await post_three(client)
    await client.cmd("GROUP local.test")
    assert (await client.cmd(f"{verb} 2")).startswith(f"{code} 2 {ids[1]}")
    if verb != "STAT":
        await client.raw_block()
    assert (await client.cmd("STAT")).startswith(f"223 2 {ids[1]}")
    assert (await client.cmd("NEXT")).startswith(f"223 3 {ids[2]}")


async def test_stat_sends_no_block(client):
    """RFC 3977 6.2.4.2: STAT returns only a status line, no article text."""
    ids = await post_three(client)
    await client.cmd("GROUP local.test")
    await client.send("STAT 1\r\nSTAT 2\r\n")
    assert (await client.line()).startswith(f"223 1 {ids[0]}")
    assert (await client.line()).startswith(f"223 2 {ids[1]}")


@pytest.mark.parametrize("verb, code", [("ARTICLE", 220), ("HEAD", 221), ("BODY", 222), ("STAT", 223)])
async def test_current_article_form(client, verb, code):
    """RFC 3977 6.2.1.2 (third form): no argument uses the current article number."""
    ids = await post_three(client)
    await client.cmd("GROUP local.test")
    assert (await client.cmd(f"{verb}")).startswith(f"{code} 1 {ids[0]}")
    if verb != "STAT":
        await client.raw_block()
    await client.cmd("NEXT")
    assert (await client.cmd(f"{verb}")).startswith(f"{code} 2 {ids[1]}")


@pytest.mark.parametrize("verb", ["ARTICLE", "HEAD", "BODY", "STAT"])
async def test_missing_number_is_423(client, verb):
    """RFC 3977 6.2.1.2: no article with that number in the selected group gives 423."""
    await post_three(client)
    await client.cmd("GROUP local.test")
    assert (await client.cmd(f"{verb} 4")).startswith("423")
    assert (await client.cmd(f"{verb} 2147483647")).startswith("423")


async def test_missing_number_leaves_current_article(client):
    """RFC 3977 6.2.1.2: a failed lookup by number does not change the current article."""
    ids = await post_three(client)
    await client.cmd("GROUP local.test")
    await client.cmd("STAT 2")
    assert (await client.cmd("STAT 40")).startswith("423")
    assert (await client.cmd("STAT")).startswith(f"223 2 {ids[1]}")


@pytest.mark.parametrize("verb", ["ARTICLE", "HEAD", "BODY", "STAT"])
@pytest.mark.parametrize("number", ["2147483648", "99999999999999999999"])
async def test_number_out_of_range_is_501(client, verb, number):
    """RFC 3977 section 6: article numbers lie in 1..2,147,483,647; anything larger is a syntax error (501)."""
    await post_three(client)
    await client.cmd("GROUP local.test")
    assert (await client.cmd(f"{verb} {number}")).startswith("501")


@pytest.mark.parametrize("verb", ["ARTICLE", "HEAD", "BODY", "STAT"])
@pytest.mark.parametrize("arg", ["1", ""])
async def test_no_group_is_412(client, verb, arg):
    """RFC 3977 6.2.1.2: number or current-article form with no selected group gives 412."""
    await post_three(client)
    assert (await client.cmd(f"{verb} {arg}".strip())).startswith("412")


@pytest.mark.parametrize("verb", ["ARTICLE", "HEAD", "BODY", "STAT"])
async def test_no_current_article_is_420(server, client, verb):
    """RFC 3977 6.2.1.2: the current-article form with an invalid current article gives 420."""
    await server.store.create_group("local.empty")
    await client.cmd("GROUP local.empty")
    assert (await client.cmd(verb)).startswith("420")


# --- by message-id (6.2.1 first form) ----------------------------------------


@pytest.mark.parametrize("verb, code", [("ARTICLE", 220), ("HEAD", 221), ("BODY", 222), ("STAT", 223)])
async def test_by_message_id_without_group_uses_number_zero(client, verb, code):
    """RFC 3977 6.2.1.2: by message-id the number MUST be 0 when no group is selected."""
    ids = await post_three(client)
    assert (await client.cmd(f"{verb} {ids[1]}")).startswith(f"{code} 0 {ids[1]}")
    if verb != "STAT":
        data = unstuff(await client.raw_block())
        if verb != "BODY":
            assert f"Message-ID: {ids[1]}".encode() in data


async def test_by_message_id_with_group_is_zero_or_its_number(client):
    """RFC 3977 6.2.1.2: with a selected group holding the article the number is 0 or its number there."""
    ids = await post_three(client)
    await client.cmd("GROUP local.test")
    parts = (await client.cmd(f"STAT {ids[2]}")).split()
    assert parts[0] == "223" and parts[2] == ids[2]
    assert parts[1] in ("0", "3")


async def test_by_message_id_does_not_change_current_article(client):
    """RFC 3977 6.2.1.2: the message-id form MUST NOT alter the current article number."""
    ids = await post_three(client)
    await client.cmd("GROUP local.test")
    await client.cmd("STAT 2")
    assert (await client.cmd(f"ARTICLE {ids[2]}")).startswith("220")
    await client.raw_block()
    assert (await client.cmd("STAT")).startswith(f"223 2 {ids[1]}")


@pytest.mark.parametrize("verb", ["ARTICLE", "HEAD", "BODY", "STAT"])
async def test_unknown_message_id_is_430(client, verb):
    """RFC 3977 6.2.1.2: no article with that message-id gives 430 (with or without a group)."""
    await post_three(client)
    missing = unique_id("missing")
    assert (await client.cmd(f"{verb} {missing}")).startswith("430")
    await client.cmd("GROUP local.test")
    assert (await client.cmd(f"{verb} {missing}")).startswith("430")


# --- content: byte-exact, dot-stuffing, Xref ---------------------------------


BODY_8BIT = (
    "Gr\u00fc\u00dfe aus K\u00f6ln \u2603\r\n".encode()
    + b"Latin-1: caf\xe9 na\xefve \xa9\r\n"
    + b".starts with a dot\r\n"
    + b"..two dots\r\n"
    + b".\r\n"
    + b"\r\n"
    + b"  indented\ttab\r\n"
    + b"last line\r\n"
)


async def test_body_read_back_byte_exact(client):
    """RFC 3977 6.2 (MUST NOT alter the article), 3.1.1 (dot-stuffing): 8-bit bytes and dots survive."""
    mid = await post_ok(client, body=BODY_8BIT)
    assert (await client.cmd(f"BODY {mid}")).startswith(f"222 0 {mid}")
    assert unstuff(await client.raw_block()) == BODY_8BIT


async def test_body_lines_starting_with_dot_are_stuffed_on_the_wire(client):
    """RFC 3977 3.1.1: a line starting with '.' is sent with an extra '.' prepended."""
    mid = await post_ok(client, body=BODY_8BIT)
    await client.cmd(f"BODY {mid}")
    wire = (await client.raw_block()).split(b"\r\n")
    assert b"..starts with a dot" in wire
    assert b"...two dots" in wire
    assert b".." in wire
    assert b"." not in wire


async def test_8bit_headers_read_back_byte_exact(client):
    """RFC 3977 6.2 (MUST NOT alter): 8-bit UTF-8 and Latin-1 header bytes come back as sent."""
    utf8 = "X-Utf8: K\u00f6ln \u2603".encode()
    latin1 = b"X-Latin1: Ren\xe9 \xe0 bient\xf4t"
    mid = await post_ok(client, extra=(utf8, latin1))
    await client.cmd(f"HEAD {mid}")
    head = unstuff(await client.raw_block())
    assert utf8 + b"\r\n" + latin1 + b"\r\n" in head


async def test_head_includes_xref(client):
    """RFC 5537 3.2 (Xref added by the serving agent) / RFC 3977 6.2.2: HEAD shows Xref with the number."""
    await post_three(client)
    await client.cmd("GROUP local.test")
    assert (await client.cmd("HEAD 2")).startswith("221 2 ")
    lines = await client.block()
    assert "Xref: test.example local.test:2" in lines
    assert "" not in lines  # headers only, no separator or body


async def test_article_includes_xref_in_headers(client):
    """RFC 5537 3.2 / RFC 3977 6.2.1: the Xref line is part of the header section of ARTICLE."""
    mid = await post_ok(client)
    await client.cmd(f"ARTICLE {mid}")
    lines = await client.block()
    assert "Xref: test.example local.test:1" in lines[: lines.index("")]


async def test_article_bad_argument_is_501(client):
    """RFC 3977 3.2.1: an argument that is neither a number nor a message-id is a syntax error (501)."""
    await post_three(client)
    await client.cmd("GROUP local.test")
    assert (await client.cmd("ARTICLE abc")).startswith("501")
    assert (await client.cmd("STAT -1")).startswith("501")
