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


Key = ApiKey | WriteKey


def create_api_key(session: Session, name: str, scopes: list[str]) -> tuple[ApiKey, str]:
    """Make a key; returns the row and the secret (the only time it exists in clear)."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope {unknown[0]!r}; choose from {', '.join(SCOPES)}")
    return _issue(session, ApiKey, "clm_", 32, name=name, scopes=list(scopes))


def find_api_key(session: Session, secret: str) -> ApiKey | None:
    return _find(session, ApiKey, secret)


def create_write_key(session: Session, name: str) -> tuple[WriteKey, str]:
    return _issue(session, WriteKey, "wk_", 24, name=name)


def find_write_key(session: Session, secret: str) -> WriteKey | None:
    return _find(session, WriteKey, secret)


def _issue(session: Session, model: type[Key], tag: str, size: int, **fields) -> tuple[Key, str]:
    """A new key row: the secret is `tag` and `size` random bytes; its first 6 characters after the tag are
    kept in clear (to tell keys apart), the whole only as a digest."""
    secret = tag + secrets.token_urlsafe(size)
    row = model(prefix=secret[:len(tag) + 6], key_hash=digest(secret), created_at=utcnow(), **fields)
    session.add(row)
    session.flush()
    return row, secret


def _find(session: Session, model: type[Key], secret: str) -> Key | None:
    """The key with this secret, unless it was revoked."""
    row = session.scalar(sa.select(model).where(model.key_hash == digest(secret)))
    return row if row is not None and row.revoked_at is None else None


def revoke(session: Session, model: type[ApiKey] | type[WriteKey], key_id: int, when: datetime | None = None) -> bool:
    row = session.get(model, key_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = when or utcnow()
    session.flush()
    return True
