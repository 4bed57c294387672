"""Configuration read once per inbound batch (clm.service.inbound) instead of once per message: routing
settings, routing rules, custom fields, SLA policies. Outside a batch every read goes to the database.

A batch holds the routing lock, which saving routing settings takes too, so the settings it read stay true
to its end; rules, fields and policies changed meanwhile apply from the next batch (a second at most)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy.orm import Session

_KEY = "service.snapshot"
T = TypeVar("T")


@contextmanager
def held(session: Session) -> Iterator[None]:
    session.info[_KEY] = {}
    try:
        yield
    finally:
        session.info.pop(_KEY, None)


def cached(session: Session, name: str, load: Callable[[], T]) -> T:
    cache: dict[str, Any] | None = session.info.get(_KEY)
    if cache is None:
        return load()
    if name not in cache:
        cache[name] = load()
    return cache[name]
