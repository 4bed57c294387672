"""`clm journeys list/import/export/activate/pause` on a temporary SQLite file."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from clm.cli import app
from clm.config import get_settings
from tests.journeys.conftest import END, graph, trait, wait

DOCUMENT = {"format": "clm.journey/1", "name": "Sinh nhật", "description": "",
            "definition": graph(wait("w", "t", days=1), trait("t", "greeted", True), END,
                                trigger={"type": "date", "field": "birthday"})}


@pytest.fixture
def shop(tmp_path, monkeypatch):
    monkeypatch.setenv("CLM_DATABASE_URL", f"sqlite:///{tmp_path}/journeys.db")
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_import_activate_pause_list_and_export_round_trip(shop):
    runner = CliRunner()
    source = shop / "birthday.json"
    source.write_text(json.dumps(DOCUMENT, ensure_ascii=False), encoding="utf-8")
    imported = runner.invoke(app, ["journeys", "import", str(source)])
    assert imported.exit_code == 0 and "version 1, draft" in imported.output
    assert "is active" in runner.invoke(app, ["journeys", "activate", "Sinh nhật"]).output
    assert "is paused" in runner.invoke(app, ["journeys", "pause", "1"]).output
    listed = runner.invoke(app, ["journeys", "list"]).output
    assert "Sinh nhật" in listed and "paused" in listed
    out = shop / "out.json"
    assert runner.invoke(app, ["journeys", "export", "Sinh nhật", "-o", str(out)]).exit_code == 0
    assert json.loads(out.read_text(encoding="utf-8"))["definition"] == DOCUMENT["definition"]


def test_errors_are_messages_naming_the_path(shop):
    runner = CliRunner()
    broken = dict(DOCUMENT, definition=graph({"id": "w", "type": "wait", "next": "end"}, END))
    source = shop / "broken.json"
    source.write_text(json.dumps(broken), encoding="utf-8")
    result = runner.invoke(app, ["journeys", "import", str(source)])
    assert result.exit_code == 1 and "definition.nodes[0].duration" in result.output
    missing = runner.invoke(app, ["journeys", "pause", "nobody"])
    assert missing.exit_code == 1 and "error:" in missing.output
