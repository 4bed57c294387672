"""Lead scores learned from the shop's own won and lost deals, each with the reasons behind it.

`train` fits the model on closed opportunities (features as of when each lead came in) and keeps it
with a holdout evaluation (AUC, calibration points); with fewer than `MIN_EACH` won or lost deals it
keeps a *prior* instead: hand-set weights that any sales team would agree on, and every score made
with it says so. `score_leads` scores leads with the newest model and sets each lead's
classification unless a person set it by hand.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.db.bulk import update_rows_at_once
from clm.lib.clock import utcnow
from clm.sales.models import OPEN_LEAD_STATUSES, Lead, LeadScoreModel, Opportunity
from clm.sales.points import points_rows
from clm.sales.scoring.features import FeatureSpec, Sample, build_spec, describe, raw_matrix, transform
from clm.sales.scoring.model import LogisticModel, auc, calibration

MIN_EACH = 10  # won and lost deals each, before the model learns instead of using the prior
TARGET, POTENTIAL = 0.5, 0.2  # classification thresholds on the probability of winning
L2 = 1.0
TOP_REASONS = 3
RETRAIN_EVERY = timedelta(days=1)
PRIOR_BASE_RATE = 0.2
# The prior, on log(1 + count) features: behaviour that shows intent, a phone to call, a referral.
PRIOR_WEIGHTS = {
    "events:Product Viewed:30d": 0.3, "events:Product Added:30d": 0.5, "events:Checkout Started:30d": 0.6,
    "events:Email Clicked:30d": 0.3, "events:Message Received:30d": 0.3, "pages:30d": 0.2,
    "source:referral": 0.8, "source:event": 0.4, "source:web_form": 0.2, "source:zalo": 0.2,
    "source:import": -0.3, "has_phone": 0.5, "has_email": 0.2, "orders": 0.6,
}


def classify(score: float | None) -> str | None:
    if score is None:
        return None
    return "target" if score >= TARGET else "potential" if score >= POTENTIAL else "low_potential"


def training_samples(session: Session) -> tuple[list[Sample], np.ndarray]:
    """One sample per won or lost opportunity, cut off when its lead came in (else when it was opened)."""
    rows = session.execute(
        sa.select(Opportunity.customer_id, Opportunity.status, Opportunity.created_at, Lead.created_at,
                  Lead.source, Lead.campaign)
        .outerjoin(Lead, Lead.id == Opportunity.lead_id)
        .where(Opportunity.status.in_(("won", "lost"))).order_by(Opportunity.id)
    ).all()
    samples = [Sample(cid, lead_at or opened_at, source or "manual", campaign)
               for cid, _, opened_at, lead_at, source, campaign in rows]
    return samples, np.array([1.0 if status == "won" else 0.0 for _, status, *_ in rows])


def prior_model(won: int = 0, lost: int = 0) -> tuple[FeatureSpec, LogisticModel]:
    spec = FeatureSpec()
    names = spec.names()
    base = (won + PRIOR_BASE_RATE * 10) / (won + lost + 10)  # the shop's win rate, shrunk towards 20%
    coef = np.array([PRIOR_WEIGHTS.get(n, 0.0) for n in names])
    intercept = math.log(base / (1 - base)) - 0.5  # a lead with a phone and a visit sits near the base rate
    return spec, LogisticModel(names, np.zeros(len(names)), np.ones(len(names)), coef, intercept)


def _split(y: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A stratified holdout: `share` of the won and of the lost, at random."""
    rng = np.random.default_rng(seed)
    test = []
    for label in (0.0, 1.0):
        idx = np.flatnonzero(y == label)
        rng.shuffle(idx)
        test.extend(idx[:max(1, int(round(len(idx) * share)))])
    mask = np.zeros(len(y), dtype=bool)
    mask[test] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def fit_samples(session: Session, samples: list[Sample], y: np.ndarray, *, l2: float = L2, holdout: float = 0.25,
                seed: int = 0) -> tuple[FeatureSpec, LogisticModel, dict[str, Any]]:
    """Fit on the samples; evaluate a model fitted without a stratified holdout on that holdout first."""
    spec = build_spec(session, samples)
    names = spec.names()
    X = transform(names, raw_matrix(session, samples, spec))
    train_idx, test_idx = _split(y, holdout, seed)
    evaluation: dict[str, Any] = {"holdout": int(len(test_idx)), "train": int(len(train_idx))}
    if 0 < y[train_idx].sum() < len(train_idx):
        trial = LogisticModel.fit(X[train_idx], y[train_idx], names, l2=l2)
        p = trial.predict(X[test_idx])
        evaluation["auc"] = auc(y[test_idx], p)
        evaluation["calibration"] = calibration(y[test_idx], p, bins=5)
        evaluation["base_rate"] = float(y.mean())
        from clm.sales.points import points_at  # the business's rule points on the same holdout

        held = [samples[i] for i in test_idx]
        rule_points = points_at(session, [s.customer_id for s in held], [s.cutoff for s in held])
        if rule_points is not None:
            evaluation["rules_auc"] = auc(y[test_idx], rule_points)
    return spec, LogisticModel.fit(X, y, names, l2=l2), evaluation


def train(session: Session, now: datetime | None = None, *, min_each: int = MIN_EACH, l2: float = L2,
          seed: int = 0) -> LeadScoreModel:
    """Fit and keep a new model (or the prior, with too few outcomes) in the caller's transaction."""
    now = now or utcnow()
    samples, y = training_samples(session)
    won, lost = int(y.sum()), int(len(y) - y.sum())
    if won < min_each or lost < min_each:
        spec, model = prior_model(won, lost)
        row = LeadScoreModel(kind="prior", won=won, lost=lost, auc=None, trained_at=now,
                             params={"spec": spec.to_params(), "model": model.to_params(), "min_each": min_each})
    else:
        spec, model, evaluation = fit_samples(session, samples, y, l2=l2, seed=seed)
        row = LeadScoreModel(kind="learned", won=won, lost=lost, auc=evaluation.get("auc"), trained_at=now,
                             params={"spec": spec.to_params(), "model": model.to_params(), "evaluation": evaluation,
                                     "l2": l2})
    session.add(row)
    session.flush()
    return row


@dataclass
class Scorer:
    """A model ready to score: the stored row (None: the prior made on the spot), its spec and numbers."""

    row: LeadScoreModel | None
    kind: str
    spec: FeatureSpec
    model: LogisticModel
    note: dict[str, str] | None

    def score(self, session: Session, samples: list[Sample]) -> tuple[np.ndarray, list[list[dict[str, Any]]]]:
        names = self.spec.names()
        R = raw_matrix(session, samples, self.spec)
        X = transform(names, R)
        p = self.model.predict(X)
        C = self.model.contributions(X)
        reasons = []
        for i in range(len(samples)):
            order = np.argsort(-np.abs(C[i]))[:TOP_REASONS]
            reasons.append([{"feature": names[j], "value": float(R[i, j]), "contribution": round(float(C[i, j]), 4),
                             **describe(names[j], float(R[i, j]))} for j in order if abs(C[i, j]) >= 0.01])
        return p, reasons


def _note(kind: str, won: int, lost: int, min_each: int) -> dict[str, str] | None:
    if kind != "prior":
        return None
    return {"vi": f"Chưa đủ giao dịch đã chốt để học ({won} thắng, {lost} thua; cần {min_each} mỗi loại): "
                  "điểm là ước lượng ban đầu.",
            "en": f"Too few closed deals to learn from ({won} won, {lost} lost; {min_each} of each needed): "
                  "this is a starting estimate."}


def current_scorer(session: Session) -> Scorer:
    """The newest stored model, else the prior with the shop's outcome counts so far."""
    row = session.scalar(sa.select(LeadScoreModel).order_by(LeadScoreModel.trained_at.desc(),
                                                            LeadScoreModel.id.desc()).limit(1))
    if row is None:
        counts = dict(session.execute(sa.select(Opportunity.status, sa.func.count()).where(
            Opportunity.status.in_(("won", "lost"))).group_by(Opportunity.status)).all())
        spec, model = prior_model(counts.get("won", 0), counts.get("lost", 0))
        return Scorer(None, "prior", spec, model, _note("prior", counts.get("won", 0), counts.get("lost", 0), MIN_EACH))
    spec = FeatureSpec.from_params(row.params["spec"])
    model = LogisticModel.from_params(row.params["model"])
    return Scorer(row, row.kind, spec, model, _note(row.kind, row.won, row.lost, row.params.get("min_each", MIN_EACH)))


def score_leads(session: Session, leads: Sequence[Lead], now: datetime | None = None,
                scorer: Scorer | None = None) -> int:
    """Score these leads as of `now` with the newest model; sets classification unless set by hand."""
    if not leads:
        return 0
    now = now or utcnow()
    scorer = scorer or current_scorer(session)
    p, reasons = scorer.score(session, [Sample(lead.customer_id, now, lead.source, lead.campaign) for lead in leads])
    for lead, score, why in zip(leads, p, reasons, strict=True):
        lead.score = float(score)
        lead.score_kind = scorer.kind
        lead.score_detail = {"model_id": scorer.row.id if scorer.row else None, "note": scorer.note, "reasons": why}
        lead.scored_at = now
        if not lead.classification_manual:
            lead.classification = classify(lead.score)
    session.flush()
    from clm.sales.points import apply_points

    apply_points(session, leads, now)  # the business's rule points, side by side
    return len(leads)


_leads = Lead.__table__


def score_open_leads(session: Session, now: datetime | None = None, *, only_unscored: bool = False,
                     chunk: int = 2000, on_chunk: Callable[[int], None] | None = None) -> int:
    """Score every open lead (or only those never scored) in chunks by id; returns how many."""
    now = now or utcnow()
    scorer = current_scorer(session)
    model_id = scorer.row.id if scorer.row else None
    last, done = 0, 0
    while True:
        query = (sa.select(_leads.c.id, _leads.c.customer_id, _leads.c.source, _leads.c.campaign,
                           _leads.c.classification_manual, _leads.c.classification)
                 .where(_leads.c.status.in_(OPEN_LEAD_STATUSES), _leads.c.id > last).order_by(_leads.c.id).limit(chunk))
        if only_unscored:
            query = query.where(_leads.c.scored_at.is_(None))
        rows = session.execute(query).all()
        if not rows:
            return done
        p, reasons = scorer.score(session, [Sample(r.customer_id, now, r.source, r.campaign) for r in rows])
        update_rows_at_once(session, _leads, ("score", "score_kind", "score_detail", "scored_at", "classification"), [
            (float(score), scorer.kind, {"model_id": model_id, "note": scorer.note, "reasons": why}, now,
             r.classification if r.classification_manual else classify(float(score)), r.id)
            for r, score, why in zip(rows, p, reasons, strict=True)])
        update_rows_at_once(session, _leads, ("rule_points", "rule_points_detail"),
                            points_rows(session, [(r.id, r.customer_id) for r in rows], now))
        done += len(rows)
        last = rows[-1].id
        if on_chunk:
            on_chunk(done)


def refresh(session: Session, now: datetime | None = None, *, force: bool = False,
            on_chunk: Callable[[int], None] | None = None) -> tuple[LeadScoreModel | None, int]:
    """Retrain when the newest model is a day old (or `force`), then rescore every open lead; otherwise
    score only leads never scored. Returns (the new model or None, leads scored)."""
    now = now or utcnow()
    newest = session.scalar(sa.select(sa.func.max(LeadScoreModel.trained_at)))
    if force or newest is None or newest <= now - RETRAIN_EVERY:
        row = train(session, now)
        return row, score_open_leads(session, now, on_chunk=on_chunk)
    return None, score_open_leads(session, now, only_unscored=True, on_chunk=on_chunk)
