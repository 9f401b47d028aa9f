"""Hot Core statements run straight on the SQLite driver.

On SQLite a statement runs in-process, in C, in a few microseconds; SQLAlchemy's per-execution
work around it (compiled-cache lookup, parameter construction, cursor and result wrappers) cost
about three times the SQL itself on the path every message takes (the writer's inserts and the
delivery results: about 0.17 ms of CPU per message, measured with a probe of the writer's
transaction). `Direct` keeps SQLAlchemy for what it is good at, rendering the statement for the
dialect and converting values with the columns' own types, and only skips the per-call wrapping.

On any other database (PostgreSQL: a network round trip per statement dwarfs that overhead) it
is the ordinary `session.execute`. Either way the work joins the session's open transaction, and
the session is flushed first, as `session.execute` would (autoflush).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Insert, Select, UpdateBase, bindparam
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

_Processor = Callable[[Any], Any] | None


class _Rendered:
    """A statement compiled for one dialect and one set of parameter names: its SQL and how to
    turn parameters into the driver's row."""

    def __init__(self, stmt: Any, dialect: Dialect, supplied: tuple[str, ...],
                 expanding: str | None, size: int) -> None:
        compiled = stmt.compile(dialect=dialect)
        if not compiled.positional:
            raise ValueError(f"{dialect.name}: Direct needs a positional paramstyle")
        given: dict[str, Any] = dict.fromkeys(supplied)
        if expanding is not None:
            given[expanding] = [None] * size
        # SQLAlchemy's own expansion: the SQL for this many list items, the positional order.
        state = compiled.construct_expanded_state(given)
        self.sql: str = state.statement
        self.names: list[str] = list(state.positiontup or ())
        prefetch = {col.key: col.default if col in compiled.insert_prefetch else col.onupdate
                    for col in (*compiled.insert_prefetch, *compiled.update_prefetch)}
        # Values the caller does not give: a column's Python default (INSERT) or onupdate
        # (UPDATE), as SQLAlchemy fills them in, or a value written into the statement.
        self.fill: dict[str, Callable[[], Any]] = {}
        for name in self.names:
            if name in given or (expanding is not None and name.startswith(expanding + "_")):
                continue
            self.fill[name] = _default_of(prefetch[name]) if name in prefetch \
                else _constant(state.parameters[name])
        binds = compiled.binds

        def processor(name: str) -> _Processor:
            # An expanded IN list's ids_1, ids_2… share the type of their bind "ids".
            bind = binds[name] if name in binds else binds[name.rpartition("_")[0]]
            proc: _Processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            return proc

        self.pairs = [(name, processor(name)) for name in self.names]
        self.results: list[_Processor] = []
        if isinstance(stmt, Select):
            self.results = [col.type.dialect_impl(dialect).result_processor(dialect, None)
                            for col in stmt.selected_columns]

    def row(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        # A list comprehension, not a generator: this runs for every row of the hot path.
        fill = self.fill
        if fill:
            params = {**params, **{name: make() for name, make in fill.items()
                                   if name not in params}}
        return tuple([params[name] if proc is None else proc(params[name])
                      for name, proc in self.pairs])

    def convert(self, raw: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(value if proc is None else proc(value)
                     for value, proc in zip(raw, self.results, strict=True))


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value


def _default_of(default: Any) -> Callable[[], Any]:
    if default is not None and default.is_callable:
        return lambda: default.arg(None)  # SQLAlchemy wraps f() as f(context)
    if default is not None and default.is_scalar:
        return _constant(default.arg)
    raise ValueError(f"Direct cannot evaluate the column default {default!r}")


class Direct:
    """One Core statement (DML or SELECT) for the hot path; see the module doc."""

    def __init__(self, stmt: Select[Any] | UpdateBase, expanding: str | None = None) -> None:
        """`expanding`: the name of the statement's expanding IN parameter, if any (a list)."""
        self.stmt = stmt
        self.expanding = expanding
        # What other databases run for `insert()`: the statement returning the new keys.
        self._returning = stmt.returning(*stmt.table.primary_key,
                                         sort_by_parameter_order=True) \
            if isinstance(stmt, Insert) else None
        self._rendered: dict[tuple[Any, ...], _Rendered] = {}

    def _render(self, dialect: Dialect, names: tuple[str, ...], size: int = 0) -> _Rendered:
        key = (dialect.name, names, size)
        rendered = self._rendered.get(key)
        if rendered is None:
            stmt: Any = self.stmt
            if self._returning is not None:
                # An INSERT sets the columns the rows name (the others get their defaults), as
                # SQLAlchemy compiles an executemany from the keys of its parameters.
                stmt = stmt.values({name: bindparam(name) for name in names})
            rendered = _Rendered(stmt, dialect, names, self.expanding, size)
            self._rendered[key] = rendered
        return rendered

    def many(self, session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
        """Execute a DML statement once per parameter set (executemany); every set names the
        same parameters."""
        if not rows:
            return
        cursor = _sqlite_cursor(session)
        if cursor is None:
            session.execute(self.stmt, list(rows))
            return
        rendered = self._render(session.get_bind().dialect, tuple(rows[0]))
        cursor.executemany(rendered.sql, [rendered.row(r) for r in rows])

    def all(self, session: Session, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """The rows of a SELECT (or one execution of a DML statement, returning nothing)."""
        cursor = _sqlite_cursor(session)
        if cursor is None:
            result = session.execute(self.stmt, dict(params))
            return [tuple(r) for r in result] if isinstance(self.stmt, Select) else []
        names = tuple(n for n in params if n != self.expanding)
        size = 0
        if self.expanding is not None:
            # The list's items as SQLAlchemy names them when it expands the IN list.
            values = list(params[self.expanding])
            size = len(values)
            params = {**params, **{f"{self.expanding}_{i}": v for i, v in enumerate(values, 1)}}
        rendered = self._render(session.get_bind().dialect, names, size)
        cursor.execute(rendered.sql, rendered.row(params))
        return [rendered.convert(r) for r in cursor.fetchall()] if rendered.results else []

    def insert(self, session: Session, rows: Sequence[Mapping[str, Any]]) -> list[int]:
        """Insert each row (the statement is an INSERT without RETURNING; every row names the
        same columns); the new primary keys in order: on SQLite the driver's lastrowid of each,
        elsewhere RETURNING."""
        if self._returning is None:
            raise TypeError("Direct.insert needs an INSERT statement")
        if not rows:
            return []
        cursor = _sqlite_cursor(session)
        if cursor is None:
            return list(session.scalars(self._returning, list(rows)))
        rendered = self._render(session.get_bind().dialect, tuple(rows[0]))
        pks = []
        for row in rows:
            cursor.execute(rendered.sql, rendered.row(row))
            pks.append(cursor.lastrowid)
        return pks


def _sqlite_cursor(session: Session) -> Any:
    """A DBAPI cursor inside the session's transaction, or None if the store is not SQLite."""
    if session.get_bind().dialect.name != "sqlite":
        return None
    session.flush()  # as session.execute's autoflush would
    return session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
