"""The Jobs page: counts per queue and state, dead jobs with their last error, retry and cancel."""

from __future__ import annotations

import pytest

from clm.jobs import queue
from clm.jobs.models import Job
from tests.dashboard.conftest import token_of


@pytest.fixture
def dead_job(db):
    job = queue.enqueue(db, "channels.send", {"message_id": 9}, max_attempts=1)
    queue.enqueue(db, "journey.step", queue="default")
    db.commit()
    claimed = [j for j in queue.claim(db, "w", limit=5) if j.id == job.id]
    queue.fail(db, claimed[0], "SMTP 550: mailbox <a@b.vn> unavailable")
    db.commit()
    return job.id


def state_of(db, job_id: int) -> str:
    db.expire_all()
    return db.get(Job, job_id).state


def test_the_page_shows_counts_and_each_dead_job_with_its_last_error(as_role, dead_job):
    page = as_role("manager").get("/jobs")
    assert page.status_code == 200
    assert f'id="job-{dead_job}"' in page.text
    assert "SMTP 550: mailbox &lt;a@b.vn&gt; unavailable" in page.text  # escaped
    assert 'id="job-counts"' in page.text and "Dead" in page.text


def test_retry_queues_a_dead_job_again_and_cancel_dismisses_it(as_role, db, dead_job):
    admin = as_role("admin")
    token = token_of(admin)
    answer = admin.post(f"/jobs/{dead_job}/retry", data={"csrf_token": token})
    assert answer.status_code == 303 and answer.headers["location"] == "/jobs?done=retried"
    assert state_of(db, dead_job) == "available"
    assert "The job is queued again." in admin.get("/jobs?done=retried").text
    admin.post(f"/jobs/{dead_job}/cancel", data={"csrf_token": token})
    assert state_of(db, dead_job) == "cancelled"


def test_a_form_without_its_csrf_token_changes_nothing(as_role, db, dead_job):
    assert as_role("admin").post(f"/jobs/{dead_job}/retry", data={}).status_code == 403
    assert state_of(db, dead_job) == "dead"


def test_retrying_a_job_that_is_not_dead_says_why(as_role, db, dead_job):
    admin = as_role("admin")
    token = token_of(admin)
    admin.post(f"/jobs/{dead_job}/retry", data={"csrf_token": token})
    again = admin.post(f"/jobs/{dead_job}/retry", data={"csrf_token": token})
    assert again.status_code == 422 and "only dead or cancelled jobs can be retried" in again.text


def test_the_page_speaks_vietnamese(as_role, user_factory, browser, dead_job):
    from tests.dashboard.conftest import log_in

    user_factory("admin", email="vi@shop.vn", locale="vi")
    client = browser()
    log_in(client, "vi@shop.vn")
    page = client.get("/jobs").text
    assert "Tác vụ thất bại hẳn" in page and "Thử lại" in page
