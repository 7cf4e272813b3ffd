"""Resource limits: connections, idle timeout, line and article sizes, header limits, post rate
and a client that never reads. After every limit the server must go on serving others.
"""

from __future__ import annotations

import asyncio
import socket
import time
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import AsyncContextManager, AsyncIterator

from conftest import Client, ServerHandle, running, write_lock_held
from conftest import connected as login_connection
from nntpd.article import prepare_article
from nntpd.config import AuthSettings, Settings
from nntpd.passwords import hash_password
from storage import Poster

PASSWORD = "limit-password"


@asynccontextmanager
async def serving(tmp_path: Path, **overrides: object) -> AsyncIterator[ServerHandle]:
    async with running(tmp_path, settings=Settings(auth=AuthSettings(failure_delay=0.0)), **overrides) as handle:
        for name in ("alice", "bob"):
            await handle.store.add_account(name, email=f"{name}@example.com",
                                           password_hash=hash_password(PASSWORD, n=2**10))
        yield handle


def connected(handle: ServerHandle, user: str | None = None) -> AsyncContextManager[Client]:
    """A connection, logged in as ``user`` with this module's password when given."""
    return login_connection(handle, user, PASSWORD)


async def assert_alive(handle: ServerHandle) -> None:
    """A new connection is greeted and answered."""
    async with connected(handle) as client:
        assert client.greeting.startswith("20"), client.greeting
        assert (await client.cmd("DATE")).startswith("111")


async def read_to_eof(client: Client, timeout: float = 5.0) -> bytes:
    return await asyncio.wait_for(client.reader.read(), timeout)


async def post_many(handle: ServerHandle, count: int, padding: str) -> None:
    """``count`` articles with long subjects (big overview lines), stored without NNTP."""
    now = datetime.now(timezone.utc)
    articles = [
        prepare_article(
            (f"From: bulk{i}@example.com\r\nNewsgroups: local.test\r\nSubject: bulk {i} {padding}\r\n"
             f"Message-ID: <bulk-{i}@example.com>\r\n\r\nbody {i}\r\n").encode(),
            path_host="test.example", now=now)
        for i in range(count)
    ]
    await asyncio.gather(*(handle.store.post(a, Poster(author_key=f"bulk{i}@example.com"))
                           for i, a in enumerate(articles)))


@asynccontextmanager
async def never_reading(handle: ServerHandle, request: bytes) -> AsyncIterator[socket.socket]:
    """A client with a tiny receive buffer that sends ``request`` and never reads the answers;
    it leaves with a reset (unread data, linger 0)."""
    loop = asyncio.get_running_loop()
    hog = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    hog.setblocking(False)
    try:
        await loop.sock_connect(hog, ("127.0.0.1", handle.port))
        await loop.sock_sendall(hog, request)
        yield hog
    finally:
        hog.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        hog.close()


def simple(n: int | str, *, extra: str = "", body: str = "body\n", from_: str = "poster@example.com") -> str:
    return (f"From: {from_}\nNewsgroups: local.test\nSubject: post {n}\nMessage-ID: <lim-{n}@example.com>\n"
            f"{extra}\n{body}")


# -- connections (RFC 3977 5.1.1) ------------------------------------------------


async def test_connections_per_address_limit(tmp_path):
    """Spec + RFC 3977 5.1.1: beyond max_connections_per_address the greeting is 400 and the
    connection is closed; once a slot is free a new client is served again."""
    async with serving(tmp_path, max_connections_per_address=2) as handle:
        first, second = await handle.connect(), await handle.connect()
        try:
            assert first.greeting.startswith("200") and second.greeting.startswith("200")
            third = await handle.connect()
            assert third.greeting.startswith("400"), third.greeting
            assert await read_to_eof(third) == b""
            await third.close()
            assert (await first.cmd("DATE")).startswith("111")
        finally:
            await first.close()
        for _ in range(100):  # the server notices the close asynchronously
            client = await handle.connect()
            if client.greeting.startswith("200"):
                break
            await client.close()
            await asyncio.sleep(0.02)
        try:
            assert client.greeting.startswith("200")
            assert (await client.cmd("DATE")).startswith("111")
        finally:
            await client.close()
            await second.close()


async def test_total_connection_limit(tmp_path):
    """Spec + RFC 3977 5.1.1: beyond max_connections the greeting is 400 and the connection closes."""
    async with serving(tmp_path, max_connections=2) as handle:
        first, second = await handle.connect(), await handle.connect()
        try:
            third = await handle.connect()
            assert third.greeting.startswith("400"), third.greeting
            assert await read_to_eof(third) == b""
            await third.close()
        finally:
            await first.close()
            await second.close()
        for _ in range(100):
            client = await handle.connect()
            ok = client.greeting.startswith("200")
            await client.close()
            if ok:
                break
            await asyncio.sleep(0.02)
        assert ok
        await assert_alive(handle)


# -- idle timeout (RFC 3977 3.1, spec) -------------------------------------------------


async def test_idle_client_gets_400_and_is_closed(tmp_path):
    """Spec: an idle client gets 400 after idle_timeout and the connection is closed."""
    async with serving(tmp_path, idle_timeout=0.5) as handle, connected(handle) as client:
        start = time.monotonic()
        line = await asyncio.wait_for(client.line(), 5)
        assert line.startswith("400"), line
        assert time.monotonic() - start >= 0.4
        assert await read_to_eof(client) == b""
        await assert_alive(handle)


async def test_active_client_is_not_timed_out(tmp_path):
    """Spec: the idle timeout counts from the last command, not from the connection's start."""
    async with serving(tmp_path, idle_timeout=0.5) as handle, connected(handle) as client:
        for _ in range(4):
            await asyncio.sleep(0.2)
            assert (await client.cmd("DATE")).startswith("111")


async def test_slow_command_is_not_idle(tmp_path):
    """Spec: only waiting for the client counts as idle; a POST whose storage takes longer
    than idle_timeout (another process holds the write lock) still gets its 240."""
    async with serving(tmp_path, idle_timeout=0.5) as handle, connected(handle) as client:
        async with write_lock_held(handle.db_path, 1.2):
            status = await asyncio.wait_for(client.post(
                "From: a@example.com\nNewsgroups: local.test\nSubject: slow\n\nbody\n"), 10)
        assert status.startswith("240"), status
        assert (await client.cmd("DATE")).startswith("111")


async def test_idle_inside_post_gets_400_and_is_closed(tmp_path):
    """Spec: a client that stalls in the middle of POST data is idle too: 400, then the connection closes."""
    async with serving(tmp_path, idle_timeout=0.5) as handle, connected(handle) as client:
        assert (await client.cmd("POST")).startswith("340")
        await client.send("From: a@example.com\r\nNewsgroups: local.test\r\n")
        line = await asyncio.wait_for(client.line(), 5)
        assert line.startswith("400"), line
        assert await read_to_eof(client) == b""
        assert (await handle.store.group("local.test")).count == 0
        await assert_alive(handle)


async def test_idle_at_sasl_prompt_gets_400_and_is_closed(tmp_path):
    """Spec: a client that never answers the 383 SASL prompt is idle: 400, then the connection closes."""
    async with serving(tmp_path, idle_timeout=0.5) as handle, connected(handle) as client:
        assert (await client.cmd("AUTHINFO SASL PLAIN")).startswith("383")
        line = await asyncio.wait_for(client.line(), 5)
        assert line.startswith("400"), line
        assert await read_to_eof(client) == b""
        await assert_alive(handle)


# -- line lengths (RFC 3977 3.1) -------------------------------------------------------


async def test_overlong_command_line_501(tmp_path):
    """RFC 3977 3.1: command lines are at most 512 octets; a 600-octet line gets 501, the session goes on."""
    async with serving(tmp_path) as handle, connected(handle) as client:
        assert (await client.cmd("GROUP " + "a" * 594)).startswith("501")
        assert (await client.cmd("DATE")).startswith("111")
        assert (await client.cmd("X" * 598)).startswith("501")
        assert (await client.cmd("GROUP local.test")).startswith("211")


async def test_huge_line_without_newline_is_consumed(tmp_path):
    """RFC 3977 3.1 + spec: a 100 KB line (no newline until its end) is answered 501 and the next
    command on the same connection is answered (111): no disconnect, no crash."""
    async with serving(tmp_path) as handle, connected(handle) as client:
        await client.send(b"A" * 100_000)
        await asyncio.sleep(0.05)
        await client.send(b"\r\nDATE\r\n")
        assert (await client.line()).startswith("501")
        assert (await client.line()).startswith("111")
        await client.send(b"B" * 300_000 + b"\r\n")
        assert (await client.line()).startswith("501")
        assert (await client.cmd("DATE")).startswith("111")
        await assert_alive(handle)


# -- article limits (RFC 3977 6.3.1, spec) ----------------------------------------------


async def test_article_over_size_limit_441(tmp_path):
    """RFC 3977 6.3.1 + spec: an article over max_article_bytes is read to its end and refused 441."""
    async with serving(tmp_path, max_article_bytes=2000) as handle:
        async with connected(handle) as client:
            body = ("x" * 70 + "\n") * 80
            assert (await client.post(simple("big", body=body))).startswith("441")
            assert (await client.cmd("DATE")).startswith("111")
            assert (await client.post(simple("small"))).startswith("240")
        assert (await handle.store.group("local.test")).count == 1
        await assert_alive(handle)


async def test_too_many_header_lines_441(tmp_path):
    """Spec: more than max_header_count header fields -> 441; exactly the limit is accepted."""
    async with serving(tmp_path, max_header_count=5) as handle:
        async with connected(handle) as client:
            assert (await client.post(simple("five", extra="X-One: 1\n"))).startswith("240")
            status = await client.post(simple("six", extra="X-One: 1\nX-Two: 2\n"))
            assert status.startswith("441"), status
            many = "".join(f"X-H{i}: {i}\n" for i in range(200))
            assert (await client.post(simple("many", extra=many))).startswith("441")
            assert (await client.cmd("DATE")).startswith("111")
        assert (await handle.store.group("local.test")).count == 1
        await assert_alive(handle)


async def test_header_block_too_large_441(tmp_path):
    """Spec: a header block over max_header_bytes -> 441."""
    async with serving(tmp_path, max_header_bytes=400) as handle:
        async with connected(handle) as client:
            assert (await client.post(simple("short-header"))).startswith("240")
            status = await client.post(simple("long-header", extra="X-Long: " + "y" * 500 + "\n"))
            assert status.startswith("441"), status
        await assert_alive(handle)


async def test_post_rate_limit_per_account(tmp_path):
    """Spec: posts_per_minute per account: the 3rd post within a minute is 441 naming the rate
    limit and is not stored; another account is not affected."""
    async with serving(tmp_path, posts_per_minute=2) as handle:
        async with connected(handle, "alice") as client:
            assert (await client.post(simple(1, from_="alice@example.com"))).startswith("240")
            assert (await client.post(simple(2, from_="alice@example.com"))).startswith("240")
            status = await client.post(simple(3, from_="alice@example.com"))
            assert status.startswith("441") and "rate" in status.lower(), status
            assert (await client.cmd("STAT <lim-3@example.com>")).startswith("430")
        async with connected(handle, "alice") as client:  # a new connection does not reset it
            assert (await client.post(simple(4, from_="alice@example.com"))).startswith("441")
        async with connected(handle, "bob") as client:
            assert (await client.post(simple(5, from_="bob@example.com"))).startswith("240")
        assert (await handle.store.group("local.test")).count == 3
        await assert_alive(handle)


# -- a client that never reads (spec) ------------------------------------------------------


async def test_client_that_never_reads_does_not_hurt_the_server(tmp_path):
    """Spec: large pipelined responses to a client that never reads must not crash the server or
    block others; when that client goes away its slot is freed."""
    async with serving(tmp_path, max_connections_per_address=3) as handle:
        await post_many(handle, 300, "overview padding " * 8)
        assert (await handle.store.group("local.test")).count == 300

        async with never_reading(handle, b"GROUP local.test\r\n" + b"OVER 1-\r\n" * 50):
            await asyncio.sleep(0.3)  # let the server fill every buffer on the way
            start = time.monotonic()
            async with connected(handle) as client:
                assert (await client.cmd("DATE")).startswith("111")
                assert (await client.cmd("GROUP local.test")).startswith("211 300 1 300")
                assert (await client.cmd("OVER 299-300")).startswith("224")
                assert len(await client.block()) == 2
            assert time.monotonic() - start < 5
        # The hog's slot is freed: three more connections fit under the per-address limit.
        deadline = time.monotonic() + 5
        while True:
            clients = [await handle.connect() for _ in range(3)]
            greetings = [c.greeting for c in clients]
            for c in clients:
                await c.close()
            if all(g.startswith("200") for g in greetings) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert all(g.startswith("200") for g in greetings), greetings
        await assert_alive(handle)


async def test_client_that_stops_reading_is_disconnected_after_idle_timeout(tmp_path):
    """RFC 3977 3.1 / spec: a client that never reads its answers is not held forever: once the
    server has waited idle_timeout for it to take data, the connection is closed and its slot freed."""
    async with serving(tmp_path, idle_timeout=0.5, max_connections_per_address=2) as handle:
        await post_many(handle, 300, "x" * 200)
        async with never_reading(handle, b"GROUP local.test\r\n" + b"OVER 1-\r\n" * 100):
            deadline = time.monotonic() + 5
            while not handle.server._connections and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            assert handle.server._connections == 1
            # The server's send buffer fills, it waits 0.5 s for the client, then gives up
            # (the pipelined commands keep the read side busy, so this is the write timeout).
            while handle.server._connections and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert handle.server._connections == 0
        await assert_alive(handle)
