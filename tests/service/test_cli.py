"""`clm service` on a temporary SQLite file: an agent goes online and takes the queued ticket."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from clm.access.models import User
from clm.cli import app
from clm.config import get_settings
from clm.customers.models import Customer
from clm.db.engine import make_engine, make_session_factory
from clm.db.migrate import upgrade
from clm.lib.clock import utcnow
from clm.service.tickets import TicketIn, open_ticket


@pytest.fixture
def desk_db(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path}/desk.db"
    monkeypatch.setenv("CLM_DATABASE_URL", url)
    get_settings.cache_clear()
    engine = make_engine(url)
    upgrade(engine)
    with make_session_factory(engine)() as session:
        user = User(email="lan@desk.vn", name="Lan", role="agent", password_hash="x", active=True,
                    created_at=utcnow())
        customer = Customer(full_name="Nguyễn Văn An", search_text="", traits={})
        session.add_all([user, customer])
        session.flush()
        ticket = open_ticket(session, TicketIn(customer_id=customer.id, subject="Giao hàng chậm"))
        session.commit()
        ids = user.id, ticket.number
    yield ids
    engine.dispose()
    get_settings.cache_clear()


def test_an_agent_going_online_takes_the_queued_ticket(desk_db):
    user_id, number = desk_db
    runner = CliRunner()
    queued = runner.invoke(app, ["service", "queue"])
    assert queued.exit_code == 0 and number in queued.output and "queued: no agent" in queued.output
    online = runner.invoke(app, ["service", "agent", str(user_id), "--availability", "online"])
    assert online.exit_code == 0, online.output
    shown = runner.invoke(app, ["service", "ticket", number])
    assert shown.exit_code == 0 and "from the queue: least load: Lan" in shown.output
    assert f"{user_id}\tLan\tonline\t1/8" in runner.invoke(app, ["service", "agents"]).output


def test_bad_input_is_a_clear_message(desk_db):
    runner = CliRunner()
    bad = runner.invoke(app, ["service", "agent", str(desk_db[0]), "--availability", "away"])
    assert bad.exit_code == 2 and "availability" in bad.output
    missing = runner.invoke(app, ["service", "ticket", "TK-999999"])
    assert missing.exit_code == 2 and "does not exist" in missing.output
