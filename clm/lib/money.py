"""Money as integers in the currency's minor unit, formatted with Babel."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from functools import lru_cache

from babel.numbers import format_currency, get_currency_precision


class InvalidMoney(ValueError):
    """An amount or currency code that cannot be money."""


@lru_cache(maxsize=256)
def _precision(code: str) -> int:
    return get_currency_precision(code)


@lru_cache(maxsize=256)
def check_currency(code: str) -> str:
    code = (code or "").strip().upper()
    if len(code) != 3 or not code.isalpha():
        raise InvalidMoney(f"{code!r} is not an ISO 4217 currency code")
    return code


def to_minor(amount: float | int | str | Decimal, currency: str) -> int:
    """Convert a major-unit amount (as Segment sends: 25.5 USD) to minor units (2550)."""
    if isinstance(amount, int) and not isinstance(amount, bool):  # the common case: whole amounts
        return amount * 10 ** _precision(check_currency(currency))
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError) as exc:
        raise InvalidMoney(f"{amount!r} is not an amount") from exc
    if not value.is_finite():
        raise InvalidMoney(f"{amount!r} is not a finite amount")
    exponent = _precision(check_currency(currency))
    return int((value * (10**exponent)).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def from_minor(minor: int, currency: str) -> Decimal:
    return Decimal(minor) / (10 ** _precision(check_currency(currency)))


def format_money(minor: int, currency: str, locale: str = "vi_VN") -> str:
    """Format for people: format_money(1250000, "VND") -> "1.250.000 ₫"."""
    return format_currency(from_minor(minor, currency), currency, locale=locale)
