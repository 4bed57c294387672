"""The generated demo shop: customers' stories, produced lazily chunk by chunk.

Randomness is seeded per chunk of CHUNK customers from (seed, chunk number), so a customer's story
depends only on the seed and their index: the same seed gives the same shop whatever is asked of it
afterwards, and memory stays bounded however many customers there are.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np

from clm.demo.behaviour import DAY, BuyingModel, draw_arrivals
from clm.demo.catalogue import Catalogue
from clm.demo.people import draw_people
from clm.demo.seasons import HOUR_CDF, STORE_CDF, daily_multipliers
from clm.demo.stories import Storyteller, Window

CHUNK = 1000
LOCAL = timedelta(hours=7)  # Asia/Ho_Chi_Minh has no daylight saving time
# Above this many customers, browsing-only visits are left out (see docs/demo.md): they are two thirds
# of the messages and add nothing to the purchase history CLV models learn from.
LEAN_ABOVE = 200_000


@dataclass(frozen=True)
class ShopSpec:
    """What to generate: how many customers, which seed, the history's end and length."""

    customers: int = 20_000
    seed: int = 42
    now: datetime = field(default_factory=lambda: datetime.now(UTC).replace(minute=0, second=0, microsecond=0))
    days: int = 548  # 18 months
    model: BuyingModel = field(default_factory=BuyingModel)
    browsing: bool | None = None  # None: yes up to LEAN_ABOVE customers

    def __post_init__(self):
        if self.customers < 1:
            raise ValueError("customers must be at least 1")
        if self.now.tzinfo is None:
            raise ValueError("now must be an aware datetime")

    @property
    def with_browsing(self) -> bool:
        return self.customers <= LEAN_ABOVE if self.browsing is None else self.browsing

    def window(self) -> tuple[Window, np.ndarray]:
        """The history's span and the cumulative distribution of acquisition days."""
        local_now = self.now.astimezone(UTC) + LOCAL
        first_day: date = local_now.date() - timedelta(days=self.days)
        start = datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC) - LOCAL
        # Two hours of margin: a session started before "now" finishes before it.
        end = self.now.timestamp() - 2 * 3600
        multipliers = daily_multipliers(first_day, self.days + 1)
        growth = np.linspace(0.7, 1.3, len(multipliers))  # the shop grows over the 18 months
        weights = multipliers * growth
        weights[-1] *= max(0.0, (end - (start.timestamp() + self.days * DAY)) / DAY)  # today so far
        cdf = np.cumsum(weights)
        return Window(start.timestamp(), end, multipliers), cdf / cdf[-1]


def stories(spec: ShopSpec, catalogue: Catalogue | None = None) -> Iterator[list[dict]]:
    """Each customer's messages in time order, customer after customer."""
    catalogue = catalogue or Catalogue()
    window, acquisition_cdf = spec.window()
    for chunk_start in range(0, spec.customers, CHUNK):
        n = min(CHUNK, spec.customers - chunk_start)
        rng = np.random.default_rng([spec.seed, chunk_start // CHUNK])
        # Always a whole chunk's draws (the last one partly unused): a story depends on the index alone.
        arrivals = draw_arrivals(rng, CHUNK, start=window.start, acquisition_cdf=acquisition_cdf, hour_cdf=HOUR_CDF,
                                 store_cdf=STORE_CDF, categories=catalogue.category_share, model=spec.model)
        # Acquisitions may not fall after the end (the last day is partly in the future).
        arrivals.acquired = np.minimum(arrivals.acquired, window.end - 3 * 3600)
        today = (spec.now + LOCAL).date()
        people = draw_people(rng, chunk_start, CHUNK, spec.seed, today, arrivals.channel)
        teller = Storyteller(catalogue, window, spec.seed, random.Random(int(rng.integers(2**62))),
                             browsing=spec.with_browsing)
        for k in range(n):
            yield teller.story(people, arrivals, k)
