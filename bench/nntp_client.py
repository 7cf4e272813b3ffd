"""The benchmark's NNTP client connection: standard library asyncio only.

Two kinds of client, the same code but for one system call:

- ``quickack=False``: an ordinary client. The kernel's delayed ACKs are on,
  so a server that writes a status line and its data in two writes without
  TCP_NODELAY waits (Nagle) for an ACK the client delays ~40 ms.
- ``quickack=True``: TCP_QUICKACK is set on the client socket when it
  connects and again after every receive (Linux clears it by itself, it is
  not sticky), so every segment is acknowledged at once. This shows what a
  server can do when the client's delayed ACK is taken out of the picture.

Both use asyncio's transport (which sets TCP_NODELAY on the client side, as
asyncio always does) and a StreamReader for the buffering.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

CRLF = b"\r\n"
TCP_QUICKACK = getattr(socket, "TCP_QUICKACK", 12)  # Linux only
READ_SIZE = 1 << 18


class ProtocolError(Exception):
    """A wrong or missing answer from the server."""


class _ClientProtocol(asyncio.StreamReaderProtocol):
    """StreamReaderProtocol that re-arms TCP_QUICKACK after each receive when asked to."""

    def __init__(self, reader: asyncio.StreamReader, quickack: bool) -> None:
        super().__init__(reader)
        self._quickack = quickack
        self._sock: object | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._sock = transport.get_extra_info("socket")
        if self._quickack:
            self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._quickack:
            self._arm()

    def _arm(self) -> None:
        try:
            self._sock.setsockopt(socket.IPPROTO_TCP, TCP_QUICKACK, 1)  # type: ignore[union-attr]
        except (OSError, AttributeError):
            pass


class Conn:
    """One NNTP connection: status lines and dot-terminated blocks."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 greeting: str = "") -> None:
        self.reader = reader
        self.writer = writer
        self.greeting = greeting

    @classmethod
    async def open(cls, port: int, *, quickack: bool = False, mode_reader: bool = True,
                   host: str = "127.0.0.1") -> Conn:
        """Connect, read the greeting and (by default) send MODE READER as newsreaders do.

        INN's innd answers a client it also knows as a feed peer itself
        ("transit mode") and hands the connection to nnrpd only after MODE
        READER; our server answers MODE READER with its greeting.
        """
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 20, loop=loop)
        transport, protocol = await loop.create_connection(
            lambda: _ClientProtocol(reader, quickack), host, port)
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        conn = cls(reader, writer)
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

    async def line(self) -> str:
        raw = await self.reader.readline()
        if not raw.endswith(CRLF):
            raise ProtocolError(f"connection closed or bad line end: {raw[:80]!r}")
        return raw[:-2].decode("utf-8", "replace")

    async def cmd(self, text: str) -> str:
        self.writer.write(text.encode() + CRLF)
        return await self.line()

    async def block_raw(self) -> bytes:
        """A whole multi-line block as received, still dot-stuffed, with the final '.\\r\\n'."""
        reader = self.reader
        buf = await reader.read(READ_SIZE)
        if buf == b".\r\n" or buf.endswith(b"\r\n.\r\n"):
            return buf
        parts = bytearray(buf)
        while True:
            if not buf:
                raise ProtocolError("connection closed inside a block")
            buf = await reader.read(READ_SIZE)
            parts += buf
            if parts.endswith(b"\r\n.\r\n") or parts == b".\r\n":
                return bytes(parts)

    async def block(self) -> list[bytes]:
        """The lines of a multi-line block, unstuffed, without the final '.'."""
        raw = await self.block_raw()
        if raw == b".\r\n":
            return []
        lines = raw[:-3].split(CRLF)[:-1]
        return [ln[1:] if ln[:1] == b"." else ln for ln in lines]

    async def block_lines(self) -> AsyncIterator[list[bytes]]:
        """The lines of a block (unstuffed) as they arrive, for answers too big to hold at once."""
        reader = self.reader
        rest = b""  # an incomplete last line; data always starts at a line start
        while True:
            data = await reader.read(READ_SIZE)
            if not data:
                raise ProtocolError("connection closed inside a block")
            data = rest + data
            end = data.rfind(CRLF)
            if end < 0:
                rest = data
                continue
            done = data == b".\r\n" or data.endswith(b"\r\n.\r\n")
            complete = data[: len(data) - 3] if done else data[: end + 2]
            rest = b"" if done else data[end + 2:]
            lines = complete.split(CRLF)[:-1]
            yield [ln[1:] if ln[:1] == b"." else ln for ln in lines]
            if done:
                return

    def abort(self) -> None:
        self.writer.transport.abort()

    async def close(self) -> None:
        try:
            self.writer.write(b"QUIT\r\n")
            await self.writer.drain()
            await asyncio.wait_for(self.reader.read(), 5)
        except (OSError, asyncio.TimeoutError, ConnectionError):
            pass
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (OSError, ConnectionError):
            pass
