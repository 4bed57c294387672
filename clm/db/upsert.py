"""INSERT ... ON CONFLICT for whichever database the session is on."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_for(session: Session, table: sa.Table | type):
    """The dialect's own `insert` construct (it has `on_conflict_do_nothing` / `_do_update`)."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
