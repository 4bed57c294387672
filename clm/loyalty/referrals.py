"""Referrals: every member has a code; a new customer who gives one is `referred`. When their first order
has passed the return window without a refund, both get the program's referral points. A referral to
oneself (the same phone, email or identity), a customer who has ordered before, a second "first order"
or a refunded one earn nothing.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.commerce.models import Order
from clm.customers.models import Customer, Identity
from clm.lib.errors import FieldError, NotFound
from clm.loyalty import ledger
from clm.loyalty.models import Member, Program, Referral

_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud and typed on phones
_CONTACT_KINDS = ("email", "phone", "zalo", "facebook", "user_id")


def referral_code(session: Session, customer_id: int, now: datetime) -> str:
    """The member's referral code, made on first use (8 characters, random)."""
    if session.get(Customer, customer_id) is None:
        raise NotFound("customer", customer_id)
    member = ledger.lock_member(session, customer_id, now)
    while member.referral_code is None:
        code = "".join(secrets.choice(_ALPHABET) for _ in range(8))
        if session.scalar(sa.select(Member.customer_id).where(Member.referral_code == code)) is None:
            member.referral_code = code
            session.flush()
    return member.referral_code


def _contacts(session: Session, customer: Customer) -> set[str]:
    values = {v.strip().lower() for v in (customer.email, customer.phone) if v}
    # Identities are unique to one profile, so a shared identity means a shared (merged) profile; what
    # two profiles can share is an email or phone written on one and held as an identity by the other.
    values |= {value.strip().lower() for value in session.scalars(
        sa.select(Identity.value).where(Identity.customer_id == customer.id, Identity.kind.in_(_CONTACT_KINDS)))}
    return values


def refer(session: Session, code: str, customer_id: int, now: datetime) -> Referral:
    """Record that `customer_id` came through the member whose code is `code`."""
    referrer = session.scalar(sa.select(Member).where(Member.referral_code == code.strip().upper()))
    if referrer is None:
        raise FieldError("code", "is not a referral code of any member", "unknown_code")
    customer = session.get(Customer, customer_id)
    if customer is None or customer.merged_into_id is not None:
        raise NotFound("customer", customer_id)
    sponsor = session.get(Customer, referrer.customer_id)
    if referrer.customer_id == customer_id or _contacts(session, customer) & _contacts(session, sponsor):
        raise FieldError("code", "is the customer's own code (the same person, phone, email or identity)",
                         "self_referral")
    if session.scalar(sa.select(Referral.id).where(Referral.customer_id == customer_id)) is not None:
        raise FieldError("customer_id", "was referred already; a customer is referred once", "already_referred")
    if session.scalar(sa.select(Order.id).where(Order.customer_id == customer_id).limit(1)) is not None:
        raise FieldError("customer_id", "has ordered before; only new customers can be referred", "not_new")
    referral = Referral(customer_id=customer_id, referrer_id=referrer.customer_id, status="waiting", created_at=now)
    session.add(referral)
    session.flush()
    return referral


def on_order(session: Session, program: Program, order: Order, now: datetime) -> None:
    """A referred customer's first order starts the wait for the return window; later orders count for nothing."""
    referral = session.scalar(sa.select(Referral).where(Referral.customer_id == order.customer_id,
                                                        Referral.status == "waiting"))
    if referral is None:
        return
    first = session.scalar(sa.select(Order.id).where(Order.customer_id == order.customer_id)
                           .order_by(Order.placed_at, Order.id).limit(1))
    if first != order.id:
        referral.status, referral.reason = "rejected", "the customer had ordered before this order"
        return
    referral.status = "ordered"
    referral.order_id = order.id
    referral.qualifies_at = order.placed_at + timedelta(days=program.pending_days)
    session.flush()


def on_refund(session: Session, order_id: int) -> None:
    session.execute(sa.update(Referral).where(Referral.order_id == order_id, Referral.status == "ordered")
                    .values(status="rejected", reason="the first order was refunded"))


def reward_due(session: Session, program: Program, now: datetime) -> int:
    """Reward both sides of every referral whose first order passed the return window unrefunded."""
    done = 0
    for referral in session.scalars(sa.select(Referral).where(Referral.status == "ordered",
                                                              Referral.qualifies_at <= now).order_by(Referral.id)):
        order = session.get(Order, referral.order_id) if referral.order_id else None
        if order is None or order.refunded > 0:
            referral.status, referral.reason = "rejected", "the first order was refunded"
            continue
        for side, customer_id, points in (("referrer", referral.referrer_id, program.referrer_points),
                                          ("referred", referral.customer_id, program.referred_points)):
            if points > 0:
                member = ledger.lock_member(session, customer_id, now)
                ledger.credit(session, member, program, key=f"referral:{referral.id}:{side}", points=points,
                              reason="Referral reward", source="referral", source_id=str(referral.id), at=now,
                              now=now)
        referral.status, referral.rewarded_at = "rewarded", now
        done += 1
    session.flush()
    return done


def referrals_of(session: Session, customer_id: int) -> dict:
    """Who referred the customer and whom they referred (for the 360)."""
    by = session.scalar(sa.select(Referral).where(Referral.customer_id == customer_id))
    made = list(session.scalars(sa.select(Referral).where(Referral.referrer_id == customer_id)
                                .order_by(Referral.id)))
    return {"referred_by": by, "referred": made}
