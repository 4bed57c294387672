"""POST /api/v1/service/mail (a mail server's pipe) and the quarantine over the API."""

from tests.service.mail.conftest import sample


def post(client, headers, raw: bytes):
    return client.post("/api/v1/service/mail", content=raw, headers={**headers, "Content-Type": "message/rfc822"})


def test_a_raw_mail_posted_twice_is_stored_once_and_machine_mail_is_held(client, db, mailbox, api_key_for):
    headers = api_key_for("service:read", "service:write", "service:manage")
    first = post(client, headers, sample("outlook_windows1258.eml"))
    again = post(client, headers, sample("outlook_windows1258.eml"))
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["ticket_number"].startswith("TK-") and again.json()["status"] == "duplicate"
    held = post(client, headers, sample("newsletter_precedence_bulk.eml"))
    assert held.status_code == 202 and held.json()["reason"] == "Precedence: bulk"
    [listed] = client.get("/api/v1/service/mail/quarantine", headers=headers).json()
    assert (listed["id"], listed["kind"], listed["sender"]) == (held.json()["quarantine_id"], "automatic",
                                                              "news@news.example.com")
    released = client.post(f"/api/v1/service/mail/quarantine/{listed['id']}/release", headers=headers)
    assert released.status_code == 200 and released.json()["status"] == "stored"
    twice = client.post(f"/api/v1/service/mail/quarantine/{listed['id']}/release", headers=headers)
    assert twice.status_code == 422 and "released already" in twice.json()["error"]["message"]


def test_an_unreadable_held_mail_cannot_be_released(client, db, mailbox, api_key_for):
    headers = api_key_for("service:write", "service:manage")
    held = post(client, headers, sample("unknown_charset.eml")).json()
    response = client.post(f"/api/v1/service/mail/quarantine/{held['quarantine_id']}/release", headers=headers)
    assert response.status_code == 422 and "unknown charset" in response.json()["error"]["message"]
    assert client.post("/api/v1/service/mail/quarantine/999999/release", headers=headers).status_code == 404
