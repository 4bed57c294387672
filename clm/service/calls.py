"""Phone calls from a PBX, in Zammad's Generic CTI format, so PBX scripts written for Zammad work unchanged.

The PBX posts `newCall`, `answer` and `hangup` events (form-encoded or JSON) to a URL holding a secret
token (clm.service.cti). Each call is one row keyed by the PBX's `callId`: events for a call arriving
twice change nothing the second time, and an `answer` or `hangup` for a callId never announced is refused
(nothing is stored, the PBX sees why). The caller is found by phone number (Vietnamese numbers, old
11-digit mobile prefixes included, clm.lib.phones), through the customer's phone identity, or made a new
customer; `newCall` announces `service.call_ringing` so the agents' screens can show who is calling.
On `hangup` the call goes on the customer's timeline with its duration and recording link (`Call
Received`, `Call Made`, `Call Missed`), and an inbound call nobody answered makes a call-back task for
the agent who was rung (clm.service.tasks.missed_call_task).

Only the token's SHA-256 is stored (the `cti` row of service_settings); `new_token` makes a new one and
the old one stops working.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clm.access.models import User
from clm.customers.models import Customer, Identity
from clm.lib.clock import utcnow
from clm.lib.errors import FieldError, NotFound, dotted
from clm.lib.phones import InvalidPhone, normalize_phone
from clm.outbox.service import emit
from clm.service import timeline
from clm.service.desk_models import Call
from clm.service.models import Setting
from clm.service.tasks import missed_call_task

SETTING = "cti"
RECEIVED, MADE, MISSED = "Call Received", "Call Made", "Call Missed"
# Zammad's hangup causes: an inbound call that ends with any of these before an answer was missed
# (forwarded calls go on elsewhere, under the callId the PBX gives them there).
CAUSES = ("normalClearing", "busy", "cancel", "noAnswer", "congestion", "notFound", "forwarded")
ANONYMOUS = ("", "anonymous", "unknown", "restricted", "private")


class CtiEvent(BaseModel):
    """One Generic CTI event. Field names are Zammad's (`from`, `callId`, `user[]`, `answeringNumber`);
    `recordingUrl` is clm's addition for PBXs that record calls (sent with `hangup`)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    event: Literal["newCall", "answer", "hangup"]
    from_: str = Field("", alias="from", max_length=64)
    to: str = Field("", max_length=64)
    direction: Literal["in", "out"]
    callId: str = Field(min_length=1, max_length=250)  # noqa: N815 (Zammad's name)
    user: list[str] = Field(default_factory=list, max_length=50)
    queue: str | None = Field(None, max_length=120)
    cause: str | None = Field(None, max_length=32)
    answeringNumber: str | None = Field(None, max_length=320)  # noqa: N815
    recordingUrl: str | None = Field(None, max_length=2000)  # noqa: N815

    @field_validator("user", mode="before")
    @classmethod
    def _users(cls, value: Any) -> list[str]:
        if value is None:
            return []
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list):
            raise ValueError("must be a name or a list of names")
        return [str(v).strip()[:255] for v in values if str(v).strip()]

    @field_validator("recordingUrl")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value and not value.lower().startswith(("https://", "http://")):
            raise ValueError("must be an http(s) link to the recording")
        return value or None


def parse_event(data: dict[str, Any]) -> CtiEvent:
    """The event from a JSON body or form fields (`user[]` repeated); FieldError naming the field."""
    data = dict(data)
    if "user[]" in data:
        data["user"] = data.pop("user[]")
    try:
        return CtiEvent.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = dotted(list(first["loc"])) or None
        raise FieldError(field, first["msg"].removeprefix("Value error, ")) from None


# --- the token -------------------------------------------------------------------------------------


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(session: Session, now: datetime | None = None) -> str:
    """A new secret for the endpoint URL (shown once; the previous one stops working). The caller commits."""
    token = secrets.token_urlsafe(24)
    row = session.get(Setting, SETTING)
    if row is None:
        row = Setting(name=SETTING, value={})
        session.add(row)
    row.value = {**(row.value or {}), "token_sha256": _digest(token)}
    row.updated_at = now or utcnow()
    session.flush()
    return token


def configured(session: Session) -> bool:
    row = session.get(Setting, SETTING)
    return bool(row and (row.value or {}).get("token_sha256"))


def token_ok(session: Session, token: str) -> bool:
    row = session.get(Setting, SETTING)
    stored = (row.value or {}).get("token_sha256") if row else None
    return bool(stored) and hmac.compare_digest(stored, _digest(token))


# --- who is on the line ----------------------------------------------------------------------------


def caller_phone(number: str) -> str | None:
    """The number as E.164, or None for an anonymous or unreadable one (the call is still logged)."""
    if number.strip().lower() in ANONYMOUS:
        return None
    try:
        return normalize_phone(number)
    except InvalidPhone:
        return None


def customer_for_phone(session: Session, phone: str) -> int:
    """The customer with this phone (identity first, then profile), or a new customer with it."""
    from clm.customers.service import create_customer

    customer_id = session.scalar(sa.select(Identity.customer_id).where(Identity.kind == "phone",
                                                                         Identity.value == phone))
    if customer_id is None:
        customer_id = session.scalar(sa.select(Customer.id).where(Customer.phone == phone,
                                                                  Customer.merged_into_id.is_(None))
                                     .order_by(Customer.id).limit(1))
    if customer_id is None:
        return create_customer(session, {"phone": phone}).id
    hops = 0
    while hops < 10:
        merged = session.scalar(sa.select(Customer.merged_into_id).where(Customer.id == customer_id))
        if merged is None:
            break
        customer_id, hops = merged, hops + 1
    return customer_id


def staff_by_reference(session: Session, ref: str | None) -> int | None:
    """Zammad's `answeringNumber`: a staff user's id, or email (users have no phone here)."""
    ref = (ref or "").strip()
    if not ref:
        return None
    if ref.isdigit():
        return session.scalar(sa.select(User.id).where(User.id == int(ref), User.active.is_(True)))
    return session.scalar(sa.select(User.id).where(sa.func.lower(User.email) == ref.lower(), User.active.is_(True)))


def staff_by_names(session: Session, names: list[str]) -> list[int]:
    """The active staff users named in `user[]` (names shared by two users name nobody)."""
    out = []
    for name in names:
        ids = list(session.scalars(sa.select(User.id).where(User.name == name, User.active.is_(True)).limit(2)))
        if len(ids) == 1:
            out.append(ids[0])
    return out


# --- the events ------------------------------------------------------------------------------------


def handle(session: Session, event: CtiEvent, now: datetime | None = None) -> Call:
    """Apply one event; returns the call. NotFound for an answer or hangup of an unknown callId."""
    now = now or utcnow()
    if event.event == "newCall":
        return _new_call(session, event, now)
    call = session.scalar(sa.select(Call).where(Call.call_id == event.callId).with_for_update())
    if call is None:
        raise NotFound("call", event.callId)
    if event.event == "answer":
        _answer(session, call, event, now)
    else:
        _hangup(session, call, event, now)
    session.flush()
    return call


def _new_call(session: Session, event: CtiEvent, now: datetime) -> Call:
    known = session.scalar(sa.select(Call).where(Call.call_id == event.callId))
    if known is not None:
        return known  # the PBX retried
    phone = caller_phone(event.from_ if event.direction == "in" else event.to)
    customer_id = customer_for_phone(session, phone) if phone else None
    agent_ids = staff_by_names(session, event.user)
    call = Call(call_id=event.callId, direction=event.direction, from_number=event.from_ or "anonymous",
                to_number=event.to, phone=phone, customer_id=customer_id, state="ringing", users=event.user,
                queue=event.queue, agent_id=agent_ids[0] if event.direction == "out" and agent_ids else None,
                started_at=now, created_at=now)
    try:
        with session.begin_nested():
            session.add(call)
            session.flush()
    except IntegrityError:  # the same newCall, posted twice at once
        return session.scalar(sa.select(Call).where(Call.call_id == event.callId))
    emit(session, "service.call_ringing", customer_id, {
        "call_id": call.id, "direction": call.direction, "phone": phone, "queue": call.queue,
        "users": call.users, "user_ids": agent_ids})
    return call


def _answer(session: Session, call: Call, event: CtiEvent, now: datetime) -> None:
    if call.state != "ringing":
        return  # answered already, or over
    call.state, call.answered_at = "answered", now
    agent = staff_by_reference(session, event.answeringNumber)
    if agent is None:
        named = staff_by_names(session, event.user)
        agent = named[0] if len(named) == 1 else call.agent_id
    call.agent_id = agent
    if event.user:
        call.users = event.user


def _hangup(session: Session, call: Call, event: CtiEvent, now: datetime) -> None:
    if call.state in ("ended", "missed"):
        if event.recordingUrl and not call.recording_url:
            call.recording_url = event.recordingUrl  # recordings are often ready only after the hang-up
        return
    if call.agent_id is None:
        call.agent_id = staff_by_reference(session, event.answeringNumber)
    call.cause, call.ended_at, call.recording_url = event.cause, now, event.recordingUrl
    answered = call.answered_at is not None
    call.duration_seconds = int((now - call.answered_at).total_seconds()) if answered else 0
    missed = call.direction == "in" and not answered and event.cause != "forwarded"
    call.state = "missed" if missed else "ended"
    if missed and call.customer_id is not None:
        rung = staff_by_names(session, call.users)
        assignee = rung[0] if len(rung) == 1 else None
        call.task_id = missed_call_task(session, call.customer_id, phone=call.phone, at=call.started_at,
                                        assignee_id=assignee, now=now).id
    if call.customer_id is not None:
        name = MISSED if missed else RECEIVED if call.direction == "in" else MADE
        timeline.record(session, call.customer_id, name, f"service:call:{call.id}", call.started_at, {
            "call_id": call.call_id, "direction": call.direction, "phone": call.phone,
            "duration_seconds": call.duration_seconds, "recording_url": call.recording_url,
            "agent_id": call.agent_id, "queue": call.queue, "cause": call.cause})
    emit(session, "service.call_ended", call.customer_id, {
        "call_id": call.id, "state": call.state, "duration_seconds": call.duration_seconds,
        "agent_id": call.agent_id, "task_id": call.task_id})


def calls_of(session: Session, customer_id: int, limit: int = 50) -> list[Call]:
    """The customer's calls, newest first (the caller log on the customer 360)."""
    return list(session.scalars(sa.select(Call).where(Call.customer_id == customer_id)
                                .order_by(Call.started_at.desc(), Call.id.desc()).limit(limit)))


def recent_calls(session: Session, *, missed_only: bool = False, limit: int = 50) -> list[Call]:
    """The caller log, newest first."""
    query = sa.select(Call)
    if missed_only:
        query = query.where(Call.state == "missed")
    return list(session.scalars(query.order_by(Call.started_at.desc(), Call.id.desc()).limit(limit)))
