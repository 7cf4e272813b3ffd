"""Prebuilt Core statements, run with as little per-execution work as possible.

The hot paths (article reads, the group-commit transaction) execute a
handful of prebuilt statements many thousand times a second. Through
SQLAlchemy's ``Connection.execute`` each costs ~50-80 us of bookkeeping
here, several times the SQLite work (../shared/notes/performance-facts.md).
On SQLite, ``DriverStatements`` compiles each statement once and runs it on
the sqlite3 connection underneath, applying the same bind and result
processors SQLAlchemy would (UTC datetimes, booleans), so the code that
calls it stays engine-neutral; ``CoreStatements`` is the same interface
over an ordinary ``Connection`` for every other engine.

Only SQLAlchemy's public API is used (see ``_Compiled``), and pyproject.toml
pins the SQLAlchemy releases this was tested with; tests/test_compiled.py
checks the answers against ``Connection.execute`` and that no private
attribute is touched.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.expression import ReturnsRows
from sqlalchemy.types import DateTime, LargeBinary, TypeDecorator, TypeEngine

Row = Sequence[Any]
# SQL variants kept per statement for IN lists of different lengths (oldest dropped first).
EXPANDED_VARIANTS = 512


class Statements(Protocol):
    """What the hot paths need from a connection."""

    def all(self, stmt: Executable, params: Mapping[str, Any] | None = None) -> list[Row]:
        """Run one statement; its rows (empty for DML without RETURNING)."""

    def many(self, stmt: Executable, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run a DML statement once per parameter set (executemany)."""

    def insert_ids(self, stmt: Insert, rows: Sequence[Mapping[str, Any]]) -> list[int]:
        """Insert the rows (executemany); their new primary keys, in order."""


class CoreStatements:
    """Statements over a SQLAlchemy ``Connection`` (any engine)."""

    __slots__ = ("conn",)

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def all(self, stmt: Executable, params: Mapping[str, Any] | None = None) -> list[Row]:
        result = self.conn.execute(stmt, dict(params or {}))
        return result.all() if result.returns_rows else []

    def many(self, stmt: Executable, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            self.conn.execute(stmt, list(rows))

    def insert_ids(self, stmt: Insert, rows: Sequence[Mapping[str, Any]]) -> list[int]:
        if not rows:
            return []
        (key,) = stmt.table.primary_key.columns  # type: ignore[attr-defined]
        returning = stmt.returning(key, sort_by_parameter_order=True)
        return list(self.conn.execute(returning, list(rows)).scalars())


class _Compiled:
    """One statement compiled for sqlite3's qmark style, with its processors.

    Built on SQLAlchemy's public API only: the compiled string, its
    ``positiontup``, ``binds`` and ``params``; each type's
    ``dialect_impl(dialect).bind_processor``/``result_processor``; the
    statement's ``exported_columns`` (the selected or RETURNING columns, in
    the order of the SQL's result columns); and, for expanding IN lists,
    ``SQLCompiler.construct_expanded_state``, once per combination of list
    lengths.
    """

    __slots__ = ("sql", "names", "defaults", "binds", "expanding", "results", "_compiled",
                 "_expanded", "_plan")

    def __init__(self, stmt: Executable, dialect: Dialect, keys: Sequence[str] | None) -> None:
        c = stmt.compile(dialect=dialect, column_keys=keys)  # type: ignore[call-arg]
        self._compiled = c
        self.sql: str = c.string
        self.names: tuple[str, ...] = tuple(c.positiontup or ())
        if keys is not None and not set(self.names) <= set(keys):
            # Column defaults are applied by SQLAlchemy's execution context, not here.
            missing = sorted(set(self.names) - set(keys))
            raise ValueError(f"insert without values for defaulted columns {missing}")
        self.defaults: dict[str, Any] = {
            k: v for k, v in c.params.items() if k not in (keys or ())
        }
        self.binds: dict[str, Callable[[Any], Any]] = {}
        for name, bind in c.binds.items():
            if isinstance(bind.type, LargeBinary):
                continue  # sqlite3 binds bytes as they are
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                self.binds[name] = _memoized(process) if _is_datetime(bind.type) else process
        self.expanding = frozenset(name for name, b in c.binds.items() if b.expanding)
        if any(b.literal_execute for b in c.binds.values()):
            # Their values are rendered into the SQL at execution: not done here.
            raise ValueError(f"literal_execute parameters are not supported: {self.sql!r}")
        columns = stmt.exported_columns if isinstance(stmt, ReturnsRows) else ()
        processors = [
            _memoized(p) if p is not None and _is_datetime(col.type) else p
            for col in columns
            for p in (col.type.dialect_impl(dialect).result_processor(dialect, None),)
        ]
        self.results: list[tuple[int, Callable[[Any], Any]]] | None = [
            (i, p) for i, p in enumerate(processors) if p is not None
        ] or None
        self._expanded: dict[tuple[int, ...], str] = {}
        self._plan = [(name, self.binds.get(name)) for name in self.names]

    def row(self, params: Mapping[str, Any]) -> list[Any]:
        """Positional values of one executemany row (every bind given, none expanding)."""
        return [process(params[name]) if process else params[name] for name, process in self._plan]

    def values(self, params: Mapping[str, Any]) -> tuple[str, list[Any]]:
        """The SQL (expanding IN lists spelled out) and its positional values."""
        values: list[Any] = []
        lengths: list[int] = []
        for name in self.names:
            value = params[name] if name in params else self.defaults[name]
            process = self.binds.get(name)
            if name in self.expanding:
                items = list(value)
                lengths.append(len(items))
                values.extend(map(process, items) if process else items)
            else:
                values.append(process(value) if process else value)
        if not lengths:
            return self.sql, values
        key = tuple(lengths)
        sql = self._expanded.get(key)
        if sql is None:
            sql = self._expand(lengths)
            if len(self._expanded) >= EXPANDED_VARIANTS:
                try:
                    self._expanded.pop(next(iter(self._expanded)), None)  # the oldest
                except (RuntimeError, StopIteration):  # another thread's miss changed it meanwhile
                    pass
            self._expanded[key] = sql
        return sql, values

    def _expand(self, lengths: list[int]) -> str:
        """The SQL for IN lists of these lengths (in the order of ``names``)."""
        sizes = dict(zip((n for n in self.names if n in self.expanding), lengths))
        params = {name: None for name in self.names}  # the values do not shape the SQL
        params.update({name: [None] * n for name, n in sizes.items()})
        state = self._compiled.construct_expanded_state(params)
        # values() puts each list's items where its name stood: check that is SQLAlchemy's order.
        expected: list[str] = []
        for name in self.names:
            if name in sizes:
                expected.extend(state.parameter_expansion[name])
            else:
                expected.append(name)
        if list(state.positiontup or ()) != expected:
            raise RuntimeError(f"unexpected order of expanded parameters in {state.statement!r}")
        return state.statement

    def convert(self, rows: list[Any]) -> list[Row]:
        if self.results is None:
            return rows
        out = []
        for row in rows:
            row = list(row)
            for i, process in self.results:
                row[i] = process(row[i])
            out.append(row)
        return out


class StatementCache:
    """Compiled forms of prebuilt statements, shared by every connection of one engine."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._cache: dict[tuple[Executable, tuple[str, ...] | None], _Compiled] = {}

    def get(self, stmt: Executable, params: Mapping[str, Any]) -> _Compiled:
        # An INSERT's columns are the keys given; other statements name their binds.
        keys = tuple(params) if isinstance(stmt, Insert) else None
        compiled = self._cache.get((stmt, keys))
        if compiled is None:
            compiled = self._cache[(stmt, keys)] = _Compiled(stmt, self.dialect, keys)
        return compiled


class DriverStatements:
    """Statements on the sqlite3 connection under a SQLAlchemy connection.

    They run inside whatever transaction that connection has open, so they
    mix freely with ordinary ``Connection.execute`` calls.
    """

    __slots__ = ("driver", "cache")

    def __init__(self, driver: Any, cache: StatementCache) -> None:
        self.driver = driver
        self.cache = cache

    def all(self, stmt: Executable, params: Mapping[str, Any] | None = None) -> list[Row]:
        compiled = self.cache.get(stmt, params or {})
        sql, values = compiled.values(params or {})
        try:
            return compiled.convert(self.driver.execute(sql, values).fetchall())
        except sqlite3.Error as exc:
            raise _wrapped(sql, values, exc) from exc

    def many(self, stmt: Executable, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        compiled = self.cache.get(stmt, rows[0])
        if compiled.expanding:
            raise ValueError("executemany cannot expand IN lists")
        try:
            values = [compiled.row(r) for r in rows]
        except KeyError:  # a bind with a default value, not given
            values = [compiled.values(r)[1] for r in rows]
        try:
            self.driver.executemany(compiled.sql, values)
        except sqlite3.Error as exc:
            raise _wrapped(compiled.sql, values, exc) from exc

    def insert_ids(self, stmt: Insert, rows: Sequence[Mapping[str, Any]]) -> list[int]:
        """SQLite numbers rows inserted one after another in a write transaction
        consecutively (largest rowid + 1; the tables here have INTEGER PRIMARY KEYs
        without AUTOINCREMENT), so the last one's rowid gives them all."""
        if not rows:
            return []
        self.many(stmt, rows)
        (last,) = self.driver.execute("SELECT last_insert_rowid()").fetchone()
        return list(range(last - len(rows) + 1, last + 1))


def _is_datetime(type_: TypeEngine[Any]) -> bool:
    """Whether this is a DateTime, or a TypeDecorator over one (models.UTCDateTime)."""
    while isinstance(type_, TypeDecorator):
        type_ = type_.impl
    return isinstance(type_, DateTime)


def _memoized(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A datetime processor that remembers its recent answers.

    SQLite keeps datetimes as text, and SQLAlchemy's conversion each way
    costs a few microseconds (string formatting, a regular expression).
    One group commit binds the same instant many times (arrival, thread
    figures) and reads back the thread figures it wrote moments before.
    """
    cache: dict[Any, Any] = {}

    def memo(value: Any) -> Any:
        try:
            return cache[value]
        except KeyError:
            if len(cache) >= 4096:
                cache.clear()
            result = cache[value] = process(value)
            return result

    return memo


def _wrapped(sql: str, values: Any, exc: sqlite3.Error) -> DBAPIError:
    """The exception SQLAlchemy would raise (IntegrityError, OperationalError, ...)."""
    return DBAPIError.instance(sql, values, exc, sqlite3.Error)
