"""The asyncio server: a thin shell around Session and the protocol module.

It owns the listening sockets, connection limits and idle timeouts; reads
command lines and POST blocks; writes each response in as few writes as
possible (TCP_NODELAY, one write per response or per streamed chunk) and
respects flow control so a client that does not read cannot grow memory.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl

from storage import Store

from .commands.session_cmds import greeting
from .config import Settings
from .guards import Guards
from .protocol import (
    END_OF_BLOCK,
    BlockReceiver,
    BlockTooLarge,
    NNTPError,
    Response,
    parse_command,
    status,
)
from .session import ServerContext, Session

log = logging.getLogger("nntpd.server")

READ_LIMIT = 64 * 1024  # longest line kept; longer lines are consumed and refused
TOO_LONG: bytes | None = None  # read_line's answer for an over-long line


class ConnectionClosed(Exception):
    pass


async def read_line(reader: asyncio.StreamReader) -> bytes | None:
    """One LF-terminated line; TOO_LONG (None) if it exceeded READ_LIMIT."""
    overflow = False
    while True:
        try:
            line = await reader.readuntil(b"\n")
            return TOO_LONG if overflow else line
        except asyncio.LimitOverrunError as exc:
            overflow = True
            await reader.readexactly(exc.consumed)
        except asyncio.IncompleteReadError:
            raise ConnectionClosed() from None


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """A server TLS context from the configured files, or None when TLS is not configured."""
    cfg = settings.tls
    if not cfg.certificate or not cfg.key:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cfg.certificate, cfg.key)
    return context


async def _read_until(reader: asyncio.StreamReader, separator: bytes) -> bytes:
    """Bytes up to and including ``separator``, or a buffer's worth that does not hold it."""
    try:
        return await reader.readuntil(separator)
    except asyncio.LimitOverrunError as exc:
        return await reader.readexactly(exc.consumed)
    except asyncio.IncompleteReadError:
        raise ConnectionClosed() from None


async def read_block_piece(reader: asyncio.StreamReader, at_line_start: bool) -> bytes:
    """The next piece of a dot-terminated block: up to the end of the next line that
    starts with a dot (the terminator, or a stuffed line), or a buffer's worth.

    A few reads per article instead of one per line. A dot line ends with CRLF
    or a bare LF (the README's rule: a bare LF is a line end), so this cannot
    search for ".\r\n"; it searches for "\n." instead, and a dot right at a
    line start already consumed is told apart by reading that one byte first.
    """
    piece = b""
    if at_line_start:
        try:
            piece = await reader.readexactly(1)
        except asyncio.IncompleteReadError:
            raise ConnectionClosed() from None
        if piece == b".":
            return piece + await _read_until(reader, b"\n")
        if piece == b"\n":
            return piece
    piece += await _read_until(reader, b"\n.")
    if piece.endswith(b"\n."):
        piece += await _read_until(reader, b"\n")
    return piece


def raise_fd_limit(connections: int) -> int:
    """Raise the soft open-file limit so max_connections can be reached; returns the limit."""
    try:
        import resource
    except ImportError:  # not on POSIX
        return 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + 256  # listening sockets, database files, logs
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return soft


class NNTPServer:
    def __init__(self, settings: Settings, store: Store, guards: Guards | None = None) -> None:
        """``guards`` shared with other processes (shared_guards.py), else this process's own."""
        self.settings = settings
        self.store = store
        self.ctx = ServerContext(settings, store, tls_context(settings), guards)
        self._servers: list[asyncio.AbstractServer] = []
        self._connections = 0  # open in this process
        self._tasks: set[asyncio.Task[None]] = set()  # one per open connection
        self._closing = False

    @property
    def sockets(self) -> list[socket.socket]:
        return [s for server in self._servers for s in server.sockets]

    async def start(self, host: str | None = None, port: int | None = None,
                    tls_port: int | None = None, reuse_port: bool = False) -> None:
        """Listen on the plain port and, when TLS is configured and a port given, implicit TLS."""
        cfg = self.settings.server
        limit = raise_fd_limit(cfg.max_connections)
        if limit and limit < cfg.max_connections + 64:
            log.warning("open-file limit %d is below max_connections %d", limit, cfg.max_connections)
        host = host or cfg.host
        await self._listen(host, cfg.port if port is None else port, None, reuse_port)
        tls_port = cfg.tls_port if tls_port is None else tls_port
        if tls_port and self.ctx.tls is not None:
            await self._listen(host, tls_port, self.ctx.tls, reuse_port)

    async def _listen(self, host: str, port: int, tls: ssl.SSLContext | None,
                      reuse_port: bool) -> None:
        handler = self._handle_tls if tls is not None else self._handle
        server = await asyncio.start_server(
            handler, host, port, limit=READ_LIMIT, reuse_address=True, backlog=4096, ssl=tls,
            reuse_port=reuse_port or None,
        )
        self._servers.append(server)
        for sock in server.sockets:
            log.info("listening on %s%s", sock.getsockname()[:2], " (TLS)" if tls else "")

    async def _handle_tls(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._handle(reader, writer, secure=True)

    async def serve_forever(self) -> None:
        await asyncio.gather(*(s.serve_forever() for s in self._servers))

    async def close(self, grace: float = 2.0) -> None:
        """Stop listening, end every connection (400, even mid-command), and wait for them.

        Without this a signal would wait for idle clients to leave (the
        servers' wait_closed does from Python 3.12 on); a connection task
        that does not end within ``grace`` seconds is left to the loop's end.
        """
        self._closing = True
        for server in self._servers:
            server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      secure: bool = False) -> None:
        peer = writer.get_extra_info("peername") or ("?", 0)
        address = str(peer[0])
        sock = writer.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        limits = self.ctx.guards.connections
        refusal = limits.admit(address)
        if refusal:
            log.warning("%s: refused: %s", address, refusal)
            writer.write(status(400, f"Service temporarily unavailable: {refusal}"))
            await _close(writer)
            return
        self._connections += 1
        session = Session(self.ctx, address=address, port=int(peer[1]), secure=secure)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)  # type: ignore[arg-type]
        try:
            await self._converse(session, reader, writer)
        except ConnectionClosed:
            pass
        except asyncio.CancelledError:
            if not self._closing:
                raise
            writer.write(status(400, "Server shutting down"))
        except (ConnectionError, OSError) as exc:
            log.debug("%s: connection error %s", session.peer, exc)
        except Exception:
            log.exception("%s: internal error", session.peer)
            try:
                writer.write(status(403, "Internal fault, closing connection"))
            except Exception:  # noqa: BLE001
                pass
        finally:
            self._tasks.discard(task)  # type: ignore[arg-type]
            self._connections -= 1
            limits.release(address)
            await _close(writer, SHUTDOWN_CLOSE_WAIT if self._closing else CLOSE_WAIT)

    async def _converse(self, session: Session, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> None:
        watch = IdleWatch(self.settings.server.idle_timeout)
        try:
            await self._commands(session, reader, writer, watch)
        except asyncio.CancelledError:
            if not watch.expired:
                raise
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
            self._idle(session, writer)
        except TimeoutError:  # a client that stopped reading (_drain)
            self._idle(session, writer)
        finally:
            watch.close()

    @staticmethod
    def _idle(session: Session, writer: asyncio.StreamWriter) -> None:
        writer.write(status(400, "Idle timeout, closing connection"))
        log.info("%s: idle timeout", session.peer)

    async def _commands(self, session: Session, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter, watch: IdleWatch) -> None:
        idle = self.settings.server.idle_timeout
        await _send(writer, greeting(session), idle)
        while True:
            line = await watch.read_line(reader)
            try:
                if line is TOO_LONG:
                    raise NNTPError(501, "Command line too long (max 512 octets)")
                cmd = parse_command(line)
            except NNTPError as exc:
                await _send(writer, Response(exc.code, exc.text), idle)
                continue
            if cmd is None:
                continue
            response = await session.dispatch(cmd)
            if response.start_tls:
                # Cleartext pipelined after STARTTLS is dropped before answering,
                # so nobody can inject commands that would run inside TLS.
                reader._buffer.clear()  # type: ignore[attr-defined]  # no public API
                await _send(writer, response, idle)
                await self._start_tls(session, writer)
                continue
            await _send(writer, response, idle)
            if response.then_read_line is not None:
                line = await watch.read_line(reader)
                response = await response.then_read_line(line or b"*")
                await _send(writer, response, idle)
            elif response.then_read_block is not None:
                raw = await self._read_block(reader, watch)
                if raw is None:
                    limit = self.settings.server.max_article_bytes
                    response = Response(441, f"Posting failed: article exceeds {limit} bytes")
                else:
                    response = await response.then_read_block(raw)
                await _send(writer, response, idle)
            if response.close:
                return

    async def _start_tls(self, session: Session, writer: asyncio.StreamWriter) -> None:
        """RFC 4642: handshake right after 382; on failure the connection closes."""
        assert self.ctx.tls is not None
        try:
            await writer.start_tls(self.ctx.tls, ssl_handshake_timeout=30)
        except (ssl.SSLError, OSError, asyncio.TimeoutError) as exc:
            log.info("%s: TLS handshake failed: %s", session.peer, exc)
            raise ConnectionClosed() from None
        session.reset_after_tls()
        log.info("%s: TLS started", session.peer)

    async def _read_block(self, reader: asyncio.StreamReader, watch: IdleWatch) -> bytes | None:
        """A dot-terminated block; None if it was too large (it is still consumed)."""
        receiver = BlockReceiver(self.settings.server.max_article_bytes)
        watch.waiting()
        while not receiver.feed(await read_block_piece(reader, receiver.at_line_start)):
            watch.waiting()
        watch.active()
        try:
            return receiver.result()
        except BlockTooLarge:
            return None


class IdleWatch:
    """The idle timeout of one connection: one timer that re-arms itself.

    The connection is idle only while it waits for the client (a command
    line, a POST block, a SASL answer); a command that takes long is not.
    When the wait has lasted ``idle`` seconds the connection's task is
    cancelled and answered 400. One timer per connection instead of an
    ``asyncio.timeout()`` per read took about a quarter off the server's
    CPU per ARTICLE (~75-80 us -> ~51-62 us here).
    """

    __slots__ = ("idle", "expired", "_loop", "_task", "_since", "_handle")

    def __init__(self, idle: float) -> None:
        self.idle = idle
        self.expired = False
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._since: float | None = None
        self._handle = self._loop.call_later(idle, self._check)

    def waiting(self) -> None:
        """Waiting for the client from now on (again)."""
        self._since = self._loop.time()

    def active(self) -> None:
        self._since = None

    async def read_line(self, reader: asyncio.StreamReader) -> bytes | None:
        """The client's next line (see read_line), the wait counted as idle."""
        self.waiting()
        line = await read_line(reader)
        self.active()
        return line

    def _check(self) -> None:
        left = self.idle
        if self._since is not None:
            left = self._since + self.idle - self._loop.time()
            if left <= 0:
                self.expired = True
                if self._task is not None:
                    self._task.cancel()
                return
        self._handle = self._loop.call_later(left, self._check)

    def close(self) -> None:
        self._handle.cancel()


WRITE_CHUNK = 64 * 1024


async def _send(writer: asyncio.StreamWriter, response: Response, idle: float) -> None:
    """Write a response in as few writes as possible.

    Each write to a socket is a system call that wakes the reader (~100 us
    on loopback here), so the status line goes out with the first data and
    the terminating dot with the last, and streamed chunks are gathered up
    to 64 KB before each write. Between writes the server waits for the
    client to take the data (flow control), but only for ``idle`` seconds:
    a client that stops reading is disconnected rather than held forever.
    """
    if response.chunks is None:
        writer.write(response.head())
        await _drain(writer, idle)
        return
    pending = response.head()
    async for chunk in response.chunks:
        if len(pending) >= WRITE_CHUNK:
            writer.write(pending)
            await _drain(writer, idle)
            pending = chunk
        else:
            pending += chunk
    writer.write(pending + END_OF_BLOCK)
    await _drain(writer, idle)


async def _drain(writer: asyncio.StreamWriter, idle: float) -> None:
    if not writer.transport.get_write_buffer_size():
        return  # all of it went straight to the socket
    async with asyncio.timeout(idle):
        await writer.drain()


CLOSE_WAIT = 10.0  # seconds a closing connection may take to hand its last answer over
SHUTDOWN_CLOSE_WAIT = 1.0


async def _close(writer: asyncio.StreamWriter, wait: float = CLOSE_WAIT) -> None:
    """Close after the pending answer is sent, but abort a client that does not take it:
    a connection must not stay open (and counted) because its client stopped reading."""
    try:
        writer.close()
        async with asyncio.timeout(wait):
            await writer.wait_closed()
    except TimeoutError:
        writer.transport.abort()
    except (ConnectionError, OSError):
        pass
