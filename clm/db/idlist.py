"""A list of ids passed as ONE bound parameter and read as a table: a JSON array through `json_each` on
SQLite, an array through `unnest` on PostgreSQL.

Unlike `IN (?, ?, ...)`, the SQL text does not depend on how many ids there are, so a statement is
compiled by SQLAlchemy and prepared by the database once, and a long list costs no placeholders.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


def ids_table(name: str, dialect: str) -> sa.TableValuedAlias:
    """A table of one column, `value`, holding the ids bound to parameter `name` (see `ids_value`)."""
    if dialect == "sqlite":
        return sa.func.json_each(sa.bindparam(name, type_=sa.String)).table_valued("value")
    # "AS anon_1(value)": PostgreSQL names an unnamed function column after its alias, not "value"
    return sa.func.unnest(sa.bindparam(name, type_=postgresql.ARRAY(sa.BigInteger))).table_valued(
        "value").render_derived()


def ids_condition(column: sa.ColumnElement, name: str, dialect: str) -> sa.ColumnElement[bool]:
    """`column` is one of the ids bound to parameter `name`: `IN (SELECT value FROM json_each(?))` on SQLite,
    `= ANY(%s)` on PostgreSQL (an index condition or a hashed array test; a set-returning function in a
    sub-query would be planned from a guess of its size)."""
    if dialect == "sqlite":
        return column.in_(sa.select(ids_table(name, dialect).c.value))
    return column == sa.any_(sa.bindparam(name, type_=postgresql.ARRAY(sa.BigInteger)))


def ids_value(ids: Sequence[int], dialect: str) -> str | list[int]:
    """The value to bind for an `ids_table` parameter."""
    return json.dumps([int(i) for i in ids]) if dialect == "sqlite" else [int(i) for i in ids]


def one_of(column: sa.ColumnElement, name: str, dialect: str, of: type[sa.types.TypeEngine] = sa.BigInteger):
    """`column IN (the list bound to parameter name)` with ONE parameter, whatever the list's length:
    `= ANY(:name)` on PostgreSQL, `IN (SELECT value FROM json_each(:name))` on SQLite. Bind the value
    with `list_value`. `of` is the element type (sa.String for keys and addresses)."""
    if dialect == "sqlite":
        values = sa.func.json_each(sa.bindparam(name, type_=sa.String)).table_valued("value")
        return column.in_(sa.select(values.c.value))
    return column == sa.any_(sa.bindparam(name, type_=postgresql.ARRAY(of)))


def list_value(values: Sequence, dialect: str) -> str | list:
    """The value to bind for a `one_of` parameter."""
    return orjson.dumps(list(values)).decode() if dialect == "sqlite" else list(values)
