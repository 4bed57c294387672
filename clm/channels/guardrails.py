"""The rules every message passes before it goes out, at queueing time and again just before sending.

- **Address**: the channel needs one (email, phone, Messenger PSID, webhook URL); none -> suppressed.
- **Suppression list**: an address that hard-bounced, complained, unsubscribed or was suppressed by
  hand gets no marketing. Transactional messages still go, except to an address that hard-bounced or
  was suppressed by hand (sending to a dead mailbox hurts the sender's reputation for everyone).
- **Consent** (Decree 13/2023): marketing needs the customer's decision in force for that channel and
  purpose `marketing` to be a grant. Transactional messages (an order confirmation) need none, but a
  recorded refusal for (channel, `transactional`) is honoured. Webhooks go to the shop's own systems,
  not to the customer: they skip consent, cap and quiet hours.
- **Frequency cap**: at most `marketing_cap` marketing messages per customer per `marketing_cap_days`
  days, counted by when they were handed to a provider; over the cap -> deferred until the oldest of
  them leaves the window.
- **Quiet hours** (business time zone): marketing that would go out inside them is deferred to their end.

Checking again just before sending is what makes a withdrawal of consent or an unsubscribe take effect
at once for everything still queued.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.channels.models import ACCEPTED, SENDING, Message, Suppression
from clm.customers.models import Consent, Customer, Identity
from clm.db.idlist import list_value, one_of

QUEUED, DEFERRED, SUPPRESSED = "queued", "deferred", "suppressed"
ALWAYS_BLOCKING = ("hard_bounce", "manual")  # stop transactional messages too
# What a channel needs, worded to follow "the customer has no ...".
NEEDS = {"email": "email address", "sms": "phone number", "zalo": "phone number",
         "messenger": "Messenger id (facebook identity)", "webhook": "webhook URL (provider.webhook_url)"}


@dataclass(frozen=True)
class Verdict:
    status: str  # queued | deferred | suppressed
    reason: str | None = None
    until: datetime | None = None


def normalize_address(channel: str, address: str | None) -> str | None:
    if address is None:
        return None
    address = address.strip()
    return address.lower() if channel == "email" else address


def address_of(session: Session, customer: Customer, channel: str) -> str | None:
    """The address `channel` needs for `customer` (webhook URLs come from the template, not the customer)."""
    if channel == "email":
        return normalize_address(channel, customer.email) or None
    if channel in ("sms", "zalo"):
        return customer.phone or None
    if channel == "messenger":
        return session.scalar(sa.select(Identity.value).where(Identity.customer_id == customer.id,
                                                              Identity.kind == "facebook")
                              .order_by(Identity.id.desc()).limit(1))
    return None


def _latest_consent(session: Session, customer_id: int, channel: str, purpose: str) -> bool | None:
    return session.scalar(
        sa.select(Consent.granted)
        .where(Consent.customer_id == customer_id, Consent.channel == channel, Consent.purpose == purpose)
        .order_by(Consent.recorded_at.desc(), Consent.id.desc()).limit(1))


def _consent_reason(channel: str, purpose: str, decision: bool | None) -> str | None:
    if channel == "webhook":
        return None
    if purpose == "marketing":
        if decision is None:
            return f"no consent recorded for {channel} marketing"
        if not decision:
            return f"consent for {channel} marketing was withdrawn"
    elif decision is False:
        return f"the customer refused {channel} {purpose} messages"
    return None


def _suppression_reason(channel: str, purpose: str, reasons: Iterable[str]) -> str | None:
    for reason in sorted(reasons):
        if purpose == "marketing" or reason in ALWAYS_BLOCKING:
            return f"the address is on the suppression list ({reason})"
    return None


def blocked(session: Session, customer_id: int, channel: str, purpose: str, address: str | None) -> str | None:
    """Why the message must not go at all (suppressed), or None."""
    if not address:
        return f"the customer has no {NEEDS.get(channel, 'address')} for {channel}"
    if channel == "webhook":
        return None
    reasons = session.scalars(sa.select(Suppression.reason).where(
        Suppression.channel == channel, Suppression.address == normalize_address(channel, address)))
    why = _suppression_reason(channel, purpose, reasons)
    if why:
        return why
    return _consent_reason(channel, purpose, _latest_consent(session, customer_id, channel, purpose))


def parse_quiet_hours(text: str) -> tuple[time, time] | None:
    """"21:00-08:00" -> (21:00, 08:00); "" -> None. A start after the end spans midnight."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        start, end = (time.fromisoformat(part.strip()) for part in text.split("-"))
    except ValueError as exc:
        raise ValueError(f"quiet hours {text!r} must look like 21:00-08:00") from exc
    return (start, end) if start != end else None


def quiet_until(when: datetime, quiet_hours: str, timezone: str) -> datetime | None:
    """When quiet hours that contain `when` end (UTC), or None when `when` is outside them."""
    hours = parse_quiet_hours(quiet_hours)
    if hours is None:
        return None
    start, end = hours
    tz = ZoneInfo(timezone)
    local = when.astimezone(tz)
    now = local.time()
    if start < end:
        inside = start <= now < end
        end_day = local.date()
    else:  # spans midnight: 21:00-08:00
        inside = now >= start or now < end
        end_day = local.date() + timedelta(days=1) if now >= start else local.date()
    if not inside:
        return None
    return datetime.combine(end_day, end, tzinfo=tz).astimezone(when.tzinfo)


def cap_until(session: Session, customer_id: int, now: datetime, cap: int, days: int,
              exclude_id: int | None = None) -> datetime | None:
    """When the customer may get another marketing message, if the cap is reached now (0 = no cap)."""
    if cap <= 0:
        return None
    since = now - timedelta(days=days)
    query = (sa.select(Message.sent_at).where(
        Message.customer_id == customer_id, Message.purpose == "marketing", Message.sent_at >= since,
        Message.status.in_((*ACCEPTED, SENDING))).order_by(Message.sent_at))
    if exclude_id is not None:
        query = query.where(Message.id != exclude_id)
    sent = list(session.scalars(query))
    if len(sent) < cap:
        return None
    return sent[len(sent) - cap] + timedelta(days=days)


def check(session: Session, *, customer_id: int, channel: str, purpose: str, address: str | None, when: datetime,
          settings, message_id: int | None = None) -> Verdict:
    """The verdict for one message that would go out at `when`."""
    why = blocked(session, customer_id, channel, purpose, address)
    if why:
        return Verdict(SUPPRESSED, why)
    return timing(session, customer_id=customer_id, channel=channel, purpose=purpose, when=when, settings=settings,
                  message_id=message_id)


def timing(session: Session, *, customer_id: int, channel: str, purpose: str, when: datetime, settings,
           message_id: int | None = None) -> Verdict:
    """Quiet hours and the cap: deferred until when, or queued (transactional and webhooks: always queued)."""
    if purpose != "marketing" or channel == "webhook":
        return Verdict(QUEUED)
    until = cap_until(session, customer_id, when, settings.marketing_cap, settings.marketing_cap_days, message_id)
    reason = None
    if until is not None:
        reason = f"frequency cap: {settings.marketing_cap} marketing messages in {settings.marketing_cap_days} days"
    else:
        until = when
    quiet = quiet_until(until, settings.quiet_hours, settings.timezone)
    if quiet is not None:
        until, reason = quiet, reason or f"quiet hours {settings.quiet_hours}"
    return Verdict(DEFERRED, reason, until) if reason else Verdict(QUEUED)


# --- in bulk, for broadcasts -------------------------------------------------------------------------


def blocked_many(session: Session, customers: list[tuple[int, str | None]], channel: str,
                 purpose: str) -> dict[int, str]:
    """`blocked` for many (customer id, address) pairs with two queries; only the blocked are returned."""
    out: dict[int, str] = {}
    for cid, address in customers:
        if not address:
            out[cid] = f"the customer has no {NEEDS.get(channel, 'address')} for {channel}"
    if channel == "webhook":
        return out
    addressed = [(cid, normalize_address(channel, a)) for cid, a in customers if a]
    dialect = session.get_bind().dialect.name
    reasons: dict[str, set[str]] = {}
    addresses = sorted({a for _, a in addressed})
    if addresses:
        for address, reason in session.execute(sa.select(Suppression.address, Suppression.reason).where(
                Suppression.channel == channel, one_of(Suppression.address, "addresses", dialect, sa.String)),
                {"addresses": list_value(addresses, dialect)}):
            reasons.setdefault(address, set()).add(reason)
    latest: dict[int, bool] = {}
    ids = [cid for cid, _ in addressed]
    if ids:
        rows = session.execute(sa.select(Consent.customer_id, Consent.granted).where(
            one_of(Consent.customer_id, "ids", dialect), Consent.channel == channel, Consent.purpose == purpose)
            .order_by(Consent.recorded_at, Consent.id), {"ids": list_value(ids, dialect)})
        for cid, granted in rows:
            latest[cid] = granted  # ordered oldest first: the last one read is the one in force
    for cid, address in addressed:
        why = _suppression_reason(channel, purpose, reasons.get(address, ())) or _consent_reason(
            channel, purpose, latest.get(cid))
        if why:
            out[cid] = why
    return out


def capped_many(session: Session, customer_ids: list[int], now: datetime, cap: int, days: int) -> dict[int, datetime]:
    """Customers at the marketing cap now, and when they may get the next one."""
    if cap <= 0 or not customer_ids:
        return {}
    dialect = session.get_bind().dialect.name
    since = now - timedelta(days=days)
    rows = session.execute(
        sa.select(Message.customer_id, Message.sent_at)
        .where(one_of(Message.customer_id, "ids", dialect), Message.purpose == "marketing", Message.sent_at >= since,
               Message.status.in_((*ACCEPTED, SENDING))), {"ids": list_value(customer_ids, dialect)})
    sent: dict[int, list[datetime]] = {}
    for cid, at in rows:
        sent.setdefault(cid, []).append(at)
    out: dict[int, datetime] = {}
    for cid, times in sent.items():
        if len(times) >= cap:  # as cap_until: free again when the cap-th newest leaves the window
            times.sort()
            out[cid] = times[len(times) - cap] + timedelta(days=days)
    return out
