"""The quarantine interface: hold, decide, release, audit.

The interface is synchronous on purpose: SQLite (and psycopg's sync API) are
blocking libraries, and the relay calls a store through `asyncio.to_thread`.
Implementations must be safe to call from several threads at once, and (for
PostgreSQL) from several processes and nodes sharing one database.

A hold is committed durably when `hold()` returns: the relay answers 250 to
the sending mail server only after that, so a crash afterwards loses nothing.
The message bytes are kept exactly as received, so that a later release can
send the very same bytes on.

Every decision is a compare-and-set on the hold's status, so of two nodes or
two reviewers racing exactly one wins; the loser gets None or False. Each
decision writes its audit entry in the same transaction as the status change:
there is never a decision without its entry, nor an entry without its change.

Exceptions: every failure of the storage itself is a `StoreError`; asking for
a hold that does not exist returns None (`get`) or raises `HoldNotFound`.
"""

from __future__ import annotations

import abc
import builtins
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sendguard.core.models import Verdict
from sendguard.store import models
from sendguard.store.models import *  # noqa: F403  (every model is part of the interface)
from sendguard.store.models import (
    AuditEntry,
    AuditReport,
    ExpiryOutcome,
    HeldMessage,
    HoldKind,
    HoldStatus,
    HoldSummary,
    MailEnvelope,
    NotifyClaim,
    ReleaseClaim,
    Role,
    User,
)

__all__ = ["Store"]
__all__ += models.__all__


class Store(abc.ABC):
    """A quarantine of held sends, with its audit log, single-use token
    ledger and review users (SQLite or PostgreSQL)."""

    # -- holds -------------------------------------------------------------
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
        release_at: datetime | None = None,
        expires_at: datetime | None = None,
        requires_reviewer: bool = False,
        meta: Mapping[str, Any] | None = None,
        patients: Sequence[str] = (),
        actor: str = "relay",
    ) -> str:
        """Store a message durably with status `held`; return its hold id.

        `held_recipients` defaults to every envelope recipient. `notify`
        queues a notification to the sender (ignored for the null sender).
        `release_at` makes it a delay-and-recall hold (`due_releases` offers
        it then); `expires_at` is when `due_expiries` offers it. `meta` is
        free JSON for the workflow; `patients` (ids) go into the audit entry.
        `actor` names who accepted it (a relay says which node: `relay@host`).
        Committed, with its `hold` audit entry, before it returns.
        """

    @abc.abstractmethod
    def hold_send(
        self,
        kind: HoldKind | str,
        payload: Mapping[str, Any],
        verdict: Verdict,
        sender: str,
        callback_url: str | None = None,
        *,
        release_at: datetime | None = None,
        expires_at: datetime | None = None,
        requires_reviewer: bool = False,
        meta: Mapping[str, Any] | None = None,
        patients: Sequence[str] = (),
        actor: str = "api",
    ) -> str:
        """Hold a fax or letter check made over HTTP: no message bytes, the
        send as a JSON `payload`, and where to call back with the decision.
        The held recipients are the verdict's recipients that it holds."""

    @abc.abstractmethod
    def discard(
        self, hold_id: str, *, actor: str = "relay", details: Mapping[str, Any] | None = None
    ) -> bool:
        """Remove a hold whose message was then not accepted after all (the
        client is told 4xx and will send it again). Never for accepted mail.
        The removal is audited (`discard`, with `details`) by `actor` (the
        relay node). True if it was removed.

        Only a hold still `held`, undecided and unclaimed is removed: one
        that was released, cancelled or claimed in the meantime stays, with
        its decision, and the refusal is audited (`discard_refused`, with
        its status); False. False too for an unknown hold (nothing to do)."""

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
        kind: HoldKind | None = None,
    ) -> builtins.list[HoldSummary]:
        """Holds, newest first, optionally of one status/kind and since a time."""

    @abc.abstractmethod
    def count(self, *, status: HoldStatus | None = None, kind: HoldKind | None = None) -> int:
        """How many holds there are (of one status, of one kind)."""

    # -- notifications -----------------------------------------------------
    @abc.abstractmethod
    def due_notifications(self, now: datetime, limit: int = 50) -> builtins.list[HeldMessage]:
        """Holds whose sender notification is pending and due by `now` (to
        look at; a sender claims them with `claim_notifications`)."""

    @abc.abstractmethod
    def claim_notifications(
        self,
        now: datetime,
        owner: str,
        lease_seconds: float = 300.0,
        limit: int = 50,
    ) -> builtins.list[HeldMessage]:
        """Claim up to `limit` notices due by `now` for sending: each hold
        comes back with its `notify_claim`, and is not due again until the
        lease has run out, so that of several nodes sweeping one outbox only
        one sends each notice. One transaction; a notifier that crashes
        mid-send leaves its notices to the next claim after `lease_seconds`.
        Keep the lease longer than sending them can take."""

    @abc.abstractmethod
    def record_notification(
        self,
        hold_id: str,
        *,
        sent: bool,
        error: str | None = None,
        next_attempt: datetime | None = None,
        claim: NotifyClaim | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> bool:
        """Record one notification attempt: sent, to be retried at
        `next_attempt`, or (no next attempt) given up; the claim ends.

        A sent notice is always recorded (it went, even if its claim was
        taken over meanwhile) and audited (`notify`, by the claim's owner,
        with the attempt number and `details`) in the same transaction. A
        failure is recorded only while `claim` is still the hold's claim:
        False if another notifier took it over (or for an unknown hold).
        Without `claim` the record is not fenced."""

    # -- decisions ---------------------------------------------------------
    @abc.abstractmethod
    def claim_release(
        self,
        hold_id: str,
        actor: str,
        lease_seconds: float = 300.0,
        *,
        reason: str | None = None,
        reviewer: bool = False,
    ) -> HeldMessage | None:
        """Claim a hold for sending it on; the hold (with `claim` set) or None.

        From held/escalated/failed this is the release decision (`decided_by`
        = actor, audited `release`), and its attempts count from 1 again (a
        hold that failed earlier gets the full series; the audit keeps the
        earlier attempts); from pending it is a retry
        (`release_retry`); from releasing whose lease has run out it is a
        takeover of a crashed releaser's claim (`release_takeover`). None when
        released, being released under a live lease, or cancelled. Raises
        HoldNotFound for an unknown id. Keep the lease longer than one
        delivery attempt can take: an expired lease may be taken over.

        A release decision on a hold that `requires_reviewer` raises
        ReviewerRequired unless `reviewer` (checked in the same
        compare-and-set, so a hold escalated since the caller read it is
        refused too); retries and takeovers are not decisions and ignore it.
        """

    @abc.abstractmethod
    def queue_release(
        self, hold_id: str, actor: str, *, reason: str | None = None, reviewer: bool = False
    ) -> bool:
        """The release decision made on a node that cannot send (no next
        hop): the hold becomes `pending`, due at once, for a releaser's job
        to claim, with its attempt count back at 0. Audited `release` (with
        `queued: true`) by `actor`, who is `decided_by`, as `claim_release`
        from held/escalated/failed would, and like it raises ReviewerRequired
        for a hold that `requires_reviewer` unless `reviewer`. False when the
        hold is not awaiting a decision (released, being released, pending,
        closed); raises HoldNotFound for an unknown id."""

    @abc.abstractmethod
    def mark_released(self, hold_id: str, claim: ReleaseClaim, reply: str) -> bool:
        """The next hop accepted it (`reply`: its 250 text). False if the claim
        was taken over meanwhile (then the other releaser owns the outcome)."""

    @abc.abstractmethod
    def mark_release_failed(
        self,
        hold_id: str,
        claim: ReleaseClaim,
        error: str,
        next_attempt: datetime | None,
        *,
        expires_at: datetime | None = None,
    ) -> bool:
        """The next hop was down or refused. With `next_attempt` the hold is
        `pending` and offered again by `due_releases` then; without it (a
        permanent refusal, attempts used up) it is `failed`, for a person to
        release again or cancel, audited `release_failed` with `final: true`.
        `expires_at` then replaces the hold's expiry (if it has one), so that
        the original expiry, which may have passed while the release was
        retried, does not expire the failed release at once; and the hold's
        sender notice (unless there is none: null sender, notices off) is
        due again, to say that the release failed. False if the claim was
        taken over meanwhile."""

    @abc.abstractmethod
    def cancel(self, hold_id: str, actor: str, reason: str) -> bool:
        """Cancel a hold that has not been sent (held, escalated, failed,
        pending). `reason` is a code. False if it is released, being released
        or already closed; raises HoldNotFound for an unknown id."""

    @abc.abstractmethod
    def expire(
        self,
        hold_id: str,
        outcome: ExpiryOutcome,
        *,
        actor: str = "system",
        reason: str = "expired",
        next_expires_at: datetime | None = None,
    ) -> bool:
        """Act on a hold whose `expires_at` has passed and that still awaits a
        decision: CANCEL makes it `expired`; ESCALATE makes it `escalated`,
        `requires_reviewer`, with `next_expires_at` as its new expiry. False if
        it is not (or no longer) due; raises HoldNotFound for an unknown id."""

    @abc.abstractmethod
    def recall(self, hold_id: str, actor: str, reason: str = "recalled") -> bool:
        """The sender takes back a hold that has not been sent (typically a
        delay-and-recall hold before its `release_at`). False if too late."""

    @abc.abstractmethod
    def due_releases(self, now: datetime, limit: int = 100) -> builtins.list[HoldSummary]:
        """What a release worker should claim now: pending retries whose time
        has come, delay-and-recall holds past `release_at` (unless they need a
        reviewer), and claims whose lease ran out (a releaser crashed)."""

    @abc.abstractmethod
    def due_expiries(self, now: datetime, limit: int = 100) -> builtins.list[HoldSummary]:
        """Holds still awaiting a decision whose `expires_at` has passed."""

    @abc.abstractmethod
    def purge_cancelled(self, before: datetime, *, actor: str = "system") -> int:
        """Delete the content (message bytes, payload) of cancelled, expired
        and recalled holds decided before `before`; return how many. The
        metadata row stays (the audit log refers to it), with `purged_at`."""

    # -- single-use tokens -------------------------------------------------
    @abc.abstractmethod
    def use_token(self, token_id: str, expires_at: datetime) -> bool:
        """Spend a single-use token (a signed link's id): True the first time,
        False ever after (until `purge_tokens` drops it after `expires_at`,
        when its signature has expired anyway)."""

    @abc.abstractmethod
    def purge_tokens(self, now: datetime) -> int:
        """Forget spent tokens that expired before `now`; return how many."""

    # -- audit log ---------------------------------------------------------
    @abc.abstractmethod
    def append_audit(
        self,
        event: str,
        *,
        actor: str,
        hold_id: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """Append one entry to the hash chain. Appends are serialised across
        threads, processes and nodes. `details` must be JSON (no message
        bodies: codes, addresses and patient ids are what belongs here)."""

    @abc.abstractmethod
    def audit_entries(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        hold_id: str | None = None,
        event: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> builtins.list[AuditEntry]:
        """Entries in chain order, optionally for one hold or event, with
        since <= timestamp < until."""

    @abc.abstractmethod
    def verify_audit(self, *, anchor: tuple[int, str] | None = None) -> AuditReport:
        """Recompute the whole chain: the first altered, missing or
        out-of-chain entry, and a cut-off tail. `anchor` (seq, hash) from an
        earlier report, kept elsewhere, must still be in the chain: that also
        catches a rewrite by someone who recomputed every hash."""

    # -- users -----------------------------------------------------------
    @abc.abstractmethod
    def add_user(
        self, username: str, role: Role | str, password_hash: str, *, actor: str = "system"
    ) -> User:
        """Add a user; raises Conflict if the name is taken."""

    @abc.abstractmethod
    def get_user(self, username: str) -> User | None: ...

    @abc.abstractmethod
    def list_users(self) -> builtins.list[User]: ...

    @abc.abstractmethod
    def set_password(self, username: str, password_hash: str, *, actor: str = "system") -> bool:
        """Replace a user's password hash; False if there is no such user."""

    @abc.abstractmethod
    def set_role(self, username: str, role: Role | str, *, actor: str = "system") -> bool: ...

    @abc.abstractmethod
    def disable_user(self, username: str, *, actor: str = "system", disabled: bool = True) -> bool:
        """Disable (or with disabled=False, enable) a user; False if unknown."""

    # -- lifecycle ---------------------------------------------------------
    @abc.abstractmethod
    def close(self) -> None:
        """Release connections; the store is not used afterwards."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
