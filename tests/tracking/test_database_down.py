"""A database that is down gives 503 with a JSON error, never a 500 and never a false acknowledgement."""

from fastapi.testclient import TestClient

from clm.config import Settings
from clm.db.engine import make_engine, make_session_factory
from clm.web.app import create_app


def test_tracking_answers_503_when_the_database_is_unreachable():
    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:9/none", connect_args={"connect_timeout": 1})
    app = create_app(Settings(dashboard_warm_up=False, _env_file=None), make_session_factory(engine))
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.post("/v1/track", json={"userId": "u", "event": "e"}, auth=("wk_any", ""))
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "database_unavailable"
    assert r.headers["retry-after"]


def test_the_native_api_answers_503_when_the_database_is_unreachable():
    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:9/none", connect_args={"connect_timeout": 1})
    app = create_app(Settings(dashboard_warm_up=False, _env_file=None), make_session_factory(engine))
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/api/v1/customers", headers={"Authorization": "Bearer clm_x"})
    assert r.status_code == 503


def test_an_outage_loses_nothing_that_was_acknowledged_and_a_retry_stores_once(settings, session_factory, db, write_key):
    import sqlalchemy as sa

    from clm.tracking.models import Event

    broken = make_session_factory(make_engine("postgresql+psycopg://nobody@127.0.0.1:9/none",
                                              connect_args={"connect_timeout": 1}))
    current = {"factory": session_factory}
    app = create_app(settings, lambda: current["factory"]())
    with TestClient(app, raise_server_exceptions=False) as client:
        ok = client.post("/v1/track", json={"userId": "u", "event": "Before", "messageId": "m-1"}, auth=(write_key, ""))
        current["factory"] = broken
        down = client.post("/v1/track", json={"userId": "u", "event": "During", "messageId": "m-2"}, auth=(write_key, ""))
        current["factory"] = session_factory
        retried = client.post("/v1/track", json={"userId": "u", "event": "During", "messageId": "m-2"},
                              auth=(write_key, ""))
        again = client.post("/v1/track", json={"userId": "u", "event": "During", "messageId": "m-2"},
                            auth=(write_key, ""))
    assert (ok.status_code, down.status_code, retried.status_code) == (200, 503, 200)
    assert again.json()["duplicates"] == 1
    assert sorted(db.scalars(sa.select(Event.message_id))) == ["m-1", "m-2"]
