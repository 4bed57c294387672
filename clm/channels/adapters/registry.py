"""The adapters a worker sends with, built from settings (never at import time).

A channel without its settings has no adapter: its messages fail with a reason that names the
setting to add (see clm.channels.sending). Each channel's adapter adds itself below.
"""

from __future__ import annotations

from clm.channels.adapters.base import Adapter


def build_adapters(settings) -> dict[str, Adapter]:
    """Channel -> adapter, for the channels whose settings are present."""
    adapters: dict[str, Adapter] = {}
    if settings.smtp_url is not None:
        from clm.channels.adapters.email import EmailAdapter

        adapters["email"] = EmailAdapter(settings.smtp_url.get_secret_value(), settings.email_from)
    return adapters


SETTING_HINTS = {
    "email": "set CLM_SMTP_URL (smtp://user:pass@host:587?starttls=1)",
}
