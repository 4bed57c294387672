"""API keys and write keys: random secrets shown once, stored as SHA-256 digests.

Keys are 32 random bytes, so a fast digest is as safe as a slow one here (no dictionary to try),
and it lets a request find its key with one indexed lookup. Passwords, which people choose, use
argon2 (clm.access.passwords).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.access.models import ApiKey, WriteKey
from clm.lib.clock import utcnow

SCOPES = ("customers:read", "customers:write", "events:read", "orders:read", "products:read", "segments:read",
          "segments:write", "journeys:read", "journeys:write", "loyalty:read", "loyalty:write", "loyalty:manage",
          "broadcasts:read", "broadcasts:write", "sales:read", "sales:write", "sales:manage", "service:read",
          "service:write", "service:manage", "admin")
READ_ALL = ["customers:read", "events:read", "orders:read", "products:read"]


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(session: Session, name: str, scopes: list[str]) -> tuple[ApiKey, str]:
    """Make a key; returns the row and the secret (the only time it exists in clear)."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope {unknown[0]!r}; choose from {', '.join(SCOPES)}")
    secret = "clm_" + secrets.token_urlsafe(32)
    row = ApiKey(name=name, prefix=secret[:10], key_hash=digest(secret), scopes=list(scopes), created_at=utcnow())
    session.add(row)
    session.flush()
    return row, secret


def find_api_key(session: Session, secret: str) -> ApiKey | None:
    row = session.scalar(sa.select(ApiKey).where(ApiKey.key_hash == digest(secret)))
    return row if row is not None and row.revoked_at is None else None


def create_write_key(session: Session, name: str) -> tuple[WriteKey, str]:
    secret = "wk_" + secrets.token_urlsafe(24)
    row = WriteKey(name=name, prefix=secret[:9], key_hash=digest(secret), created_at=utcnow())
    session.add(row)
    session.flush()
    return row, secret


def find_write_key(session: Session, secret: str) -> WriteKey | None:
    row = session.scalar(sa.select(WriteKey).where(WriteKey.key_hash == digest(secret)))
    return row if row is not None and row.revoked_at is None else None


def revoke(session: Session, model: type[ApiKey] | type[WriteKey], key_id: int, when: datetime | None = None) -> bool:
    row = session.get(model, key_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = when or utcnow()
    session.flush()
    return True
