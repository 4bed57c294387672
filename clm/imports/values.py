"""Reading spreadsheet cells into typed values: times, whole numbers, amounts, JSON.

Cells come as text from CSV and as JSON values from JSON Lines; both are accepted.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from clm.lib.errors import FieldError

_DAY_FIRST = ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y", "%d-%m-%Y %H:%M:%S", "%d-%m-%Y")
_GROUPED = re.compile(r"^-?\d{1,3}([.,  ]\d{3})+$")
_SYMBOLS = re.compile(r"(?i)\s*(₫|đ|vnđ|vnd|\$|usd|€|eur)\s*")


def parse_time(raw: Any, field: str, zone: tzinfo) -> datetime:
    """An aware UTC datetime. ISO 8601, DD/MM/YYYY[ HH:MM[:SS]] or a Unix time; no zone: business time."""
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        seconds = raw / 1000 if raw > 1e11 else raw  # milliseconds, as JavaScript writes them
        return datetime.fromtimestamp(seconds, UTC)
    text = str(raw).strip()
    value: datetime | None = None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        for fmt in _DAY_FIRST:
            try:
                value = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if value is None:
        raise FieldError(field, f"{text!r} is not a date and time (use ISO 8601, e.g. 2024-05-31T14:30:00+07:00, "
                                "or DD/MM/YYYY HH:MM)")
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


def zone(name: str) -> tzinfo:
    return ZoneInfo(name)


def whole_number(raw: Any, field: str, minimum: int = 0) -> int:
    if isinstance(raw, bool):
        raise FieldError(field, "must be a whole number")
    if isinstance(raw, int):
        value = raw
    else:
        try:
            number = Decimal(str(raw).strip())
        except InvalidOperation:
            raise FieldError(field, f"{raw!r} is not a whole number") from None
        if not number.is_finite() or number != number.to_integral_value():
            raise FieldError(field, f"{raw!r} is not a whole number")
        value = int(number)
    if value < minimum:
        raise FieldError(field, f"must be at least {minimum}")
    return value


def amount_text(raw: Any) -> Any:
    """Spreadsheet money as plain numbers: "1.250.000 ₫" -> "1250000", "25,50" -> "25.50".

    Numbers (JSON) pass through. Grouped thousands (1.250.000 / 1,250,000) lose their separators;
    a lone comma is the decimal point, as Vietnamese spreadsheets write it.
    """
    if not isinstance(raw, str):
        return raw
    text = _SYMBOLS.sub("", raw).strip().replace("\u00a0", "").replace(" ", "")
    if _GROUPED.match(text):
        return re.sub(r"[.,  ]", "", text)
    if "," in text and "." in text:  # 1,250.50 or 1.250,50: the last one is the decimal point
        decimal_point = "." if text.rfind(".") > text.rfind(",") else ","
        other = "," if decimal_point == "." else "."
        return text.replace(other, "").replace(decimal_point, ".")
    return text.replace(",", ".")


def json_object(raw: Any, field: str) -> dict[str, Any]:
    """A JSON object from a cell (text) or a JSON Lines value."""
    if isinstance(raw, dict):
        return raw
    try:
        value = orjson.loads(raw)
    except (orjson.JSONDecodeError, TypeError):
        raise FieldError(field, "must be a JSON object, e.g. {\"plan\": \"gold\"}") from None
    if not isinstance(value, dict):
        raise FieldError(field, "must be a JSON object")
    return value


def json_value(raw: Any) -> Any:
    """A custom trait or property from a cell: kept as text unless the source is JSON Lines."""
    if isinstance(raw, date | datetime | time):
        return raw.isoformat()
    return raw
