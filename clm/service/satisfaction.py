"""Satisfaction: a CSAT question (1-5 and a comment) when a ticket is solved, NPS surveys (0-10) that journeys
send, the answers on the customer, and reports per agent, team and channel.

The question goes out through the channels' message outbox (clm.channels.service.enqueue_message) on the
channel the ticket came in on (a call's ticket by SMS; chat, web and API tickets by email, else SMS), from
the templates `install_templates` adds, with a signed link to the answer page `/s/<token>` (clm.service.
survey_page). The token names the survey and when it stops working (HMAC-SHA256 under a key of its own
derived from CLM_SECRET_KEY), so it cannot be edited to answer someone else's survey.

An answer is stored on the survey (a later answer through the same link replaces it) and put on the
customer's timeline as `Satisfaction Rated` (score, kind, ticket). Detractors (CSAT 1-2, NPS 0-6) also get
`Satisfaction Detractor`, an at-risk signal, and promoters (CSAT 5, NPS 9-10) `Satisfaction Promoter`, an
advocacy signal: the lifecycle rules read them as tracked events (clm/lifecycle/default_rules.toml), and
segments and journeys can use them like any event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clm.channels.expiring_links import ExpiredLink as ExpiredLink  # the survey page catches it from here
from clm.channels.expiring_links import derived_key, expiring_token, record_of
from clm.customers.models import Customer
from clm.lib.clock import utcnow
from clm.lib.errors import FieldError, NotFound
from clm.outbox.service import emit
from clm.service import timeline
from clm.service.desk_models import SURVEY_KINDS, Survey
from clm.service.models import Setting, Team, Ticket

SETTING = "satisfaction"
RATED, DETRACTOR, PROMOTER = "Satisfaction Rated", "Satisfaction Detractor", "Satisfaction Promoter"
SCALE = {"csat": (1, 5), "nps": (0, 10)}
LINK_KIND = "s"
PURPOSE = "transactional"
OUT_CHANNELS = ("email", "sms", "zalo", "messenger")
INSTALLED = ("email", "sms", "messenger")  # Zalo needs a ZNS template the shop has had approved (its id)

TEXTS = {
    "csat": {
        "vi": ("Bạn hài lòng với hỗ trợ của chúng tôi chứ?",
               "Chào {{ customer.name }}, yêu cầu {{ context.ticket }} ({{ context.subject }}) đã được giải quyết. "
               "Bạn chấm điểm hỗ trợ của chúng tôi từ 1 đến 5 nhé: {{ context.link }}"),
        "en": ("How did we do?",
               "Hi {{ customer.name }}, your request {{ context.ticket }} ({{ context.subject }}) is solved. "
               "Please rate our help from 1 to 5: {{ context.link }}"),
    },
    "nps": {
        "vi": ("Bạn có giới thiệu chúng tôi cho bạn bè không?",
               "Chào {{ customer.name }}, từ 0 đến 10, bạn sẵn lòng giới thiệu chúng tôi cho bạn bè hoặc người "
               "thân ở mức nào? {{ context.link }}"),
        "en": ("Would you recommend us?",
               "Hi {{ customer.name }}, from 0 to 10, how likely are you to recommend us to a friend or "
               "colleague? {{ context.link }}"),
    },
}


class SatisfactionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    csat: bool = Field(True, description="Ask for a CSAT rating when a ticket is solved.")
    link_days: int = Field(30, ge=1, le=365, description="How long an answer link keeps working.")


def satisfaction_settings(session: Session) -> SatisfactionSettings:
    row = session.get(Setting, SETTING)
    return SatisfactionSettings.model_validate(row.value if row and row.value else {})


def save_satisfaction_settings(session: Session, data: SatisfactionSettings) -> SatisfactionSettings:
    row = session.get(Setting, SETTING)
    if row is None:
        row = Setting(name=SETTING)
        session.add(row)
    row.value, row.updated_at = data.model_dump(), utcnow()
    session.flush()
    return data


# --- links -----------------------------------------------------------------------------------------


def link_key(settings) -> bytes:
    return derived_key(settings, b"clm service survey links")


def survey_token(key: bytes, survey_id: int, until: datetime) -> str:
    return expiring_token(key, LINK_KIND, survey_id, until)


def survey_url(settings, survey_id: int, until: datetime) -> str:
    return f"{settings.public_url.rstrip('/')}/s/{survey_token(link_key(settings), survey_id, until)}"


def survey_of_token(key: bytes, token: str, now: datetime) -> int:
    """The survey a link names; BadLink when it was not signed here, ExpiredLink when its time is over."""
    return record_of(key, LINK_KIND, token, now)


# --- templates and sending ---------------------------------------------------------------------------


def template_key(kind: str, channel: str) -> str:
    return f"service.{kind}.{channel}"


def install_templates(session: Session) -> list[str]:
    """Add the CSAT and NPS templates (email, SMS, Messenger) that do not exist yet; their keys. A Zalo
    template needs the id of a ZNS template Zalo approved for the shop: the shop adds `service.csat.zalo`
    itself, and until it does Zalo tickets are asked by SMS (or email)."""
    from clm.channels.models import Template
    from clm.channels.templates import create_template

    made = []
    for kind, langs in TEXTS.items():
        for channel in INSTALLED:
            key = template_key(kind, channel)
            if session.scalar(sa.select(Template.id).where(Template.key == key)) is not None:
                continue
            variants = {lang: ({"subject": subject, "text": text} if channel == "email" else {"text": text})
                        for lang, (subject, text) in langs.items()}
            create_template(session, key=key, channel=channel, variants=variants,
                            name=f"Service: {kind.upper()} question ({channel})")
            made.append(key)
    return made


def out_channel(session: Session, kind: str, channel: str | None, customer: Customer) -> str | None:
    """Where to ask: the ticket's own channel when messages can go out on it (Zalo: once the shop has its
    ZNS template), else SMS for a call, else email, else SMS."""
    from clm.channels.models import Template

    if channel in INSTALLED or (channel == "zalo" and session.scalar(
            sa.select(Template.id).where(Template.key == template_key(kind, "zalo"))) is not None):
        return channel
    if channel == "zalo" and customer.phone:
        return "sms"
    if channel == "phone" and customer.phone:
        return "sms"
    if customer.email:
        return "email"
    return "sms" if customer.phone else None


def _send(session: Session, survey: Survey, channel: str, context: dict[str, Any], settings, now: datetime) -> None:
    from clm.channels.models import Template
    from clm.channels.service import enqueue_message

    if settings is None:
        from clm.config import get_settings

        settings = get_settings()
    key = template_key(survey.kind, channel)
    if session.scalar(sa.select(Template.id).where(Template.key == key)) is None:
        install_templates(session)
    days = satisfaction_settings(session).link_days
    link = survey_url(settings, survey.id, now + timedelta(days=days))
    message = enqueue_message(session, customer_id=survey.customer_id, channel=channel, template_key=key,
                              purpose=PURPOSE, idempotency_key=f"service:{survey.key}",
                              context={**context, "link": link}, settings=settings, now=now)
    survey.message_id = message.id


def _create(session: Session, survey: Survey) -> Survey | None:
    try:
        with session.begin_nested():
            session.add(survey)
            session.flush()
    except IntegrityError:
        return None
    return survey


def request_csat(session: Session, ticket: Ticket, settings, now: datetime | None = None) -> Survey | None:
    """Ask the customer of a solved ticket for a rating, once per ticket. None when CSAT is off, the ticket
    was merged, or there is no way to reach the customer."""
    now = now or utcnow()
    if not satisfaction_settings(session).csat or ticket.merged_into_id is not None:
        return None
    key = f"csat:{ticket.id}"
    known = session.scalar(sa.select(Survey).where(Survey.key == key))
    if known is not None:
        return known
    customer = session.get(Customer, ticket.customer_id)
    channel = out_channel(session, "csat", ticket.channel, customer) if customer else None
    if channel is None:
        return None
    survey = _create(session, Survey(kind="csat", key=key, customer_id=ticket.customer_id, ticket_id=ticket.id,
                                     agent_id=ticket.assignee_id, team_id=ticket.team_id, channel=ticket.channel,
                                     sent_at=now, created_at=now))
    if survey is None:
        return session.scalar(sa.select(Survey).where(Survey.key == key))
    _send(session, survey, channel, {"ticket": ticket.number, "subject": ticket.subject}, settings, now)
    session.flush()
    return survey


def request_nps(session: Session, customer_id: int, key: str, *, channel: str | None, settings,
                journey_run_id: int | None = None, now: datetime | None = None) -> Survey | None:
    """An NPS survey (a journey's action): one per `key`; `channel` None picks email, else SMS."""
    now = now or utcnow()
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound("customer", customer_id)
    chosen = out_channel(session, "nps", channel, customer)
    if chosen is None:
        return None
    survey = _create(session, Survey(kind="nps", key=f"nps:{key}"[:120], customer_id=customer_id, channel=chosen,
                                     journey_run_id=journey_run_id, sent_at=now, created_at=now))
    if survey is None:
        return session.scalar(sa.select(Survey).where(Survey.key == f"nps:{key}"[:120]))
    _send(session, survey, chosen, {}, settings, now)
    session.flush()
    return survey


# --- answers ------------------------------------------------------------------------------------------


def category(kind: str, score: int) -> str:
    """detractor, passive or promoter (CSAT: 1-2, 3-4, 5; NPS: 0-6, 7-8, 9-10)."""
    if kind == "csat":
        return "detractor" if score <= 2 else "promoter" if score == 5 else "passive"
    return "detractor" if score <= 6 else "promoter" if score >= 9 else "passive"


def answer(session: Session, survey_id: int, score: Any, comment: str | None = None,
           now: datetime | None = None) -> Survey:
    """Store the customer's answer (a second answer replaces the first) and put it on their timeline."""
    now = now or utcnow()
    survey = session.get(Survey, survey_id, with_for_update=True)
    if survey is None:
        raise NotFound("survey", survey_id)
    low, high = SCALE[survey.kind]
    try:
        value = int(score)
    except (TypeError, ValueError):
        raise FieldError("score", f"choose a number from {low} to {high}") from None
    if not low <= value <= high or str(score).strip() not in (str(value), f"{value}.0"):
        raise FieldError("score", f"choose a number from {low} to {high}")
    comment = (comment or "").strip()
    if len(comment) > 5000:
        raise FieldError("comment", "a comment is at most 5,000 characters")
    first = survey.answered_at is None
    survey.score, survey.comment, survey.answered_at = value, comment or None, now
    session.flush()
    stamp = now.isoformat()
    props = {"kind": survey.kind, "score": value, "category": category(survey.kind, value),
             "ticket_id": survey.ticket_id, "channel": survey.channel, "comment": timeline.excerpt(comment)}
    timeline.record(session, survey.customer_id, RATED, f"service:survey:{survey.id}:{stamp}", now, props)
    signal = {"detractor": DETRACTOR, "promoter": PROMOTER}.get(props["category"])
    if signal:
        timeline.record(session, survey.customer_id, signal, f"service:survey:{survey.id}:{stamp}:signal", now, props)
    emit(session, "service.survey_answered", survey.customer_id, {"survey_id": survey.id, "first": first, **props})
    session.flush()
    return survey


# --- reports ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportRow:
    key: Any  # agent id, team id or channel (None: no agent / no team)
    label: str
    sent: int
    answered: int
    average: float | None
    satisfied: float | None  # CSAT: share of 4-5; NPS: the score (promoters % - detractors %)
    detractors: int
    promoters: int


GROUPS = ("agent", "team", "channel")


def report(session: Session, *, kind: str = "csat", by: str = "agent", since: datetime | None = None,
           until: datetime | None = None) -> list[ReportRow]:
    """Surveys sent in [since, until) by agent, team or channel: answers, average, CSAT % (4-5 of answers)
    or NPS, detractors and promoters. One GROUP BY query."""
    if kind not in SURVEY_KINDS:
        raise FieldError("kind", f"choose one of {', '.join(SURVEY_KINDS)}")
    if by not in GROUPS:
        raise FieldError("by", f"choose one of {', '.join(GROUPS)}")
    column = {"agent": Survey.agent_id, "team": Survey.team_id, "channel": Survey.channel}[by]
    low_cut, high_cut = (2, 5) if kind == "csat" else (6, 9)
    good = 4 if kind == "csat" else 9
    answered = Survey.answered_at.is_not(None)
    query = sa.select(
        column.label("key"), sa.func.count().label("sent"),
        sa.func.count(Survey.answered_at).label("answered"),
        sa.func.avg(sa.case((answered, Survey.score))).label("average"),
        sa.func.sum(sa.case((sa.and_(answered, Survey.score <= low_cut), 1), else_=0)).label("detractors"),
        sa.func.sum(sa.case((sa.and_(answered, Survey.score >= high_cut), 1), else_=0)).label("promoters"),
        sa.func.sum(sa.case((sa.and_(answered, Survey.score >= good), 1), else_=0)).label("good"),
    ).where(Survey.kind == kind).group_by(column)
    if since is not None:
        query = query.where(Survey.sent_at >= since)
    if until is not None:
        query = query.where(Survey.sent_at < until)
    rows = session.execute(query).all()
    labels = _labels(session, by, [r.key for r in rows if r.key is not None])
    out = []
    for r in rows:
        n = r.answered or 0
        if kind == "csat":
            satisfied = round(100.0 * (r.good or 0) / n, 1) if n else None
        else:
            satisfied = round(100.0 * ((r.promoters or 0) - (r.detractors or 0)) / n, 1) if n else None
        out.append(ReportRow(r.key, labels.get(r.key, "-") if r.key is not None else "-", r.sent, n,
                             round(float(r.average), 2) if r.average is not None else None, satisfied,
                             int(r.detractors or 0), int(r.promoters or 0)))
    return sorted(out, key=lambda row: (-row.answered, str(row.label)))


def _labels(session: Session, by: str, keys: list[Any]) -> dict[Any, str]:
    from clm.access.models import User

    if by == "channel":
        return {k: k for k in keys}
    model = User if by == "agent" else Team
    return dict(session.execute(sa.select(model.id, model.name).where(model.id.in_(keys))).all()) if keys else {}


def surveys_of(session: Session, customer_id: int, limit: int = 20) -> list[Survey]:
    return list(session.scalars(sa.select(Survey).where(Survey.customer_id == customer_id)
                                .order_by(Survey.sent_at.desc(), Survey.id.desc()).limit(limit)))
