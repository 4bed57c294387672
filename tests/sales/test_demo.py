"""The demo's sales team: leads from several sources on real customers, deals in every stage, won deals
that are the customers' own first orders (no order made up), activities, tasks, and a lead score."""

from __future__ import annotations

import sqlite3

from typer.testing import CliRunner

from clm.cli import app


def test_the_demo_has_a_sales_team_with_leads_deals_and_a_score(tmp_path):
    db = tmp_path / "shop.db"
    result = CliRunner().invoke(app, ["demo", "--no-serve", "--customers", "600", "--journey-days", "0",
                                      "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "sales: 90 leads" in result.output
    with sqlite3.connect(db) as conn:
        one = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
        assert one("select count(distinct source) from leads") >= 4
        assert one("select count(*) from leads where status = 'converted'") == one("select count(*) from opportunities")
        stages = {k for (k,) in conn.execute("select distinct s.key from opportunities o join pipeline_stages s "
                                             "on s.id = o.stage_id where o.status = 'open'")}
        assert len(stages) >= 3
        assert one("select count(*) from opportunities where status = 'won' and order_id is null") == 0
        assert one("select count(*) from opportunities where status = 'won'") > 0
        assert one("select count(*) from orders where channel = 'sales'") == 0  # won deals are real first orders
        assert one("select count(*) from opportunity_stage_changes") >= one("select count(*) from opportunities")
        assert one("select count(*) from activities") > 0 and one("select count(*) from tasks") > 0
        assert one("select count(*) from lead_score_models") == 1
        assert one("select count(*) from leads where status in ('new', 'contacted', 'qualified') and score is null") == 0
        assert one("select count(*) from lead_assignment_rules") == 2 and one("select count(*) from lead_forms") == 1
