"""Lead scoring learned from won and lost deals: the fit recovers a known generating model, scores carry
their reasons in both languages, and too few outcomes fall back to a prior that says so."""

from __future__ import annotations

import itertools
from datetime import timedelta

import numpy as np
import pytest
import sqlalchemy as sa

from clm.sales.codes import next_codes
from clm.sales.leads import LeadIn, capture_lead
from clm.sales.models import Lead, LeadScoreModel, Opportunity
from clm.sales.pipelines import default_pipeline, stages_of
from clm.sales.scoring.model import LogisticModel, auc
from clm.sales.scoring.service import classify, refresh, score_open_leads, train
from clm.tracking.ingest import ingest
from tests.customers.shop import T0


def test_the_fit_recovers_the_signs_of_a_known_model_and_ranks_well_out_of_sample():
    rng = np.random.default_rng(7)
    n, true = 4000, np.array([1.5, -1.0, 0.0, 0.8])
    X = rng.normal(size=(n, 4))
    y = (rng.random(n) < 1 / (1 + np.exp(-(X @ true - 0.5)))).astype(float)
    model = LogisticModel.fit(X[:3000], y[:3000], ["a", "b", "c", "d"], l2=1.0)
    coef = model.coef / model.scale  # back on the raw features' scale
    assert np.sign(coef[[0, 1, 3]]).tolist() == [1.0, -1.0, 1.0]
    np.testing.assert_allclose(coef, true, atol=0.15)
    assert abs(coef[2]) < 0.1
    assert auc(y[3000:], model.predict(X[3000:])) > 0.75


def test_contributions_add_up_to_the_log_odds():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] + rng.normal(size=200) > 0).astype(float)
    model = LogisticModel.fit(X, y, ["a", "b", "c"])
    p = model.predict(X[:5])
    log_odds = model.contributions(X[:5]).sum(axis=1) + model.intercept
    np.testing.assert_allclose(1 / (1 + np.exp(-log_odds)), p, rtol=1e-9)


def test_auc_is_half_for_ties_and_one_for_a_perfect_ranking():
    assert auc(np.array([0, 1, 0, 1]), np.array([0.5, 0.5, 0.5, 0.5])) == 0.5
    assert auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9])) == 1.0


def test_classification_follows_the_score():
    assert [classify(p) for p in (0.7, 0.3, 0.05, None)] == ["target", "potential", "low_potential", None]


_ids = itertools.count(1)


def synthetic_history(db, n: int, seed: int = 3) -> None:
    """Closed deals whose outcome truly depends on adding to cart (up), referral (up) and import (down)."""
    rng = np.random.default_rng(seed)
    pipeline = default_pipeline(db)
    stage = {s.kind: s.id for s in stages_of(db, pipeline.id) if s.kind != "open"}
    messages, plan = [], []
    for _ in range(n):
        user = f"syn-{next(_ids)}"
        added = int(rng.poisson(2.0)) if rng.random() < 0.5 else 0
        source = rng.choice(["web_form", "referral", "import"], p=[0.5, 0.25, 0.25])
        cutoff = T0 + timedelta(days=int(rng.integers(0, 60)))
        messages.append({"type": "identify", "userId": user, "traits": {"email": f"{user}@example.vn"},
                         "timestamp": (cutoff - timedelta(days=20)).isoformat()})
        for k in range(added):
            messages.append({"type": "track", "userId": user, "event": "Product Added",
                             "properties": {"product_id": "SOFA"}, "timestamp": (cutoff - timedelta(days=int(rng.integers(1, 25)), minutes=k)).isoformat()})
        for k in range(int(rng.poisson(3))):  # noise: every kind of lead browses
            messages.append({"type": "track", "userId": user, "event": "Product Viewed",
                             "properties": {"product_id": "SOFA"}, "timestamp": (cutoff - timedelta(days=int(rng.integers(1, 25)), minutes=k)).isoformat()})
        logit = -1.2 + 1.2 * np.log1p(added) + 1.3 * (source == "referral") - 1.3 * (source == "import")
        plan.append((user, str(source), cutoff, rng.random() < 1 / (1 + np.exp(-logit))))
    for start in range(0, len(messages), 2000):
        assert not ingest(db, messages[start:start + 2000], received_at=T0 + timedelta(days=90)).rejected
    from clm.customers.models import Identity

    customer_of = dict(db.execute(sa.select(Identity.value, Identity.customer_id).where(Identity.kind == "user_id")).all())
    codes = iter(next_codes(db, "lead", n))
    opp_codes = iter(next_codes(db, "opportunity", n))
    for user, source, cutoff, won in plan:
        lead = Lead(code=next(codes), customer_id=customer_of[user], source=source, status="converted", utm={},
                    priority="low", details={}, score_detail={}, classification_manual=False,
                    status_changed_at=cutoff, created_at=cutoff, updated_at=cutoff)
        db.add(lead)
        db.flush()
        db.add(Opportunity(code=next(opp_codes), customer_id=lead.customer_id, lead_id=lead.id,
                           pipeline_id=pipeline.id, stage_id=stage["won" if won else "lost"], title=user,
                           value=1_000_000, currency="VND", products=[], priority="low",
                           status="won" if won else "lost", closed_at=cutoff + timedelta(days=5),
                           stage_changed_at=cutoff, created_at=cutoff, updated_at=cutoff))
    db.flush()


def test_a_model_learned_from_deals_finds_the_features_that_decide_them(db):
    synthetic_history(db, 400)
    row = train(db, T0 + timedelta(days=90))
    assert row.kind == "learned" and row.won + row.lost == 400
    names, coef = row.params["model"]["names"], row.params["model"]["coef"]
    weight = dict(zip(names, coef, strict=True))
    assert weight["events:Product Added:30d"] > 0.2
    assert weight["source:referral"] > 0.2 and weight["source:import"] < -0.2
    assert abs(weight["events:Product Viewed:30d"]) < weight["events:Product Added:30d"]
    assert row.auc > 0.65  # on the stratified holdout, fitted without it
    calibration = row.params["evaluation"]["calibration"]
    assert calibration[0]["observed"] < calibration[-1]["observed"]


def test_a_new_lead_is_scored_with_the_learned_model_and_told_why(db, shop):
    synthetic_history(db, 300, seed=5)
    train(db, T0 + timedelta(days=90))
    keen = shop.customer("Keen", email="keen@example.vn", at=timedelta(days=80))
    for day in range(3):
        shop.track(keen, "Product Added", at=timedelta(days=85 + day), product_id="SOFA")
    shop.customer("Cold", email="cold@example.vn", at=timedelta(days=80))
    now = T0 + timedelta(days=89)
    hot_lead = capture_lead(db, LeadIn(email="keen@example.vn", source="referral"), now=now).lead
    cold_lead = capture_lead(db, LeadIn(email="cold@example.vn", source="import"), now=now).lead
    assert hot_lead.score_kind == "learned" and hot_lead.score > cold_lead.score
    reasons = hot_lead.score_detail["reasons"]
    assert {r["feature"] for r in reasons} & {"events:Product Added:30d", "events:Product Added:7d", "source:referral"}
    assert all(r["vi"] and r["en"] for r in reasons) and hot_lead.score_detail["note"] is None
    top = next(r for r in reasons if r["feature"].startswith("events:Product Added"))
    assert top["contribution"] > 0 and "Product Added" in top["en"] and "lần" in top["vi"]


def test_with_too_few_outcomes_the_prior_scores_and_says_so(db):
    lead = capture_lead(db, LeadIn(phone="0912888000", source="referral")).lead
    assert lead.score_kind == "prior" and 0 < lead.score < 1 and lead.classification is not None
    assert "Too few closed deals" in lead.score_detail["note"]["en"]
    assert "Chưa đủ" in lead.score_detail["note"]["vi"]
    row = train(db)
    assert row.kind == "prior" and (row.won, row.lost) == (0, 0)


def test_refresh_retrains_daily_and_rescores_open_leads_keeping_hand_set_classes(db):
    first = capture_lead(db, LeadIn(phone="0912888001"), score=False).lead
    second = capture_lead(db, LeadIn(phone="0912888002"), score=False).lead
    second.classification, second.classification_manual = "target", True
    db.flush()
    model, scored = refresh(db, T0)
    assert model is not None and scored == 2
    db.expire_all()
    assert first.scored_at == T0 and first.classification == classify(first.score)
    assert second.classification == "target" and second.score is not None
    assert refresh(db, T0 + timedelta(hours=2)) == (None, 0)
    assert db.scalar(sa.select(sa.func.count()).select_from(LeadScoreModel)) == 1
    assert score_open_leads(db, T0) == 2


@pytest.mark.parametrize("count", [0])
def test_scoring_no_leads_is_nothing(db, count):
    assert score_open_leads(db, T0) == count
