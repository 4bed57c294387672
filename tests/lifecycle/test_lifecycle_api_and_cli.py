"""The lifecycle API answers and the `clm lifecycle` commands."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from clm.cli import app as cli
from tests.lifecycle.life import Life, day


@pytest.fixture
def reader(api_key_for):
    return api_key_for("customers:read")


def test_stage_counts_list_every_stage_with_its_name(client, db, reader):
    life = Life(db)
    life.identify("an", 0)
    life.order("an", 1)
    life.identify("binh", 0)
    life.react(1)
    data = client.get("/api/v1/lifecycle/stages?locale=en", headers=reader).json()["data"]
    assert data[0] == {"stage": "awareness", "name": "Awareness", "count": 1}
    assert {d["stage"]: d["count"] for d in data}["conversion"] == 1
    assert len(data) == 7


def test_the_funnel_and_a_history_come_from_the_moves(client, db, reader):
    life = Life(db)
    life.identify("an", 0)
    life.track("an", "Signed Up", 1)
    life.react(1)
    life.order("an", 2)
    life.react(2)
    funnel = client.get("/api/v1/lifecycle/funnel", headers=reader).json()["data"]
    assert funnel[0]["name"] == "Nhận biết" and funnel[0]["entered"] == 1 and funnel[0]["reached_next"] == 1
    history = client.get(f"/api/v1/lifecycle/customers/{life.id('an')}/history", headers=reader).json()["data"]
    assert [(h["to_stage"], h["rule"]) for h in history] == [("consideration", "engaged"), ("conversion", "first-purchase")]
    assert client.get("/api/v1/lifecycle/funnel?since=yesterday", headers=reader).json()["error"]["field"] == "since"
    assert client.get("/api/v1/lifecycle/customers/999999/history", headers=reader).status_code == 404


def test_check_rules_lists_a_good_file_and_names_the_key_in_a_bad_one(tmp_path: Path):
    runner = CliRunner()
    good = Path(__file__).parents[2] / "clm" / "lifecycle" / "default_rules.toml"
    result = runner.invoke(cli, ["lifecycle", "check-rules", str(good)])
    assert result.exit_code == 0, result.output
    assert "reactivated: -> retention from at_risk, churned when orders_count >= 2" in result.output
    bad = tmp_path / "rules.toml"
    bad.write_text(good.read_text(encoding="utf-8").replace('stage = "at_risk"', 'stage = "at-risk"'), encoding="utf-8")
    result = runner.invoke(cli, ["lifecycle", "check-rules", str(bad)])
    assert result.exit_code == 2
    assert "rules[1].stage: unknown stage 'at-risk'" in result.output


def test_sweep_and_recompute_commands_move_customers(tmp_path, monkeypatch):
    from clm.config import get_settings
    from clm.db.engine import make_engine, make_session_factory
    from clm.db.migrate import upgrade

    url = f"sqlite:///{tmp_path}/cli.db"
    upgrade(make_engine(url))
    with make_session_factory(make_engine(url))() as session:
        life = Life(session)
        life.identify("an", 0)
        life.order("an", 0)
        life.react(0)
    monkeypatch.setenv("CLM_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        result = runner.invoke(cli, ["lifecycle", "sweep", "--at", day(300).strftime("%Y-%m-%dT%H:%M:%S")])
        assert result.exit_code == 0, result.output
        assert "moved 1 customers" in result.output
        result = runner.invoke(cli, ["lifecycle", "recompute", "--at", day(1).strftime("%Y-%m-%dT%H:%M:%S")])
        assert result.exit_code == 0, result.output
        assert "stats for 1 customers; moved 1 customers" in result.output
        result = runner.invoke(cli, ["lifecycle", "history", "1"])
        assert "churned        -> conversion" in result.output
    finally:
        get_settings.cache_clear()
