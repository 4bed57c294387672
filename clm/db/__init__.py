"""Storage: engine and sessions, the declarative base, migrations."""

from clm.db.base import Base, BigId, Json, UTCDateTime
from clm.db.engine import make_engine, make_session_factory

__all__ = ["Base", "BigId", "Json", "UTCDateTime", "make_engine", "make_session_factory"]
