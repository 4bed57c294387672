"""Messages to members through the channels (clm.channels): points earned, points expiring within 30 days,
tier up. Worker steps, each keyed so that a message is queued once however often a row is read:

- `loyalty.messages` tails the outbox: `loyalty.points_changed` of an earn (key `loyalty:earned:<entry>`),
  `loyalty.tier_changed` of an upgrade, or of a first order that goes straight above the first tier (key
  `loyalty:tier:<tier change>`). Facts older than
  `STALE_AFTER` are not announced (a program run over the past, a worker that was down for a week).
- `loyalty.expiring` (hourly) finds members with points expiring within 30 days and reminds each once per
  expiry date, at most one reminder per member every `REMIND_EVERY` (key `loyalty:expiring:<customer>:<date>`).

Messages go by email when the customer has an address, else by SMS; they are account notices
(purpose `transactional`), in the customer's language, from the templates `install_templates` adds (a shop
edits them on the templates page; a missing template fails the message visibly, it is not skipped).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.channels.models import Message, Template
from clm.channels.service import enqueue_message
from clm.channels.templates import create_template
from clm.customers.models import Customer
from clm.loyalty.links import member_url
from clm.loyalty.models import Entry, Lot, Member, Program, Tier, TierChange
from clm.loyalty.program import get_program
from clm.outbox.models import OutboxEvent
from clm.worker.tail import Tail

TOPICS = ("loyalty.points_changed", "loyalty.tier_changed")
STALE_AFTER = timedelta(days=3)
EXPIRING_DAYS = 30
REMIND_EVERY = timedelta(days=25)
KINDS = ("points_earned", "points_expiring", "tier_up")
PURPOSE = "transactional"

_LINK = {"vi": "Xem điểm của bạn: {{ context.link }}", "en": "See your points: {{ context.link }}"}
TEXTS = {
    "points_earned": {
        "vi": ("Bạn vừa nhận {{ context.points }} {{ context.point_name }}",
               "Chào {{ customer.name }}, bạn vừa nhận {{ context.points }} {{ context.point_name }} từ "
               "{{ context.reason }}. Hiện bạn có {{ context.available }} {{ context.point_name }} dùng được"
               "{% if context.pending %} và {{ context.pending }} đang chờ{% endif %}."),
        "en": ("You earned {{ context.points }} {{ context.point_name }}",
               "Hi {{ customer.name }}, you earned {{ context.points }} {{ context.point_name }} for "
               "{{ context.reason }}. You now have {{ context.available }} {{ context.point_name }} to spend"
               "{% if context.pending %} and {{ context.pending }} on their way{% endif %}."),
    },
    "points_expiring": {
        "vi": ("{{ context.points }} {{ context.point_name }} sắp hết hạn",
               "Chào {{ customer.name }}, {{ context.points }} {{ context.point_name }} của bạn sẽ hết hạn vào "
               "{{ context.expires_on }}. Hãy dùng trước ngày đó để không bị mất."),
        "en": ("{{ context.points }} {{ context.point_name }} expire soon",
               "Hi {{ customer.name }}, {{ context.points }} of your {{ context.point_name }} expire on "
               "{{ context.expires_on }}. Use them before then so they are not lost."),
    },
    "tier_up": {
        "vi": ("Chúc mừng! Bạn đã lên hạng {{ context.tier }}",
               "Chào {{ customer.name }}, chúc mừng bạn đã lên hạng {{ context.tier }} của {{ context.program }}."
               "{% if context.benefits %} Quyền lợi: {{ context.benefits }}{% endif %}"),
        "en": ("Congratulations! You reached {{ context.tier }}",
               "Hi {{ customer.name }}, congratulations: you reached {{ context.tier }} in {{ context.program }}."
               "{% if context.benefits %} Your benefits: {{ context.benefits }}{% endif %}"),
    },
}


def template_key(kind: str, channel: str) -> str:
    return f"loyalty.{kind}.{channel}"


def install_templates(session: Session) -> list[str]:
    """Add the email and SMS templates of the three messages that do not exist yet; their keys."""
    made = []
    for kind, langs in TEXTS.items():
        for channel in ("email", "sms"):
            key = template_key(kind, channel)
            if session.scalar(sa.select(Template.id).where(Template.key == key)) is not None:
                continue
            variants = {}
            for lang, (subject, text) in langs.items():
                body = f"{text}\n{_LINK[lang]}"
                variants[lang] = {"subject": subject, "text": body} if channel == "email" else {"text": body}
            create_template(session, key=key, channel=channel, variants=variants,
                            name=f"Loyalty: {kind.replace('_', ' ')} ({channel})")
            made.append(key)
    return made


def channel_for(customer: Customer) -> str | None:
    if customer.email:
        return "email"
    return "sms" if customer.phone else None


def _send(session: Session, settings, customer_id: int, kind: str, key: str, context: dict, now: datetime) -> bool:
    customer = session.get(Customer, customer_id)
    if customer is None or customer.merged_into_id is not None:
        return False
    channel = channel_for(customer)
    if channel is None:
        return False
    context = {**context, "link": member_url(settings, customer_id, now)}
    enqueue_message(session, customer_id=customer_id, channel=channel, template_key=template_key(kind, channel),
                    purpose=PURPOSE, idempotency_key=key, context=context, settings=settings, now=now)
    return True


def _balances(session: Session, customer_id: int) -> tuple[int, int]:
    row = session.execute(sa.select(Member.available, Member.pending).where(Member.customer_id == customer_id)).first()
    return (row.available, row.pending) if row else (0, 0)


def announce_row(session: Session, settings, program: Program, row, now: datetime) -> bool:
    """Queue the message an outbox row calls for, if any (True when one was queued or already was)."""
    payload = row.payload or {}
    if row.topic == "loyalty.points_changed":
        if payload.get("kind") != "earn" or not isinstance(payload.get("entry_id"), int):
            return False
        entry = session.get(Entry, payload["entry_id"])
        points = (entry.available + entry.pending) if entry is not None else 0
        if entry is None or points <= 0 or entry.created_at < now - STALE_AFTER:
            return False
        available, pending = _balances(session, entry.customer_id)
        return _send(session, settings, entry.customer_id, "points_earned", f"loyalty:earned:{entry.id}",
                     {"points": points, "reason": entry.reason, "available": available, "pending": pending,
                      "point_name": program.point_name}, now)
    if row.topic == "loyalty.tier_changed" and payload.get("reason") in ("upgrade", "join") and row.customer_id:
        change = session.scalar(sa.select(TierChange).where(
            TierChange.customer_id == row.customer_id, TierChange.to_tier == payload.get("to"),
            TierChange.reason == payload["reason"]).order_by(TierChange.changed_at.desc(), TierChange.id.desc())
            .limit(1))
        if change is None or change.changed_at < now - STALE_AFTER:
            return False
        tier = session.get(Tier, change.to_tier)
        if change.reason == "join" and (tier is None or tier.rank == 0):
            return False  # joining at the first tier is no news
        return _send(session, settings, row.customer_id, "tier_up", f"loyalty:tier:{change.id}",
                     {"tier": tier.name if tier else change.to_tier, "benefits": tier.benefits if tier else "",
                      "program": program.name}, now)
    return False


class AnnounceConsumer:
    """Worker step: messages for points earned and tiers reached."""

    name = "loyalty.messages"

    def __init__(self, settings, batch: int = 500):
        outbox = OutboxEvent.__table__
        self.settings, self.batch = settings, batch
        self.tail = Tail(self.name, outbox, "created_at", ["topic", "customer_id", "payload", "created_at"],
                         where=outbox.c.topic.in_(TOPICS))

    def __call__(self, session: Session, now: datetime) -> int:
        rows = self.tail.read(session, self.batch)
        program = get_program(session)
        if rows and program is not None and program.active:
            for row in rows:
                announce_row(session, self.settings, program, row, now)
        self.tail.advance(session, rows)
        return len(rows)


def remind_expiring(session: Session, settings, now: datetime, limit: int = 5000) -> int:
    """Remind members whose points expire within 30 days (once per expiry date, at most every 25 days)."""
    program = get_program(session)
    if program is None or not program.active:
        return 0
    lots = Lot.__table__
    rows = session.execute(
        sa.select(lots.c.customer_id, lots.c.expires_at, sa.func.sum(lots.c.remaining))
        .where(lots.c.remaining > 0, lots.c.expires_at > now, lots.c.expires_at <= now + timedelta(days=EXPIRING_DAYS))
        .group_by(lots.c.customer_id, lots.c.expires_at)
        .order_by(lots.c.customer_id, lots.c.expires_at)).all()
    first: dict[int, tuple[datetime, int]] = {}
    for customer_id, expires_at, points in rows:
        if customer_id not in first:
            first[customer_id] = (expires_at, int(points))
    recent = set()
    ids = sorted(first)
    for start in range(0, len(ids), 1000):
        recent |= set(session.scalars(sa.select(Message.customer_id).where(
            Message.customer_id.in_(ids[start:start + 1000]), Message.created_at > now - REMIND_EVERY,
            Message.template_key.in_([template_key("points_expiring", c) for c in ("email", "sms")]))))
    zone = ZoneInfo(program.timezone)
    sent = 0
    for customer_id in ids:
        if customer_id in recent or sent >= limit:
            continue
        expires_at, points = first[customer_id]
        day = (expires_at - timedelta(microseconds=1)).astimezone(zone).date()  # midnight ending that day
        if _send(session, settings, customer_id, "points_expiring", f"loyalty:expiring:{customer_id}:{day:%Y%m%d}",
                 {"points": points, "expires_on": day.strftime("%d/%m/%Y"), "point_name": program.point_name}, now):
            sent += 1
    return sent


def expiring_step(settings):
    def step(session: Session, now: datetime) -> int:
        return remind_expiring(session, settings, now)

    return step
