"""The benchmark's NNTP client connection: standard library asyncio only.

Two kinds of client, the same code but for one system call:

- ``quickack=False``: an ordinary client. The kernel's delayed ACKs are on,
  so a server that writes a status line and its data in two writes without
  TCP_NODELAY waits (Nagle) for an ACK the client delays ~40 ms.
- ``quickack=True``: TCP_QUICKACK is set on the client socket when it
  connects and again after every receive (Linux clears it by itself, it is
  not sticky), so every segment is acknowledged at once. This shows what a
  server can do when the client's delayed ACK is taken out of the picture.

The connection is a small asyncio Protocol with its own buffer rather than
a StreamReader: ``request()`` waits once for a whole answer (status line
and, for the given codes, the dot-terminated block), so the client's own
cost per request stays far below the servers' (see the client ceiling in
bench/README.md). asyncio sets TCP_NODELAY on the client socket, as it
always does.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

CRLF = b"\r\n"
END = b"\r\n.\r\n"
TCP_QUICKACK = getattr(socket, "TCP_QUICKACK", 12)  # Linux only


class ProtocolError(Exception):
    """A wrong or missing answer from the server."""


class _Client(asyncio.Protocol):
    def __init__(self, quickack: bool) -> None:
        self.quickack = quickack
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.sock: Any = None
        self.waiter: asyncio.Future[Any] | None = None
        self.want: Callable[[], Any] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.sock = transport.get_extra_info("socket")
        if self.quickack:
            self.arm()

    def arm(self) -> None:
        try:
            self.sock.setsockopt(socket.IPPROTO_TCP, TCP_QUICKACK, 1)
        except (OSError, AttributeError):
            pass

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.quickack:
            self.arm()
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            try:
                result = self.want()  # type: ignore[misc]
            except Exception as exc:  # noqa: BLE001 - handed to the waiting request
                waiter.set_exception(exc)
                return
            if result is not None:
                waiter.set_result(result)

    def eof_received(self) -> bool:
        self._lost()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost()

    def _lost(self) -> None:
        self.closed = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ProtocolError(
                f"connection closed by the server (unparsed: {bytes(self.buf[:80])!r})"))

    async def wait(self, want: Callable[[], Any]) -> Any:
        result = want()
        if result is not None:
            return result
        if self.closed:
            raise ProtocolError(f"connection closed by the server (unparsed: {bytes(self.buf[:80])!r})")
        self.waiter = asyncio.get_running_loop().create_future()
        self.want = want
        try:
            return await self.waiter
        finally:
            self.waiter = None
            self.want = None


class Conn:
    """One NNTP connection: status lines and dot-terminated blocks."""

    def __init__(self, proto: _Client) -> None:
        self.proto = proto
        self.transport: asyncio.Transport = proto.transport  # type: ignore[assignment]
        self.greeting = ""

    @classmethod
    async def open(cls, port: int, *, quickack: bool = False, mode_reader: bool = True,
                   host: str = "127.0.0.1") -> Conn:
        """Connect, read the greeting and (by default) send MODE READER as newsreaders do.

        INN's innd answers a client it also knows as a feed peer itself
        ("transit mode") and hands the connection to nnrpd only after MODE
        READER; our server answers MODE READER with its greeting.
        """
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_connection(lambda: _Client(quickack), host, port)
        conn = cls(proto)
        try:
            greeting = await conn.line()
            if not greeting.startswith("20"):
                raise ProtocolError(f"greeting: {greeting!r}")
            if mode_reader:
                greeting = await conn.cmd("MODE READER")
                if not greeting.startswith("20"):
                    raise ProtocolError(f"MODE READER: {greeting!r}")
        except BaseException:
            transport.abort()
            raise
        conn.greeting = greeting
        return conn

    # parsers: each returns None until the buffer holds what it needs

    def _take_line(self) -> bytes | None:
        buf = self.proto.buf
        end = buf.find(CRLF)
        if end < 0:
            return None
        line = bytes(buf[:end])
        del buf[: end + 2]
        return line

    def _block_taker(self) -> Callable[[], bytes | None]:
        scan = 0

        def take() -> bytes | None:
            nonlocal scan
            buf = self.proto.buf
            if buf[:3] == b".\r\n":
                del buf[:3]
                return b".\r\n"
            end = buf.find(END, scan)
            if end < 0:
                scan = max(0, len(buf) - 4)
                return None
            block = bytes(buf[: end + 5])
            del buf[: end + 5]
            return block

        return take

    # the API

    def send(self, data: bytes) -> None:
        self.transport.write(data)

    async def line(self) -> str:
        raw = await self.proto.wait(self._take_line)
        return raw.decode("utf-8", "replace")

    async def cmd(self, text: str) -> str:
        self.transport.write(text.encode() + CRLF)
        return await self.line()

    async def request(self, text: str, multi: bytes) -> tuple[str, bytes | None]:
        """Send a command; wait once for its status and, if the status starts with
        ``multi`` (e.g. b"220"), its block (still dot-stuffed, with the final '.\\r\\n')."""
        self.transport.write(text.encode() + CRLF)
        status: bytes | None = None
        block = self._block_taker()

        def take() -> tuple[bytes, bytes | None] | None:
            nonlocal status
            if status is None:
                status = self._take_line()
                if status is None:
                    return None
                if not status.startswith(multi):
                    return status, None
            body = block()
            return None if body is None else (status, body)

        raw_status, raw = await self.proto.wait(take)
        return raw_status.decode("utf-8", "replace"), raw

    async def block_raw(self) -> bytes:
        """A whole multi-line block as received, still dot-stuffed, with the final '.\\r\\n'."""
        return await self.proto.wait(self._block_taker())

    async def block(self) -> list[bytes]:
        """The lines of a multi-line block, unstuffed, without the final '.'."""
        return split_block(await self.block_raw())

    async def block_lines(self) -> AsyncIterator[list[bytes]]:
        """The lines of a block (unstuffed) as they arrive, for answers too big to hold at once."""
        done = False

        def take() -> list[bytes] | None:
            nonlocal done
            buf = self.proto.buf
            if buf[:3] == b".\r\n":
                del buf[:3]
                done = True
                return []
            end = buf.find(END)
            if end >= 0:
                chunk = bytes(buf[: end + 2])
                del buf[: end + 5]
                done = True
            else:
                end = buf.rfind(CRLF)
                if end < 0:
                    return None
                # complete lines only; the rest (maybe the start of the
                # terminator) stays, and the buffer again starts a line
                chunk = bytes(buf[: end + 2])
                del buf[: end + 2]
            lines = chunk.split(CRLF)[:-1]
            return [ln[1:] if ln[:1] == b"." else ln for ln in lines]

        while not done:
            lines = await self.proto.wait(take)
            if lines:
                yield lines

    def abort(self) -> None:
        self.transport.abort()

    async def close(self) -> None:
        if not self.proto.closed:
            try:
                self.transport.write(b"QUIT\r\n")
                await asyncio.wait_for(self.line(), 5)
            except (OSError, asyncio.TimeoutError, ConnectionError, ProtocolError):
                pass
        self.transport.close()


def split_block(raw: bytes) -> list[bytes]:
    """Lines of a received block (with its terminator), unstuffed."""
    if raw == b".\r\n":
        return []
    lines = raw[:-3].split(CRLF)[:-1]
    if raw[:1] == b"." or b"\r\n." in raw[:-5]:
        return [ln[1:] if ln[:1] == b"." else ln for ln in lines]
    return lines
