"""A sliding-window rate limit per key (an IP address), kept in the process's memory.

Each server process counts on its own, so with N processes a client may get up to N times the limit;
that is enough to stop a script hammering a public form. Memory stays bounded: keys whose window is
empty are dropped when the table grows.
"""

from __future__ import annotations

import threading
import time
from collections import deque


class RateLimit:
    def __init__(self, limit: int, per_seconds: float, max_keys: int = 100_000):
        self.limit, self.per, self.max_keys = limit, per_seconds, max_keys
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, now: float | None = None) -> float | None:
        """Count one request for `key`; None when allowed, else the seconds until one more is allowed."""
        now = time.monotonic() if now is None else now
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                if len(self._hits) >= self.max_keys:
                    self._prune(now)
                hits = self._hits[key] = deque()
            while hits and hits[0] <= now - self.per:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(0.0, hits[0] + self.per - now)
            hits.append(now)
            return None

    def _prune(self, now: float) -> None:
        for key in [k for k, h in self._hits.items() if not h or h[-1] <= now - self.per]:
            del self._hits[key]
