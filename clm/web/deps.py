"""Request dependencies shared by every API: the database session and the API key."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from clm.access.keys import find_api_key
from clm.access.models import ApiKey
from clm.lib.clock import utcnow
from clm.web.errors import ApiError

_bearer = HTTPBearer(auto_error=False, description="An API key made by `clm keys create`.")


def get_session(request: Request) -> Iterator[Session]:
    session = request.app.state.session_factory()
    try:
        yield session
    finally:
        session.close()


def require_scope(scope: str) -> Callable[..., ApiKey]:
    """A dependency that admits a Bearer API key holding `scope` (or `admin`)."""

    def check(
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
        session: Session = Depends(get_session),
    ) -> ApiKey:
        if credentials is None:
            raise ApiError(401, "unauthorized", "send an API key as 'Authorization: Bearer <key>'",
                           headers={"WWW-Authenticate": "Bearer"})
        key = find_api_key(session, credentials.credentials)
        if key is None:
            raise ApiError(401, "unauthorized", "the API key is unknown or revoked",
                           headers={"WWW-Authenticate": "Bearer"})
        if scope not in key.scopes and "admin" not in key.scopes:
            raise ApiError(403, "forbidden", f"this API key lacks the {scope!r} scope")
        if key.last_used_at is None or (utcnow() - key.last_used_at).total_seconds() > 60:
            key.last_used_at = utcnow()
            session.commit()
        return key

    return check
