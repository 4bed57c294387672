"""The ready-made segments: installed by `clm demo`, filled, and the same members by SQL and by Python."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from clm.cli import app
from clm.db.engine import make_engine
from clm.lib.clock import utcnow
from clm.segments import membership
from clm.segments.compile import members_query
from clm.segments.evaluate import load_facts, members
from clm.segments.lookup import make_context
from clm.segments.models import Segment
from clm.segments.ready import install, ready_segments
from clm.segments.rules import parse_rules


def test_the_demo_installs_the_ready_made_segments_and_sql_agrees_with_python_on_them(tmp_path):
    db = tmp_path / "shop.db"
    result = CliRunner().invoke(app, ["demo", "--no-serve", "--customers", "300", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert f"{len(ready_segments())} ready-made segments installed" in result.output
    engine = make_engine(f"sqlite:///{db}")
    with Session(engine) as session:
        segments = list(session.scalars(sa.select(Segment).order_by(Segment.id)))
        assert {s.name for s in segments} == {name for name, _, _ in ready_segments()}
        assert sum(s.size for s in segments) > 0
        now = utcnow()
        facts = load_facts(session)
        for segment in segments:
            node = parse_rules(segment.rules)
            sql = set(session.scalars(members_query(node, make_context(session, now))))
            assert sql == members(node, facts, make_context(session, now)), segment.name
            if "time" not in segment.depends_on:
                assert membership.current_members(session, segment.id) == sql, segment.name
        assert install(session) == []
    engine.dispose()
