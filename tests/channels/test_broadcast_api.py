"""/api/v1/broadcasts: create, change, schedule, cancel, test-send and report; bad input names the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from clm.jobs.models import Job
from clm.segments.service import change_list, save_segment


@pytest.fixture
def api(client, api_key_for):
    headers = api_key_for("broadcasts:read", "broadcasts:write")

    def call(method: str, path: str, body=None):
        return client.request(method, f"/api/v1/broadcasts{path}", json=body, headers=headers)

    return call


@pytest.fixture
def segment(db, make_customer, welcome):
    segment = save_segment(db, name="Khách quen", kind="static")
    change_list(db, segment.id, add=[make_customer("an@example.vn").id, make_customer("binh@example.vn").id])
    db.commit()
    return segment


def test_a_broadcast_is_created_as_a_draft_scheduled_and_reported(api, segment):
    r = api("POST", "", {"name": "Tết", "template_key": "welcome", "segment_id": segment.id})
    assert r.status_code == 201, r.text
    created = r.json()
    assert (created["status"], created["channel"], created["attribution_days"]) == ("draft", "email", 7)

    at = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    r = api("POST", f"/{created['id']}/schedule", {"send_at": at.isoformat()})
    assert r.status_code == 200 and r.json()["status"] == "scheduled"
    assert datetime.fromisoformat(r.json()["send_at"]) == at
    assert [b["id"] for b in api("GET", "?status=scheduled").json()["data"]] == [created["id"]]

    report = api("GET", f"/{created['id']}/report").json()
    assert (report["recipients"], report["sent"], report["orders"], report["revenue"]) == (0, 0, 0, {})


@pytest.mark.parametrize("body,field", [
    ({"name": "x", "template_key": "missing", "segment_id": 1}, "template_key"),
    ({"name": "x", "template_key": "welcome", "segment_id": 999_999}, "segment_id"),
    ({"name": "", "template_key": "welcome", "segment_id": 1}, "name"),
    ({"name": "x", "template_key": "welcome", "segment_id": 1, "attribution_days": 400}, "attribution_days"),
    ({"name": "x", "template_key": "welcome"}, "segment_id"),
])
def test_a_bad_draft_is_refused_naming_the_field(api, segment, body, field):
    if body.get("segment_id") == 1:
        body = {**body, "segment_id": segment.id}
    r = api("POST", "", body)
    assert r.status_code == 422
    assert r.json()["error"]["field"] == field


def test_a_time_without_a_zone_or_in_the_past_is_refused(api, segment):
    b = api("POST", "", {"name": "Tết", "template_key": "welcome", "segment_id": segment.id}).json()
    for send_at in ("2030-01-01T09:00:00", (datetime.now(UTC) - timedelta(hours=2)).isoformat()):
        r = api("POST", f"/{b['id']}/schedule", {"send_at": send_at})
        assert r.status_code == 422 and r.json()["error"]["field"] == "send_at", r.text


def test_a_cancelled_broadcast_cannot_be_changed_or_sent(api, segment):
    b = api("POST", "", {"name": "Tết", "template_key": "welcome", "segment_id": segment.id}).json()
    assert api("POST", f"/{b['id']}/cancel").json()["status"] == "cancelled"
    for method, path, body in (("PATCH", "", {"name": "Mới"}), ("POST", "/schedule", {}), ("POST", "/cancel", None)):
        r = api(method, f"/{b['id']}{path}", body)
        assert r.status_code == 422
        assert (r.json()["error"]["code"], r.json()["error"]["field"]) == ("conflict", "status")
    assert api("DELETE", f"/{b['id']}").status_code == 204  # it never queued anything
    assert api("GET", f"/{b['id']}").status_code == 404


def test_a_test_send_is_queued_for_the_worker_with_the_rendered_content(api, db, segment):
    b = api("POST", "", {"name": "Tết", "template_key": "welcome", "segment_id": segment.id}).json()
    r = api("POST", f"/{b['id']}/test", {"to": "lan@shop.vn"})
    assert r.status_code == 202, r.text
    assert r.json()["subject"] == "[Thử] Chào An"
    job = db.get(Job, r.json()["job_id"])
    assert (job.kind, job.args["to"], job.max_attempts) == ("channels.test", "lan@shop.vn", 1)
    r = api("POST", f"/{b['id']}/test", {"to": "lan@"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "to"


def _many_broadcasts(db, n: int) -> list[int]:
    """`n` drafts, some sharing a creation time (the cursor must break ties by id)."""
    from clm.channels.models import Broadcast

    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [Broadcast(name=f"b{i}", channel="email", template_key="welcome", created_at=start + timedelta(minutes=i // 3))
            for i in range(n)]
    db.add_all(rows)
    db.commit()
    return [b.id for b in rows]


def test_the_list_pages_through_more_than_200_broadcasts_newest_first_without_repeats(api, db):
    ids = _many_broadcasts(db, 205)
    seen, cursor, pages = [], "", 0
    while cursor is not None:
        body = api("GET", f"?limit=200{'&cursor=' + cursor if cursor else ''}").json()
        seen += [b["id"] for b in body["data"]]
        cursor, pages = body["next"], pages + 1
    assert pages == 2 and len(seen) == 205 and set(seen) == set(ids)
    assert seen[0] == ids[-1] and seen[-1] == ids[0]


def test_a_cursor_that_is_not_one_is_refused_naming_the_field(api):
    r = api("GET", "?cursor=nonsense")
    assert r.status_code == 422 and r.json()["error"]["field"] == "cursor"
