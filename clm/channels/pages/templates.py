"""Template pages: the list, the editor (saving makes a new version; errors name the part and line) and
the preview of the unsaved content for a chosen customer (HTMX)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import Depends, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from clm.channels import templates as service
from clm.channels.models import CHANNELS, LOCALES, Template
from clm.channels.pages.common import allowed, page, settings_of
from clm.channels.reasons import in_language
from clm.customers.models import Customer
from clm.db.engine import for_writing
from clm.lib.errors import FieldError, NotFound
from clm.web.deps import get_session
from clm.web.i18n import pick_locale
from clm.web.pages.base import dashboard_router, form_data, render
from clm.web.pages.errors import not_found_page

router = dashboard_router()
PARTS = ("subject", "text", "html")
PROVIDER_FIELDS = ("zns_template_id", "messenger_tag", "webhook_url")


def content_from_form(form: dict[str, Any]) -> tuple[dict, dict]:
    """The editor's fields as (variants, provider): a language is kept when any of its parts is filled;
    `template_data` is one `name = template` per line."""
    variants = {}
    for locale in LOCALES:
        parts = {p: str(form.get(f"{locale}.{p}") or "").replace("\r\n", "\n") for p in PARTS}
        if any(v.strip() for v in parts.values()):
            variants[locale] = {p: v for p, v in parts.items() if v.strip() or p == "text"}
    provider: dict[str, Any] = {k: str(form.get(k) or "").strip() for k in PROVIDER_FIELDS}
    provider = {k: v for k, v in provider.items() if v}
    data = {}
    for line in str(form.get("template_data") or "").splitlines():
        if line.strip():
            name, _, source = line.partition("=")
            data[name.strip()] = source.strip()
    if data:
        provider["template_data"] = data
    return variants, provider


def form_from_version(version) -> dict[str, str]:
    form: dict[str, str] = {}
    for locale, variant in (version.variants or {}).items():
        for part in PARTS:
            form[f"{locale}.{part}"] = variant.get(part) or ""
    provider = version.provider or {}
    for k in PROVIDER_FIELDS:
        form[k] = provider.get(k) or ""
    form["template_data"] = "\n".join(f"{k} = {v}" for k, v in (provider.get("template_data") or {}).items())
    return form


def form_field(error_field: str | None) -> str | None:
    """The editor's input an error is about: variants.vi.text -> vi.text, provider.x -> x."""
    if not error_field:
        return None
    for prefix in ("variants.", "provider."):
        if error_field.startswith(prefix):
            error_field = error_field[len(prefix):]
    return error_field.split(".template_data")[0] if error_field.startswith("template_data") else error_field


def _sample_customers(db: Session) -> list[tuple[int, str]]:
    rows = db.execute(sa.select(Customer.id, Customer.full_name, Customer.email).where(
        Customer.merged_into_id.is_(None)).order_by(Customer.id).limit(20))
    return [(i, name or email or f"#{i}") for i, name, email in rows]


def _editor(request: Request, db: Session, *, template: Template | None, form: dict, error: str | None = None,
            error_field: str | None = None, saved: int | None = None, status_code: int = 200):
    versions = service.versions_of(db, template.key) if template is not None else []
    return page(request, "channels/template_edit.html", "templates", status_code=status_code, template=template,
                form=form, error=error, error_field=form_field(error_field), saved=saved, versions=versions,
                channels=CHANNELS, locales=LOCALES, customers=_sample_customers(db))


@router.get("/channels/templates")
def list_page(request: Request, user=Depends(allowed), db: Session = Depends(get_session)):
    return page(request, "channels/templates.html", "templates", templates=service.list_templates(db))


@router.get("/channels/templates/new")
def new_page(request: Request, user=Depends(allowed), db: Session = Depends(get_session)):
    return _editor(request, db, template=None, form={"channel": "email"})


@router.post("/channels/templates/new")
def create(request: Request, form: dict = Depends(form_data), user=Depends(allowed),
           db: Session = Depends(get_session)):
    variants, provider = content_from_form(form)
    for_writing(db)
    try:
        template = service.create_template(db, key=str(form.get("key", "")).strip(), channel=str(form.get("channel", "")),
                                           name=str(form.get("name", "")).strip(), variants=variants,
                                           provider=provider, created_by=user.email)
        db.commit()
    except FieldError as exc:
        db.rollback()
        return _editor(request, db, template=None, form=form, error=_say(exc), error_field=exc.field,
                       status_code=422)
    return RedirectResponse(f"/channels/templates/{template.key}?saved=1", status_code=303)


@router.post("/channels/templates/preview")
def preview(request: Request, form: dict = Depends(form_data), user=Depends(allowed),
            db: Session = Depends(get_session)):
    """The unsaved content rendered for the chosen customer (or the reason it does not render)."""
    settings = settings_of(request)
    variants, provider = content_from_form(form)
    channel = str(form.get("channel", ""))
    if channel not in CHANNELS:
        existing = db.scalar(sa.select(Template.channel).where(Template.key == str(form.get("key", ""))))
        channel = existing or "email"
    chosen = str(form.get("customer_id", ""))
    rendered, error = None, None
    try:
        if not chosen.isdigit():
            raise FieldError("customer_id", "choose a customer")
        locale = str(form.get("locale", "")) or None
        rendered = service.preview_content(db, channel, variants, provider, int(chosen), timezone=settings.timezone,
                                           default_locale=settings.default_locale,
                                           locale=locale if locale in LOCALES else None)
    except FieldError as exc:
        error = _say(exc)
    except NotFound:
        error = f"customer_id: there is no customer {chosen}"
    except service.RenderError as exc:
        error = exc.reason
    error = in_language(error, pick_locale(request, user))
    return render(request, "channels/_preview.html", rendered=rendered, error=error, channel=channel)


@router.get("/channels/templates/{key}")
def edit_page(request: Request, key: str, user=Depends(allowed), db: Session = Depends(get_session)):
    try:
        template, version = service.get_version(db, key)
    except NotFound:
        return not_found_page(request)
    saved = request.query_params.get("saved")
    return _editor(request, db, template=template, form={**form_from_version(version), "name": template.name},
                   saved=int(saved) if saved and saved.isdigit() else None)


@router.post("/channels/templates/{key}")
def save(request: Request, key: str, form: dict = Depends(form_data), user=Depends(allowed),
         db: Session = Depends(get_session)):
    """Saving makes a new version; messages already queued keep the version they rendered."""
    try:
        template = service.get_template(db, key)
    except NotFound:
        return not_found_page(request)
    variants, provider = content_from_form(form)
    for_writing(db)
    try:
        version = service.update_template(db, key, variants=variants, provider=provider,
                                          name=str(form.get("name", "")).strip() or None, created_by=user.email)
        db.commit()
    except FieldError as exc:
        db.rollback()
        return _editor(request, db, template=template, form=form, error=_say(exc), error_field=exc.field,
                       status_code=422)
    return RedirectResponse(f"/channels/templates/{key}?saved={version.version}", status_code=303)


def _say(exc: FieldError) -> str:
    return f"{exc.field}: {exc.message}" if exc.field else exc.message
