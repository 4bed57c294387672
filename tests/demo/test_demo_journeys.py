"""The demo's journeys: the playbook installed days before the end of the history and run over those days,
so the journeys' reports have entries, steps, messages sent and opened, and conversions."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

from typer.testing import CliRunner

from clm.cli import app
from clm.demo.journeys import Replay, hold_back


def test_stories_are_cut_at_the_start_and_the_rest_is_held_back_for_the_replay():
    start = datetime(2026, 1, 10, tzinfo=UTC)
    stories = [[{"timestamp": start - timedelta(days=3)}, {"timestamp": start + timedelta(hours=1)}],
               [{"timestamp": start - timedelta(days=1)}], [{"timestamp": start}]]
    replay = Replay(start=start, end=start + timedelta(days=2))
    loaded = list(hold_back(stories, start, replay))
    assert [len(s) for s in loaded] == [1, 1, 0]
    assert [m["timestamp"] for m in replay.held] == [start + timedelta(hours=1), start]


def test_the_demo_runs_the_playbook_over_its_last_days_and_the_reports_have_numbers(tmp_path):
    db = tmp_path / "shop.db"
    result = CliRunner().invoke(app, ["demo", "--no-serve", "--customers", "600", "--journey-days", "5",
                                      "--db", str(db), "--password", "mat-khau-demo"])
    assert result.exit_code == 0, result.output
    assert "journeys: the lifecycle playbook ran over the last 5 days" in result.output
    with sqlite3.connect(db) as conn:
        one = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
        assert conn.execute("select distinct state from journeys").fetchall() == [("active",)]
        assert one("select count(*) from journeys") == 7
        activated = one("select min(activated_at) from journeys")
        assert one("select count(*) from journey_runs") > 0
        # nobody entered before the playbook was installed: the history before it was not replayed
        assert one(f"select count(*) from journey_runs where entered_at < '{activated}'") == 0
        assert one("select count(*) from journey_steps") >= one("select count(*) from journey_runs")
        assert one("select count(*) from messages where journey_id is not null and sent_at is not null") > 0
        assert one("select count(*) from messages where journey_id is not null and status in ('opened', 'clicked')") > 0
        # every journey message went to the customer of its run
        assert one("select count(*) from messages m join journey_runs r on r.id = m.journey_run_id "
                   "where m.customer_id != r.customer_id") == 0
        # the queue holds nothing due: every step due by the end of the history ran
        assert one("select count(*) from jobs where state = 'available' and kind = 'journey.step' "
                   "and scheduled_at < (select max(timestamp) from events)") == 0
