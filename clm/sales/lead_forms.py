"""Lead forms the shop embeds: each has a key (the `form` parameter of /forms/lead), a title, the fields it
asks for, and the campaign and owner its leads get. A key with no saved form is the plain default form."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session

from clm.access.models import User
from clm.lib.clock import utcnow
from clm.lib.errors import FieldError, NotFound
from clm.sales.models import MAX_ID, LeadForm

FIELDS = ("name", "phone", "email", "city", "message")
DEFAULT_FIELDS = ["name", "phone", "email", "message"]
KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class FormIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(min_length=1, max_length=64)
    title: str = Field(min_length=1, max_length=200)
    fields: list[Literal[FIELDS]] = Field(default_factory=lambda: list(DEFAULT_FIELDS))  # type: ignore[valid-type]
    campaign: str | None = Field(None, max_length=255)
    owner_id: int | None = Field(None, ge=1, le=MAX_ID)
    thank_you: str | None = Field(None, max_length=1000)
    active: bool = True

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        value = value.strip().lower()
        if not KEY.match(value):
            raise ValueError("use lower-case letters, digits, - and _ (e.g. sofa-tet)")
        return value

    @field_validator("fields")
    @classmethod
    def _contact(cls, value: list[str]) -> list[str]:
        if "phone" not in value and "email" not in value:
            raise ValueError("ask for a phone number or an email address, or the lead cannot be reached")
        return [f for f in FIELDS if f in value]


def save_form(session: Session, data: FormIn, form_id: int | None = None, now: datetime | None = None) -> LeadForm:
    now = now or utcnow()
    if data.owner_id is not None and session.get(User, data.owner_id) is None:
        raise FieldError("owner_id", f"no staff user with id {data.owner_id}")
    taken = session.scalar(sa.select(LeadForm.id).where(LeadForm.key == data.key))
    if taken is not None and taken != form_id:
        raise FieldError("key", f"another form is called {data.key!r} already")
    form = LeadForm(created_at=now) if form_id is None else get_form(session, form_id)
    form.key, form.title, form.fields = data.key, data.title.strip(), list(data.fields)
    form.campaign = (data.campaign or "").strip() or None
    form.owner_id, form.active = data.owner_id, data.active
    form.thank_you = (data.thank_you or "").strip() or None
    form.updated_at = now
    session.add(form)
    session.flush()
    return form


def get_form(session: Session, form_id: int) -> LeadForm:
    form = session.get(LeadForm, form_id)
    if form is None:
        raise NotFound("lead form", form_id)
    return form


def form_by_key(session: Session, key: str) -> LeadForm | None:
    return session.scalar(sa.select(LeadForm).where(LeadForm.key == key))


def list_forms(session: Session) -> list[LeadForm]:
    return list(session.scalars(sa.select(LeadForm).order_by(LeadForm.key)))


def embed_snippet(public_url: str, form: LeadForm, locale: str) -> str:
    """The HTML the shop pastes into its site: an iframe of the form passing on the visitor's UTM
    parameters and analytics.js anonymous id."""
    base = public_url.rstrip("/")
    return (f'<iframe id="clm-lead-{form.key}" src="{base}/forms/lead?form={form.key}&amp;lang={locale}" '
            'title="' + form.title.replace('"', "&quot;") + '" style="border:0;width:100%;max-width:32rem;height:34rem" '
            'loading="lazy"></iframe>\n'
            '<script>(function(){var f=document.getElementById("clm-lead-' + form.key + '"),'
            'u=new URL(f.src),p=new URLSearchParams(location.search);'
            '["utm_source","utm_medium","utm_campaign","utm_term","utm_content"].forEach(function(k){'
            'if(p.get(k))u.searchParams.set(k,p.get(k))});u.searchParams.set("page_url",location.href);'
            'if(window.analytics&&analytics.user)try{u.searchParams.set("anonymous_id",analytics.user().anonymousId())}'
            'catch(e){}f.src=u.toString()})();</script>')
