"""Zalo OA access tokens, refreshed when Zalo says they expired (error -124).

An OA access token lives about 25 hours; ``POST {oauth}/v4/oa/access_token`` with a refresh token
gives a new pair, and **each refresh token works only once**. So the current pair lives in a file
(``CLM_ZALO_TOKEN_FILE``) that every worker process shares under an exclusive lock: the process
that refreshes writes the new pair, and one that finds a newer token than the one that failed uses
it without spending the refresh token again.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path

from clm.channels.adapters.base import TransientError
from clm.channels.adapters.http import ProviderClient, json_body
from clm.lib.clock import utcnow

REFRESH_PATH = "/v4/oa/access_token"


@dataclass
class ZaloTokens:
    path: Path
    app_id: str
    app_secret: str
    first_refresh_token: str | None = None
    url: str = "https://oauth.zaloapp.com"
    timeout: float = 10.0

    def __post_init__(self) -> None:
        self.http = ProviderClient("Zalo OAuth", self.timeout)

    def current(self) -> str | None:
        """The newest access token in the file, if any."""
        try:
            return json.loads(Path(self.path).read_text() or "{}").get("access_token")
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def refresh(self, failed_token: str) -> str | None:
        """A token newer than ``failed_token``: another process's, or a fresh one from Zalo."""
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
            handle.seek(0)
            try:
                stored = json.loads(handle.read() or "{}")
            except json.JSONDecodeError:
                stored = {}
            if stored.get("access_token") and stored["access_token"] != failed_token:
                return stored["access_token"]
            refresh_token = stored.get("refresh_token") or self.first_refresh_token
            if not refresh_token:
                return None
            pair = self._exchange(refresh_token)
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps({**pair, "refreshed_at": utcnow().isoformat()}))
            handle.flush()
            os.fsync(handle.fileno())
            return pair["access_token"]

    def _exchange(self, refresh_token: str) -> dict[str, str]:
        response = self.http.request("POST", self.url.rstrip("/") + REFRESH_PATH,
                                     data={"refresh_token": refresh_token, "app_id": self.app_id,
                                           "grant_type": "refresh_token"},
                                     headers={"secret_key": self.app_secret})
        answer = json_body(response) or {}
        if not answer.get("access_token") or not answer.get("refresh_token"):
            said = answer.get("error_description") or answer.get("error_name") or f"HTTP {response.status_code}"
            raise TransientError(f"Zalo refused to refresh the OA token ({answer.get('error', '')} {said}): "
                                 "set a new CLM_ZALO_REFRESH_TOKEN and delete the file CLM_ZALO_TOKEN_FILE names",
                                 code="token_refresh")
        return {"access_token": str(answer["access_token"]), "refresh_token": str(answer["refresh_token"])}
