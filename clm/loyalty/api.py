"""The loyalty API: /api/v1/loyalty. A thin adapter over the loyalty services.

Scopes: `loyalty:read` (program, members, rewards, quotes), `loyalty:write` (what a point of sale or a
shop does: redeem, cancel, validate and consume voucher codes, record referrals), `loyalty:manage`
(program settings, tiers, rules, the catalogue, staff adjustments). Writes lock the member's row, so
concurrent requests on one balance are answered one after the other; a request the balance cannot
pay is answered 409 `insufficient_points`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from clm.access.models import ApiKey
from clm.customers.service import get_customer
from clm.db.engine import for_writing
from clm.lib.clock import utcnow
from clm.lib.errors import FieldError
from clm.loyalty import ledger, referrals, rewards, rules, tiers
from clm.loyalty.ledger import LedgerError
from clm.loyalty.messages import install_templates
from clm.loyalty.program import ProgramSettings, require_program, save_program, settings_of
from clm.loyalty.tiers import TierIn
from clm.web.api_docs import Id, error_responses
from clm.web.deps import get_session, require_scope
from clm.web.errors import ApiError

router = APIRouter(prefix="/loyalty", tags=["loyalty"])


def _errors(*statuses: int) -> dict:
    """Every route may answer 422 (a bad parameter or body) besides 401/403 and its own statuses."""
    return error_responses(*sorted({*statuses, 422}))

read = Depends(require_scope("loyalty:read"))
write = require_scope("loyalty:write")
manage = require_scope("loyalty:manage")


@contextmanager
def _writing(session: Session) -> Iterator[Session]:
    """A writer's transaction (SQLite: BEGIN IMMEDIATE), committed on success; a refusal applies nothing."""
    session.commit()  # the API key check read in a reader's transaction
    for_writing(session)
    try:
        yield session
        session.commit()
    except LedgerError as exc:
        session.rollback()
        raise ApiError(exc.status, exc.code, exc.message, exc.field, **exc.extra) from None
    except BaseException:
        session.rollback()
        raise


def _program(session: Session):
    try:
        return require_program(session)
    except FieldError as exc:
        raise ApiError(409, "no_program", exc.message) from None


# --- program, tiers, rules -------------------------------------------------------------------------


@router.get("/program", response_model=ProgramSettings, summary="The program's settings", dependencies=[read],
            responses=_errors(409))
def program_get(session: Session = Depends(get_session)) -> ProgramSettings:
    return settings_of(_program(session))


@router.put("/program", response_model=ProgramSettings, summary="Set up or change the program",
            dependencies=[Depends(manage)], responses=_errors(422))
def program_put(body: ProgramSettings, session: Session = Depends(get_session)) -> ProgramSettings:
    """Lots already earned keep the expiry they were given; new settings apply to what happens next. The first
    call also installs the default tiers and the message templates (points earned, expiring, tier up)."""
    with _writing(session):
        program = save_program(session, body)
        if not tiers.ladder(session):
            tiers.save_tiers(session, [TierIn(**t) for t in tiers.DEFAULT_TIERS])
        install_templates(session)
    return settings_of(program)


class TierOut(TierIn):
    rank: int


class Tiers(BaseModel):
    tiers: list[TierIn] = Field(description="Lowest tier first; thresholds rise strictly from 0.")


class TiersOut(BaseModel):
    tiers: list[TierOut]


def _tiers_out(rows) -> TiersOut:
    return TiersOut(tiers=[TierOut(key=t.key, name=t.name, threshold=t.threshold, earn_percent=t.earn_percent,
                                   benefits=t.benefits, rank=t.rank) for t in rows])


@router.get("/tiers", response_model=TiersOut, summary="The tier ladder", dependencies=[read],
            responses=_errors())
def tiers_get(session: Session = Depends(get_session)) -> TiersOut:
    return _tiers_out(tiers.ladder(session))


@router.put("/tiers", response_model=TiersOut, summary="Replace the tier ladder", dependencies=[Depends(manage)],
            responses=_errors(422))
def tiers_put(body: Tiers, session: Session = Depends(get_session)) -> TiersOut:
    """All or nothing: overlapping thresholds (not rising strictly) are refused naming the tier."""
    with _writing(session):
        rows = tiers.save_tiers(session, body.tiers)
    return _tiers_out(rows)


class RuleOut(rules.RuleIn):
    id: int
    created_at: datetime
    updated_at: datetime


class RuleList(BaseModel):
    data: list[RuleOut]


def _rule_out(row) -> RuleOut:
    return RuleOut(id=row.id, name=row.name, kind=row.kind, active=row.active, starts_at=row.starts_at,
                   ends_at=row.ends_at, config=row.config, created_at=row.created_at, updated_at=row.updated_at)


@router.get("/rules", response_model=RuleList, summary="Earning rules", dependencies=[read],
            responses=_errors())
def rules_list(session: Session = Depends(get_session)) -> RuleList:
    return RuleList(data=[_rule_out(r) for r in rules.list_rules(session)])


@router.post("/rules", response_model=RuleOut, status_code=201, summary="Add an earning rule",
             dependencies=[Depends(manage)], responses=_errors(422))
def rules_create(body: rules.RuleIn, session: Session = Depends(get_session)) -> RuleOut:
    """`config` by kind: spend {points, per_amount, rounding, qualifying, caps}; multiplier {percent,
    categories, tiers, caps}; event {trigger: signup|birthday|track, event, properties, points, caps}."""
    with _writing(session):
        row = rules.create_rule(session, body)
    return _rule_out(row)


@router.get("/rules/{rule_id}", response_model=RuleOut, summary="One earning rule", dependencies=[read],
            responses=_errors(404))
def rules_get(rule_id: Id, session: Session = Depends(get_session)) -> RuleOut:
    return _rule_out(rules.get_rule(session, rule_id))


@router.put("/rules/{rule_id}", response_model=RuleOut, summary="Change an earning rule",
            dependencies=[Depends(manage)], responses=_errors(404, 422))
def rules_put(rule_id: Id, body: rules.RuleIn, session: Session = Depends(get_session)) -> RuleOut:
    """Orders already earned keep what they earned; refunds reverse those stored figures."""
    with _writing(session):
        row = rules.update_rule(session, rule_id, body)
    return _rule_out(row)


# --- members ---------------------------------------------------------------------------------------


class Expiring(BaseModel):
    expires_at: datetime
    points: int


class MemberOut(BaseModel):
    customer_id: int
    available: int = Field(description="Points that can be spent now.")
    pending: int = Field(description="Points earned that wait out the return window.")
    debt: int = Field(description="Points reversed after they were spent, paid off by the next earnings.")
    lost: int
    qualifying: int = Field(description="Lifetime tier-qualifying points.")
    earned: int
    redeemed: int
    expired: int
    value: int = Field(description="What the available points are worth (minor units of `currency`).")
    currency: str
    tier: str | None
    tier_since: datetime | None
    progress: dict[str, Any] = Field(description="The figure deciding the tier, the next tier and what is missing.")
    expiring_soon: list[Expiring] = Field(description="Points expiring within 30 days, by date.")
    referral_code: str | None


def member_out(session: Session, customer_id: int, now: datetime) -> MemberOut:
    program = _program(session)
    member = ledger.lock_member(session, customer_id, now)
    ledger.settle(session, member, program, now)
    return MemberOut(
        customer_id=customer_id, available=member.available, pending=member.pending, debt=member.debt,
        lost=member.lost, qualifying=member.qualifying, earned=member.earned, redeemed=member.redeemed,
        expired=member.expired, value=member.available * program.point_value, currency=program.currency,
        tier=member.tier, tier_since=member.tier_since, progress=tiers.progress(session, program, member, now),
        expiring_soon=[Expiring(expires_at=t, points=n) for t, n in ledger.expiring(session, customer_id, now, 30)],
        referral_code=member.referral_code)


@router.get("/members/{customer_id}", response_model=MemberOut, summary="A member's balances and tier",
            dependencies=[read], responses=_errors(404, 409))
def member_get(customer_id: Id, session: Session = Depends(get_session)) -> MemberOut:
    """Balances as of now (points whose return window or expiry passed are moved first)."""
    get_customer(session, customer_id)
    with _writing(session):
        out = member_out(session, customer_id, utcnow())
    return out


class EntryOut(BaseModel):
    id: int
    kind: str = Field(description="earn release redeem cancel expire reverse return adjust repay")
    reason: str
    source: str
    source_id: str | None
    change: int = Field(description="Points added (or taken, negative) to what the member holds.")
    available: int
    pending: int
    debt: int
    qualifying: int
    lost: int
    created_at: datetime


class History(BaseModel):
    data: list[EntryOut]
    next: int | None = Field(description="Pass as `before` for older entries; null at the end.")


@router.get("/members/{customer_id}/history", response_model=History, summary="A member's ledger entries",
            dependencies=[read], responses=_errors(404))
def member_history(customer_id: Id, before: Annotated[int | None, Query(ge=1)] = None,
                   limit: Annotated[int, Query(ge=1, le=200)] = 50,
                   session: Session = Depends(get_session)) -> History:
    """Newest first."""
    get_customer(session, customer_id)
    rows = ledger.history(session, customer_id, limit=limit, before=before)
    data = [EntryOut(**{k: v for k, v in ledger.entry_details(e).items() if k != "key"}) for e in rows]
    return History(data=data, next=rows[-1].id if len(rows) == limit else None)


class AdjustmentIn(BaseModel):
    points: int = Field(description="Whole points to add (positive) or take (negative).")
    reason: str = Field(min_length=1, max_length=255, description="Why: kept in the ledger.")
    idempotency_key: str = Field(min_length=1, max_length=100, description="A repeat with the same key changes nothing.")
    qualifying: bool = Field(False, description="The added points count towards tiers.")


@router.post("/members/{customer_id}/adjustments", response_model=MemberOut, summary="A staff adjustment",
             responses=_errors(404, 409, 422))
def member_adjust(customer_id: Id, body: AdjustmentIn, key: ApiKey = Depends(manage),
                  session: Session = Depends(get_session)) -> MemberOut:
    """Taking more than is available is refused (409); an adjustment never makes debt."""
    get_customer(session, customer_id)
    now = utcnow()
    with _writing(session):
        program = _program(session)
        member = ledger.lock_member(session, customer_id, now)
        ledger.adjust(session, member, program, key=f"adjust:{customer_id}:{body.idempotency_key}", points=body.points,
                      reason=body.reason, staff=f"key:{key.id}", now=now, qualifying=body.qualifying)
        if body.qualifying:
            tiers.evaluate(session, program, member, now)
        out = member_out(session, customer_id, now)
    return out


# --- rewards, quotes, redemptions, vouchers ------------------------------------------------------------


class RewardOut(rewards.RewardIn):
    id: int


class RewardList(BaseModel):
    data: list[RewardOut]


def _reward_out(row) -> RewardOut:
    return RewardOut.model_validate({f: getattr(row, f) for f in RewardOut.model_fields})


@router.get("/rewards", response_model=RewardList, summary="The rewards catalogue", dependencies=[read],
            responses=_errors())
def rewards_list(session: Session = Depends(get_session)) -> RewardList:
    return RewardList(data=[_reward_out(r) for r in rewards.list_rewards(session)])


@router.post("/rewards", response_model=RewardOut, status_code=201, summary="Add a reward",
             dependencies=[Depends(manage)], responses=_errors(422))
def rewards_create(body: rewards.RewardIn, session: Session = Depends(get_session)) -> RewardOut:
    with _writing(session):
        row = rewards.save_reward(session, body)
    return _reward_out(row)


@router.put("/rewards/{reward_id}", response_model=RewardOut, summary="Change a reward",
            dependencies=[Depends(manage)], responses=_errors(404, 422))
def rewards_put(reward_id: Id, body: rewards.RewardIn, session: Session = Depends(get_session)) -> RewardOut:
    with _writing(session):
        row = rewards.save_reward(session, body, reward_id)
    return _reward_out(row)


class QuoteIn(BaseModel):
    customer_id: int = Field(ge=1)
    cart_total: int = Field(ge=0, description="The cart's total (minor units).")


class QuoteOut(BaseModel):
    available: int
    max_points: int = Field(description="The most points this cart may use (balance and share cap).")
    discount: int = Field(description="What `max_points` take off (minor units).")
    cap_percent: int
    point_value: int
    currency: str
    rewards: list[RewardOut] = Field(description="Rewards the member can redeem now.")


@router.post("/quote", response_model=QuoteOut, summary="What a cart may use", responses=_errors(404, 409, 422))
def quote(body: QuoteIn, _key: ApiKey = Depends(write), session: Session = Depends(get_session)) -> QuoteOut:
    get_customer(session, body.customer_id)
    with _writing(session):
        q = rewards.quote(session, _program(session), body.customer_id, body.cart_total, utcnow())
    return QuoteOut(**{**q, "rewards": [_reward_out(r) for r in q["rewards"]]})


class RedeemIn(BaseModel):
    customer_id: int = Field(ge=1)
    reward_id: int | None = Field(None, ge=1, description="A reward from the catalogue...")
    points: int | None = Field(None, ge=1, description="...or points to pay towards a cart (with cart_total).")
    cart_total: int | None = Field(None, ge=0)
    idempotency_key: str | None = Field(None, min_length=1, max_length=128,
                                        description="Instead of the Idempotency-Key header.")


class RedemptionOut(BaseModel):
    id: int
    customer_id: int
    reward_id: int | None
    kind: str
    points: int
    status: str = Field(description="issued, used or cancelled")
    code: str = Field(description="The single-use voucher code to give at checkout.")
    value: int | None
    percent: int | None
    max_discount: int | None
    expires_at: datetime
    used_at: datetime | None
    order_ref: str | None
    discount: int | None
    created_at: datetime


def _redemption_out(row) -> RedemptionOut:
    return RedemptionOut.model_validate({f: getattr(row, f) for f in RedemptionOut.model_fields})


IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=128,
                                              description="A key of the client's choosing (or `idempotency_key` in "
                                              "the body); a repeat returns the first result.")]


@router.post("/redemptions", response_model=RedemptionOut, status_code=201, summary="Redeem points",
             responses={**_errors(404, 409, 422), 200: {"description": "A repeat of an earlier request."}})
def redeem(body: RedeemIn, response: Response, idempotency_key: IdempotencyKey = None,
           _key: ApiKey = Depends(write), session: Session = Depends(get_session)) -> RedemptionOut:
    """Takes the points (earliest-expiring first) and issues a voucher code. More than the balance: 409
    `insufficient_points`; out of stock, not for this tier, over the limit: 409 naming the problem."""
    key = idempotency_key or body.idempotency_key
    if not key:
        raise ApiError(422, "missing", "send an Idempotency-Key header (or idempotency_key in the body)",
                       "idempotency_key")
    get_customer(session, body.customer_id)
    with _writing(session):
        row, created = rewards.redeem(session, _program(session), body.customer_id, idempotency_key=key,
                                      now=utcnow(), reward_id=body.reward_id, points=body.points,
                                      cart_total=body.cart_total)
    if not created:
        response.status_code = 200
    return _redemption_out(row)


@router.get("/redemptions/{redemption_id}", response_model=RedemptionOut, summary="One redemption",
            dependencies=[read], responses=_errors(404))
def redemption_get(redemption_id: Id, session: Session = Depends(get_session)) -> RedemptionOut:
    return _redemption_out(rewards.get_redemption(session, redemption_id))


@router.post("/redemptions/{redemption_id}/cancel", response_model=RedemptionOut, summary="Cancel a redemption",
             responses=_errors(404, 409))
def redemption_cancel(redemption_id: Id, _key: ApiKey = Depends(write),
                      session: Session = Depends(get_session)) -> RedemptionOut:
    """The points return to the lots they came from, with their original expiry. A used voucher: 409."""
    with _writing(session):
        row = rewards.cancel(session, _program(session), redemption_id, utcnow())
    return _redemption_out(row)


class VoucherIn(BaseModel):
    code: str = Field(min_length=1, max_length=32)
    order_total: int = Field(ge=0)


class ConsumeIn(VoucherIn):
    order_id: str = Field(min_length=1, max_length=255, description="The shop's order id (Order Completed's order_id).")


class VoucherOut(BaseModel):
    valid: bool
    discount: int = Field(description="What the voucher takes off this order (minor units).")
    redemption: RedemptionOut


@router.post("/vouchers/validate", response_model=VoucherOut, summary="Check a voucher code at checkout",
             responses=_errors(409, 422))
def voucher_validate(body: VoucherIn, _key: ApiKey = Depends(write),
                     session: Session = Depends(get_session)) -> VoucherOut:
    """Unknown, used, cancelled or expired codes: 409 with the reason (`voucher_unknown`, `voucher_used`...)."""
    with _writing(session):
        row, discount = rewards.validate_code(session, body.code, body.order_total, utcnow())
    return VoucherOut(valid=True, discount=discount, redemption=_redemption_out(row))


@router.post("/vouchers/consume", response_model=VoucherOut, summary="Use a voucher code on an order",
             responses=_errors(409, 422))
def voucher_consume(body: ConsumeIn, _key: ApiKey = Depends(write),
                    session: Session = Depends(get_session)) -> VoucherOut:
    """Once: a second order gets 409 `voucher_used`; repeating for the same order returns the first result."""
    with _writing(session):
        row = rewards.consume_code(session, body.code, body.order_id, body.order_total, utcnow())
    return VoucherOut(valid=True, discount=row.discount or 0, redemption=_redemption_out(row))


# --- referrals -------------------------------------------------------------------------------------


class ReferralIn(BaseModel):
    code: str = Field(min_length=1, max_length=32, description="The referring member's code.")
    customer_id: int = Field(ge=1, description="The new customer who came with it.")


class ReferralOut(BaseModel):
    id: int
    customer_id: int
    referrer_id: int
    status: str = Field(description="waiting (no order yet), ordered (first order in its return window), "
                        "rewarded, rejected")
    reason: str | None
    qualifies_at: datetime | None
    created_at: datetime


class ReferralsOut(BaseModel):
    code: str
    referred_by: ReferralOut | None
    referred: list[ReferralOut]


def _referral_out(row) -> ReferralOut:
    return ReferralOut.model_validate({f: getattr(row, f) for f in ReferralOut.model_fields})


@router.post("/referrals", response_model=ReferralOut, status_code=201, summary="Record a referral",
             responses=_errors(404, 422))
def referral_create(body: ReferralIn, _key: ApiKey = Depends(write),
                    session: Session = Depends(get_session)) -> ReferralOut:
    """Refused: an unknown code, one's own (same person, phone, email), a customer referred before or who has ordered."""
    with _writing(session):
        row = referrals.refer(session, body.code, body.customer_id, utcnow())
    return _referral_out(row)


@router.get("/members/{customer_id}/referrals", response_model=ReferralsOut, summary="A member's referrals",
            dependencies=[read], responses=_errors(404))
def member_referrals(customer_id: Id, session: Session = Depends(get_session)) -> ReferralsOut:
    """The member's code (made on first use), who referred them and whom they referred."""
    with _writing(session):
        code = referrals.referral_code(session, customer_id, utcnow())
        found = referrals.referrals_of(session, customer_id)
    return ReferralsOut(code=code, referred_by=_referral_out(found["referred_by"]) if found["referred_by"] else None,
                        referred=[_referral_out(r) for r in found["referred"]])
