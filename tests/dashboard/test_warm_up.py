"""The overview's figures are computed as the server starts, so the first visitor never waits for them."""

from clm.config import Settings
from clm.db.engine import make_engine, make_session_factory
from clm.db.migrate import upgrade
from clm.web.app import create_app
from clm.web.pages import warm_up


def test_warming_up_puts_the_overview_and_funnel_in_the_cache(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/warm.db")
    upgrade(engine)
    settings = Settings(dashboard_warm_up=False, _env_file=None)
    app = create_app(settings, make_session_factory(engine))
    warm_up(app).join(30)
    keys = set(app.state.dashboard_cache._values)
    assert ("overview", settings.timezone, settings.default_currency) in keys
    assert ("funnel",) in keys


def test_the_first_overview_after_start_never_waits_for_the_figures(tmp_path, monkeypatch):
    """With warm-up on, a visitor who arrives before the figures exist gets a page that says they are
    coming (and reloads), not a page held up for seconds; once they exist, the real overview."""
    from argon2 import PasswordHasher
    from fastapi.testclient import TestClient

    from clm.access import passwords
    from clm.access.users import create_user
    from tests.dashboard.conftest import log_in

    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))
    engine = make_engine(f"sqlite:///{tmp_path}/first.db")
    upgrade(engine)
    factory = make_session_factory(engine)
    with factory() as session:
        create_user(session, email="owner@shop.example.com", name="Owner", role="admin", password="a long password 1")
        session.commit()
    app = create_app(Settings(dashboard_warm_up=True, _env_file=None), factory)
    cache, key = app.state.dashboard_cache, ("overview", "Asia/Ho_Chi_Minh", "VND")
    cache.claim(key)  # as if the start-up computation were still running
    cache.claim(("funnel",))
    with TestClient(app, headers={"Accept-Language": "en"}) as client:
        assert log_in(client, "owner@shop.example.com", "a long password 1").status_code in (302, 303)
        first = client.get("/overview")
        cache._refreshing.clear()  # the start-up computation "ends" without a result
        client.get("/overview")  # starts one in the background and still does not wait
        for _ in range(500):
            if cache.peek(key) is not None:
                break
            __import__("time").sleep(0.01)  # waiting for the background result, not for time to pass
        later = client.get("/overview")
    assert first.status_code == 200 and "Preparing the figures" in first.text
    assert 'http-equiv="refresh"' in first.text
    assert later.status_code == 200 and "Preparing the figures" not in later.text
