"""The program's settings (one row), read and written through a typed model, and the calendar it keeps:
when a lot earned at a moment expires, when a return window ends."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, field_validator
from sqlalchemy.orm import Session

from clm.lib.clock import utcnow
from clm.lib.errors import FieldError
from clm.lib.money import InvalidMoney, check_currency
from clm.loyalty.models import Program

PROGRAM_ID = 1


class ProgramSettings(BaseModel):
    """What a business decides about its program. Defaults: 1 point is worth 1,000 VND of liability,
    order points wait out a 7-day return window and expire at the end of the year after they were earned."""

    active: bool = True
    name: str = Field("Khách hàng thân thiết", min_length=1, max_length=120)
    point_name: str = Field("điểm", min_length=1, max_length=64)
    point_value: int = Field(1000, ge=0, description="Money (minor units) one point is worth, for the liability "
                             "and for paying with points.")
    currency: str = "VND"
    timezone: str = "Asia/Ho_Chi_Minh"
    pending_days: int = Field(7, ge=0, le=365, description="Days order points wait (the return window).")
    expiry: Literal["never", "months", "quarter_end", "year_end"] = "year_end"
    expiry_months: int = Field(12, ge=0, le=120, description="months: a lot lasts this many months; "
                               "quarter_end/year_end: it lasts to the end of the quarter/year this many months on.")
    debt_policy: Literal["debt", "loss"] = "debt"
    redeem_share_percent: int = Field(50, ge=0, le=100, description="At most this share of an order paid with points.")
    tier_basis: Literal["points", "spend"] = "points"
    tier_window: Literal["rolling", "calendar_year"] = "rolling"
    tier_window_months: int = Field(12, ge=1, le=60)
    tier_review: Literal["yearly", "after_upgrade"] = "after_upgrade"
    tier_grace_days: int = Field(0, ge=0, le=365)
    tier_downgrade: Literal["one_step", "supported"] = "one_step"
    referrer_points: int = Field(100, ge=0)
    referred_points: int = Field(50, ge=0)
    referral_url: str = Field("", max_length=500, pattern=r"^(https?://\S*\{code\}\S*)?$",
                              description="The shop's sign-up address with {code} where the referral code goes "
                              "(https://shop.vn/dang-ky?ref={code}), shown on the member page; empty: the code alone.")

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        try:
            return check_currency(value)
        except InvalidMoney as exc:
            raise ValueError(str(exc)) from None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a time zone (e.g. Asia/Ho_Chi_Minh)") from None
        return value


def get_program(session: Session) -> Program | None:
    """The program, or None when the business has not started one."""
    return session.get(Program, PROGRAM_ID)


def require_program(session: Session) -> Program:
    program = get_program(session)
    if program is None:
        raise FieldError(None, "there is no loyalty program yet; set one up (PUT /api/v1/loyalty/program)",
                         code="no_program")
    return program


def save_program(session: Session, settings: ProgramSettings) -> Program:
    """Create or replace the program's settings. Existing lots keep the expiry they were given."""
    program = get_program(session)
    values = settings.model_dump()
    if program is None:
        program = Program(id=PROGRAM_ID, created_at=utcnow(), **values)
        session.add(program)
    else:
        for name, value in values.items():
            setattr(program, name, value)
    session.flush()
    return program


def settings_of(program: Program) -> ProgramSettings:
    return ProgramSettings.model_validate({f: getattr(program, f) for f in ProgramSettings.model_fields})


def add_months(moment: datetime, months: int) -> datetime:
    """The same day and time `months` later (the month's last day when it is shorter)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    for day in range(moment.day, 27, -1):
        try:
            return moment.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    return moment.replace(year=year, month=month, day=min(moment.day, 28))


def expires_at(program: Program, earned_at: datetime) -> datetime | None:
    """When a lot earned at `earned_at` expires under the program's policy (UTC), or None for never."""
    if program.expiry == "never":
        return None
    if program.expiry == "months":
        return add_months(earned_at, program.expiry_months)
    zone = ZoneInfo(program.timezone)
    local = add_months(earned_at.astimezone(zone), program.expiry_months)
    if program.expiry == "quarter_end":
        first_of_next = (local.month - 1) // 3 * 3 + 4  # month after the quarter's end, maybe 13
        year, month = (local.year + 1, 1) if first_of_next > 12 else (local.year, first_of_next)
    else:
        year, month = local.year + 1, 1
    # The first instant of the next period, local time: lots expire at midnight ending the period.
    return datetime(year, month, 1, tzinfo=zone).astimezone(earned_at.tzinfo)


def available_at(program: Program, earned_at: datetime) -> datetime:
    """When order points earned at `earned_at` become spendable (after the return window)."""
    return earned_at + timedelta(days=program.pending_days)
