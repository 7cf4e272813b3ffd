"""Engines for the store: one for writes, one for reads.

On SQLite the write engine opens every transaction with BEGIN IMMEDIATE,
so concurrent writers (several connections or processes) queue on the
lock instead of deadlocking on a read-to-write upgrade; the read engine
runs each statement in autocommit, so a reader never holds a snapshot
open (which would stall WAL checkpoints). Other engines use their default
transactions and row locks.
"""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=30000",
    "PRAGMA foreign_keys=ON",
)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engines(url: str) -> tuple[AsyncEngine, AsyncEngine]:
    """Return (write_engine, read_engine) for ``url``."""
    if not is_sqlite(url):
        write = create_async_engine(url, pool_pre_ping=True)
        read = write.execution_options(isolation_level="AUTOCOMMIT")
        return write, read
    write = create_async_engine(url, pool_size=2, max_overflow=2)
    read = create_async_engine(url, pool_size=8, max_overflow=8)
    _sqlite_setup(write, "BEGIN IMMEDIATE")
    _sqlite_setup(read, None)
    return write, read


def _sqlite_setup(engine: AsyncEngine, begin: str | None) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn):  # type: ignore[no-untyped-def]
        if begin is not None:
            conn.exec_driver_sql(begin)
