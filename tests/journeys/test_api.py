"""/api/v1/journeys: CRUD, validate (422 with the path), activate/pause/resume, export/import, trigger, scopes."""

from __future__ import annotations

import pytest

from tests.journeys.conftest import END, graph, trait, wait

FLOW = graph(wait("w", "t", days=1), trait("t", "vip", True), END)


@pytest.fixture
def writer(api_key_for):
    return api_key_for("journeys:read", "journeys:write")


def test_a_journey_is_created_activated_triggered_paused_resumed_and_reported(client, writer, people, clock):
    [anna] = people()
    made = client.post("/api/v1/journeys", json={"name": "VIP", "definition": FLOW}, headers=writer)
    assert made.status_code == 201 and made.json()["state"] == "draft"
    jid = made.json()["id"]
    assert client.post(f"/api/v1/journeys/{jid}/activate", headers=writer).json()["state"] == "active"
    entered = client.post(f"/api/v1/journeys/{jid}/trigger", json={"customer_id": anna, "key": "k1"}, headers=writer)
    assert entered.json()["entered"] is True
    again = client.post(f"/api/v1/journeys/{jid}/trigger", json={"customer_id": anna, "key": "k1"}, headers=writer)
    assert again.json() == {"entered": False, "run_id": None}
    assert client.post(f"/api/v1/journeys/{jid}/pause", headers=writer).json()["state"] == "paused"
    assert client.post(f"/api/v1/journeys/{jid}/resume", headers=writer).json()["state"] == "active"
    report = client.get(f"/api/v1/journeys/{jid}/report", headers=writer).json()
    assert report["counts"]["entered"] == 1
    assert report["positions"] == [{"version": 1, "node": "w", "status": "waiting", "runs": 1}]


def test_an_invalid_graph_is_answered_422_naming_the_path_and_the_node(client, writer):
    bad = graph({"id": "w", "type": "wait", "next": "end"}, END)
    answer = client.post("/api/v1/journeys", json={"name": "Sai", "definition": bad}, headers=writer)
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["field"] == "definition.nodes[0].duration" and "node 'w'" in error["message"]
    listed = client.post("/api/v1/journeys/validate", json={"name": "Sai", "definition": bad}, headers=writer).json()
    assert listed["valid"] is False and listed["problems"][0]["node"] == "w"


def test_editing_a_live_journey_answers_the_new_version(client, writer, clock):
    jid = client.post("/api/v1/journeys", json={"name": "VIP", "definition": FLOW}, headers=writer).json()["id"]
    client.post(f"/api/v1/journeys/{jid}/activate", headers=writer)
    changed = graph(wait("w", "t", days=2), trait("t", "vip", True), END)
    assert client.put(f"/api/v1/journeys/{jid}", json={"name": "VIP", "definition": changed},
                      headers=writer).json()["version"] == 2


def test_export_then_import_gives_the_same_definition(client, writer):
    jid = client.post("/api/v1/journeys", json={"name": "VIP", "definition": FLOW}, headers=writer).json()["id"]
    document = client.get(f"/api/v1/journeys/{jid}/export", headers=writer).json()
    assert document["format"] == "clm.journey/1"
    document["name"] = "VIP copy"
    copy = client.post("/api/v1/journeys/import", json=document, headers=writer)
    assert copy.status_code == 201
    assert copy.json()["definition"] == client.get(f"/api/v1/journeys/{jid}", headers=writer).json()["definition"]


def test_the_schema_is_published(client, writer):
    schema = client.get("/api/v1/journeys/schema", headers=writer).json()
    assert {"trigger", "start", "nodes"} <= set(schema["properties"])


def test_scopes_guard_every_route(client, api_key_for):
    reader = api_key_for("journeys:read")
    other = api_key_for("segments:read")
    assert client.get("/api/v1/journeys").status_code == 401
    assert client.get("/api/v1/journeys", headers=other).status_code == 403
    assert client.get("/api/v1/journeys", headers=reader).status_code == 200
    assert client.post("/api/v1/journeys", json={"name": "x", "definition": FLOW}, headers=reader).status_code == 403
    assert client.post("/api/v1/journeys/1/activate", headers=reader).status_code == 403
