"""Bulk INSERT straight through the driver's executemany, for the ingestion hot path.

SQLAlchemy's per-row parameter processing costs more than the database's own work when a request
writes hundreds of rows; here each column gets one cheap converter chosen once per table, and the
driver receives plain tuples. The SQL text is built only from table metadata (never from input);
values are always bound parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.db.base import UTCDateTime


def json_text(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


_last_time: tuple[datetime | None, str | None] = (None, None)


def sqlite_time(value: datetime | None) -> str | None:
    """A UTC datetime as SQLite stores it: text "YYYY-MM-DD HH:MM:SS.ffffff".

    Rows written together often repeat one datetime (created_at = updated_at = now), so the last
    conversion is remembered.
    """
    global _last_time
    if value is None:
        return None
    last = _last_time
    if value is last[0]:
        return last[1]
    utc = value if value.tzinfo is UTC else value.astimezone(UTC)
    text = utc.isoformat(" ", "microseconds")[:26]
    _last_time = (value, text)
    return text


def _sqlite_date(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _identity(value: Any) -> Any:
    return value


def _converter(column: sa.Column, dialect: str) -> tuple[Callable[[Any], Any], str]:
    """How to pass a value for `column` to the driver, and its placeholder."""
    placeholder = "?" if dialect == "sqlite" else "%s"
    kind = column.type
    if isinstance(kind, sa.JSON) or isinstance(getattr(kind, "impl", None), sa.JSON) or "JSON" in type(kind).__name__.upper():
        return json_text, placeholder if dialect == "sqlite" else "%s::jsonb"
    if dialect == "sqlite":
        if isinstance(kind, UTCDateTime):
            return sqlite_time, placeholder
        if isinstance(kind, sa.Date):
            return _sqlite_date, placeholder
    return _identity, placeholder


@lru_cache(maxsize=128)
def _statement(table: sa.Table, columns: tuple[str, ...], dialect: str, suffix: str):
    quote = _quote
    converters = []
    placeholders = []
    for name in columns:
        convert, placeholder = _converter(table.c[name], dialect)
        converters.append(convert)
        placeholders.append(placeholder)
    # Identifiers come from table metadata, values are bound: no input reaches the SQL text.
    names = ", ".join(quote(c) for c in columns)
    sql = f"INSERT INTO {quote(table.name)} ({names}) VALUES ({', '.join(placeholders)}){suffix}"  # noqa: S608
    return sql, tuple(converters)


def insert_rows(session: Session, table: sa.Table, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                on_conflict: str = "") -> None:
    """INSERT `rows` (tuples in `columns` order) into `table` with one executemany.

    `on_conflict` is a fixed SQL suffix written by the caller (e.g. an upsert clause); never input.
    """
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    sql, converters = _statement(table, tuple(columns), dialect, f" {on_conflict}" if on_conflict else "")
    # Column by column: only the columns that need converting cost a call per value.
    by_column = list(zip(*rows, strict=True))
    if len(by_column) != len(columns):
        raise ValueError(f"rows for {table.name} have {len(by_column)} values, expected {len(columns)}")
    by_column = [col if conv is _identity else list(map(conv, col)) for conv, col in zip(converters, by_column, strict=True)]
    session.connection().exec_driver_sql(sql, list(zip(*by_column, strict=True)))


def update_rows(session: Session, table: sa.Table, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                key: str = "id") -> None:
    """UPDATE `table` SET `columns` WHERE `key` = ..., once per row (the row's values, then its key)."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    sql, converters = _update_statement(table, tuple(columns), key, dialect)
    by_column = list(zip(*rows, strict=True))
    if len(by_column) != len(columns) + 1:
        raise ValueError(f"rows for {table.name} have {len(by_column)} values, expected {len(columns) + 1}")
    by_column = [col if conv is _identity else list(map(conv, col)) for conv, col in zip(converters, by_column, strict=True)]
    session.connection().exec_driver_sql(sql, list(zip(*by_column, strict=True)))


@lru_cache(maxsize=128)
def _update_statement(table: sa.Table, columns: tuple[str, ...], key: str, dialect: str):
    sets, converters = [], []
    for name in (*columns, key):
        convert, placeholder = _converter(table.c[name], dialect)
        converters.append(convert)
        sets.append(f"{_quote(name)} = {placeholder}")
    # Identifiers come from table metadata, values are bound: no input reaches the SQL text.
    sql = f"UPDATE {_quote(table.name)} SET {', '.join(sets[:-1])} WHERE {sets[-1]}"  # noqa: S608
    return sql, tuple(converters)


def update_rows_at_once(session: Session, table: sa.Table, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                        key: str = "id") -> None:
    """Like `update_rows`, but on PostgreSQL ONE statement with ONE parameter whatever the number of rows:
    the rows as a JSON array of objects read back with `jsonb_to_recordset` (`UPDATE t SET c = v.c FROM
    jsonb_to_recordset(:rows) AS v(c type, ...) WHERE t.key = v.key`), instead of a statement per row.
    orjson writes the whole array at once; SQLite keeps the executemany (in-process, cheap)."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        update_rows(session, table, columns, rows, key)
        return
    names = (*columns, key)
    if any(len(row) != len(names) for row in rows):
        raise ValueError(f"rows for {table.name} must have {len(names)} values each")
    payload = orjson.dumps([dict(zip(names, row, strict=True)) for row in rows],
                           option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY).decode()
    session.connection().exec_driver_sql(_recordset_update(table, tuple(columns), key), (payload,))


@lru_cache(maxsize=64)
def _recordset_update(table: sa.Table, columns: tuple[str, ...], key: str) -> str:
    from sqlalchemy.dialects import postgresql

    dialect = postgresql.dialect()
    record = []
    for name in (*columns, key):
        kind = table.c[name].type
        is_json = isinstance(kind, sa.JSON) or isinstance(getattr(kind, "impl", None), sa.JSON) \
            or "JSON" in type(kind).__name__.upper()
        record.append(f"{_quote(name)} {'jsonb' if is_json else kind.compile(dialect=dialect)}")
    # Identifiers and types come from table metadata, the values are one bound parameter.
    sets = ", ".join(f"{_quote(c)} = v.{_quote(c)}" for c in columns)
    return (f"UPDATE {_quote(table.name)} AS t SET {sets} FROM jsonb_to_recordset(%s::jsonb) "  # noqa: S608
            f"AS v({', '.join(record)}) WHERE t.{_quote(key)} = v.{_quote(key)}")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def insert_prepared(session: Session, table: sa.Table, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                    on_conflict: str = "") -> None:
    """Like `insert_rows`, for rows already in the driver's form: JSON columns as JSON text, and on
    SQLite UTC datetimes as text (`sqlite_time`). The ingestion pipeline prepares its rows while it
    validates, outside the single writer's transaction."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    sql, _ = _statement(table, tuple(columns), dialect, f" {on_conflict}" if on_conflict else "")
    session.connection().exec_driver_sql(sql, rows if isinstance(rows, list) else list(rows))


def executemany(session: Session, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """Run one fixed statement (written by the caller, `?` placeholders) for every row, via the driver.

    Datetimes in `rows` are converted as the column types would (UTC text on SQLite). The SQL must not
    contain a literal `?`: placeholders become `%s` on PostgreSQL.
    """
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        rows = [tuple(sqlite_time(v) if isinstance(v, datetime) else v for v in row) for row in rows]
    else:
        sql = sql.replace("?", "%s")
    session.connection().exec_driver_sql(sql, list(rows))


def allocate_ids(session: Session, table: sa.Table, count: int) -> list[int]:
    """`count` fresh primary keys for `table`, so rows can be inserted in bulk without RETURNING.

    PostgreSQL draws them from the column's sequence (safe with any number of writers). SQLite has one
    writer at a time: inside the caller's write transaction, the ids after the current maximum are
    free, and are the ones SQLite itself would give; a concurrent writer outside the transaction
    would fail with an IntegrityError, which callers already retry.
    """
    if count <= 0:
        return []
    if session.get_bind().dialect.name == "postgresql":
        rows = session.execute(
            sa.select(sa.func.nextval(sa.func.pg_get_serial_sequence(table.name, "id")))
            .select_from(sa.func.generate_series(1, count))
        ).scalars().all()
        return list(rows)
    start = session.execute(sa.select(sa.func.coalesce(sa.func.max(table.c.id), 0))).scalar_one()
    return list(range(start + 1, start + 1 + count))
