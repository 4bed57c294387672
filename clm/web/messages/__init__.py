"""Every string the dashboard shows, per locale: one module per capability, each with its English (`EN`)
and Vietnamese (`VI`) strings side by side, merged here into one catalogue per language."""

from __future__ import annotations

from clm.web.messages import analytics, channels, core, journeys, loyalty, sales, segments, service

_AREAS = (core, analytics, segments, channels, journeys, loyalty, service, sales)


def _merge(locale: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    for module in _AREAS:
        strings: dict[str, str] = getattr(module, locale)
        clash = merged.keys() & strings.keys()
        if clash:
            raise RuntimeError(f"message keys defined twice ({module.__name__}): {sorted(clash)[:5]}")
        merged.update(strings)
    return merged


EN = _merge("EN")
VI = _merge("VI")
MESSAGES: dict[str, dict[str, str]] = {"en": EN, "vi": VI}
