"""Lead webhooks: Facebook Lead Ads (signed leadgen deliveries, leads read from a local Graph API) and
Zalo's user_submit_info (signed with the OA secret key). A repeated delivery creates nothing twice."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
import sqlalchemy as sa

from clm.config import Settings
from clm.customers.models import Customer
from clm.jobs.models import Job
from clm.jobs.runner import Registry, run_due
from clm.lib.clock import utcnow
from clm.sales import jobs as sales_jobs
from clm.sales.models import Lead
from tests.channels.providers.fakes import FakeServer, Request, as_json

PAGE_TOKEN = "page-token-1"
APP_SECRET = "fb-app-secret"
OA_SECRET = "oa-secret"
ZALO_APP = "2553928453557884079"


class GraphLeadsFake(FakeServer):
    """GET /v25.0/<leadgen id>?access_token=...: the lead's answers, as the Graph API gives them."""

    def __init__(self, leads: dict[str, dict]):
        super().__init__()
        self.leads = leads

    def answer(self, r: Request):
        lead_id = r.path.rsplit("/", 1)[-1]
        if r.method != "GET" or not r.path.startswith("/v25.0/"):
            self.violation(f"{r.method} {r.path}")
        if r.query.get("access_token") != PAGE_TOKEN:
            return as_json(400, {"error": {"message": "Invalid OAuth access token.", "type": "OAuthException",
                                           "code": 190}})
        if lead_id not in self.leads:
            return as_json(400, {"error": {"message": "Unsupported get request.", "type": "GraphMethodException",
                                           "code": 100, "error_subcode": 33}})
        return as_json(200, {"id": lead_id, **self.leads[lead_id]})


LEAD_1 = {"created_time": "2025-03-01T09:00:00+0000", "form_id": "551111744595541", "field_data": [
    {"name": "full_name", "values": ["Ngô Bảo Châu"]}, {"name": "email", "values": ["chau@example.vn"]},
    {"name": "phone_number", "values": ["+84912000999"]}, {"name": "ban_can_tu_van_gi", "values": ["Sofa"]}]}


@pytest.fixture
def graph():
    with GraphLeadsFake({"55459717045641545": LEAD_1}) as fake:
        yield fake


@pytest.fixture
def settings(graph):
    return Settings(database_url="sqlite://", dashboard_warm_up=False, _env_file=None,
                    facebook_leads_app_secret=APP_SECRET, facebook_leads_page_token=PAGE_TOKEN,
                    facebook_leads_verify_token="verify-leads", messenger_graph_url=graph.url + "/v25.0",
                    zalo_oa_secret_key=OA_SECRET, zalo_app_id=ZALO_APP)


def leadgen(*ids: str) -> bytes:
    # Meta escapes non-ASCII and orders keys its own way: the signature covers these exact bytes.
    body = {"object": "page", "entry": [{"id": "516540199134611", "time": 1740819600, "changes": [
        {"field": "leadgen", "value": {"ad_id": 0, "form_id": 551111744595541, "leadgen_id": int(i),
                                       "created_time": 1740819600, "page_id": 516540199134611}} for i in ids]}]}
    return json.dumps(body).encode()


def fb_signed(raw: bytes, secret: str = APP_SECRET) -> dict[str, str]:
    return {"X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest(),
            "Content-Type": "application/json"}


def run_jobs(session_factory, settings) -> int:
    registry = Registry()
    sales_jobs.register(registry, settings)
    return run_due(session_factory, registry, "test-worker", now=utcnow())


def leads(db) -> list[Lead]:
    db.expire_all()
    return list(db.scalars(sa.select(Lead)))


def test_the_leadgen_handshake_echoes_the_challenge_for_the_right_token(client):
    ok = client.get("/hooks/leads/facebook", params={"hub.mode": "subscribe", "hub.verify_token": "verify-leads",
                                                    "hub.challenge": "1158201444"})
    assert ok.status_code == 200 and ok.text == "1158201444"
    bad = client.get("/hooks/leads/facebook", params={"hub.mode": "subscribe", "hub.verify_token": "nope",
                                                     "hub.challenge": "1"})
    assert bad.status_code == 403


def test_a_facebook_lead_is_read_from_the_graph_api_and_captured(client, db, session_factory, settings, graph):
    raw = leadgen("55459717045641545")
    r = client.post("/hooks/leads/facebook", content=raw, headers=fb_signed(raw))
    assert r.status_code == 200 and r.json() == {"ok": True, "leads": 1}
    assert run_jobs(session_factory, settings) == 1
    [lead] = leads(db)
    assert lead.source == "facebook_lead_ads" and lead.external_id == "55459717045641545"
    assert lead.details["answers"] == {"ban_can_tu_van_gi": "Sofa"} and lead.details["form_id"] == "551111744595541"
    customer = db.get(Customer, lead.customer_id)
    assert (customer.full_name, customer.email, customer.phone) == ("Ngô Bảo Châu", "chau@example.vn", "+84912000999")
    assert graph.requests[0].query["access_token"] == PAGE_TOKEN and graph.violations == []


def test_a_repeated_leadgen_delivery_creates_nothing_twice(client, db, session_factory, settings):
    raw = leadgen("55459717045641545")
    client.post("/hooks/leads/facebook", content=raw, headers=fb_signed(raw))
    client.post("/hooks/leads/facebook", content=raw, headers=fb_signed(raw))
    run_jobs(session_factory, settings)
    client.post("/hooks/leads/facebook", content=raw, headers=fb_signed(raw))
    run_jobs(session_factory, settings)
    assert len(leads(db)) == 1


@pytest.mark.parametrize("headers", [{}, {"X-Hub-Signature-256": "sha256=" + "0" * 64}, "wrong-secret"])
def test_a_leadgen_delivery_with_a_bad_signature_is_refused_and_queues_nothing(client, db, headers):
    raw = leadgen("55459717045641545")
    headers = fb_signed(raw, "another-secret") if headers == "wrong-secret" else headers
    r = client.post("/hooks/leads/facebook", content=raw, headers=headers)
    assert r.status_code == 401 and r.json()["error"]["field"] == "X-Hub-Signature-256"
    assert db.scalar(sa.select(sa.func.count()).select_from(Job)) == 0


def test_an_unknown_lead_is_given_up_at_once_and_an_unreachable_graph_is_retried(client, db, session_factory,
                                                                                    settings, graph):
    raw = leadgen("999")
    client.post("/hooks/leads/facebook", content=raw, headers=fb_signed(raw))
    run_jobs(session_factory, settings)
    db.expire_all()
    assert db.scalar(sa.select(Job.state).where(Job.kind == "sales.facebook_lead")) == "dead"
    graph.fail_with = 502
    raw = leadgen("55459717045641545")
    client.post("/hooks/leads/facebook", content=raw, headers=fb_signed(raw))
    run_jobs(session_factory, settings)
    db.expire_all()
    states = db.scalars(sa.select(Job.state).where(Job.kind == "sales.facebook_lead").order_by(Job.id)).all()
    assert states == ["dead", "retryable"] and leads(db) == []


def zalo_body(phone: str = "84912777888", timestamp: str = "1740819600000") -> bytes:
    return json.dumps({"app_id": ZALO_APP, "event_name": "user_submit_info", "sender": {"id": "2468013579"},
                       "recipient": {"id": "OA-1"}, "timestamp": timestamp,
                       "info": {"name": "Lý Thu Trang", "phone": phone, "address": "12 Lê Lợi",
                                "city": "Đà Nẵng", "district": "Hải Châu"}}, ensure_ascii=False).encode()


def zalo_signed(raw: bytes, secret: str = OA_SECRET) -> dict[str, str]:
    body = json.loads(raw)
    mac = hashlib.sha256(body["app_id"].encode() + raw + body["timestamp"].encode() + secret.encode()).hexdigest()
    return {"X-ZEvent-Signature": f"mac={mac}", "Content-Type": "application/json"}


def test_a_zalo_user_submit_info_becomes_a_lead_once(client, db):
    raw = zalo_body()
    first = client.post("/hooks/leads/zalo", content=raw, headers=zalo_signed(raw))
    again = client.post("/hooks/leads/zalo", content=raw, headers=zalo_signed(raw))
    assert first.json()["leads"] == 1 and again.json()["leads"] == 0
    [lead] = leads(db)
    customer = db.get(Customer, lead.customer_id)
    assert lead.source == "zalo" and customer.phone == "+84912777888" and customer.city == "Đà Nẵng"
    assert lead.details["address"] == "12 Lê Lợi"


def test_a_zalo_event_signed_with_the_wrong_key_is_refused(client, db):
    raw = zalo_body()
    r = client.post("/hooks/leads/zalo", content=raw, headers=zalo_signed(raw, "the-app-secret"))
    assert r.status_code == 401 and leads(db) == []


def test_other_zalo_events_are_acknowledged_and_ignored(client, db):
    raw = json.dumps({"app_id": ZALO_APP, "event_name": "follow", "timestamp": "1", "sender": {"id": "1"}}).encode()
    r = client.post("/hooks/leads/zalo", content=raw, headers=zalo_signed(raw))
    assert r.status_code == 200 and r.json()["ignored"] == 1 and leads(db) == []


def test_a_zalo_submission_with_a_bad_phone_is_refused_naming_the_field(client, db):
    raw = zalo_body(phone="12345")
    r = client.post("/hooks/leads/zalo", content=raw, headers=zalo_signed(raw))
    assert r.status_code == 422 and r.json()["error"]["field"] == "phone" and leads(db) == []


def test_a_user_submit_info_sent_to_the_messaging_webhook_is_forwarded_as_a_lead_once(client, db, session_factory,
                                                                                      settings):
    raw = zalo_body(timestamp="1740819700000")
    first = client.post("/hooks/zalo", content=raw, headers=zalo_signed(raw))
    again = client.post("/hooks/zalo", content=raw, headers=zalo_signed(raw))
    assert first.status_code == again.status_code == 200 and first.json()["forwarded"] == "lead"
    assert db.scalar(sa.select(sa.func.count()).select_from(Job).where(Job.kind == "sales.zalo_lead")) == 1
    assert run_jobs(session_factory, settings) == 1
    db.expire_all()
    [lead] = leads(db)
    assert lead.source == "zalo" and lead.external_id == "2468013579:1740819700000"
    assert db.get(Customer, lead.customer_id).phone == "+84912777888"


def test_a_forwarded_submission_with_a_bad_phone_is_given_up_with_the_reason(client, db, session_factory, settings):
    raw = zalo_body(phone="12345", timestamp="1740819800000")
    assert client.post("/hooks/zalo", content=raw, headers=zalo_signed(raw)).status_code == 200
    run_jobs(session_factory, settings)
    db.expire_all()
    job = db.scalar(sa.select(Job).where(Job.kind == "sales.zalo_lead"))
    assert job.state == "dead" and "phone" in job.errors[-1]["error"] and leads(db) == []
