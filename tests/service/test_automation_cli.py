"""`clm service trigger|triggers|csat|calls|cti-token` on a temporary SQLite file."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from clm.cli import app
from clm.config import get_settings
from clm.db.engine import make_engine


@pytest.fixture
def desk(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path}/desk.db"
    monkeypatch.setenv("CLM_DATABASE_URL", url)
    get_settings.cache_clear()
    yield tmp_path
    make_engine(url).dispose()
    get_settings.cache_clear()


def test_a_trigger_from_a_json_file_is_added_then_replaced_by_name_and_listed(desk):
    path = desk / "trigger.json"
    rule = {"name": "Chờ khách 2 ngày", "event": "elapsed", "minutes": 2880, "since": "status_changed",
            "conditions": {"ticket": [{"field": "status", "op": "eq", "value": "pending_customer"}]},
            "actions": [{"type": "set_status", "status": "solved"}]}
    path.write_text(json.dumps(rule), encoding="utf-8")
    runner = CliRunner()
    first = runner.invoke(app, ["service", "trigger", str(path)])
    assert first.exit_code == 0 and "added" in first.output
    path.write_text(json.dumps({**rule, "minutes": 1440}), encoding="utf-8")
    second = runner.invoke(app, ["service", "trigger", str(path)])
    assert second.exit_code == 0 and "changed" in second.output
    listed = runner.invoke(app, ["service", "triggers"])
    assert "Chờ khách 2 ngày\telapsed after 1440 min since status_changed\ton\tset_status" in listed.output


def test_a_bad_trigger_file_names_the_field(desk):
    path = desk / "bad.json"
    path.write_text(json.dumps({"name": "x", "event": "created", "actions": [{"type": "tag", "add": ["a"]}],
                                "conditions": {"ticket": [{"field": "mood", "op": "eq", "value": 1}]}}))
    result = CliRunner().invoke(app, ["service", "trigger", str(path)])
    assert result.exit_code == 2 and "conditions.ticket[0].field" in result.output


def test_the_cti_token_is_printed_once_as_the_endpoint_url(desk):
    result = CliRunner().invoke(app, ["service", "cti-token"])
    assert result.exit_code == 0 and "/hooks/cti/" in result.output.splitlines()[0]
    assert CliRunner().invoke(app, ["service", "calls", "--missed"]).exit_code == 0
    assert CliRunner().invoke(app, ["service", "csat", "--by", "team"]).output.startswith("team\tsent")
