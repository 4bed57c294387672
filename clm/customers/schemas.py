"""The shapes of the customers API: what it accepts and what it answers."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from clm.commerce.schemas import OrderOut
from clm.tracking.events_schemas import EventOut

Channel = Literal["email", "sms", "zalo", "messenger", "phone", "push", "all"]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class IdentityOut(_Out):
    kind: str = Field(description="user_id, anonymous_id, email, phone, zalo or facebook.")
    value: str
    verified: bool
    created_at: datetime


class ConsentOut(_Out):
    id: int
    channel: str
    purpose: str
    granted: bool
    source: str
    evidence: str | None
    recorded_at: datetime


class CustomerOut(_Out):
    id: int
    external_id: str | None
    email: str | None
    phone: str | None = Field(description="E.164, e.g. +84912345678.")
    full_name: str | None
    given_name: str | None
    family_name: str | None
    birthday: date | None
    gender: str | None
    city: str | None
    traits: dict[str, Any]
    lifecycle_stage: str | None
    owner_id: int | None
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    created_at: datetime
    updated_at: datetime


class CustomerDetail(CustomerOut):
    identities: list[IdentityOut]
    consents: list[ConsentOut] = Field(description="The consents in force: the latest per channel and purpose.")


class CustomerPage(BaseModel):
    data: list[CustomerOut]
    next: str | None = Field(description="Pass as `cursor` to get the next page; null on the last page.")


class ProfileIn(BaseModel):
    """Profile fields; each is read the way an identify call's traits are (normalised, validated)."""

    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(None, max_length=320)
    phone: str | None = Field(None, max_length=64, description="Any format; stored as E.164.")
    full_name: str | None = Field(None, max_length=255)
    given_name: str | None = Field(None, max_length=255)
    family_name: str | None = Field(None, max_length=255)
    birthday: str | None = Field(None, max_length=32, description="YYYY-MM-DD or DD/MM/YYYY.")
    gender: str | None = Field(None, max_length=16)
    city: str | None = Field(None, max_length=128)
    external_id: str | None = Field(None, max_length=255)
    owner_id: int | None = Field(None, ge=1, le=2**63 - 1, description="The staff user who owns the customer.")
    traits: dict[str, Any] | None = Field(
        None, description="Custom traits, merged into the stored ones; a trait set to null is removed."
    )


class CustomerCreate(ProfileIn):
    user_id: str | None = Field(None, min_length=1, max_length=255,
                                description="Your system's id for the customer (Segment's userId).")


class CustomerUpdate(ProfileIn):
    """Only the fields sent change; a field sent as null is cleared."""


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Channel
    purpose: str = Field(pattern=r"^[a-z][a-z0-9_.:-]*$", min_length=1, max_length=64,
                         description="What the data is used for, e.g. marketing, transactional, profiling.")
    granted: bool = Field(description="true when consent is given, false when it is refused or withdrawn.")
    source: str = Field(min_length=1, max_length=128, description="Where it was recorded: signup_form, pos, call...")
    evidence: str | None = Field(None, max_length=10_000,
                                 description="What proves it: the wording shown, a form URL, a recording id.")
    recorded_at: datetime | None = Field(None, description="When the customer decided; default now, never future.")


class ConsentList(BaseModel):
    current: list[ConsentOut] = Field(description="The latest decision per channel and purpose.")
    history: list[ConsentOut] = Field(description="Every decision, newest first.")


class TimelineEntry(BaseModel):
    kind: Literal["event", "order"]
    at: datetime
    event: EventOut | None = None
    order: OrderOut | None = None


class TimelinePage(BaseModel):
    data: list[TimelineEntry]
    next: str | None
