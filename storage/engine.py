"""How the store reaches the database without blocking the event loop.

Every storage operation is a plain function of a synchronous SQLAlchemy
``Connection`` (Core statements, same code on every engine). ``Database``
runs it:

- on SQLite, on a synchronous engine (the stdlib sqlite3 driver): an await
  into aiosqlite costs ~55 us and SQLAlchemy's async layer takes several
  per statement (../shared/notes/performance-facts.md). Short reads
  (``read_short``, ``rows``) and the group commit (``write(inline=True)``)
  run on the loop's own connections; other operations take one hop to a
  small thread pool, however many statements they run. Writes open with
  BEGIN IMMEDIATE under a file lock, so writers of several processes
  queue instead of deadlocking; reads run in autocommit and never hold a
  snapshot open; WAL checkpoints run in a thread of their own.
- on other engines (PostgreSQL with asyncpg), through the async engine's
  ``run_sync``, which drives the same function over the async driver.

The configured URL keeps its async driver name (``sqlite+aiosqlite://``,
``postgresql+asyncpg://``); the SQLite file is the same either way.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event

try:
    import fcntl
except ImportError:  # not POSIX: SQLite's busy timeout alone serialises writers
    fcntl = None  # type: ignore[assignment]
from sqlalchemy.engine import make_url
from sqlalchemy.sql import Executable
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from .compiled import CoreStatements, DriverStatements, Statements, StatementCache

T = TypeVar("T")
log = logging.getLogger("nntpd.storage")

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=30000",
    "PRAGMA foreign_keys=ON",
)
READ_THREADS = 4


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def is_sqlite_file(url: str) -> bool:
    """A SQLite database other processes can open (not in memory)."""
    if not is_sqlite(url):
        return False
    database = make_url(url).database
    return bool(database) and database != ":memory:" and not database.startswith("file::memory:")


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self._sqlite = is_sqlite(url)
        self._read_pool: ThreadPoolExecutor | None = None
        self._write_pool: ThreadPoolExecutor | None = None
        if self._sqlite:
            sync_url = make_url(url).set(drivername="sqlite")
            self._write_sync = create_engine(sync_url, pool_size=1, max_overflow=2)
            self._read_sync = create_engine(sync_url, pool_size=READ_THREADS, max_overflow=READ_THREADS)
            self._checkpointer = _Checkpointer(self._read_sync)
            _sqlite_setup(self._write_sync, "BEGIN IMMEDIATE", self._checkpointer)
            _sqlite_setup(self._read_sync, None, None)
            self._write_lock = _WriteLock(sync_url.database)
            self._read_pool = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="nntpd-read")
            self._write_pool = ThreadPoolExecutor(1, thread_name_prefix="nntpd-write")
            self._inline: Connection | None = None
            self._inline_write: Connection | None = None
            self._statement_cache = StatementCache(self._read_sync.dialect)
        else:
            self._write_async: AsyncEngine = create_async_engine(url, pool_pre_ping=True)
            self._read_async = self._write_async.execution_options(isolation_level="AUTOCOMMIT")

    @property
    def reads_inline(self) -> bool:
        return self._sqlite

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` outside a transaction (each statement sees the latest commit)."""
        if self._read_pool is not None:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._read_pool, _run_read, self._read_sync, fn, args)
        async with self._read_async.connect() as conn:
            return await conn.run_sync(fn, *args)

    async def read_short(self, fn: Callable[..., T], *args: Any) -> T:
        """Like read, for short bounded reads (a point lookup, one page of rows).

        On SQLite these run right here on the event loop's own connection:
        a point read takes ~20-40 us, less than the two thread wake-ups a
        hop to the pool costs, and WAL readers never wait for writers.
        """
        if not self._sqlite:
            return await self.read(fn, *args)
        if self._inline is None:
            self._inline = self._read_sync.connect()
        return fn(self._inline, *args)

    async def rows(self, stmt: Executable, params: dict[str, Any]) -> list[Any]:
        """All rows of a prebuilt hot read.

        On SQLite the statement is compiled once and run straight on the
        loop's driver connection: SQLAlchemy's per-execution bookkeeping
        costs about three times the SQLite work of a point read (measured
        on ARTICLE). Elsewhere it runs as Core.
        """
        if not self._sqlite:
            return await self.read(lambda conn: CoreStatements(conn).all(stmt, params))
        if self._inline is None:
            self._inline = self._read_sync.connect()
        return self.statements(self._inline).all(stmt, params)

    def statements(self, conn: Connection) -> Statements:
        """The fastest way to run prebuilt statements on ``conn`` (see compiled.py)."""
        if self._sqlite:
            return DriverStatements(conn.connection.dbapi_connection, self._statement_cache)
        return CoreStatements(conn)

    async def write(self, fn: Callable[..., T], *args: Any, inline: bool = False) -> T:
        """Run ``fn(conn, *args)`` in one transaction, committed when it returns.

        ``inline=True`` is for short transactions on the hot path (a group
        commit of a few posts): on SQLite the transaction runs right here on
        the loop thread. A hop to the write thread and back costs ~250 us
        here, and the two threads contend for the GIL; both cost more than
        the transaction itself. When the write lock is taken (another
        worker process), a thread waits for it so the loop never blocks.
        """
        if self._write_pool is not None:
            loop = asyncio.get_running_loop()
            if inline:
                if not self._write_lock.try_acquire():
                    await self._wait_for_lock(loop)
                try:
                    done, result = self._write_inline(fn, args)
                finally:
                    self._write_lock.release()
                if done:
                    return result  # type: ignore[return-value]
            return await loop.run_in_executor(
                self._write_pool, self._write_lock.run, _run_write, self._write_sync, fn, args
            )
        async with self._write_async.begin() as conn:
            return await conn.run_sync(fn, *args)

    async def _wait_for_lock(self, loop: asyncio.AbstractEventLoop) -> None:
        acquired = loop.run_in_executor(self._write_pool, self._write_lock.acquire)
        try:
            await asyncio.shield(acquired)
        except asyncio.CancelledError:
            acquired.add_done_callback(lambda f: f.exception() or self._write_lock.release())
            raise

    def _write_inline(self, fn: Callable[..., T], args: tuple[Any, ...]) -> tuple[bool, T | None]:
        """With the write lock held: (True, result), or (False, None) if SQLite was busy.

        BEGIN and COMMIT go straight to the sqlite3 connection: through
        SQLAlchemy's transaction and its events they cost ~60 us more per
        group commit (~15% of the CPU of a two-post batch).
        """
        if self._inline_write is None:
            self._inline_write = self._write_sync.connect()
            # Never wait on the loop: a database busy with a writer that does not take
            # our lock (another program) sends the batch to the write thread.
            self._inline_write.connection.dbapi_connection.execute("PRAGMA busy_timeout=0")  # type: ignore[union-attr]
        conn = self._inline_write
        driver = conn.connection.dbapi_connection
        assert driver is not None
        try:
            driver.execute("BEGIN IMMEDIATE")
        except sqlite3.Error:
            self._inline_write = None
            conn.invalidate()
            return False, None
        try:
            result = fn(conn, *args)
            if conn.in_transaction():  # fn also used conn.execute: SQLAlchemy joined in
                conn.commit()
            else:
                driver.execute("COMMIT")
        except BaseException:
            if conn.in_transaction():
                conn.rollback()
            if driver.in_transaction:
                driver.execute("ROLLBACK")
            raise
        self._checkpointer.nudge()
        return True, result

    async def dispose(self) -> None:
        if self._sqlite:
            self._checkpointer.close()
            for conn in (self._inline, self._inline_write):
                if conn is not None:
                    conn.close()
            self._inline = self._inline_write = None
            for pool in (self._read_pool, self._write_pool):
                assert pool is not None
                pool.shutdown(wait=True)
            self._write_sync.dispose()
            self._write_lock.close()
            self._read_sync.dispose()
        else:
            await self._write_async.dispose()


class _WriteLock:
    """Serialises SQLite writers of all processes with an OS file lock.

    SQLite's own busy handler sleeps in steps of milliseconds while another
    connection holds the write lock; a waiter on flock() is woken the moment
    the lock is released, so workers sharing a database queue without naps.
    flock() does not exclude the threads of one process (they share the
    descriptor), so a mutex does that.
    """

    def __init__(self, database: str | None) -> None:
        self._fd: int | None = None
        self._mutex = threading.Lock()
        if database and database != ":memory:" and fcntl is not None:
            self._fd = os.open(f"{database}-nntpd.lock", os.O_RDWR | os.O_CREAT, 0o600)

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        with self._mutex:
            if self._fd is None:
                return fn(*args)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                return fn(*args)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def acquire(self) -> None:
        """Wait for the lock (in a thread); then call release()."""
        self._mutex.acquire()
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except BaseException:
                self._mutex.release()
                raise

    def try_acquire(self) -> bool:
        """Take the lock only if that needs no waiting; then call release()."""
        if not self._mutex.acquire(blocking=False):
            return False
        if self._fd is None:
            return True
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held by another process
            self._mutex.release()
            return False
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._mutex.release()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class _Checkpointer:
    """Copies the WAL back into the database file in a thread of its own.

    SQLite's automatic checkpoint runs inside the commit that crosses 1,000
    WAL pages, on whichever thread committed: here that is the event loop
    (inline writes), and it took ~60 us per post, a third of the writer's
    time. A passive checkpoint from another connection never blocks writers
    or readers, and the sqlite3 module releases the GIL while it copies.
    Writers nudge it on every commit; it runs at most every ``interval``.
    """

    def __init__(self, engine: Engine, interval: float = 0.01) -> None:
        self._engine = engine
        self._interval = interval
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._mutex = threading.Lock()

    def nudge(self) -> None:
        if self._thread is None:
            with self._mutex:
                if self._thread is None and not self._closing.is_set():
                    self._thread = threading.Thread(target=self._run, name="nntpd-checkpoint",
                                                    daemon=True)
                    self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        with self._engine.connect() as conn:
            driver = conn.connection.dbapi_connection
            assert driver is not None
            while not self._closing.is_set():
                self._wake.wait()
                self._wake.clear()
                try:
                    driver.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except Exception:  # noqa: BLE001 - the next nudge tries again
                    log.exception("WAL checkpoint failed")
                self._closing.wait(self._interval)

    def close(self) -> None:
        """Stop the thread; closing the last connection checkpoints what is left."""
        self._closing.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


def _run_read(engine: Engine, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    with engine.connect() as conn:
        return fn(conn, *args)


def _run_write(engine: Engine, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    with engine.begin() as conn:
        return fn(conn, *args)


def _sqlite_setup(engine: Engine, begin: str | None, checkpointer: _Checkpointer | None) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    if checkpointer is not None:
        @event.listens_for(engine, "commit")
        def _on_commit(conn: Connection) -> None:
            checkpointer.nudge()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Inline writes open the transaction on the driver before SQLAlchemy joins in.
        if begin is not None and not conn.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
            conn.exec_driver_sql(begin)
