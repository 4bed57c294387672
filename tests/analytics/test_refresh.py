"""`clm analytics refresh`: every customer's scores from the orders, as the library computes them."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
import sqlalchemy as sa
from numpy.testing import assert_allclose
from typer.testing import CliRunner

from clm.analytics import clv
from clm.analytics.models import AnalyticsRun, CustomerScore
from clm.analytics.refresh import refresh, refresh_if_due, validate
from clm.analytics.rfm import rfm_scores, rfm_segments
from clm.customers.merge import merge_customers
from tests.analytics.shop_orders import NOW, TZ, build_shop


def _refresh(db, **kw):
    kw.setdefault("model", "bgnbd")
    run = refresh(db, NOW, currency="VND", timezone=TZ, **kw)
    db.commit()
    return run


def _scores(db) -> dict[int, CustomerScore]:
    db.expire_all()
    return {s.customer_id: s for s in db.scalars(sa.select(CustomerScore))}


def test_scores_agree_with_the_clv_library_on_the_same_orders(db):
    book = build_shop(db)
    run = _refresh(db)
    today = np.datetime64(NOW.date(), "D")  # 12:00 local time: the same local day
    s = clv.rfm_summary(book.transactions(), customer="customer", timestamp="date", amount="amount", period="D",
                        unit="W", observation_end=today)
    bg = clv.BetaGeo().fit(s.frequency, s.recency, s.T)
    repeat = s.frequency > 0
    gg = clv.GammaGamma().fit(s.frequency[repeat], s.monetary_value[repeat])
    value = clv.customer_lifetime_value(bg, gg, s.frequency, s.recency, s.T, s.monetary_value, horizon=12,
                                        discount_rate=0.01, period="W")
    scores = _scores(db)
    got = [scores[int(c)] for c in s.customer]
    assert run.status == "ok" and run.model == "bgnbd" and run.customers_scored == s.n_customers
    assert_allclose([run.params[k] for k in ("r", "alpha", "a", "b")], [bg.params[k] for k in ("r", "alpha", "a", "b")],
                    rtol=1e-6)
    assert_allclose([g.p_alive for g in got], bg.p_alive(s.frequency, s.recency, s.T), rtol=1e-6)
    assert_allclose([g.churn_risk for g in got], 1 - bg.p_alive(s.frequency, s.recency, s.T), rtol=1e-6, atol=1e-9)
    assert_allclose([g.expected_purchases_90d for g in got],
                    bg.expected_purchases(90 / 7, s.frequency, s.recency, s.T), rtol=1e-6)
    assert_allclose([g.predicted_clv_12m for g in got], np.rint(value), rtol=1e-6, atol=1)
    assert [g.frequency for g in got] == s.frequency.astype(int).tolist()
    recency_days = np.rint((s.T - s.recency) * 7).astype(int)
    assert [g.recency_days for g in got] == recency_days.tolist()
    monetary = np.bincount(np.searchsorted(s.customer, book.transactions()["customer"]),
                           weights=book.transactions()["amount"])
    r, f, m = rfm_scores(recency_days, s.frequency, monetary)
    assert [(g.r_score, g.f_score, g.m_score) for g in got] == list(zip(r.tolist(), f.tolist(), m.tolist(), strict=True))
    assert [g.rfm_segment for g in got] == rfm_segments(r, f, m).tolist()
    assert {g.currency for g in got} == {"VND"} and {g.computed_at for g in got} == {NOW}


def test_customers_without_orders_in_the_shops_currency_get_not_enough_data_and_a_reason(db):
    book = build_shop(db, idle=2, usd_only=1)
    _refresh(db)
    scores = _scores(db)
    idle = [scores[book.ids[f"idle-{i}"]] for i in range(2)]
    tourist = scores[book.ids["tourist-0"]]
    assert {(s.status, s.reason) for s in idle} == {("not_enough_data", "no_orders")}
    assert (tourist.status, tourist.reason) == ("not_enough_data", "other_currency")
    assert all(s.p_alive is None and s.predicted_clv_12m is None and s.r_score is None for s in [*idle, tourist])


def test_a_shop_with_too_few_repeat_buyers_gets_not_enough_data_everywhere_but_keeps_rfm(db):
    build_shop(db, buyers=8, idle=1)
    run = _refresh(db)
    scores = _scores(db)
    assert run.status == "not_enough_data" and run.reason == "too_few_buyers" and run.model is None
    assert "need at least 50" in run.notes[0]
    assert {s.status for s in scores.values()} == {"not_enough_data"}
    assert all(s.predicted_clv_12m is None and s.p_alive is None for s in scores.values())
    assert sum(s.r_score is not None for s in scores.values()) == 8


def test_running_the_refresh_twice_writes_the_same_rows(db):
    build_shop(db)
    _refresh(db)
    first = {cid: _row(s) for cid, s in _scores(db).items()}
    second_run = _refresh(db)
    second = {cid: _row(s) for cid, s in _scores(db).items()}
    assert first == second
    assert {s.run_id for s in _scores(db).values()} == {second_run.id}


def _row(s: CustomerScore) -> tuple:
    return (s.status, s.reason, s.recency_days, s.frequency, s.monetary, s.r_score, s.f_score, s.m_score, s.rfm_segment,
            s.p_alive, s.expected_purchases_90d, s.predicted_clv_12m, s.churn_risk, s.model)


def test_a_merged_customer_loses_their_row_and_the_next_refresh_scores_the_winner_with_both_histories(db):
    book = build_shop(db)
    _refresh(db)
    winner, loser = book.ids["buyer-0"], book.ids["buyer-1"]
    before = {cid: s.monetary for cid, s in _scores(db).items()}
    merge_customers(db, winner, loser, "test")
    db.commit()
    assert loser not in _scores(db)
    _refresh(db)
    after = _scores(db)
    assert loser not in after
    assert after[winner].monetary == before[winner] + before[loser]


def test_auto_compares_the_models_on_a_holdout_and_uses_the_best(db):
    book = build_shop(db, buyers=600)
    run = _refresh(db, model="auto")
    span = int((np.datetime64(NOW.date(), "D") - book.transactions()["date"].min()).astype(int))
    rows = run.holdout["rows"]
    assert {r["model"] for r in rows} == {"bgnbd", "pnbd", "mbgnbd"}
    assert run.model == rows[0]["model"] and rows[0]["mae"] == min(r["mae"] for r in rows)
    assert run.holdout["days"] == (span // 3) // 7 * 7  # a third of the history, in whole weeks
    diag = run.diagnostics
    assert sum(diag["histogram"]["actual"]) == run.buyers
    assert diag["tracking"]["actual"][-1] == sum(s.frequency for s in _scores(db).values() if s.frequency)
    assert sum(diag["cohorts"]["size"]) == run.buyers
    assert sum(diag["summary"]["clv_distribution"]["counts"]) == run.customers_scored


def test_a_small_shop_uses_bg_nbd_without_a_holdout_comparison(db):
    build_shop(db)
    run = _refresh(db, model="auto")
    assert run.model == "bgnbd" and run.holdout == {} and "without a holdout comparison" in " ".join(run.notes)


def test_the_worker_refreshes_once_a_day(db):
    build_shop(db, buyers=10)
    assert refresh_if_due(db, NOW, currency="VND", timezone=TZ) > 0
    assert refresh_if_due(db, NOW + timedelta(hours=20), currency="VND", timezone=TZ) == 0
    assert refresh_if_due(db, NOW + timedelta(hours=25), currency="VND", timezone=TZ) > 0
    assert db.scalar(sa.select(sa.func.count()).select_from(AnalyticsRun)) == 2


def test_validate_compares_the_three_models_by_holdout_error(db):
    build_shop(db)
    rows = validate(db, "10w", NOW, currency="VND", timezone=TZ)
    assert [r["mae"] for r in rows] == sorted(r["mae"] for r in rows)
    assert {r["model"] for r in rows} == {"bgnbd", "pnbd", "mbgnbd"}
    with pytest.raises(ValueError, match="shorter --holdout"):
        validate(db, "60w", NOW, currency="VND", timezone=TZ)


def test_the_cli_refreshes_and_prints_the_one_line_model_comparison(tmp_path, monkeypatch):
    from clm.cli import app as cli
    from clm.config import get_settings
    from clm.db.engine import make_engine, make_session_factory
    from clm.db.migrate import upgrade

    url = f"sqlite:///{tmp_path}/cli.db"
    engine = make_engine(url)
    upgrade(engine)
    with make_session_factory(engine)() as session:
        build_shop(session)
    monkeypatch.setenv("CLM_DATABASE_URL", url)
    monkeypatch.setenv("CLM_TIMEZONE", TZ)
    get_settings.cache_clear()
    try:
        at = NOW.strftime("%Y-%m-%dT%H:%M:%S")
        runner = CliRunner()
        result = runner.invoke(cli, ["analytics", "validate", "--holdout", "10w", "--at", at])
        assert result.exit_code == 0, result.output
        assert "holdout 10w" in result.output and "BG/NBD MAE" in result.output and "Pareto/NBD MAE" in result.output
        assert "MBG/NBD MAE" in result.output and "best:" in result.output
        result = runner.invoke(cli, ["analytics", "refresh", "--at", at])
        assert result.exit_code == 0, result.output
        assert "scored 120 of 124 customers" in result.output and "log-likelihood" in result.output
        result = runner.invoke(cli, ["analytics", "validate", "--holdout", "2y"])
        assert result.exit_code == 2 and "cannot read duration" in result.output
    finally:
        get_settings.cache_clear()
        engine.dispose()
