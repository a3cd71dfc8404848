"""The quarantine interface: hold a message, get it back, list what is held.

The interface is synchronous on purpose: SQLite (and psycopg's sync API) are
blocking libraries, and the relay calls a store through `asyncio.to_thread`.
Implementations must be safe to call from several threads at once.

A hold is committed durably when `hold()` returns: the relay answers 250 to
the sending mail server only after that, so a crash afterwards loses nothing.
The message bytes are kept exactly as received, so that a later release can
send the very same bytes on.

Exceptions: every failure of the storage itself is a `StoreError`; asking for
a hold that does not exist returns None (`get`) or raises `HoldNotFound`.
"""

from __future__ import annotations

import abc
import builtins
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from sendguard.core.models import Verdict

__all__ = [
    "HeldMessage",
    "HoldNotFound",
    "HoldStatus",
    "HoldSummary",
    "MailEnvelope",
    "NotifyStatus",
    "Store",
    "StoreError",
]


class StoreError(RuntimeError):
    """The quarantine cannot be read or written; the message says why."""


class HoldNotFound(StoreError, LookupError):
    """No hold has this id."""


class HoldStatus(StrEnum):
    """Where a hold is in its life. Only `held` is set by the relay today;
    the review workflow moves holds on to the others."""

    PENDING = "pending"
    HELD = "held"
    RELEASED = "released"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class NotifyStatus(StrEnum):
    """Whether the sender has been told about the hold."""

    NONE = "none"  # not to be sent: null sender, notifications off, or a notification itself
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # gave up after the configured attempts


@dataclass(frozen=True, kw_only=True, slots=True)
class MailEnvelope:
    """The SMTP envelope a message arrived with.

    `recipients` are every RCPT TO the client gave; `mail_options` the
    MAIL FROM parameters that must travel on with the message on release
    (BODY=8BITMIME, SMTPUTF8).
    """

    mail_from: str
    recipients: tuple[str, ...]
    mail_options: tuple[str, ...] = ()
    peer: str = ""
    helo: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class HoldSummary:
    """A hold without its message bytes: what lists show."""

    hold_id: str
    status: HoldStatus
    created_at: datetime
    mail_from: str
    held_recipients: tuple[str, ...]
    message_id: str
    size: int
    action: str
    codes: tuple[str, ...]
    notify_status: NotifyStatus


@dataclass(frozen=True, kw_only=True, slots=True)
class HeldMessage:
    """One hold in full.

    `held_recipients` are the recipients the message is held for (all of
    them, or only the suspect ones when the relay splits mixed messages);
    the others in `envelope.recipients` were forwarded at once.
    """

    hold_id: str
    status: HoldStatus
    created_at: datetime
    envelope: MailEnvelope
    held_recipients: tuple[str, ...]
    message_id: str
    message: bytes
    sha256: str
    verdict: Verdict
    notify_status: NotifyStatus
    notify_attempts: int = 0
    notify_next_at: datetime | None = None
    notify_error: str | None = None
    notified_at: datetime | None = None
    codes: tuple[str, ...] = field(default=())
    """The codes of the findings the message is held for."""

    @property
    def size(self) -> int:
        return len(self.message)


class Store(abc.ABC):
    """A quarantine of held messages (SQLite today; PostgreSQL later)."""

    @abc.abstractmethod
    def hold(
        self,
        message: bytes,
        envelope: MailEnvelope,
        verdict: Verdict,
        *,
        held_recipients: Sequence[str] | None = None,
        message_id: str = "",
        notify: bool = True,
    ) -> str:
        """Store a message durably with status `held`; return its hold id.

        `held_recipients` defaults to every envelope recipient. `notify`
        queues a notification to the sender (ignored for the null sender).
        Committed before it returns; raises StoreError if it cannot be.
        """

    @abc.abstractmethod
    def discard(self, hold_id: str) -> None:
        """Remove a hold whose message was then not accepted after all (the
        client got a 4xx and will send it again). Never for accepted mail."""

    @abc.abstractmethod
    def get(self, hold_id: str) -> HeldMessage | None:
        """The hold with this id, message bytes included, or None."""

    @abc.abstractmethod
    def list(
        self,
        *,
        status: HoldStatus | None = None,
        since: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[HoldSummary]:
        """Holds, newest first, optionally of one status and since a time."""

    @abc.abstractmethod
    def count(self, *, status: HoldStatus | None = None) -> int:
        """How many holds there are (of one status)."""

    @abc.abstractmethod
    def due_notifications(self, now: datetime, limit: int = 50) -> builtins.list[HeldMessage]:
        """Holds whose sender notification is pending and due by `now`."""

    @abc.abstractmethod
    def record_notification(
        self,
        hold_id: str,
        *,
        sent: bool,
        error: str | None = None,
        next_attempt: datetime | None = None,
    ) -> None:
        """Record one notification attempt: sent, to be retried at
        `next_attempt`, or (no next attempt) given up."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections; the store is not used afterwards."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
