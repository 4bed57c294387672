"""Dashboard languages: Vietnamese and English strings, the choice of language, and Babel formatting.

Messages are a dict per locale (tests/dashboard/test_i18n.py checks that both have the same keys and
that every key a template or page uses exists). The language is the user's (users.locale), else the
`clm_lang` cookie set by the switcher, else the browser's Accept-Language, else Vietnamese.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

import phonenumbers
from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal, format_percent
from fastapi import Request

from clm.lib.clock import as_utc
from clm.lib.money import format_money
from clm.web.messages import MESSAGES

COOKIE = "clm_lang"
LOCALES = ("vi", "en")
DEFAULT = "vi"
BABEL = {"vi": "vi_VN", "en": "en_US"}


def from_accept_language(header: str | None) -> str | None:
    """The first supported language in an Accept-Language header, by quality ("en-US,en;q=0.9" -> "en")."""
    choices = []
    for i, part in enumerate((header or "").split(",")):
        lang, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        choices.append((-q, i, lang.strip().lower().split("-")[0]))
    for _, _, lang in sorted(choices):
        if lang in LOCALES:
            return lang
    return None


def pick_locale(request: Request, user=None) -> str:
    if user is not None and user.locale in LOCALES:
        return user.locale
    cookie = request.cookies.get(COOKIE)
    if cookie in LOCALES:
        return cookie
    return from_accept_language(request.headers.get("accept-language")) or DEFAULT


@lru_cache(maxsize=4)
def translator(locale: str) -> Callable[..., str]:
    """t(key, **values): the message in `locale`, formatted with `values`; a missing key shows as itself."""
    messages = MESSAGES.get(locale, MESSAGES[DEFAULT])

    def t(key: str, **values) -> str:
        text = messages.get(key)
        if text is None:
            return key
        return text.format(**values) if values else text

    return t


@lru_cache(maxsize=4)
def stage_namer(locale: str) -> Callable[[str | None], str]:
    """Stage key -> name people read; from clm.lifecycle when it names stages, else our own table."""
    names: dict[str, str] = {}
    try:
        from clm.lifecycle.metrics import stage_names

        names = dict(stage_names(locale))
    except (ImportError, AttributeError):
        pass
    t = translator(locale)

    def name(key: str | None) -> str:
        if not key:
            return t("stage.none")
        return names.get(key) or (t(f"stage.{key}") if f"stage.{key}" in MESSAGES[locale] else key)

    return name


class Formatter:
    """Numbers, money, dates and phones for one locale, times shown in the business time zone."""

    def __init__(self, locale: str, timezone: str):
        self.locale = BABEL.get(locale, locale)
        self.tz = ZoneInfo(timezone)

    def number(self, value: int | float) -> str:
        return format_decimal(value, locale=self.locale)

    def percent(self, value: float | None) -> str:
        return "—" if value is None else format_percent(value, format="#,##0.0%", locale=self.locale)

    def money(self, minor: int, currency: str) -> str:
        return format_money(minor, currency, self.locale)

    def date(self, value: date | datetime | None) -> str:
        if value is None:
            return ""
        if isinstance(value, datetime):
            value = as_utc(value).astimezone(self.tz).date()
        return format_date(value, format="medium", locale=self.locale)

    def datetime(self, value: datetime | None) -> str:
        if value is None:
            return ""
        return format_datetime(as_utc(value), format="short", tzinfo=self.tz, locale=self.locale)

    def week(self, start: datetime) -> str:
        """A week by its Monday, short ("3 thg 3" / "Mar 3")."""
        local = as_utc(start).astimezone(self.tz).date()
        return format_date(local, format="d MMM" if self.locale.startswith("vi") else "MMM d", locale=self.locale)

    def phone(self, e164: str | None) -> str:
        """Vietnamese numbers the way people write them (0912 345 678), others internationally."""
        if not e164:
            return ""
        try:
            parsed = phonenumbers.parse(e164, None)
        except phonenumbers.NumberParseException:
            return e164
        fmt = (phonenumbers.PhoneNumberFormat.NATIONAL if parsed.country_code == 84
               else phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        return phonenumbers.format_number(parsed, fmt)
