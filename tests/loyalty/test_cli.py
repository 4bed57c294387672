"""`clm loyalty verify` and `clm loyalty sweep` on a temporary SQLite file."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from clm.cli import app
from clm.config import get_settings
from clm.db.engine import make_engine, make_session_factory
from clm.db.migrate import upgrade
from clm.loyalty import ledger
from clm.loyalty.models import Member
from clm.loyalty.program import ProgramSettings, save_program
from tests.loyalty.conftest import T0, make_customer


@pytest.fixture
def shop_db(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path}/loyalty.db"
    monkeypatch.setenv("CLM_DATABASE_URL", url)
    get_settings.cache_clear()
    engine = make_engine(url)
    upgrade(engine)
    with make_session_factory(engine)() as session:
        program = save_program(session, ProgramSettings(pending_days=7, expiry="months", expiry_months=1))
        member = ledger.lock_member(session, make_customer(session).id, T0)
        ledger.credit(session, member, program, key="order:1:earn", points=40, reason="Order", source="order",
                      source_id="1", at=T0, now=T0, pending=True)
        session.commit()
    yield url, make_session_factory(engine)
    engine.dispose()
    get_settings.cache_clear()


def run(url: str, *args: str):
    return CliRunner().invoke(app, ["loyalty", *args], env={"CLM_DATABASE_URL": url})


def test_verify_says_the_ledger_is_clean_and_lists_a_tampered_balance(shop_db):
    url, sessions = shop_db
    clean = run(url, "verify")
    assert clean.exit_code == 0 and "ledger verified" in clean.output
    with sessions() as session:
        session.execute(sa.update(Member).values(pending=45))
        session.commit()
    tampered = run(url, "verify")
    assert tampered.exit_code == 1
    assert "pending is 45, the ledger says 40" in tampered.output


def test_sweep_releases_and_expires_as_of_the_given_time(shop_db):
    url, sessions = shop_db
    released = run(url, "sweep", "--at", (T0 + timedelta(days=8)).strftime("%Y-%m-%d %H:%M:%S"))
    assert released.exit_code == 0, released.output
    with sessions() as session:
        member = session.scalars(sa.select(Member)).one()
        assert (member.pending, member.available) == (0, 40)
    run(url, "sweep", "--at", (T0 + timedelta(days=40)).strftime("%Y-%m-%d %H:%M:%S"))
    with sessions() as session:
        member = session.scalars(sa.select(Member)).one()
        assert (member.available, member.expired) == (0, 40)
    assert run(url, "verify").exit_code == 0
