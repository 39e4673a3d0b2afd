"""Requests per client address: a token bucket each, refilled evenly over a minute."""

from __future__ import annotations

from dataclasses import dataclass

MAX_CLIENTS = 10_000  # buckets kept; idle (full) ones are dropped first


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float  # seconds, on the limiter's clock


class RateLimiter:
    """At most `per_minute` requests a minute per address, in bursts of up to `per_minute`.

    Time comes in as seconds (`now`), so tests move it by hand.
    """

    def __init__(self, per_minute: int, max_clients: int = MAX_CLIENTS) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens a second
        self.max_clients = max_clients
        self._buckets: dict[str, _Bucket] = {}

    def take(self, address: str, now: float) -> float:
        """Spend one request: 0.0 if allowed, else the seconds until the next one is."""
        bucket = self._buckets.get(address)
        if bucket is None:
            if len(self._buckets) >= self.max_clients:
                self._forget_idle(now)
            bucket = self._buckets[address] = _Bucket(self.capacity, now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def _forget_idle(self, now: float) -> None:
        """Drop the buckets that have refilled (their clients start afresh anyway); if all
        are busy, the oldest half."""
        full = [
            a
            for a, b in self._buckets.items()
            if b.tokens + (now - b.at) * self.rate >= self.capacity
        ]
        if not full:
            by_age = sorted(self._buckets, key=lambda a: self._buckets[a].at)
            full = by_age[: len(by_age) // 2 or 1]
        for address in full:
            del self._buckets[address]
