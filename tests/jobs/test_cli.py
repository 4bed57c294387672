"""`clm jobs list/stats/retry` on a temporary SQLite file."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from clm.cli import app
from clm.config import get_settings
from clm.db.engine import make_engine, make_session_factory
from clm.db.migrate import upgrade
from clm.jobs import queue


@pytest.fixture
def shop(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path}/jobs.db"
    monkeypatch.setenv("CLM_DATABASE_URL", url)
    get_settings.cache_clear()
    engine = make_engine(url)
    upgrade(engine)
    factory = make_session_factory(engine)
    with factory() as session:
        queue.enqueue(session, "fine")
        dead = queue.enqueue(session, "send.email", max_attempts=1)
        session.commit()
        for job in queue.claim(session, "w", limit=5):
            if job.id == dead.id:
                queue.fail(session, job, "SMTP refused: set CLM_SMTP_URL")
        session.commit()
    runner = CliRunner()
    yield lambda *args: runner.invoke(app, ["jobs", *args], env={"CLM_DATABASE_URL": url}), dead.id
    get_settings.cache_clear()
    engine.dispose()


def test_list_shows_dead_jobs_with_their_error_and_retry_queues_one_again(shop):
    cli, dead_id = shop
    listed = cli("list", "--state", "dead")
    assert listed.exit_code == 0, listed.output
    assert "send.email" in listed.output and "SMTP refused" in listed.output and "fine" not in listed.output
    retried = cli("retry", str(dead_id))
    assert retried.exit_code == 0, retried.output
    assert f"job {dead_id} (send.email) is queued again" in retried.output
    assert "send.email" not in cli("list", "--state", "dead").output


def test_stats_count_jobs_per_queue_and_state(shop):
    cli, _ = shop
    out = cli("stats").output
    assert "dead" in out and "running" in out


def test_bad_input_gets_a_clear_error(shop):
    cli, _ = shop
    assert "choose one of" in cli("list", "--state", "zombie").output
    missing = cli("retry", "9999")
    assert missing.exit_code == 1 and "job 9999 does not exist" in missing.output
