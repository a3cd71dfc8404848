"""What the review workflow needs to know: timings, attempts, where links go.

`ReviewSettings` is a plain frozen value so that the service can be built in
tests without a configuration file; `from_config` maps the `[review]`
section onto it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sendguard.store.models import ExpiryOutcome

if TYPE_CHECKING:
    from sendguard.config import ReviewConfig

__all__ = ["ReviewSettings"]


@dataclass(frozen=True, kw_only=True, slots=True)
class ReviewSettings:
    """Timings and limits of the review workflow (see docs/review.md)."""

    base_url: str | None = None
    """Where the review web UI is reached from a sender's mail client; no links without it."""
    token_ttl: timedelta = timedelta(hours=24)
    release_attempts: int = 5
    """Delivery attempts of a released message (and of a decision callback)."""
    release_backoff: timedelta = timedelta(seconds=60)
    """Delay before the second attempt; doubled after each further failure."""
    release_lease: timedelta = timedelta(minutes=10)
    """How long one releaser owns a hold; keep it above one delivery attempt."""
    retention: timedelta = timedelta(days=30)
    """How long cancelled, expired and recalled messages are kept before purging."""
    expire_after: timedelta = timedelta(days=7)
    """Undecided holds expire this long after they were made."""
    expire_to: ExpiryOutcome = ExpiryOutcome.CANCEL
    poll_interval: float = 5.0
    """Seconds between passes of the background jobs."""
    callback_timeout: float = 5.0
    """Seconds one decision callback (HTTP POST) may take."""
    node: str = "system"
    """The actor named in the audit log for what the background jobs do."""

    def __post_init__(self) -> None:
        if self.release_attempts < 1:
            raise ValueError("release_attempts must be at least 1")
        if self.poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        if self.base_url is not None and not self.base_url.startswith(("https://", "http://")):
            raise ValueError("base_url must be an http(s) URL")

    def backoff(self, attempt: int) -> timedelta:
        """The wait after failed attempt number `attempt` (1, 2, ...): doubling."""
        return self.release_backoff * (1 << max(0, attempt - 1))

    def retry_span(self) -> timedelta:
        """How long a full series of attempts can take, waits included."""
        return sum((self.backoff(n) for n in range(1, self.release_attempts + 1)), timedelta())

    def expires_at(self, now: datetime) -> datetime:
        """When a hold made now expires if nobody decides (for `Store.hold`)."""
        return now + self.expire_after

    @classmethod
    def from_config(cls, review: ReviewConfig, *, node: str = "system") -> ReviewSettings:
        return cls(
            base_url=review.base_url,
            token_ttl=review.token_ttl,
            release_attempts=review.release_attempts,
            release_backoff=review.release_backoff,
            release_lease=review.release_lease,
            retention=review.retention,
            expire_after=review.expire_after,
            expire_to=ExpiryOutcome(review.expire_to),
            poll_interval=review.poll_interval,
            callback_timeout=review.callback_timeout,
            node=node,
        )
