"""Sans-IO wire format (nntpd/protocol.py) checked against RFC 3977.

Every test is a plain call: no sockets, no event loop, no database.
"""

from __future__ import annotations

import io
import random
from datetime import datetime, timedelta, timezone

import pytest

from nntpd.protocol import (
    CRLF,
    END_OF_BLOCK,
    MAX_ARTICLE_NUMBER,
    ArticleRange,
    BlockReceiver,
    BlockTooLarge,
    Command,
    NNTPError,
    Response,
    encode_block,
    encode_lines,
    encode_text,
    is_message_id_arg,
    parse_command,
    parse_datetime,
    parse_number,
    parse_range,
    status,
    stuff_line,
    syntax_error,
)


def raises_501(fn, *args):
    with pytest.raises(NNTPError) as info:
        fn(*args)
    assert info.value.code == 501, info.value
    return info.value


# -- 3.1 command lines --------------------------------------------------------


def test_parse_command_splits_verb_and_arguments():
    # RFC 3977 3.1: keyword followed by arguments separated by space/TAB.
    assert parse_command(b"GROUP local.test\r\n") == Command("GROUP", ("local.test",))


def test_parse_command_verb_is_case_insensitive():
    # RFC 3977 3.1: "Keywords are case insensitive" -> normalised to upper case.
    assert parse_command(b"gRoUp local.test\r\n").verb == "GROUP"
    assert parse_command(b"list active\r\n").verb == "LIST"


def test_parse_command_keeps_argument_case():
    # Only the command keyword is folded; group names are case-sensitive.
    assert parse_command(b"group Local.Test\r\n").args == ("Local.Test",)


def test_parse_command_accepts_tabs_and_runs_of_whitespace():
    # RFC 3977 3.1: "separated by one or more space or TAB characters".
    cmd = parse_command(b"XHDR \t Subject\t\t1-5  \r\n")
    assert cmd == Command("XHDR", ("Subject", "1-5"))


def test_parse_command_without_crlf():
    assert parse_command(b"DATE") == Command("DATE", ())


def test_parse_command_bare_lf_terminator():
    assert parse_command(b"HELP\n") == Command("HELP", ())


def test_parse_command_empty_line_is_ignored():
    assert parse_command(b"\r\n") is None
    assert parse_command(b"") is None


def test_parse_command_blank_line_of_spaces_is_ignored():
    assert parse_command(b"   \t \r\n") is None


def test_parse_command_512_octets_including_crlf_is_accepted():
    # RFC 3977 3.1: command lines MUST NOT exceed 512 octets, including CRLF.
    line = b"X " + b"a" * 250 + b" " + b"b" * 257 + CRLF
    assert len(line) == 512
    cmd = parse_command(line)
    assert cmd is not None and cmd.verb == "X"


def test_parse_command_513_octets_including_crlf_is_rejected():
    line = b"X " + b"a" * 250 + b" " + b"b" * 258 + CRLF
    assert len(line) == 513
    raises_501(parse_command, line)


def test_parse_command_long_line_without_crlf_counts_the_missing_crlf():
    # A line handed over without its terminator still has a CRLF on the wire:
    # 511 octets of text + CRLF = 513 octets > 512 (RFC 3977 3.1).
    line = b"X " + b"a" * 250 + b" " + b"b" * 258
    assert len(line) == 511
    raises_501(parse_command, line)


def test_parse_command_510_octets_without_crlf_is_accepted():
    line = b"X " + b"a" * 250 + b" " + b"b" * 257
    assert len(line) == 510
    assert parse_command(line) is not None


def test_parse_command_argument_of_497_octets_is_accepted():
    # RFC 3977 3.1: arguments MUST NOT exceed 497 octets.
    arg = "a" * 497
    assert parse_command(f"GROUP {arg}\r\n".encode()).args == (arg,)


def test_parse_command_argument_of_498_octets_is_rejected():
    raises_501(parse_command, b"GROUP " + b"a" * 498 + CRLF)


def test_parse_command_argument_limit_counts_octets_not_characters():
    # 250 x U+00E9 is 250 characters but 500 UTF-8 octets: over the 497-octet
    # argument limit of RFC 3977 3.1, though the whole line (508) is within 512.
    line = b"GROUP " + ("\u00e9" * 250).encode() + CRLF
    assert len(line) == 508
    raises_501(parse_command, line)


def test_parse_command_only_space_and_tab_separate_arguments():
    # RFC 3977 3.1: separators are space or TAB only. A UTF-8 argument (e.g. a
    # wildmat) containing U+00A0 NO-BREAK SPACE must stay one argument.
    cmd = parse_command("XPAT Subject 1- *caf\u00e9\u00a0au\u00a0lait*\r\n".encode())
    assert cmd.args == ("Subject", "1-", "*caf\u00e9\u00a0au\u00a0lait*")


def test_parse_command_utf8_argument_is_decoded():
    cmd = parse_command("LISTGROUP gr\u00fc\u00dfe.test\r\n".encode())
    assert cmd.args == ("gr\u00fc\u00dfe.test",)


def test_parse_command_invalid_utf8_does_not_raise():
    # Garbage bytes must not crash the parser (surrogate-escaped, not an exception).
    cmd = parse_command(b"GROUP \xff\xfe\r\n")
    assert cmd.verb == "GROUP" and len(cmd.args) == 1


# -- 3.2 status lines ----------------------------------------------------------


def test_status_line_format():
    # RFC 3977 3.2: three-digit code, space, text, CRLF.
    assert status(200, "Service available, posting allowed") == (
        b"200 Service available, posting allowed\r\n"
    )


def test_status_line_is_utf8():
    assert status(211, "1 1 1 gr\u00fc\u00dfe") == "211 1 1 1 gr\u00fc\u00dfe\r\n".encode()


def test_nntp_error_carries_code_and_text():
    err = NNTPError(430, "No article with that message-id")
    assert (err.code, err.text) == (430, "No article with that message-id")
    assert str(err) == "430 No article with that message-id"


def test_syntax_error_is_501():
    assert syntax_error().code == 501
    assert syntax_error("Bad").text == "Bad"


# -- 3.1.1 multi-line blocks: dot-stuffing -----------------------------------


def test_stuff_line_doubles_leading_dot():
    # RFC 3977 3.1.1: a line starting with "." gets another "." prepended.
    assert stuff_line(b".hidden") == b"..hidden"
    assert stuff_line(b".") == b".."
    assert stuff_line(b"plain") == b"plain"
    assert stuff_line(b"a.b") == b"a.b"


def test_encode_lines_stuffs_and_terminates_each_line_with_crlf():
    assert encode_lines([b"one", b".two", b"..three", b""]) == (
        b"one\r\n..two\r\n...three\r\n\r\n"
    )


def test_encode_block_ends_with_lone_dot_line():
    # RFC 3977 3.1.1: the block is terminated by "." CRLF.
    assert encode_block([b"a", b"."]) == b"a\r\n..\r\n.\r\n"


def test_encode_block_of_no_lines_is_just_the_terminator():
    assert encode_block([]) == b".\r\n"
    assert END_OF_BLOCK == b".\r\n"


def test_encode_text_stuffs_first_and_inner_lines():
    assert encode_text(b".first\r\nmid\r\n.inner\r\n") == b"..first\r\nmid\r\n..inner\r\n"


def test_encode_text_adds_missing_final_crlf():
    assert encode_text(b"a\r\nb") == b"a\r\nb\r\n"


def test_encode_text_leaves_inner_dots_alone():
    data = b"a.b\r\nx . y\r\n"
    assert encode_text(data) == data


def test_encode_text_of_lone_dot_line_is_stuffed():
    assert encode_text(b"a\r\n.\r\nb\r\n") == b"a\r\n..\r\nb\r\n"


def test_encode_text_empty():
    assert encode_text(b"") == b""


# -- 3.1.1 receiving a block ---------------------------------------------------


def feed_all(receiver: BlockReceiver, data: bytes) -> list[bool]:
    return [receiver.feed(line) for line in io.BytesIO(data)]


def test_block_receiver_stops_at_lone_dot():
    r = BlockReceiver(1000)
    assert feed_all(r, b"a\r\nb\r\n.\r\n") == [False, False, True]
    assert r.result() == b"a\r\nb\r\n"


def test_block_receiver_unstuffs_leading_dot():
    # RFC 3977 3.1.1: the receiver removes the first "." of a stuffed line.
    r = BlockReceiver(1000)
    feed_all(r, b"..\r\n...x\r\n..y\r\n.\r\n")
    assert r.result() == b".\r\n..x\r\n.y\r\n"


def test_block_receiver_double_dot_is_not_the_terminator():
    r = BlockReceiver(1000)
    assert r.feed(b"..\r\n") is False
    assert r.feed(b".\r\n") is True
    assert r.result() == b".\r\n"


def test_block_receiver_empty_block():
    r = BlockReceiver(1000)
    assert r.feed(b".\r\n") is True
    assert r.result() == b""


def test_block_receiver_keeps_empty_lines():
    r = BlockReceiver(1000)
    feed_all(r, b"head\r\n\r\nbody\r\n.\r\n")
    assert r.result() == b"head\r\n\r\nbody\r\n"


def test_block_receiver_normalises_bare_lf_to_crlf():
    r = BlockReceiver(1000)
    feed_all(r, b"a\nb\n.\n")
    assert r.result() == b"a\r\nb\r\n"


def test_block_receiver_accepts_exactly_max_bytes():
    # Size counts the unstuffed data with CRLF line ends.
    r = BlockReceiver(10)
    feed_all(r, b"12345678\r\n.\r\n")
    assert r.result() == b"12345678\r\n"


def test_block_receiver_over_limit_raises_block_too_large():
    r = BlockReceiver(10)
    feed_all(r, b"12345678\r\nx\r\n.\r\n")
    assert r.too_large
    with pytest.raises(BlockTooLarge):
        r.result()


def test_block_receiver_over_limit_still_consumes_to_terminator():
    # The rest of the block is read (and dropped) so the connection stays in
    # sync: only the final "." line ends it.
    r = BlockReceiver(4)
    ends = feed_all(r, b"abcdefgh\r\n" * 5 + b"..\r\n.\r\n")
    assert ends == [False] * 6 + [True]


def test_block_receiver_size_uses_unstuffed_length():
    # ".." on the wire is one octet of data + CRLF = 3 octets.
    r = BlockReceiver(3)
    feed_all(r, b"..\r\n.\r\n")
    assert r.result() == b".\r\n"


# -- 3.1.1 round-trip properties (fixed seed, no hypothesis) ------------------

_ALPHABET = [b".", b".", b"a", b"Z", b" ", b"\t", b"0", b"\xc3\xa9", b"-", b":", b"\x00", b"\xff"]


def random_lines(rng: random.Random) -> list[bytes]:
    lines = []
    for _ in range(rng.randint(0, 12)):
        kind = rng.random()
        if kind < 0.1:
            lines.append(b".")
        elif kind < 0.2:
            lines.append(b"")
        elif kind < 0.3:
            lines.append(b"." * rng.randint(2, 4))
        else:
            body = b"".join(rng.choice(_ALPHABET) for _ in range(rng.randint(1, 20)))
            if rng.random() < 0.4:
                body = b"." + body
            lines.append(body)
    return lines


def test_roundtrip_encode_block_then_receive_gives_original():
    rng = random.Random(3977)
    for _ in range(500):
        lines = random_lines(rng)
        wire = encode_block(lines)
        r = BlockReceiver(1 << 20)
        ends = feed_all(r, wire)
        assert ends[-1] is True and not any(ends[:-1]), lines
        assert r.result() == b"".join(ln + CRLF for ln in lines), lines


def test_roundtrip_no_wire_line_of_a_block_is_a_lone_dot_except_the_last():
    rng = random.Random(977)
    for _ in range(500):
        wire = encode_block(random_lines(rng))
        wire_lines = wire.split(CRLF)
        assert wire_lines[-1] == b"" and wire_lines[-2] == b"."
        assert b"." not in wire_lines[:-2]


def test_roundtrip_encode_text_matches_encode_lines():
    rng = random.Random(5536)
    for _ in range(500):
        lines = random_lines(rng)
        text = b"".join(ln + CRLF for ln in lines)
        assert encode_text(text) == encode_lines(lines), lines


def test_roundtrip_encode_text_then_receive_gives_original():
    rng = random.Random(5537)
    for _ in range(500):
        lines = random_lines(rng)
        text = b"".join(ln + CRLF for ln in lines)
        r = BlockReceiver(1 << 20)
        feed_all(r, encode_text(text) + END_OF_BLOCK)
        assert r.result() == text, lines


# -- 6 article numbers and 3.1 ranges -----------------------------------------


def test_parse_number_accepts_limits():
    # RFC 3977 6: article numbers are 1..2,147,483,647.
    assert parse_number("1") == 1
    assert parse_number("2147483647") == MAX_ARTICLE_NUMBER == 2_147_483_647


def test_parse_number_above_31_bits_is_rejected():
    raises_501(parse_number, "2147483648")


def test_parse_number_accepts_leading_zeros_up_to_16_digits():
    # RFC 3977 9.8: article-number = 1*16DIGIT.
    assert parse_number("0000000000000042") == 42


def test_parse_number_more_than_16_digits_is_rejected():
    raises_501(parse_number, "0" * 16 + "1")


@pytest.mark.parametrize("text", ["", "-1", "+1", " 1", "1 ", "1.0", "0x10", "abc", "\u0663", "\u00b2", "\uff11"])
def test_parse_number_only_ascii_digits(text):
    raises_501(parse_number, text)


def test_parse_range_single_number():
    # RFC 3977 3.1 (range): "n" means that article only.
    assert parse_range("42") == ArticleRange(42, 42)


def test_parse_range_open_ended():
    # "n-" means n and all following articles.
    assert parse_range("42-") == ArticleRange(42, MAX_ARTICLE_NUMBER)


def test_parse_range_closed():
    assert parse_range("3-9") == ArticleRange(3, 9)


def test_parse_range_reversed_is_valid_and_empty():
    # RFC 3977 8.3.2 (OVER): a range whose end is below its start is valid
    # syntax and selects no articles; it is not a syntax error.
    r = parse_range("9-3")
    assert (r.low, r.high) == (9, 3)


@pytest.mark.parametrize("text", ["", "-", "-5", "a-b", "1-2-3", "1--", "1-x", "2147483648-", "1-2147483648"])
def test_parse_range_malformed_is_501(text):
    raises_501(parse_range, text)


def test_is_message_id_arg():
    # RFC 3977 3.6: message-ids are enclosed in angle brackets.
    assert is_message_id_arg("<a@b>")
    assert not is_message_id_arg("<>")
    assert not is_message_id_arg("a@b")
    assert not is_message_id_arg("42")


# -- 7.3.2 NEWGROUPS / NEWNEWS dates ------------------------------------------


def test_parse_datetime_eight_digit_date_gmt():
    # RFC 3977 7.3.2: yyyymmdd hhmmss [GMT].
    assert parse_datetime("20250102", "030405", "GMT") == datetime(
        2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc
    )


def test_parse_datetime_result_is_timezone_aware_utc():
    dt = parse_datetime("19991231", "235959", "GMT")
    assert dt.utcoffset() == timedelta(0)


def test_parse_datetime_without_gmt_is_accepted():
    # GMT is optional; the server runs in UTC so the value is the same.
    assert parse_datetime("20250102", "030405", None) == parse_datetime("20250102", "030405", "GMT")


def test_parse_datetime_two_digit_year_equal_to_current_is_this_century():
    # RFC 3977 7.3.2: yy <= current year -> current century.
    now = datetime.now(timezone.utc).year
    yy = now % 100
    assert parse_datetime(f"{yy:02d}0101", "000000", "GMT").year == now


def test_parse_datetime_two_digit_year_zero_is_this_century():
    now = datetime.now(timezone.utc).year
    assert parse_datetime("000101", "000000", "GMT").year == now - now % 100


def rfc_two_digit_year(yy: int) -> int:
    """RFC 3977 7.3.2: "the year is to be taken from the current century if yy
    is smaller than or equal to the current year, and the previous century
    otherwise"."""
    now = datetime.now(timezone.utc).year
    century = now - now % 100
    return century + yy if yy <= now % 100 else century - 100 + yy


def test_parse_datetime_two_digit_year_after_current_is_previous_century():
    # Next year's two digits name a year of the previous century, never the future.
    yy = (datetime.now(timezone.utc).year + 1) % 100
    assert parse_datetime(f"{yy:02d}0101", "000000", "GMT").year == rfc_two_digit_year(yy)


def test_parse_datetime_two_digit_year_ten_ahead_is_previous_century():
    yy = (datetime.now(timezone.utc).year + 10) % 100
    assert parse_datetime(f"{yy:02d}0615", "120000", "GMT").year == rfc_two_digit_year(yy)


def test_parse_datetime_two_digit_years_follow_rfc_rule_for_all_yy():
    got = {yy: parse_datetime(f"{yy:02d}0101", "000000", "GMT").year for yy in range(100)}
    want = {yy: rfc_two_digit_year(yy) for yy in range(100)}
    assert got == want


def test_parse_datetime_99_is_1999():
    # In the 21st century, 99 > current yy, so previous century.
    assert parse_datetime("991231", "235959", "GMT").year == 1999


def test_parse_datetime_accepts_leap_second():
    # RFC 3977 7.3.2: "ss is the seconds (00-60, to allow for leap seconds)".
    dt = parse_datetime("20161231", "235960", "GMT")
    base = datetime(2016, 12, 31, 23, 59, 59, tzinfo=timezone.utc)
    assert base <= dt <= base + timedelta(seconds=1)


@pytest.mark.parametrize("gmt", ["UTC", "EST", "+0000", "Z"])
def test_parse_datetime_rejects_other_zone_tokens(gmt):
    raises_501(parse_datetime, "20250102", "030405", gmt)


@pytest.mark.parametrize(
    "date,time",
    [
        ("2025010", "000000"),  # 7 digits
        ("202501021", "000000"),  # 9 digits
        ("20251301", "000000"),  # month 13
        ("20250230", "000000"),  # 30 February
        ("20250100", "000000"),  # day 0
        ("20250102", "240000"),  # hour 24
        ("20250102", "006000"),  # minute 60
        ("20250102", "0000"),  # short time
        ("20250102", "0000000"),  # long time
        ("2025-1-2", "000000"),
        ("20250102", "00:00:"),
    ],
)
def test_parse_datetime_rejects_bad_values(date, time):
    raises_501(parse_datetime, date, time, "GMT")


def test_parse_datetime_rejects_non_ascii_digits():
    # DIGIT in RFC 3977's ABNF is ASCII 0-9; fullwidth digits are not a date.
    raises_501(parse_datetime, "\uff12\uff10\uff12\uff15\uff10\uff11\uff10\uff12", "000000", "GMT")


def test_parse_datetime_rejects_non_ascii_digits_in_time():
    raises_501(parse_datetime, "20250102", "\u0661\u0662\u0663\u0664\u0665\u0660", "GMT")


# -- Response ------------------------------------------------------------------


def test_response_head_single_line():
    r = Response(205, "closing connection")
    assert not r.multiline
    assert r.head() == b"205 closing connection\r\n"


def test_response_head_with_lines_is_stuffed_and_terminated():
    r = Response(215, "list follows", lines=[b"a", b".b", b"."])
    assert r.multiline
    assert r.head() == b"215 list follows\r\na\r\n..b\r\n..\r\n.\r\n"


def test_response_head_with_empty_lines_list_is_an_empty_block():
    # An empty list is still a multi-line response (RFC 3977 3.1.1).
    r = Response(231, "list of new newsgroups follows", lines=[])
    assert r.multiline
    assert r.head() == b"231 list of new newsgroups follows\r\n.\r\n"


def test_response_head_with_data_appends_terminator():
    r = Response(220, "1 <a@b> article", data=b"..x\r\n")
    assert r.head() == b"220 1 <a@b> article\r\n..x\r\n.\r\n"


def test_response_head_with_chunks_is_status_line_only():
    async def gen():
        yield b"x\r\n"

    r = Response(224, "overview follows", chunks=gen())
    assert r.multiline
    assert r.head() == b"224 overview follows\r\n"


def test_parse_datetime_without_gmt_is_server_local_time(monkeypatch):
    """RFC 3977 7.3.2: without the GMT argument the date and time are the server's local time."""
    import time as time_module

    monkeypatch.setenv("TZ", "Europe/Berlin")
    time_module.tzset()
    try:
        local = parse_datetime("20261127", "120000", None)
        utc = parse_datetime("20261127", "120000", "GMT")
    finally:
        monkeypatch.delenv("TZ")
        time_module.tzset()
    assert (utc - local).total_seconds() == 3600


def test_status_line_is_printable_and_at_most_512_octets():
    """RFC 3977 3.1: a response line is at most 512 octets with its CRLF; echoed client
    text never brings control bytes or undecodable octets into it."""
    from nntpd.protocol import status

    line = status(411, "No such newsgroup " + "\u00e9" * 400)
    assert len(line) <= 512 and line.endswith(b"...\r\n")
    line.decode("utf-8")
    assert status(500, "Unknown command DATE\x00PROBE\udcff") == b"500 Unknown command DATE?PROBE?\r\n"
