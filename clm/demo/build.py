"""Building a demo database: a fresh SQLite file, the data, a login and keys, the lifecycle stages.

The CLI is a thin layer over these; tests call them with their own session factory.
"""

from __future__ import annotations

import secrets
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from clm.db.engine import for_writing, make_engine
from clm.db.migrate import upgrade
from clm.db.upsert import insert_for
from clm.lib.clock import utcnow

# Marks a SQLite file as built by `clm demo` (PRAGMA application_id), so it may be rebuilt without --force.
DEMO_APPLICATION_ID = 0x636C6D44  # "clmD"
ADMIN_EMAIL = "admin@demo.clm.example.com"


class DemoDatabaseError(Exception):
    """The demo database cannot be created where asked."""


@dataclass
class Login:
    email: str
    password: str
    write_key: str
    api_key: str


def is_demo_file(path: Path) -> bool:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            return conn.execute("PRAGMA application_id").fetchone()[0] == DEMO_APPLICATION_ID
    except sqlite3.DatabaseError:
        return False


def fresh_database(path: Path, force: bool = False) -> sa.Engine:
    """An empty, migrated SQLite database at `path`, replacing an earlier demo (or anything, with force)."""
    path = Path(path)
    if path.is_dir():
        raise DemoDatabaseError(f"{path} is a directory; give a file name for --db")
    if path.exists():
        if not (force or is_demo_file(path)):
            raise DemoDatabaseError(f"{path} exists and was not made by `clm demo`; choose another --db or add --force")
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    if not path.parent.exists():
        raise DemoDatabaseError(f"the folder {path.parent} does not exist")
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql(f"PRAGMA application_id = {DEMO_APPLICATION_ID}")
    upgrade(engine)
    return engine


def create_login(session_factory: sessionmaker[Session], password: str | None = None) -> Login:
    """The demo's admin user, a write key for the tracking API and an API key (read scopes + admin)."""
    from clm.access.keys import READ_ALL, create_api_key, create_write_key
    from clm.access.users import create_user

    password = password or secrets.token_urlsafe(9)
    with session_factory() as session, session.begin():
        for_writing(session)
        create_user(session, email=ADMIN_EMAIL, name="Quản trị viên", role="admin", password=password, locale="vi")
        _, write_key = create_write_key(session, "demo website")
        _, api_key = create_api_key(session, "demo", [*READ_ALL, "customers:write", "admin"])
    return Login(ADMIN_EMAIL, password, write_key, api_key)


def recompute_lifecycle(session_factory: sessionmaker[Session], now: datetime | None = None) -> tuple[int, int] | None:
    """Fill every customer's stats and stage from the facts; None when the lifecycle engine is absent.

    The recompute has read every event and outbox row there is, so the lifecycle's consumers are
    moved past them: the worker of `clm serve` starts with the demo's history already applied.
    """
    try:
        from clm.lifecycle.consumers import EventsConsumer, OutboxConsumer
        from clm.lifecycle.service import recompute
    except ImportError:  # pragma: no cover - the lifecycle engine ships with clm
        return None
    from clm.outbox.models import OutboxCursor, OutboxEvent
    from clm.tracking.models import Event

    now = now or utcnow()
    with session_factory() as session:
        for_writing(session)
        result = recompute(session, now, on_chunk=lambda *_: _commit(session))
        cursors = OutboxCursor.__table__
        for consumer, table in ((OutboxConsumer.name, OutboxEvent.__table__), (EventsConsumer.name, Event.__table__)):
            last = session.scalar(sa.select(sa.func.max(table.c.id))) or 0
            stmt = insert_for(session, cursors).values(consumer=consumer, last_id=last, updated_at=utcnow())
            session.execute(stmt.on_conflict_do_update(index_elements=["consumer"],
                                                       set_={"last_id": last, "updated_at": utcnow()}))
        session.commit()
    return result


def refresh_scores(session_factory: sessionmaker[Session], currency: str, timezone: str, now: datetime | None = None):
    """Every customer's RFM and CLV scores (clm analytics refresh), so the analytics pages are filled."""
    from clm.analytics.refresh import refresh

    with session_factory() as session:
        for_writing(session)
        run = refresh(session, now or utcnow(), currency=currency, timezone=timezone,
                      on_chunk=lambda phase, *_: _commit(session) if phase == "write" else None)
        session.commit()
    return run


def _commit(session: Session) -> None:
    session.commit()
    for_writing(session)


def summarise(session_factory: sessionmaker[Session]) -> str:
    """"20,000 customers, 498,055 events, 42,038 orders (revenue ...)" for the demo's database."""
    from clm.commerce.models import Order
    from clm.customers.models import Customer
    from clm.lib.money import format_money
    from clm.tracking.models import Event

    with session_factory() as session:
        customers = session.scalar(sa.select(sa.func.count()).where(Customer.merged_into_id.is_(None)))
        events = session.scalar(sa.select(sa.func.count()).select_from(Event))
        orders = session.execute(sa.select(Order.currency, sa.func.count(), sa.func.sum(Order.total - Order.refunded))
                                 .group_by(Order.currency)).all()
    revenue = ", ".join(format_money(int(total or 0), currency) for currency, _, total in orders)
    count = sum(n for _, n, _ in orders)
    return f"{customers:,} customers, {events:,} events, {count:,} orders ({revenue or 'no revenue'})"


def stage_counts(session_factory: sessionmaker[Session]) -> str:
    from clm.customers.models import Customer

    with session_factory() as session:
        rows = session.execute(sa.select(Customer.lifecycle_stage, sa.func.count())
                               .where(Customer.merged_into_id.is_(None))
                               .group_by(Customer.lifecycle_stage).order_by(sa.func.count().desc())).all()
    return ", ".join(f"{stage or 'none'} {n:,}" for stage, n in rows)
