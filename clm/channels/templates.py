"""Message templates: versions, locale variants and sandboxed rendering.

Templates are Jinja2 run in a ``SandboxedEnvironment`` with ``StrictUndefined``: a template cannot
reach Python internals, and a variable that does not exist is an error (the message fails with the
reason) instead of an empty hole in a message a customer reads. HTML parts are autoescaped.

Variables: ``customer`` (profile fields and ``traits``), ``order`` and ``event`` when the caller's
context names one (``order_id``/``event_id``, or the dicts themselves), ``context`` (everything the
caller passed), ``locale``, and for a real message ``unsubscribe_url`` and ``preferences_url``.
Filters: ``vnd`` (money in VND through clm.lib.money), ``date`` and ``datetime`` (in the business time
zone, in the message's language).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import sqlalchemy as sa
from babel.dates import format_date, format_datetime
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.orm import Session

from clm.channels.models import CHANNELS, LOCALES, Template, TemplateVersion
from clm.customers.models import Customer
from clm.lib.clock import as_utc, utcnow
from clm.lib.errors import FieldError, NotFound, dotted
from clm.lib.money import format_money

KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
BABEL = {"vi": "vi_VN", "en": "en_US"}
DATE_FORMATS = {"vi": ("dd/MM/yyyy", "HH:mm dd/MM/yyyy"), "en": ("medium", "medium")}


class Variant(BaseModel):
    """One language's content. Email needs a subject; every channel needs a text (the HTML is optional)."""

    model_config = ConfigDict(extra="forbid")
    subject: str | None = Field(None, max_length=500)
    text: str = Field("", max_length=100_000)
    html: str | None = Field(None, max_length=500_000)


class ProviderData(BaseModel):
    """What a channel needs beyond text. Each value of ``template_data`` is itself a template."""

    model_config = ConfigDict(extra="forbid")
    zns_template_id: str | None = Field(None, max_length=64, description="Zalo ZNS template id")
    template_data: dict[str, str] = Field(default_factory=dict, description="ZNS parameter -> template")
    messenger_tag: str | None = Field(None, max_length=64, description="Messenger message tag outside 24 h")
    webhook_url: str | None = Field(None, max_length=2000, description="Where a webhook message is posted")


class TemplateContent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    variants: dict[str, Variant]
    provider: ProviderData = Field(default_factory=ProviderData)


@dataclass
class Rendered:
    locale: str
    subject: str | None
    text: str
    html: str | None
    data: dict[str, Any] = field(default_factory=dict)


class RenderError(Exception):
    """The template could not be rendered; `reason` says where and why, for the message's status."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# --- the sandbox -----------------------------------------------------------------------------------


def _when(value: Any) -> datetime | date:
    if isinstance(value, datetime | date):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")) if "T" in value or " " in value.strip() \
                else date.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a date") from exc
    raise ValueError(f"{value!r} is not a date")


def _local(value: datetime, ctx) -> datetime:
    return as_utc(value).astimezone(ZoneInfo(ctx.get("timezone") or "Asia/Ho_Chi_Minh"))


@jinja2.pass_context
def _date_filter(ctx, value: Any, fmt: str | None = None) -> str:
    locale = ctx.get("locale") or "vi"
    when = _when(value)
    if isinstance(when, datetime):
        when = _local(when, ctx).date()
    return format_date(when, format=fmt or DATE_FORMATS.get(locale, DATE_FORMATS["vi"])[0], locale=BABEL.get(locale, "vi_VN"))


@jinja2.pass_context
def _datetime_filter(ctx, value: Any, fmt: str | None = None) -> str:
    locale = ctx.get("locale") or "vi"
    when = _when(value)
    if not isinstance(when, datetime):
        when = datetime(when.year, when.month, when.day)
    local = _local(when, ctx)
    return format_datetime(local, format=fmt or DATE_FORMATS.get(locale, DATE_FORMATS["vi"])[1],
                           tzinfo=local.tzinfo, locale=BABEL.get(locale, "vi_VN"))


@lru_cache(maxsize=4096)
def _vnd(amount: int, locale: str) -> str:
    # Babel's formatting costs ~0.1 ms; a broadcast formats the same amounts (a threshold, a price) for
    # every recipient.
    return format_money(amount, "VND", locale)


_VND_SEEN: dict[tuple[Any, Any], str] = {}  # (value as given, locale) -> text: the common case, one look-up


@jinja2.pass_context
def _vnd_filter(ctx, value: Any) -> str:
    locale = ctx.get("locale")
    if type(value) is int:
        seen = _VND_SEEN.get((value, locale))
        if seen is not None:
            return seen
    amount = int(round(float(value)))  # VND has no minor unit: minor units are dong
    text = _vnd(amount, BABEL.get(locale or "vi", "vi_VN"))
    if type(value) is int and len(_VND_SEEN) < 4096:
        _VND_SEEN[(value, locale)] = text
    return text


def _environment(autoescape: bool) -> SandboxedEnvironment:
    env = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=autoescape, trim_blocks=True,
                               lstrip_blocks=True)
    env.filters.update(vnd=_vnd_filter, date=_date_filter, datetime=_datetime_filter)
    return env


_TEXT = _environment(autoescape=False)
_HTML = _environment(autoescape=True)
_GLOBALS = dict(_TEXT.globals)  # range, dict, namespace, ...: the same in both environments


@lru_cache(maxsize=512)
def _compiled(source: str, html: bool) -> jinja2.Template:
    return (_HTML if html else _TEXT).from_string(source)


def check_syntax(source: str, html: bool = False) -> str | None:
    """None when `source` compiles; else the reason with its line."""
    try:
        _compiled(source, html)
    except jinja2.TemplateSyntaxError as exc:
        return f"line {exc.lineno}: {exc.message}"
    return None


def _render_part(source: str | None, variables: dict[str, Any], part: str, html: bool = False) -> str | None:
    if source is None:
        return None
    if "{" not in source:  # plain text: nothing to render (most subjects, many ZNS fields)
        return source
    try:
        template = _compiled(source, html)
        # Template.render merges the globals (a ChainMap, slow to copy) into a new context per call;
        # render_version merges them once for all the parts instead (shared: the dict is used as is).
        context = template.new_context(variables if "range" in variables else {**_GLOBALS, **variables}, shared=True)
        return template.environment.concat(template.root_render_func(context))
    except jinja2.TemplateSyntaxError as exc:
        raise RenderError(f"{part}: line {exc.lineno}: {exc.message}") from exc
    except jinja2.UndefinedError as exc:
        raise RenderError(f"{part}: {exc.message}") from exc
    except jinja2.exceptions.SecurityError as exc:
        raise RenderError(f"{part}: not allowed in a template: {exc}") from exc
    except Exception as exc:  # a filter given a bad value, a division by zero: the template's fault
        raise RenderError(f"{part}: {type(exc).__name__}: {exc}") from exc


def render_version(version: TemplateVersion, channel: str, locale: str, variables: dict[str, Any]) -> Rendered:
    """Render every part of `version` in `locale` (or the closest variant it has)."""
    variants = version.variants or {}
    if not variants:
        raise RenderError("the template has no content")
    chosen = locale if locale in variants else next((lc for lc in LOCALES if lc in variants), next(iter(variants)))
    variant = variants[chosen]
    variables = {**_GLOBALS, **variables, "locale": chosen}
    where = f"{chosen}."
    subject = _render_part(variant.get("subject"), variables, where + "subject")
    text = _render_part(variant.get("text") or "", variables, where + "text") or ""
    html = _render_part(variant.get("html"), variables, where + "html", html=True)
    if channel == "email":
        if not (subject or "").strip():
            raise RenderError(f"{where}subject: an email needs a subject")
        subject = " ".join(subject.split())  # a header is one line
    if not text.strip() and not (html or "").strip() and channel not in ("zalo", "webhook"):
        raise RenderError(f"{where}text: the message is empty")
    provider = version.provider or {}
    data: dict[str, Any] = {}
    if provider.get("zns_template_id"):
        data["template_id"] = provider["zns_template_id"]
    if provider.get("template_data"):
        data["template_data"] = {k: _render_part(v, variables, f"template_data.{k}")
                                 for k, v in provider["template_data"].items()}
    if provider.get("messenger_tag"):
        data["tag"] = provider["messenger_tag"]
    if provider.get("webhook_url"):
        data["url"] = provider["webhook_url"]
    if channel == "zalo" and "template_id" not in data:
        raise RenderError("provider.zns_template_id: a Zalo ZNS message needs the template id Zalo approved")
    return Rendered(chosen, subject, text, html, data)


# --- variables -------------------------------------------------------------------------------------


def customer_variables(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.id, "external_id": customer.external_id, "email": customer.email, "phone": customer.phone,
        "name": customer.full_name or customer.given_name or "", "full_name": customer.full_name,
        "given_name": customer.given_name, "family_name": customer.family_name, "city": customer.city,
        "birthday": customer.birthday, "gender": customer.gender, "lifecycle_stage": customer.lifecycle_stage,
        "traits": dict(customer.traits or {}),
    }


def _order_variables(session: Session, order_id: Any, customer_id: int) -> dict[str, Any] | None:
    from clm.commerce.models import Order, OrderItem

    query = sa.select(Order).where(Order.customer_id == customer_id)
    order = session.scalar(query.where(Order.id == order_id) if isinstance(order_id, int)
                           else query.where(Order.external_id == str(order_id)))
    if order is None:
        return None
    items = session.scalars(sa.select(OrderItem).where(OrderItem.order_id == order.id).order_by(OrderItem.id))
    return {"id": order.external_id, "total": order.total, "currency": order.currency, "status": order.status,
            "subtotal": order.subtotal, "discount": order.discount, "shipping": order.shipping,
            "coupon": order.coupon, "placed_at": order.placed_at, "properties": dict(order.properties or {}),
            "items": [{"sku": i.sku, "name": i.name, "quantity": i.quantity, "price": i.price} for i in items]}


def _event_variables(session: Session, event_id: Any, customer_id: int) -> dict[str, Any] | None:
    from clm.tracking.models import Event

    event = session.scalar(sa.select(Event).where(Event.customer_id == customer_id, Event.id == int(event_id)))
    if event is None:
        return None
    return {"id": event.id, "name": event.name, "type": event.type, "properties": dict(event.properties or {}),
            "timestamp": event.timestamp}


def template_variables(session: Session, customer: Customer, context: dict[str, Any] | None,
                       timezone: str) -> dict[str, Any]:
    """What a template sees. `order`/`event` exist only when the context names one (else StrictUndefined
    makes `{{ order.total }}` a clear failure instead of an empty amount)."""
    context = dict(context or {})
    variables: dict[str, Any] = {"customer": customer_variables(customer), "context": context,
                                 "timezone": timezone, "now": utcnow()}
    order = context.get("order")
    if order is None and context.get("order_id") is not None:
        order = _order_variables(session, context["order_id"], customer.id)
    if order is not None:
        variables["order"] = order
    event = context.get("event")
    if event is None and context.get("event_id") is not None:
        event = _event_variables(session, context["event_id"], customer.id)
    if event is not None:
        variables["event"] = event
    return variables


def customer_locale(customer: Customer, default: str) -> str:
    """The customer's language: a `locale`/`language` trait when it is vi or en, else the business default."""
    traits = customer.traits or {}
    for key in ("locale", "language", "lang"):
        value = traits.get(key)
        if isinstance(value, str) and value[:2].lower() in LOCALES:
            return value[:2].lower()
    return default if default in LOCALES else "vi"


# --- storage ---------------------------------------------------------------------------------------


def _content(variants: Any, provider: Any) -> TemplateContent:
    try:
        content = TemplateContent.model_validate({"variants": variants, "provider": provider or {}})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise FieldError(dotted(first["loc"]), first["msg"]) from exc
    if not content.variants:
        raise FieldError("variants", "give the content in at least one language (vi or en)")
    for locale, variant in content.variants.items():
        if locale not in LOCALES:
            raise FieldError(f"variants.{locale}", "the language must be vi or en")
        for part in ("subject", "text", "html"):
            source = getattr(variant, part)
            problem = source is not None and check_syntax(source, html=part == "html")
            if problem:
                raise FieldError(f"variants.{locale}.{part}", problem)
    for name, source in content.provider.template_data.items():
        problem = check_syntax(source)
        if problem:
            raise FieldError(f"provider.template_data.{name}", problem)
    return content


def _dump(content: TemplateContent) -> tuple[dict, dict]:
    return ({k: v.model_dump(exclude_none=True) for k, v in content.variants.items()},
            content.provider.model_dump(exclude_none=True, exclude_defaults=True))


def create_template(session: Session, *, key: str, channel: str, variants: dict, provider: dict | None = None,
                    name: str = "", created_by: str | None = None) -> Template:
    """A new template at version 1. The key is what journeys and broadcasts name."""
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise FieldError("key", "use lowercase letters, digits, '.', '_' or '-' (at most 100)")
    if channel not in CHANNELS:
        raise FieldError("channel", f"must be one of {', '.join(CHANNELS)}")
    if session.scalar(sa.select(Template.id).where(Template.key == key)) is not None:
        raise FieldError("key", f"a template {key!r} exists already; edit it to make a new version", "conflict")
    content = _content(variants, provider)
    if channel == "email" and any(not (v.subject or "").strip() for v in content.variants.values()):
        raise FieldError("variants.subject", "an email template needs a subject in every language")
    if channel == "zalo" and not content.provider.zns_template_id:
        raise FieldError("provider.zns_template_id", "a Zalo ZNS template needs the template id Zalo approved")
    now = utcnow()
    template = Template(key=key, channel=channel, name=name or key, current_version=1, created_at=now, updated_at=now)
    session.add(template)
    session.flush()
    v, p = _dump(content)
    session.add(TemplateVersion(template_id=template.id, version=1, variants=v, provider=p, created_by=created_by,
                                created_at=now))
    session.flush()
    return template


def update_template(session: Session, key: str, *, variants: dict, provider: dict | None = None,
                    name: str | None = None, created_by: str | None = None) -> TemplateVersion:
    """Editing makes a new version; messages already rendered keep naming the version they used."""
    template = get_template(session, key)
    content = _content(variants, provider)
    if template.channel == "email" and any(not (v.subject or "").strip() for v in content.variants.values()):
        raise FieldError("variants.subject", "an email template needs a subject in every language")
    now = utcnow()
    template.current_version += 1
    template.updated_at = now
    if name:
        template.name = name
    v, p = _dump(content)
    version = TemplateVersion(template_id=template.id, version=template.current_version, variants=v, provider=p,
                              created_by=created_by, created_at=now)
    session.add(version)
    session.flush()
    return version


def get_template(session: Session, key: str) -> Template:
    template = session.scalar(sa.select(Template).where(Template.key == key))
    if template is None:
        raise NotFound("template", key)
    return template


def get_version(session: Session, key: str, version: int | None = None) -> tuple[Template, TemplateVersion]:
    """The template and one version of it (the current one by default)."""
    template = get_template(session, key)
    number = version if version is not None else template.current_version
    row = session.scalar(sa.select(TemplateVersion).where(TemplateVersion.template_id == template.id,
                                                          TemplateVersion.version == number))
    if row is None:
        raise NotFound("template version", f"{key} v{number}")
    return template, row


def list_templates(session: Session, channel: str | None = None) -> list[Template]:
    query = sa.select(Template).order_by(Template.key)
    if channel:
        query = query.where(Template.channel == channel)
    return list(session.scalars(query))


def versions_of(session: Session, key: str) -> list[TemplateVersion]:
    template = get_template(session, key)
    return list(session.scalars(sa.select(TemplateVersion).where(TemplateVersion.template_id == template.id)
                                .order_by(TemplateVersion.version.desc())))


def preview(session: Session, key: str, customer_id: int, *, context: dict | None = None, locale: str | None = None,
            version: int | None = None, timezone: str = "Asia/Ho_Chi_Minh", default_locale: str = "vi") -> Rendered:
    """What `customer_id` would receive from the template (raises RenderError with the reason)."""
    template, row = get_version(session, key, version)
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound("customer", customer_id)
    variables = template_variables(session, customer, context, timezone)
    variables.update(unsubscribe_url="#unsubscribe", preferences_url="#preferences")
    return render_version(row, template.channel, locale or customer_locale(customer, default_locale), variables)


def preview_content(session: Session, channel: str, variants: dict, provider: dict | None, customer_id: int, *,
                    context: dict | None = None, locale: str | None = None, timezone: str = "Asia/Ho_Chi_Minh",
                    default_locale: str = "vi") -> Rendered:
    """What `customer_id` would receive from content not saved yet (the editor's preview). Content that
    would not save raises FieldError (as `update_template` would); content that does not render, RenderError."""
    content = _content(variants, provider)
    v, p = _dump(content)
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound("customer", customer_id)
    variables = template_variables(session, customer, context, timezone)
    variables.update(unsubscribe_url="#unsubscribe", preferences_url="#preferences")
    unsaved = TemplateVersion(version=0, variants=v, provider=p)
    return render_version(unsaved, channel, locale or customer_locale(customer, default_locale), variables)
