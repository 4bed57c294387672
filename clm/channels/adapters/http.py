"""The one seam through which the HTTP adapters talk to providers.

Every request has a timeout; a timeout, a refused connection or a 5xx becomes a TransientError, so
an adapter only has to read the provider's own answer. Tests point the base URLs at local servers.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import httpx
import orjson

from clm.channels.adapters.base import PermanentError, TransientError
from clm.lib.phones import InvalidPhone, normalize_phone

log = logging.getLogger("clm.channels")
_SECRET_PARAMS = ("access_token", "access-token", "appsecret_proof", "ApiKey", "SecretKey")


class _RedactSecrets(logging.Filter):
    """httpx logs every request URL at INFO; the Graph API takes its token in the query string."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, httpx.URL) for a in record.args):
            record.args = tuple(_redacted(a) if isinstance(a, httpx.URL) else a for a in record.args)
        return True


def _redacted(url: httpx.URL) -> httpx.URL:
    params = url.params
    for name in _SECRET_PARAMS:
        if name in params:
            params = params.set(name, "***")
    return url.copy_with(params=params)


_redact = _RedactSecrets()


class ProviderClient:
    """A lazily created, shared httpx client for one provider (thread-safe; connections are reused)."""

    def __init__(self, provider: str, timeout: float):
        self.provider = provider
        self.timeout = timeout
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                httpx_log = logging.getLogger("httpx")
                if _redact not in httpx_log.filters:
                    httpx_log.addFilter(_redact)
                self._client = httpx.Client(timeout=self.timeout, follow_redirects=False,
                                            headers={"User-Agent": "clm"})
            return self._client

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send one request; network failures and 5xx answers raise TransientError."""
        try:
            response = self.client.request(method, url, **kwargs)
        except httpx.TimeoutException:
            raise TransientError(f"{self.provider} did not answer within {self.timeout:g} s", code="timeout") from None
        except httpx.TransportError as exc:
            raise TransientError(f"could not reach {self.provider}: {exc.__class__.__name__}",
                                 code="connection") from None
        if response.status_code >= 500:
            raise TransientError(f"{self.provider} answered HTTP {response.status_code}; retrying later",
                                 code=response.status_code)
        return response

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def json_body(response: httpx.Response) -> dict[str, Any] | None:
    """The response's JSON object, or None when the body is not one."""
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def vn_local(phone: str, provider: str) -> str:
    """+84912345678 -> 0912345678: the domestic form Vietnamese gateways document."""
    try:
        e164 = normalize_phone(phone, "VN")
    except InvalidPhone:
        e164 = ""
    if not (e164.startswith("+84") and len(e164) == 12):
        raise PermanentError(f"{provider} sends to Vietnamese mobile numbers only; {phone!r} is not one",
                             code="bad_phone")
    return "0" + e164[3:]


def vn_international(phone: str, provider: str) -> str:
    """+84912345678 -> 84912345678: the country-code form without '+' (Zalo ZNS, SpeedSMS)."""
    return "84" + vn_local(phone, provider)[1:]
