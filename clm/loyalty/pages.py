"""Dashboard pages of the loyalty program.

Permission `loyalty` (admin, manager, marketer): the reports (/loyalty), member lookup and a member's page.
Permission `loyalty:manage` (admin, manager): the program page's forms (settings, tiers, earning rules,
rewards) and manual adjustments. Every form carries the CSRF token (checked by the dashboard router);
every change goes through the same services as the API and is written to `loyalty_audit` with the user.
A refused form is shown again with the problem named next to its field (422), nothing applied.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from clm.customers.models import Customer
from clm.customers.service import list_customers
from clm.db.engine import for_writing
from clm.lib.errors import FieldError, NotFound, dotted
from clm.loyalty import links, reports, rewards, rules, staff, tiers
from clm.loyalty.ledger import LedgerError
from clm.loyalty.member_view import member_view
from clm.loyalty.messages import install_templates
from clm.loyalty.models import Member
from clm.loyalty.program import ProgramSettings, get_program, save_program, settings_of
from clm.web import i18n
from clm.web.auth import require
from clm.web.deps import get_session
from clm.web.pages.base import dashboard_router, form_data, render
from clm.web.pages.errors import not_found_page

router = dashboard_router()
viewer = require("loyalty")
manager = require("loyalty:manage")
PROGRAM_FIELDS = tuple(ProgramSettings.model_fields)
CHOICES = {"expiry": ("never", "months", "quarter_end", "year_end"), "debt_policy": ("debt", "loss"),
           "tier_basis": ("points", "spend"), "tier_window": ("rolling", "calendar_year"),
           "tier_review": ("yearly", "after_upgrade"), "tier_downgrade": ("one_step", "supported")}
REWARD_KINDS = ("voucher", "percent", "product", "gift")
RULE_KINDS = ("spend", "multiplier", "event")
_WHOLE = re.compile(r"-?(\d+|\d{1,3}([.,\s]\d{3})+)")
RULE_EXAMPLES = {"spend": {"points": 1, "per_amount": 10000, "rounding": "down"},
                 "multiplier": {"percent": 200, "categories": [], "tiers": []},
                 "event": {"trigger": "track", "event": "Review Written", "points": 20}}


def _now(request: Request) -> datetime:
    return request.app.state.dashboard_clock()


def _first_error(exc: ValidationError, prefix: str = "") -> FieldError:
    err = exc.errors()[0]
    where = dotted(err["loc"]) or ""
    message = err["msg"].removeprefix("Value error, ")
    return FieldError(f"{prefix}{where}" if where else (prefix.rstrip(".") or None), message)


def _int(data: dict[str, Any], key: str, *, optional: bool = False) -> int | None:
    text = str(data.get(key, "")).strip()
    if not text and optional:
        return None
    # 1500, or with thousands grouped as people type them: 1.500 (vi), 1,500 (en), 1 500
    if not _WHOLE.fullmatch(text):
        raise FieldError(key, "must be a whole number")
    return int(re.sub(r"[.,\s]", "", text))


def _local_day(text: str, zone: str, field: str) -> datetime | None:
    """A date typed in the form, as the instant that day starts in the business's time zone."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        day = datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise FieldError(field, "is not a date (YYYY-MM-DD)") from None
    return datetime.combine(day, time(0), ZoneInfo(zone)).astimezone(UTC)


# --- reports -------------------------------------------------------------------------------------------


@router.get("/loyalty")
def reports_page(request: Request, user=Depends(viewer), db: Session = Depends(get_session)):
    program = get_program(db)
    if program is None:
        return render(request, "loyalty/reports.html", program=None)
    now, locale = _now(request), i18n.pick_locale(request, user)
    fmt, t = i18n.Formatter(locale, request.app.state.settings.timezone), i18n.translator(locale)
    totals = reports.outstanding(db, program)
    expiring = reports.expiring_by_month(db, program, now)
    months, per_tier = reports.members_per_tier(db, program, now)
    names = {tier.key: tier.name for tier in tiers.ladder(db)}
    rev_months, members, others = reports.revenue_split(db, program, now)
    chart = {
        "expiring": {"labels": [m for m, _ in expiring], "values": [n for _, n in expiring],
                     "label": t("loyalty.report.expiring_points")},
        "tiers": {"labels": months, "series": [{"label": names.get(k, k), "values": v} for k, v in per_tier.items()]},
        "revenue": {"labels": rev_months, "members": members, "others": others,
                    "member_label": t("loyalty.report.members"), "other_label": t("loyalty.report.non_members"),
                    "formatted_members": [fmt.money(v, program.currency) for v in members],
                    "formatted_others": [fmt.money(v, program.currency) for v in others]},
        "outstanding": {"labels": [t("loyalty.report.available"), t("loyalty.report.pending"),
                                   t("loyalty.report.redeemed"), t("loyalty.report.expired")],
                        "values": [totals.available, totals.pending, totals.redeemed, totals.expired]},
    }
    return render(request, "loyalty/reports.html", program=program, totals=totals, expiring=expiring,
                  chart_data=chart, tier_rows=[(names.get(k, k), v[-1]) for k, v in per_tier.items()],
                  revenue=list(zip(rev_months, members, others, strict=True)))


# --- members -------------------------------------------------------------------------------------------


@router.get("/loyalty/members")
def members_page(request: Request, q: str = "", user=Depends(viewer), db: Session = Depends(get_session)):
    q = q.strip()[:200]
    if q:
        found, _ = list_customers(db, q=q, limit=50)
        ids = [c.id for c in found]
        balances = {m.customer_id: m for m in db.scalars(sa.select(Member).where(Member.customer_id.in_(ids)))}
        rows = [(c, balances.get(c.id)) for c in found]
    else:  # the members holding the most points
        rows = [(c, m) for m, c in db.execute(
            sa.select(Member, Customer).join(Customer, Customer.id == Member.customer_id)
            .where(Customer.merged_into_id.is_(None)).order_by(Member.available.desc(), Member.customer_id)
            .limit(50)).all()]
    names = {tier.key: tier.name for tier in tiers.ladder(db)}
    return render(request, "loyalty/members.html", q=q, rows=rows, tier_names=names, program=get_program(db))


def _member(request: Request, db: Session, user, customer_id: int, status_code: int = 200,
            error: FieldError | None = None, values: dict | None = None):
    now = _now(request)
    for_writing(db)
    try:
        view = member_view(db, customer_id, now, history=50)
    except NotFound:
        db.rollback()
        return not_found_page(request)
    except FieldError as exc:  # no program yet
        db.rollback()
        return render(request, "loyalty/reports.html", status_code=409, program=None, error=str(exc))
    db.commit()
    link = links.member_url(request.app.state.settings, customer_id, now)
    names = {tier.key: tier.name for tier in tiers.ladder(db)}
    return render(request, "loyalty/member.html", status_code=status_code, view=view, link=link, error=error,
                  values=values or {}, form_key=secrets.token_urlsafe(12), tier_names=names,
                  audit=staff.recent(db, 20, target=f"customer:{customer_id}"),
                  done=request.query_params.get("done") == "1")


@router.get("/loyalty/members/{customer_id}")
def member_page(customer_id: int, request: Request, user=Depends(viewer), db: Session = Depends(get_session)):
    return _member(request, db, user, customer_id)


@router.post("/loyalty/members/{customer_id}/adjust")
def member_adjust(customer_id: int, request: Request, data: dict = Depends(form_data), user=Depends(manager),
                  db: Session = Depends(get_session)) -> Response:
    """A manual adjustment: whole points (negative takes), a reason, the form's one-time key (a double
    submit changes the balance once)."""
    values = {k: str(data.get(k, "")) for k in ("points", "reason", "key", "qualifying")}
    try:
        points = _int(data, "points")
        key = values["key"].strip()
        if not key or len(key) > 64:
            raise FieldError("key", "the form is out of date; reload the page")
        if not values["reason"].strip():
            raise FieldError("reason", "say why the points change (kept in the ledger and the audit)")
        for_writing(db)
        staff.adjust(db, user, customer_id, points=points, reason=values["reason"][:255], key=key,
                     now=_now(request), qualifying=values["qualifying"] in ("1", "on", "true"))
        db.commit()
    except NotFound:
        db.rollback()
        return not_found_page(request)
    except (FieldError, LedgerError) as exc:
        db.rollback()
        error = exc if isinstance(exc, FieldError) else FieldError(exc.field, str(exc), exc.code)
        return _member(request, db, user, customer_id, status_code=422 if error.code != "insufficient_points"
                       else 409, error=error, values=values)
    return RedirectResponse(f"/loyalty/members/{customer_id}?done=1", status_code=303)


# --- the program: settings, tiers, rules, rewards -------------------------------------------------------


def _program_page(request: Request, db: Session, status_code: int = 200, error: FieldError | None = None,
                  section: str = "", values: dict | None = None):
    program = get_program(db)
    current = settings_of(program).model_dump() if program else ProgramSettings().model_dump()
    if section == "settings" and values:
        current.update(values)
    ladder = [{"key": t.key, "name": t.name, "threshold": t.threshold, "earn_percent": t.earn_percent,
               "benefits": t.benefits} for t in tiers.ladder(db)]
    if section == "tiers" and values is not None:
        ladder = values["tiers"]
    zone = ZoneInfo(request.app.state.settings.timezone)
    return render(request, "loyalty/program.html", status_code=status_code, program=program, settings=current,
                  fmt_day=lambda moment: moment.astimezone(zone).date().isoformat(),
                  choices=CHOICES, ladder=ladder, rules=rules.list_rules(db), reward_rows=rewards.list_rewards(db),
                  reward_kinds=REWARD_KINDS, rule_kinds=RULE_KINDS, examples=RULE_EXAMPLES, error=error,
                  section=section, values=values or {}, json=json,
                  audit=staff.recent(db, 20), saved=request.query_params.get("saved", ""))


def _done(section: str) -> RedirectResponse:
    return RedirectResponse(f"/loyalty/program?saved={section}#{section}", status_code=303)


def _refused(request: Request, db: Session, exc: Exception, section: str, values: dict | None = None) -> Response:
    db.rollback()
    error = _first_error(exc) if isinstance(exc, ValidationError) else exc
    return _program_page(request, db, 422, error=error, section=section, values=values)


@router.get("/loyalty/program")
def program_page(request: Request, user=Depends(viewer), db: Session = Depends(get_session)):
    return _program_page(request, db)


@router.post("/loyalty/program")
def program_save(request: Request, data: dict = Depends(form_data), user=Depends(manager),
                 db: Session = Depends(get_session)) -> Response:
    values: dict[str, Any] = {k: data[k] for k in PROGRAM_FIELDS if k in data and k != "active"}
    values["active"] = str(data.get("active", "")) in ("1", "on", "true")
    try:
        body = ProgramSettings.model_validate(values)
        for_writing(db)
        save_program(db, body)
        if not tiers.ladder(db):
            tiers.save_tiers(db, [tiers.TierIn(**t) for t in tiers.DEFAULT_TIERS])
        install_templates(db)
        staff.record(db, user, "program", details=body.model_dump(mode="json"), now=_now(request))
        db.commit()
    except (ValidationError, FieldError) as exc:
        return _refused(request, db, exc, "settings", values)
    return _done("settings")


@router.post("/loyalty/tiers")
def tiers_save(request: Request, data: dict = Depends(form_data), user=Depends(manager),
               db: Session = Depends(get_session)) -> Response:
    """The whole ladder, lowest first; a row with neither key nor name is left out (the blank row)."""
    rows = []
    for i in range(int(str(data.get("count", "0")) or 0) if str(data.get("count", "0")).isdigit() else 0):
        row = {f: str(data.get(f"tiers.{i}.{f}", "")).strip() for f in ("key", "name", "threshold", "earn_percent",
                                                                       "benefits")}
        if row["key"] or row["name"]:
            rows.append(row)
    try:
        parsed = []
        for i, row in enumerate(rows):
            try:
                parsed.append(tiers.TierIn.model_validate(row))
            except ValidationError as exc:
                raise _first_error(exc, f"tiers[{i}].") from None
        for_writing(db)
        tiers.save_tiers(db, parsed)
        staff.record(db, user, "tiers", details={"tiers": [t.model_dump() for t in parsed]}, now=_now(request))
        db.commit()
    except FieldError as exc:
        return _refused(request, db, exc, "tiers", {"tiers": rows})
    return _done("tiers")


def _rule_in(request: Request, data: dict) -> rules.RuleIn:
    zone = request.app.state.settings.timezone
    try:
        config = json.loads(str(data.get("config", "")) or "{}")
    except ValueError as exc:
        raise FieldError("config", f"is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(config, dict):
        raise FieldError("config", "must be a JSON object ({...})")
    try:
        return rules.RuleIn(name=str(data.get("name", "")).strip(), kind=str(data.get("kind", "")),
                            active=str(data.get("active", "")) in ("1", "on", "true"), config=config,
                            starts_at=_local_day(str(data.get("starts_at", "")), zone, "starts_at"),
                            ends_at=_local_day(str(data.get("ends_at", "")), zone, "ends_at"))
    except ValidationError as exc:
        raise _first_error(exc) from None


def _save_rule(db: Session, body: rules.RuleIn, rule_id: int | None):
    return rules.create_rule(db, body) if rule_id is None else rules.update_rule(db, rule_id, body)


@router.post("/loyalty/rules")
def rule_create(request: Request, data: dict = Depends(form_data), user=Depends(manager),
                db: Session = Depends(get_session)) -> Response:
    return _save_item(request, db, user, data, "rule", None, _rule_in, _save_rule,
                      {k: str(v) for k, v in data.items()})


@router.post("/loyalty/rules/{rule_id}")
def rule_update(rule_id: int, request: Request, data: dict = Depends(form_data), user=Depends(manager),
                db: Session = Depends(get_session)) -> Response:
    return _save_item(request, db, user, data, "rule", rule_id, _rule_in, _save_rule,
                      {k: str(v) for k, v in data.items()})


def _reward_in(request: Request, data: dict) -> rewards.RewardIn:
    zone = request.app.state.settings.timezone
    numbers = {k: _int(data, k, optional=True) for k in ("points", "value", "percent", "max_discount", "stock",
                                                         "per_member_limit", "voucher_days")}
    tier_keys = data.get("tiers", [])
    try:
        return rewards.RewardIn(
            name=str(data.get("name", "")).strip(), kind=str(data.get("kind", "")),
            product_sku=str(data.get("product_sku", "")).strip() or None,
            tiers=tier_keys if isinstance(tier_keys, list) else [tier_keys] if tier_keys else [],
            active=str(data.get("active", "")) in ("1", "on", "true"),
            valid_from=_local_day(str(data.get("valid_from", "")), zone, "valid_from"),
            valid_until=_local_day(str(data.get("valid_until", "")), zone, "valid_until"),
            **{k: v for k, v in numbers.items() if v is not None or k != "voucher_days"})
    except ValidationError as exc:
        raise _first_error(exc) from None


def _save_reward(db: Session, body: rewards.RewardIn, reward_id: int | None):
    if reward_id is not None:
        rewards.get_reward(db, reward_id)
    return rewards.save_reward(db, body, reward_id)


@router.post("/loyalty/rewards")
def reward_create(request: Request, data: dict = Depends(form_data), user=Depends(manager),
                  db: Session = Depends(get_session)) -> Response:
    return _save_item(request, db, user, data, "reward", None, _reward_in, _save_reward, dict(data))


@router.post("/loyalty/rewards/{reward_id}")
def reward_update(reward_id: int, request: Request, data: dict = Depends(form_data), user=Depends(manager),
                  db: Session = Depends(get_session)) -> Response:
    return _save_item(request, db, user, data, "reward", reward_id, _reward_in, _save_reward, dict(data))


def _save_item(request: Request, db: Session, user, data: dict, kind: str, item_id: int | None,
               parse: Callable[[Request, dict], Any], save: Callable[[Session, Any, int | None], Any],
               values: dict) -> Response:
    """An earning rule's or a reward's form (`kind`): parsed, saved (a new one when `item_id` is None) and
    audited; back to its section of the program page, or that page again with the problem next to the
    form and the values as typed (422), nothing applied."""
    try:
        body = parse(request, data)
        for_writing(db)
        row = save(db, body, item_id)
        staff.record(db, user, kind, target=f"{kind}:{row.id}", details=body.model_dump(mode="json"),
                     now=_now(request))
        db.commit()
    except NotFound:
        db.rollback()
        return not_found_page(request)
    except FieldError as exc:
        return _refused(request, db, exc, f"{kind}-{item_id or 'new'}", values)
    return _done(f"{kind}s")
