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
