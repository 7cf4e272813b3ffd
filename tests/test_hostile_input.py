"""Lines any client may send get a defined answer and leave the connection usable (issue 13).

Each of these once ended in ``403 Internal fault`` and a close, froze the
whole server, or echoed control bytes back.
"""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from conftest import running
from nntp_helpers import post_ok

STATUS = re.compile(rb"^[1-5][0-9][0-9](?: [\x20-\x7e]*)?\r\n$")

BAD_BYTES = [
    (b"GROUP rel.\xe9t\xe9", "411"),
    (b"STAT <\xff\xfe@example>", "430"),
    (b"HDR Subject <\xe9@x>", "430"),
    (b"OVER <\xe9@x>", "430"),
    (b"ARTICLE <a\x00b@x>", "430"),
    (b"LISTGROUP \xff", "411"),
    (b"XPAT Subject 1-5 [", "501"),
    (b"XPAT Subject 1-5 a[b", "501"),
    (b"XPAT Subject 1-5 [z-a]", "501"),
    (b"LIST ACTIVE a[b", "501"),
    (b"NEWNEWS a[b 20200101 000000 GMT", "501"),
    (b"LIST NEWSGROUPS " + b"a," * 200, "501"),
]


async def raw_status(client, line: bytes) -> bytes:  # type: ignore[no-untyped-def]
    await client.send(line + b"\r\n")
    return await asyncio.wait_for(client.reader.readline(), 5)


@pytest.mark.parametrize("line,code", BAD_BYTES, ids=[repr(b)[:40] for b, _ in BAD_BYTES])
async def test_bad_bytes_get_a_defined_answer(tmp_path, line, code):
    async with running(tmp_path) as handle:
        client = await handle.connect()
        await client.cmd("GROUP local.test")
        answer = await raw_status(client, line)
        assert answer.startswith(code.encode()), answer
        assert STATUS.match(answer), answer
        assert (await client.cmd("DATE")).startswith("111")  # still usable
        await client.close()


async def test_nul_and_control_bytes_are_not_echoed(tmp_path):
    """A 500 names the verb, but never with its control or 8-bit bytes (RFC 3977 3.1)."""
    async with running(tmp_path) as handle:
        client = await handle.connect()
        for line in (b"DATE\x00PROBE", b"\x1b[2J\x07", b"X\xff\xfe", b"LIST \x00\x01"):
            answer = await raw_status(client, line)
            assert answer[:1] in b"45", answer
            assert STATUS.match(answer), answer
        assert (await client.cmd("DATE")).startswith("111")
        await client.close()


async def test_capabilities_argument_must_be_a_keyword(tmp_path):
    """RFC 3977 5.2.2: an argument that is not a keyword gets 501; a keyword is ignored."""
    async with running(tmp_path) as handle:
        client = await handle.connect()
        assert (await client.cmd("CAPABILITIES 9PROBE!")).startswith("501")
        assert (await client.cmd("CAPABILITIES AUTOUPDATE extra")).startswith("501")
        assert (await client.cmd("CAPABILITIES AUTOUPDATE")).startswith("101")
        assert "VERSION 2" in await client.block()
        await client.close()


async def test_help_with_arguments_is_501(tmp_path):
    """RFC 3977 3.2.1: a syntax error in the arguments is 501."""
    async with running(tmp_path) as handle:
        client = await handle.connect()
        assert (await client.cmd("HELP me please")).startswith("501")
        assert (await client.cmd("HELP")).startswith("100")
        assert await client.block()
        await client.close()


async def test_backtracking_wildmats_answer_at_once(tmp_path):
    """Was exponential in the stars and froze every connection (RFC 3977 4)."""
    async with running(tmp_path) as handle:
        client = await handle.connect()
        await post_ok(client, subject="a" * 28)
        await client.cmd("GROUP local.test")
        started = time.perf_counter()
        assert (await client.cmd("XPAT Subject 1-7 " + "*a" * 12 + "*b")).startswith("221")
        assert await client.block() == []
        assert (await client.cmd("XPAT Subject 1-7 " + "*a" * 12)).startswith("221")
        assert len(await client.block()) == 1
        assert (await client.cmd("LIST ACTIVE " + "*a" * 10 + "*b")).startswith("215")
        await client.block()
        assert time.perf_counter() - started < 1.0
        await client.close()
