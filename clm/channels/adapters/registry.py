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
        from clm.channels.adapters.dkim_signing import signer_from_settings
        from clm.channels.adapters.email import EmailAdapter

        adapters["email"] = EmailAdapter(settings.smtp_url.get_secret_value(), settings.email_from,
                                         signer=signer_from_settings(settings))
    adapters.update(_provider_adapters(settings))
    return adapters


def _secret(value) -> str | None:
    return value.get_secret_value() if value is not None and value.get_secret_value() else None


def _provider_adapters(settings) -> dict[str, Adapter]:
    """SMS (eSMS or SpeedSMS), Zalo ZNS, Messenger and outgoing webhooks (docs/channels.md, Providers)."""
    from clm.channels.adapters.esms import EsmsAdapter
    from clm.channels.adapters.messenger import MessengerAdapter
    from clm.channels.adapters.speedsms import SpeedSmsAdapter
    from clm.channels.adapters.webhook import WebhookAdapter
    from clm.channels.adapters.zalo import ZaloZnsAdapter

    timeout = settings.provider_timeout_seconds
    adapters: dict[str, Adapter] = {}
    esms_ready = bool(_secret(settings.esms_api_key) and _secret(settings.esms_secret_key) and settings.esms_brandname)
    speedsms_ready = bool(_secret(settings.speedsms_token))
    choice = settings.sms_provider or ("esms" if esms_ready else "speedsms" if speedsms_ready else None)
    if choice not in (None, "esms", "speedsms"):
        raise ValueError(f"CLM_SMS_PROVIDER must be esms or speedsms, not {choice!r}")
    if choice == "esms" and esms_ready:
        callback = settings.esms_callback_url
        if not callback and _secret(settings.hooks_token):
            callback = f"{settings.public_url.rstrip('/')}/hooks/esms/{_secret(settings.hooks_token)}"
        adapters["sms"] = EsmsAdapter(_secret(settings.esms_api_key), _secret(settings.esms_secret_key),
                                      settings.esms_brandname, url=settings.esms_url, sandbox=settings.esms_sandbox,
                                      unicode=settings.esms_unicode, callback_url=callback, timeout=timeout)
    elif choice == "speedsms" and speedsms_ready:
        adapters["sms"] = SpeedSmsAdapter(_secret(settings.speedsms_token), settings.speedsms_sender or "",
                                          settings.speedsms_sms_type, url=settings.speedsms_url, timeout=timeout)
    tokens = None
    if settings.zalo_token_file and settings.zalo_app_id and _secret(settings.zalo_app_secret):
        from clm.channels.adapters.zalo_tokens import ZaloTokens

        tokens = ZaloTokens(settings.zalo_token_file, settings.zalo_app_id, _secret(settings.zalo_app_secret),
                            _secret(settings.zalo_refresh_token), url=settings.zalo_oauth_url, timeout=timeout)
    zalo_token = (tokens.current() if tokens else None) or _secret(settings.zalo_access_token)
    if zalo_token or (tokens and tokens.first_refresh_token):
        # With only a refresh token, the first send's -124 answer makes the adapter fetch a token.
        adapters["zalo"] = ZaloZnsAdapter(zalo_token or "", url=settings.zalo_zns_url, oa_url=settings.zalo_oa_url,
                                          timeout=timeout,
                                          refresh=tokens.refresh if tokens else None)
    if _secret(settings.messenger_page_token):
        adapters["messenger"] = MessengerAdapter(_secret(settings.messenger_page_token),
                                                 graph_url=settings.messenger_graph_url, timeout=timeout,
                                                 app_secret=_secret(settings.messenger_app_secret))
    if _secret(settings.webhook_signing_secret):
        adapters["webhook"] = WebhookAdapter(_secret(settings.webhook_signing_secret), timeout=timeout)
    return adapters


SETTING_HINTS = {
    "email": "set CLM_SMTP_URL (smtp://user:pass@host:587?starttls=1)",
    "sms": "set CLM_ESMS_API_KEY, CLM_ESMS_SECRET_KEY and CLM_ESMS_BRANDNAME, or CLM_SPEEDSMS_TOKEN",
    "zalo": "set CLM_ZALO_ACCESS_TOKEN (the OA access token) or CLM_ZALO_REFRESH_TOKEN with CLM_ZALO_TOKEN_FILE",
    "messenger": "set CLM_MESSENGER_PAGE_TOKEN (the Page access token)",
    "webhook": "set CLM_WEBHOOK_SIGNING_SECRET",
}
