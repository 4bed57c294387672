"""How the demo shop's customers arrive and buy: a BG/NBD process with seasonality.

Each customer has their own purchase rate lambda ~ Gamma(r, alpha) and, after every purchase, drops
out for good with probability p ~ Beta(a, b) (Fader, Hardie & Lee 2005, "Counting Your Customers the
Easy Way", Marketing Science 24(2)). That heterogeneity and drop-out is what CLV models look for: a
few customers buy often, many once, and the quiet ones are sometimes gone and sometimes just slow.
CDNOW's fit is r=0.24, alpha=4.4 weeks, a=0.79, b=2.4; a fashion and cosmetics shop is bought from
more often, so the defaults here are higher rates with a similar drop-out.

Purchases follow the shop's busy days (seasons.daily_multipliers) by thinning: candidate times at the
peak rate are kept in proportion to the day's multiplier, which leaves each customer's average rate
and the BG/NBD structure unchanged in shape.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np

# Acquisition channels and their shares of new customers.
CHANNELS = {"facebook": 0.36, "zalo": 0.24, "google": 0.16, "referral": 0.09, "walk-in": 0.15}
DAY = 86_400.0


@dataclass(frozen=True)
class BuyingModel:
    r: float = 0.6  # Gamma shape of the purchase rate
    alpha: float = 45.0  # Gamma rate, in days (mean rate r/alpha per day: about 4.9 purchases a year)
    a: float = 0.8  # Beta(a, b): drop-out probability after each purchase (mean a/(a+b) = 0.24)
    b: float = 2.5
    buy_at_once: float = 0.62  # share whose first visit ends in an order
    buy_later: float = 0.18  # share who buy later (mean delay `later_days`); the rest stay leads
    later_days: float = 21.0


@dataclass
class Arrivals:
    """A chunk of customers' acquisition facts and buying parameters (arrays, one entry each)."""

    channel: np.ndarray
    acquired: np.ndarray  # POSIX seconds
    first_purchase_delay: np.ndarray  # seconds after acquisition; inf: never buys
    lam: np.ndarray  # purchases per day
    p: np.ndarray  # drop-out probability after each purchase
    favourite: np.ndarray  # index of the favourite category


def draw_arrivals(rng: np.random.Generator, n: int, *, start: float, acquisition_cdf: np.ndarray,
                  hour_cdf: np.ndarray, store_cdf: np.ndarray, categories: np.ndarray,
                  model: BuyingModel) -> Arrivals:
    """Acquisition channel, moment and buying parameters for `n` customers."""
    names = list(CHANNELS)
    channel = np.array(names, dtype=object)[rng.choice(len(names), size=n, p=list(CHANNELS.values()))]
    day = np.searchsorted(acquisition_cdf, rng.random(n))
    walk_in = channel == "walk-in"
    hour = np.where(walk_in, np.searchsorted(store_cdf, rng.random(n)), np.searchsorted(hour_cdf, rng.random(n)))
    # Local hours (UTC+7) back to UTC seconds from `start` (midnight local of the first day).
    acquired = start + day * DAY + (hour + rng.random(n)) * 3600.0
    u = rng.random(n)
    later = rng.exponential(model.later_days * DAY, n)
    delay = np.where(u < model.buy_at_once, rng.uniform(300, 1800, n),
                     np.where(u < model.buy_at_once + model.buy_later, later, np.inf))
    delay = np.where(walk_in, 0.0, delay)  # someone who walks in and gives a phone number is buying
    lam = rng.gamma(model.r, 1.0 / model.alpha, n)
    p = rng.beta(model.a, model.b, n)
    favourite = rng.choice(len(categories), size=n, p=categories)
    return Arrivals(channel, acquired, delay, lam, p, favourite)


def purchase_times(rnd: random.Random, first: float, lam: float, p: float, *, start: float, end: float,
                   multipliers: np.ndarray, peak: float) -> tuple[list[float], float]:
    """The customer's purchase times (POSIX seconds) up to `end`, and when they dropped out (or `end`).

    BG/NBD: after each purchase the customer drops out with probability p; while active, purchases
    arrive as a Poisson process of rate lam (per day), thinned by the day's multiplier.
    """
    if first >= end:
        return [], end
    times = [first]
    t = first
    days = len(multipliers)
    while rnd.random() >= p:
        while True:
            t += rnd.expovariate(lam * peak) * DAY if lam > 0 else math.inf
            if t >= end:
                return times, end
            k = min(int((t - start) // DAY), days - 1)
            if rnd.random() * peak < multipliers[k]:
                break
        times.append(t)
    # The drop-out happens at some unobserved moment after the last purchase.
    return times, min(end, t + rnd.expovariate(lam) * DAY) if lam > 0 else t
