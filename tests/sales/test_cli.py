"""`clm sales score` on a temporary SQLite file."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from clm.cli import app
from clm.config import get_settings
from clm.db.engine import make_engine, make_session_factory
from clm.db.migrate import upgrade
from clm.sales.leads import LeadIn, capture_lead
from clm.sales.models import Lead, LeadScoreModel


@pytest.fixture
def sales_db(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path}/sales.db"
    monkeypatch.setenv("CLM_DATABASE_URL", url)
    get_settings.cache_clear()
    engine = make_engine(url)
    upgrade(engine)
    with make_session_factory(engine)() as session:
        capture_lead(session, LeadIn(phone="0912444555"), score=False)
        session.commit()
    yield url, make_session_factory(engine)
    engine.dispose()
    get_settings.cache_clear()


def test_score_keeps_a_prior_with_no_closed_deals_and_scores_the_open_leads(sales_db):
    url, sessions = sales_db
    result = CliRunner().invoke(app, ["sales", "score"], env={"CLM_DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    assert "too few closed deals" in result.output and "1 open leads scored" in result.output
    with sessions() as session:
        assert session.scalar(sa.select(LeadScoreModel.kind)) == "prior"
        assert session.scalar(sa.select(Lead.score)) is not None


def test_the_worker_step_scores_new_leads(db, settings):
    from clm.lib.clock import utcnow
    from clm.worker.steps import build_steps

    lead = capture_lead(db, LeadIn(phone="0912444666"), score=False).lead
    [step] = [s for s in build_steps(settings) if s.name == "sales.scores"]
    assert step.run(db, utcnow()) == 1
    db.expire_all()
    assert lead.score is not None and lead.score_kind == "prior"
