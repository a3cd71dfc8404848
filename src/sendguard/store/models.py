"""What the quarantine stores and hands back: holds, claims, audit entries
and users. Plain frozen dataclasses, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sendguard.core.models import Verdict

__all__ = [
    "AWAITING_DECISION",
    "DEAD",
    "UNSENT",
    "AuditEntry",
    "AuditReport",
    "Conflict",
    "ExpiryOutcome",
    "HeldMessage",
    "HoldKind",
    "HoldNotFound",
    "HoldStatus",
    "HoldSummary",
    "MailEnvelope",
    "NotifyClaim",
    "NotifyStatus",
    "ReleaseClaim",
    "ReviewerRequired",
    "Role",
    "StoreError",
    "User",
]


class StoreError(RuntimeError):
    """The quarantine cannot be read or written; the message says why."""


class HoldNotFound(StoreError, LookupError):
    """No hold has this id."""


class Conflict(StoreError):
    """The thing to add exists already (a user name, an API token)."""


class ReviewerRequired(StoreError):
    """A release decision on a hold that `requires_reviewer`, by someone who
    is not a reviewer. Raised from inside the compare-and-set, so it holds
    even if the hold became reviewer-only (escalated) after the caller last
    read it; nothing was changed."""


class HoldStatus(StrEnum):
    """Where a hold is in its life.

    held ──> releasing ──> released          (the next hop said 250)
      │          │ └────> pending ──> releasing   (next hop 4xx/down: retried)
      │          └──────> failed               (refused for good; a person decides again)
      ├──> cancelled / recalled              (from held, escalated, failed, pending)
      └──> expired | escalated               (expires_at passed; escalated is decided later)
    """

    PENDING = "pending"
    HELD = "held"
    RELEASED = "released"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    RELEASING = "releasing"
    RECALLED = "recalled"
    ESCALATED = "escalated"
    FAILED = "failed"


AWAITING_DECISION = frozenset({HoldStatus.HELD, HoldStatus.ESCALATED, HoldStatus.FAILED})
"""Waiting for a person (or a delay-and-recall timer): release, cancel or expire."""
UNSENT = AWAITING_DECISION | {HoldStatus.PENDING}
"""Not with the next hop and no release in flight: may still be cancelled or recalled."""
DEAD = frozenset({HoldStatus.CANCELLED, HoldStatus.EXPIRED, HoldStatus.RECALLED})
"""Never sent and never will be: their content may be purged after a retention time."""


class HoldKind(StrEnum):
    """What is held: a whole email from the relay, or a fax or letter check
    made over HTTP (a JSON payload, no message bytes)."""

    EMAIL = "email"
    FAX = "fax"
    LETTER = "letter"


class ExpiryOutcome(StrEnum):
    """What an expired hold turns into: cancelled for good (`expired`), or
    passed up to a reviewer (`escalated`, decided later)."""

    CANCEL = "cancel"
    ESCALATE = "escalate"


class NotifyStatus(StrEnum):
    """Whether the sender has been told about the hold."""

    NONE = "none"  # not to be sent: null sender, notifications off, or a notification itself
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # gave up after the configured attempts


class Role(StrEnum):
    """What a user or API token may do (enforced by the API, stored here)."""

    SENDER = "sender"
    REVIEWER = "reviewer"
    ADMIN = "admin"


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
class ReleaseClaim:
    """One releaser's right to send a hold on, until `lease_until`.

    `token` fences the claim: once another releaser has taken an expired
    lease over, the old claim can no longer mark the hold released or failed.
    """

    hold_id: str
    owner: str
    token: str
    lease_until: datetime
    attempt: int


@dataclass(frozen=True, kw_only=True, slots=True)
class NotifyClaim:
    """One notifier's right to send a hold's notice, until `lease_until`.

    Without it, two nodes sweeping one outbox could both send the same
    notice. `token` fences the claim: once another notifier has taken an
    expired lease over, the old claim can no longer record a failure (a
    notice it did send is still recorded: it went). `attempt` counts from 1.
    """

    hold_id: str
    owner: str
    token: str
    lease_until: datetime
    attempt: int


@dataclass(frozen=True, kw_only=True, slots=True)
class HoldSummary:
    """A hold without its message bytes or payload: what lists show."""

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
    kind: HoldKind = HoldKind.EMAIL
    patients: tuple[str, ...] = ()
    requires_reviewer: bool = False
    release_at: datetime | None = None
    expires_at: datetime | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    reason: str | None = None
    release_attempts: int = 0
    release_next_at: datetime | None = None
    lease_owner: str | None = None
    lease_until: datetime | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class HeldMessage:
    """One hold in full.

    `held_recipients` are the recipients the message is held for (all of
    them, or only the suspect ones when the relay splits mixed messages);
    the others in `envelope.recipients` were forwarded at once. A fax or
    letter hold has `kind` fax/letter, `payload` (the send as JSON) and an
    empty `message`. After `purge_cancelled` a dead hold keeps its metadata
    but `message` is empty and `payload` None (`purged_at` says when).
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
    notify_claim: NotifyClaim | None = None
    """Set while a notifier is sending the notice (`claim_notifications`)."""
    codes: tuple[str, ...] = field(default=())
    """The codes of the findings the message is held for."""
    kind: HoldKind = HoldKind.EMAIL
    payload: dict[str, Any] | None = None
    callback_url: str | None = None
    patients: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)
    requires_reviewer: bool = False
    release_at: datetime | None = None
    """Delay-and-recall: released automatically then unless recalled."""
    expires_at: datetime | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    reason: str | None = None
    claim: ReleaseClaim | None = None
    """Set while `releasing`: who is sending it on, and until when."""
    release_attempts: int = 0
    release_next_at: datetime | None = None
    release_error: str | None = None
    release_reply: str | None = None
    released_at: datetime | None = None
    purged_at: datetime | None = None

    @property
    def size(self) -> int:
        return len(self.message)


@dataclass(frozen=True, kw_only=True, slots=True)
class AuditEntry:
    """One link of the audit chain: `hash` covers every other field and
    `prev_hash`, so editing, removing or reordering entries shows."""

    seq: int
    timestamp: datetime
    event: str
    actor: str
    hold_id: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True, kw_only=True, slots=True)
class AuditReport:
    """The outcome of recomputing the audit chain.

    `first_bad_seq` is the first entry that is altered, missing or out of
    chain (None when `ok`); `head_seq`/`head_hash` are worth keeping outside
    the database: a later report that does not contain them shows a rewrite.
    """

    ok: bool
    checked: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    problem: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class User:
    """A person who signs in to the review UI. `password_hash` is made and
    checked by the caller (argon2); the store only keeps the string."""

    username: str
    role: Role
    password_hash: str
    disabled: bool
    created_at: datetime
    updated_at: datetime
