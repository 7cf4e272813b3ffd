"""Fixtures: a real server on a free port with a temporary SQLite file."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import AsyncIterator

import pytest

from nntpd.config import DatabaseSettings, Settings
from nntpd.server import NNTPServer
from storage import Store


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    """A raw NNTP client over a real TCP socket, for tests."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.greeting = ""

    async def send(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode()
        self.writer.write(data)
        await self.writer.drain()

    async def line(self) -> str:
        raw = await asyncio.wait_for(self.reader.readline(), 10)
        if not raw:
            raise ConnectionError("server closed the connection")
        return raw.decode("utf-8", "surrogateescape").rstrip("\r\n")

    async def raw_block(self) -> bytes:
        """A multi-line block as sent (still dot-stuffed), without the final '.'."""
        parts = []
        while True:
            raw = await asyncio.wait_for(self.reader.readline(), 10)
            if raw == b".\r\n":
                return b"".join(parts)
            if not raw:
                raise ConnectionError("closed inside a block")
            parts.append(raw)

    async def block(self) -> list[str]:
        """A multi-line block, unstuffed, as text lines."""
        data = await self.raw_block()
        return [
            (ln[1:] if ln.startswith(".") else ln)
            for ln in data.decode("utf-8", "surrogateescape").split("\r\n")[:-1]
        ]

    async def cmd(self, command: str) -> str:
        await self.send(command + "\r\n")
        return await self.line()

    async def post(self, article: bytes | str) -> str:
        """POST an article given with CRLF or LF line ends; returns the final status line."""
        if isinstance(article, str):
            article = article.encode()
        article = article.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        if not article.endswith(b"\r\n"):
            article += b"\r\n"
        status = await self.cmd("POST")
        if not status.startswith("340"):
            return status
        stuffed = b"".join(
            (b"." + ln if ln.startswith(b".") else ln) + b"\r\n" for ln in article.split(b"\r\n")[:-1]
        )
        await self.send(stuffed + b".\r\n")
        return await self.line()

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass


class ServerHandle:
    def __init__(self, server: NNTPServer, store: Store, port: int, db_path: Path) -> None:
        self.server = server
        self.store = store
        self.port = port
        self.host = "127.0.0.1"
        self.db_path = db_path
        self.url = store.url

    async def connect(self) -> Client:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        client = Client(reader, writer)
        client.greeting = await client.line()
        return client


async def start_server(tmp_path: Path, settings: Settings | None = None,
                       **server_overrides: object) -> ServerHandle:
    """Start a server; ``settings`` gives other sections (auth, tls, access, views),
    ``server_overrides`` change [server] keys. Port, path host and database are set here."""
    db_path = tmp_path / "news.sqlite3"
    return await start_server_on(f"sqlite+aiosqlite:///{db_path}", db_path, settings,
                                 **server_overrides)


async def start_server_on(url: str, db_path: Path, settings: Settings | None = None, *,
                          path_host: str = "test.example", **server_overrides: object) -> ServerHandle:
    """start_server on any database URL (init is idempotent; local.test is made if missing)."""
    port = free_port()
    base = settings or Settings()
    settings = replace(
        base,
        server=replace(base.server, port=port, path_host=path_host, **server_overrides),
        database=DatabaseSettings(url=url),
    )
    store = Store(url, path_host=path_host)
    await store.init_schema()
    if await store.group("local.test") is None:
        await store.create_group("local.test", description="Sample group", creator="test")
    server = NNTPServer(settings, store)
    await server.start("127.0.0.1", port)
    return ServerHandle(server, store, port, db_path)


@asynccontextmanager
async def running(tmp_path: Path, settings: Settings | None = None,
                  **server_overrides: object) -> AsyncIterator[ServerHandle]:
    """A started server (as start_server) that is closed again on exit."""
    handle = await start_server(tmp_path, settings, **server_overrides)
    try:
        yield handle
    finally:
        await handle.server.close()
        await handle.store.close()


@asynccontextmanager
async def connected(handle: ServerHandle, user: str | None = None,
                    password: str | None = None) -> AsyncIterator[Client]:
    """A client connection, logged in with AUTHINFO USER/PASS when ``user`` is given."""
    client = await handle.connect()
    try:
        if user is not None:
            assert (await client.cmd(f"AUTHINFO USER {user}")).startswith("381")
            assert (await client.cmd(f"AUTHINFO PASS {password}")).startswith("281")
        yield client
    finally:
        await client.close()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServerHandle]:
    handle = await start_server(tmp_path)
    try:
        yield handle
    finally:
        await handle.server.close()
        await handle.store.close()


@pytest.fixture
async def client(server: ServerHandle) -> AsyncIterator[Client]:
    c = await server.connect()
    try:
        yield c
    finally:
        await c.close()


HOLD_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
"""


@asynccontextmanager
async def write_lock_held(db_path: Path, seconds: float) -> AsyncIterator[None]:
    """Another process holds the database's write lock for ``seconds`` (from entry)."""
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLD_LOCK, f"{db_path}-nntpd.lock", str(seconds),
        stdout=asyncio.subprocess.PIPE)
    try:
        assert holder.stdout is not None
        assert (await holder.stdout.readline()).strip() == b"locked"
        yield
    finally:
        await holder.wait()


# -- strict mode (CI) -----------------------------------------------------------------

STRICT = os.environ.get("NNTPD_TEST_STRICT", "") not in ("", "0")
STRICT_HINT = ("NNTPD_TEST_STRICT is set (as .ci/run sets it): a test that would skip for a missing "
               "client, openssl or PostgreSQL fails instead")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """In strict mode a skipped test is a failure: CI must run every test, not skip it."""
    outcome = yield
    report = outcome.get_result()
    if STRICT and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"{STRICT_HINT}; skip reason: {report.longrepr}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):  # type: ignore[no-untyped-def]
    """The same for a whole module skipped at import (tests/test_postgres.py without its URL)."""
    outcome = yield
    report = outcome.get_result()
    if STRICT and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"{STRICT_HINT}; skip reason: {report.longrepr}"
