"""Every string the dashboard shows, per locale: one module per language."""

from __future__ import annotations

from clm.web.messages.en import EN
from clm.web.messages.vi import VI

MESSAGES: dict[str, dict[str, str]] = {"en": EN, "vi": VI}
