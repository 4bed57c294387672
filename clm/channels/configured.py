"""Which channels are configured, described from settings for the channel settings page.

Secrets (passwords, tokens, keys) are never returned: only whether each is set. The SMTP URL is shown
as its scheme, host and port, without the user or password it may carry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from clm.channels.adapters.registry import SETTING_HINTS


@dataclass
class ChannelSetup:
    channel: str
    configured: bool
    provider: str | None
    details: list[tuple[str, str]] = field(default_factory=list)  # (setting, shown value)
    secrets: list[tuple[str, bool]] = field(default_factory=list)  # (setting, is set)
    hint: str | None = None  # what to set when not configured


def _set(value) -> bool:
    if value is None:
        return False
    getter = getattr(value, "get_secret_value", None)
    return bool(getter() if getter else value)


def smtp_server(url: str) -> str:
    """`smtp://user:pass@host:587?starttls=1` -> `smtp://host:587 (STARTTLS)`: no credentials."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    starttls = parse_qs(parts.query).get("starttls", ["0"])[0] in ("1", "true", "yes")
    return f"{parts.scheme}://{host}{port}" + (" (STARTTLS)" if starttls else "")


def describe_channels(settings) -> list[ChannelSetup]:
    """One entry per channel, in the order of CHANNELS."""
    smtp = settings.smtp_url.get_secret_value() if _set(settings.smtp_url) else None
    email = ChannelSetup("email", smtp is not None, "smtp" if smtp else None,
                         details=[("CLM_SMTP_URL", smtp_server(smtp) if smtp else ""),
                                  ("CLM_EMAIL_FROM", settings.email_from),
                                  ("CLM_PUBLIC_URL", settings.public_url)],
                         secrets=[("CLM_SMTP_URL", smtp is not None),
                                  ("CLM_DKIM_PRIVATE_KEY", _set(getattr(settings, "dkim_private_key", None)))])
    if getattr(settings, "dkim_selector", None):
        email.details.append(("CLM_DKIM_SELECTOR", f"{settings.dkim_selector}._domainkey.{settings.dkim_domain or '?'}"))
    esms = _set(settings.esms_api_key) and _set(settings.esms_secret_key) and bool(settings.esms_brandname)
    speed = _set(settings.speedsms_token)
    sms_provider = settings.sms_provider or ("esms" if esms else "speedsms" if speed else None)
    sms_ready = (sms_provider == "esms" and esms) or (sms_provider == "speedsms" and speed)
    sms = ChannelSetup("sms", bool(sms_ready), sms_provider if sms_ready else None,
                       details=[("CLM_SMS_PROVIDER", settings.sms_provider or ""),
                                ("CLM_ESMS_BRANDNAME", settings.esms_brandname or ""),
                                ("CLM_ESMS_SANDBOX", "on" if settings.esms_sandbox else "off"),
                                ("CLM_SPEEDSMS_SENDER", settings.speedsms_sender or "")],
                       secrets=[("CLM_ESMS_API_KEY", _set(settings.esms_api_key)),
                                ("CLM_ESMS_SECRET_KEY", _set(settings.esms_secret_key)),
                                ("CLM_SPEEDSMS_TOKEN", speed), ("CLM_HOOKS_TOKEN", _set(settings.hooks_token))])
    zalo_ready = _set(settings.zalo_access_token) or bool(settings.zalo_token_file and _set(settings.zalo_refresh_token))
    zalo = ChannelSetup("zalo", bool(zalo_ready), "zalo_zns" if zalo_ready else None,
                        details=[("CLM_ZALO_APP_ID", settings.zalo_app_id or ""),
                                 ("CLM_ZALO_TOKEN_FILE", str(settings.zalo_token_file or ""))],
                        secrets=[("CLM_ZALO_ACCESS_TOKEN", _set(settings.zalo_access_token)),
                                 ("CLM_ZALO_REFRESH_TOKEN", _set(settings.zalo_refresh_token)),
                                 ("CLM_ZALO_APP_SECRET", _set(settings.zalo_app_secret)),
                                 ("CLM_ZALO_OA_SECRET_KEY", _set(settings.zalo_oa_secret_key))])
    messenger = ChannelSetup("messenger", _set(settings.messenger_page_token),
                             "messenger" if _set(settings.messenger_page_token) else None,
                             details=[("CLM_MESSENGER_GRAPH_URL", settings.messenger_graph_url)],
                             secrets=[("CLM_MESSENGER_PAGE_TOKEN", _set(settings.messenger_page_token)),
                                      ("CLM_MESSENGER_APP_SECRET", _set(settings.messenger_app_secret)),
                                      ("CLM_MESSENGER_VERIFY_TOKEN", _set(settings.messenger_verify_token))])
    webhook = ChannelSetup("webhook", _set(settings.webhook_signing_secret),
                           "webhook" if _set(settings.webhook_signing_secret) else None,
                           secrets=[("CLM_WEBHOOK_SIGNING_SECRET", _set(settings.webhook_signing_secret))])
    out = [email, sms, zalo, messenger, webhook]
    for entry in out:
        entry.details = [(k, v) for k, v in entry.details if v]
        if not entry.configured:
            entry.hint = SETTING_HINTS.get(entry.channel)
    return out
