"""The quarantine's logic over SQL, shared by the SQLite and PostgreSQL stores.

One implementation of every query and transition keeps the two backends'
semantics identical. A backend supplies connections through `_read()` (no
transaction needed) and `_write()` (one transaction, committed on leaving the
block), and `_for_update`: PostgreSQL locks the rows a transition reads
(`FOR UPDATE`), while SQLite's `BEGIN IMMEDIATE` already excludes every other
writer; `_skip_locked` likewise, for the outbox claim, where a node should
pass over rows another node is claiming rather than wait for them. SQL here
uses `?` placeholders; backends translate as they need.

Timestamps come from the store's clock (not the database's), so that tests
can move time and every node stamps holds and audit entries alike.
"""

from __future__ import annotations

import abc
import builtins
import hashlib
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import orjson

from sendguard.core.models import ACTION_RANK, Action, Verdict
from sendguard.store import rows
from sendguard.store.accounts import AccountMethods
from sendguard.store.audit import ChainVerifier, canonical_details, entry_hash, ts_text
from sendguard.store.base import Store
from sendguard.store.conn import Conn, parse_ts, require_ts
from sendguard.store.models import (
    AWAITING_DECISION,
    DEAD,
    UNSENT,
    AuditEntry,
    AuditReport,
    ExpiryOutcome,
    HeldMessage,
    HoldKind,
    HoldNotFound,
    HoldStatus,
    HoldSummary,
    MailEnvelope,
    NotifyClaim,
    NotifyStatus,
    ReleaseClaim,
    ReviewerRequired,
    StoreError,
)

__all__ = ["SqlStore", "new_hold_id", "utc_now"]

_ID_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
_SUMMARY_COLUMNS = (
    "id, kind, status, created_at, mail_from, held_recipients, message_id, size, action, codes, "
    "notify_status, patients, requires_reviewer, release_at, expires_at, decided_by, decided_at, "
    "reason, release_attempts, release_next_at, lease_owner, lease_until"
)
_AUDIT_BATCH = 1000


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_hold_id() -> str:
    """12 characters, ~59 random bits, no look-alike characters (0/o, 1/l/i).
    One read of the system's randomness (each read is a system call)."""
    n = int.from_bytes(secrets.token_bytes(8), "big")
    out = []
    for _ in range(12):
        n, digit = divmod(n, len(_ID_ALPHABET))
        out.append(_ID_ALPHABET[digit])
    return "".join(out)


def _decision_details(status: HoldStatus, reason: str | None, earlier: int) -> dict[str, Any]:
    """The `release` entry's details: from where, why, and how many attempts
    an earlier release decision spent (its own entries record each one)."""
    details: dict[str, Any] = {"from": status.value}
    if reason is not None:
        details["reason"] = reason
    if earlier:
        details["earlier_attempts"] = earlier
    return details


def _in(values: Iterable[str]) -> tuple[str, builtins.list[str]]:
    vals = sorted(values)
    return f"({', '.join('?' * len(vals))})", vals


class SqlStore(AccountMethods, Store):
    """Every Store method over a backend's `_read()` / `_write()`."""

    _for_update: ClassVar[str] = ""
    _skip_locked: ClassVar[str] = ""
    label: str

    def __init__(self, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._clock = clock

    @abc.abstractmethod
    def _read(self) -> AbstractContextManager[Conn]:
        """A connection for reads; errors become StoreError."""

    @abc.abstractmethod
    def _write(self) -> AbstractContextManager[Conn]:
        """One transaction, committed on a clean exit; errors become StoreError."""

    def _now(self) -> datetime:
        return self._clock().astimezone(UTC)

    # -- schema ------------------------------------------------------------
    def _apply_migrations(
        self, db: Conn, migrations: Sequence[str], run: Callable[[str], object]
    ) -> None:
        """Bring the schema up to date inside the caller's transaction, which
        keeps other processes out meanwhile. `schema_version` counts the
        backend's migrations that have run (`run` runs one script); a database
        from a newer sendguard is refused rather than misread."""
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
        row = db.execute("SELECT version FROM schema_version").one()
        version = 0 if row is None else int(row["version"])
        if row is None:
            db.execute("INSERT INTO schema_version (version) VALUES (0)")
        if version > len(migrations):
            raise StoreError(
                f"{self.label}: schema version {version} is newer than this "
                f"sendguard understands ({len(migrations)}); upgrade sendguard"
            )
        for number, script in enumerate(migrations[version:], start=version + 1):
            run(script)
            db.execute("UPDATE schema_version SET version = ?", (number,))

    @property
    def schema_version(self) -> int:
        """How many of the backend's migrations this database has had."""
        with self._read() as db:
            row = db.execute("SELECT version FROM schema_version").one()
        return 0 if row is None else int(row["version"])

    # -- holds -------------------------------------------------------------
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
        held = tuple(envelope.recipients if held_recipients is None else held_recipients)
        codes = rows.hold_codes(verdict)
        notify_status = NotifyStatus.PENDING if notify and envelope.mail_from else NotifyStatus.NONE
        now = self._now()
        sha = hashlib.sha256(message).hexdigest()
        row: dict[str, Any] = {
            "kind": HoldKind.EMAIL.value,
            "status": HoldStatus.HELD.value,
            "created_at": now,
            "mail_from": envelope.mail_from,
            "recipients": rows.to_json(list(envelope.recipients)),
            "held_recipients": rows.to_json(list(held)),
            "mail_options": rows.to_json(list(envelope.mail_options)),
            "peer": envelope.peer,
            "helo": envelope.helo,
            "message_id": message_id,
            "size": len(message),
            "action": verdict.action.value,
            "codes": rows.to_json(codes),
            "verdict": verdict.model_dump_json(),
            "sha256": sha,
            "notify_status": notify_status.value,
            "notify_next_at": now if notify_status is NotifyStatus.PENDING else None,
            "message": message,
        }
        details = {
            "kind": HoldKind.EMAIL.value,
            "sender": envelope.mail_from,
            "recipients": list(held),
            "codes": codes,
            "action": verdict.action.value,
            "message_id": message_id,
            "size": len(message),
            "sha256": sha,
        }
        extra = rows.hold_options(release_at, expires_at, requires_reviewer, meta, patients)
        return self._insert_hold(row | extra, details, actor, patients)

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
        kind = HoldKind(kind)
        if kind is HoldKind.EMAIL:
            raise ValueError("an email hold keeps the message itself: use hold()")
        body = orjson.dumps(dict(payload), option=orjson.OPT_SORT_KEYS)
        recipients = list(verdict.recipients)
        held = [
            r for r, a in verdict.recipients.items() if ACTION_RANK[a] >= ACTION_RANK[Action.HOLD]
        ] or recipients
        codes = rows.hold_codes(verdict)
        sha = hashlib.sha256(body).hexdigest()
        row: dict[str, Any] = {
            "kind": kind.value,
            "status": HoldStatus.HELD.value,
            "created_at": self._now(),
            "mail_from": sender,
            "recipients": rows.to_json(recipients),
            "held_recipients": rows.to_json(held),
            "mail_options": "[]",
            "peer": "",
            "helo": "",
            "message_id": "",
            "size": len(body),
            "action": verdict.action.value,
            "codes": rows.to_json(codes),
            "verdict": verdict.model_dump_json(),
            "sha256": sha,
            "notify_status": NotifyStatus.NONE.value,
            "notify_next_at": None,
            "message": b"",
            "payload": body.decode(),
            "callback_url": callback_url,
        }
        details = {
            "kind": kind.value,
            "sender": sender,
            "recipients": held,
            "codes": codes,
            "action": verdict.action.value,
            "sha256": sha,
            "callback": callback_url is not None,
        }
        extra = rows.hold_options(release_at, expires_at, requires_reviewer, meta, patients)
        return self._insert_hold(row | extra, details, actor, patients)

    def _insert_hold(
        self, row: dict[str, Any], details: dict[str, Any], actor: str, patients: Sequence[str]
    ) -> str:
        if patients:
            details["patients"] = list(patients)
        columns = ", ".join(["id", *row])
        marks = ", ".join("?" * (len(row) + 1))
        sql = f"INSERT INTO holds ({columns}) VALUES ({marks}) ON CONFLICT (id) DO NOTHING"
        with self._write() as db:
            for _ in range(5):  # an id collision is astronomically rare; retry anyway
                hold_id = new_hold_id()
                if db.execute(sql, (hold_id, *row.values())).rowcount == 1:
                    self._append(db, "hold", actor, hold_id, details)
                    return hold_id
        raise StoreError(f"{self.label}: could not find a free hold id")

    def discard(
        self, hold_id: str, *, actor: str = "relay", details: Mapping[str, Any] | None = None
    ) -> bool:
        """Only an undecided hold goes: one a person (or a releaser) has acted
        on meanwhile keeps its row and decision, so its trail stays whole."""
        info = dict(details or {})
        with self._write() as db:
            cur = db.execute(
                "DELETE FROM holds WHERE id = ? AND status = ? AND decided_by IS NULL "
                "AND lease_token IS NULL",
                (hold_id, HoldStatus.HELD.value),
            )
            if cur.rowcount:
                self._append(db, "discard", actor, hold_id, info)
                return True
            row = db.execute("SELECT status FROM holds WHERE id = ?", (hold_id,)).one()
            if row is not None:
                self._append(
                    db, "discard_refused", actor, hold_id, info | {"status": row["status"]}
                )
        return False

    def get(self, hold_id: str) -> HeldMessage | None:
        with self._read() as db:
            row = db.execute("SELECT * FROM holds WHERE id = ?", (hold_id,)).one()
        return None if row is None else rows.held(row)

    def list(
        self,
        *,
        status: HoldStatus | None = None,
        since: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
        kind: HoldKind | None = None,
    ) -> builtins.list[HoldSummary]:
        where, args = rows.filters(status, since, kind)
        sql = (
            f"SELECT {_SUMMARY_COLUMNS} FROM holds{where} "
            "ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
        )
        with self._read() as db:
            found = db.execute(sql, (*args, limit, offset)).all()
        return [rows.summary(r) for r in found]

    def count(self, *, status: HoldStatus | None = None, kind: HoldKind | None = None) -> int:
        where, args = rows.filters(status, None, kind)
        with self._read() as db:
            row = db.execute(f"SELECT COUNT(*) AS n FROM holds{where}", args).one()
        return int(row["n"]) if row else 0

    # -- notifications -----------------------------------------------------
    def due_notifications(self, now: datetime, limit: int = 50) -> builtins.list[HeldMessage]:
        with self._read() as db:
            found = db.execute(
                "SELECT * FROM holds WHERE notify_status = ? AND notify_next_at <= ? "
                "ORDER BY notify_next_at LIMIT ?",
                (NotifyStatus.PENDING.value, now, limit),
            ).all()
        return [rows.held(r) for r in found]

    def claim_notifications(
        self,
        now: datetime,
        owner: str,
        lease_seconds: float = 300.0,
        limit: int = 50,
    ) -> builtins.list[HeldMessage]:
        """Moving `notify_next_at` to the lease's end is the claim: the notice
        is not due again until then. PostgreSQL skips rows another node is
        claiming this moment instead of waiting for them."""
        pending = NotifyStatus.PENDING.value
        lease_until = now + timedelta(seconds=lease_seconds)
        token = secrets.token_hex(16)
        with self._write() as db:
            due = db.execute(
                "SELECT id FROM holds WHERE notify_status = ? AND notify_next_at <= ? "
                f"ORDER BY notify_next_at, id LIMIT ?{self._skip_locked}",
                (pending, now, limit),
            ).all()
            if not due:
                return []
            marks, ids = _in(r["id"] for r in due)
            db.execute(
                "UPDATE holds SET notify_next_at = ?, notify_owner = ?, notify_token = ? "
                f"WHERE id IN {marks} AND notify_status = ? AND notify_next_at <= ?",
                (lease_until, owner, token, *ids, pending, now),
            )
            found = db.execute(
                f"SELECT * FROM holds WHERE id IN {marks} AND notify_token = ? "
                "ORDER BY created_at, id",
                (*ids, token),
            ).all()
        return [rows.held(r) for r in found]

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
        if claim is not None and claim.hold_id != hold_id:
            raise ValueError(f"the claim is for hold {claim.hold_id!r}, not {hold_id!r}")
        if sent:
            status, next_at = NotifyStatus.SENT, None
        elif next_attempt is not None:
            status, next_at = NotifyStatus.PENDING, next_attempt
        else:
            status, next_at = NotifyStatus.FAILED, None
        # a notice that went is a fact, whoever holds the claim now; a failure
        # is only its current claimant's to record
        fenced: tuple[str, ...] = ()
        if claim is not None and not sent:
            fenced = (claim.token,)
        fence = " AND notify_token = ?" if fenced else ""
        sql = (
            "UPDATE holds SET notify_status = ?, notify_attempts = notify_attempts + 1, "
            "notify_next_at = ?, notify_error = ?, "
            f"notified_at = {'COALESCE(notified_at, ?)' if sent else '?'}, "
            f"notify_owner = NULL, notify_token = NULL WHERE id = ?{fence}"
        )
        args = (status.value, next_at, error, self._now() if sent else None, hold_id, *fenced)
        with self._write() as db:
            if db.execute(sql, args).rowcount != 1:
                return False
            if sent:
                row = db.execute("SELECT notify_attempts FROM holds WHERE id = ?", (hold_id,)).one()
                info = {"attempt": int(row["notify_attempts"]) if row else 0, **(details or {})}
                actor = claim.owner if claim is not None else "system"
                self._append(db, "notify", actor, hold_id, info)
        return True

    # -- decisions ---------------------------------------------------------
    def _lock_hold(self, db: Conn, hold_id: str) -> dict[str, Any]:
        row = db.execute(
            "SELECT id, status, expires_at, lease_owner, lease_token, lease_until, "
            f"release_attempts, requires_reviewer FROM holds WHERE id = ?{self._for_update}",
            (hold_id,),
        ).one()
        if row is None:
            raise HoldNotFound(f"no hold with id {hold_id!r}")
        return row

    @staticmethod
    def _swap(
        db: Conn, row: Mapping[str, Any], sets: Mapping[str, Any], *, reviewer: bool | None = None
    ) -> bool:
        """Compare-and-set: change the hold only if its status (and lease
        token) are still what this transaction read; with `reviewer` (a
        release decision), only if it needs no reviewer or one decides."""
        assignments = ", ".join(f"{k} = ?" for k in sets)
        whom: tuple[bool, ...]
        who, whom = "", ()
        if reviewer is not None:
            who, whom = " AND (requires_reviewer = ? OR ?)", (False, reviewer)
        cur = db.execute(
            f"UPDATE holds SET {assignments} WHERE id = ? AND status = ? "
            f"AND COALESCE(lease_token, '') = ?{who}",
            (*sets.values(), row["id"], row["status"], row["lease_token"] or "", *whom),
        )
        return cur.rowcount == 1

    @staticmethod
    def _check_reviewer(row: Mapping[str, Any], reviewer: bool) -> None:
        """A release decision on a reviewer-only hold needs a reviewer. Read
        from the row this transaction locked, so an escalation committed
        since the caller looked is seen."""
        if row["requires_reviewer"] and not reviewer:
            raise ReviewerRequired(f"hold {row['id']} needs a reviewer's decision")

    def claim_release(
        self,
        hold_id: str,
        actor: str,
        lease_seconds: float = 300.0,
        *,
        reason: str | None = None,
        reviewer: bool = False,
    ) -> HeldMessage | None:
        now = self._now()
        with self._write() as db:
            row = self._lock_hold(db, hold_id)
            status = HoldStatus(row["status"])
            sets: dict[str, Any] = {}
            details: dict[str, Any] = {}
            base = int(row["release_attempts"])
            decision = status in AWAITING_DECISION
            if decision:
                self._check_reviewer(row, reviewer)
                # a new decision gets every attempt again; the audit keeps the earlier ones
                event = "release"
                sets = {"decided_by": actor, "decided_at": now, "reason": reason}
                details |= _decision_details(status, reason, base)
                base = 0
            elif status is HoldStatus.PENDING:
                event = "release_retry"
            elif status is HoldStatus.RELEASING and require_ts(row["lease_until"]) <= now:
                event = "release_takeover"
                details["previous_owner"] = row["lease_owner"]
            else:
                return None
            attempt = base + 1
            lease_until = now + timedelta(seconds=lease_seconds)
            sets |= {
                "status": HoldStatus.RELEASING.value,
                "lease_owner": actor,
                "lease_token": secrets.token_hex(16),
                "lease_until": lease_until,
                "release_attempts": attempt,
                "release_next_at": None,
            }
            if not self._swap(db, row, sets, reviewer=reviewer if decision else None):
                return None
            details |= {"attempt": attempt, "lease_until": ts_text(lease_until)}
            self._append(db, event, actor, hold_id, details)
            full = db.execute("SELECT * FROM holds WHERE id = ?", (hold_id,)).one()
        return None if full is None else rows.held(full)

    def queue_release(
        self, hold_id: str, actor: str, *, reason: str | None = None, reviewer: bool = False
    ) -> bool:
        now = self._now()
        with self._write() as db:
            row = self._lock_hold(db, hold_id)
            status = HoldStatus(row["status"])
            if status not in AWAITING_DECISION:
                return False
            self._check_reviewer(row, reviewer)
            sets = {
                "status": HoldStatus.PENDING.value,
                "decided_by": actor,
                "decided_at": now,
                "reason": reason,
                "release_next_at": now,
                "release_attempts": 0,
            }
            if not self._swap(db, row, sets, reviewer=reviewer):
                return False
            details = _decision_details(status, reason, int(row["release_attempts"]))
            self._append(db, "release", actor, hold_id, details | {"queued": True})
        return True

    def _finish_release(
        self,
        hold_id: str,
        claim: ReleaseClaim,
        sets: dict[str, Any],
        event: str,
        details: dict[str, Any],
        then: Callable[[Conn], None] | None = None,
    ) -> bool:
        if claim.hold_id != hold_id:
            raise ValueError(f"the claim is for hold {claim.hold_id!r}, not {hold_id!r}")
        clear = {"lease_owner": None, "lease_token": None, "lease_until": None}
        assignments = ", ".join(f"{k} = ?" for k in (sets | clear))
        with self._write() as db:
            cur = db.execute(
                f"UPDATE holds SET {assignments} WHERE id = ? AND status = ? AND lease_token = ?",
                (*(sets | clear).values(), hold_id, HoldStatus.RELEASING.value, claim.token),
            )
            if cur.rowcount != 1:
                return False
            if then is not None:
                then(db)
            self._append(db, event, claim.owner, hold_id, details | {"attempt": claim.attempt})
        return True

    def mark_released(self, hold_id: str, claim: ReleaseClaim, reply: str) -> bool:
        sets = {
            "status": HoldStatus.RELEASED.value,
            "released_at": self._now(),
            "release_reply": reply,
            "release_error": None,
            "release_next_at": None,
        }
        return self._finish_release(hold_id, claim, sets, "released", {"reply": reply})

    def mark_release_failed(
        self,
        hold_id: str,
        claim: ReleaseClaim,
        error: str,
        next_attempt: datetime | None,
        *,
        expires_at: datetime | None = None,
    ) -> bool:
        final = next_attempt is None
        status = HoldStatus.FAILED if final else HoldStatus.PENDING
        sets = {"status": status.value, "release_error": error, "release_next_at": next_attempt}
        details: dict[str, Any] = {"error": error, "status": status.value, "final": final}
        if next_attempt is not None:
            details["next_attempt"] = ts_text(next_attempt)

        def failed_for_good(db: Conn) -> None:
            """A person decides again: the full expiry window from now (a hold
            that never expired still does not). The sender, who may think it
            went, is told: a notice already sent (or given up on) is queued
            again; one still pending says so when it goes."""
            if expires_at is not None:
                cur = db.execute(
                    "UPDATE holds SET expires_at = ? WHERE id = ? AND expires_at IS NOT NULL",
                    (expires_at, hold_id),
                )
                if cur.rowcount == 1:
                    details["expires_at"] = ts_text(expires_at)
            cur = db.execute(
                "UPDATE holds SET notify_status = ?, notify_next_at = ?, notify_attempts = 0, "
                "notify_error = NULL, notify_owner = NULL, notify_token = NULL "
                "WHERE id = ? AND notify_status IN (?, ?)",
                (
                    NotifyStatus.PENDING.value,
                    self._now(),
                    hold_id,
                    NotifyStatus.SENT.value,
                    NotifyStatus.FAILED.value,
                ),
            )
            if cur.rowcount == 1:
                details["notify"] = True

        then = failed_for_good if final else None
        return self._finish_release(hold_id, claim, sets, "release_failed", details, then)

    def _close(
        self,
        hold_id: str,
        allowed: frozenset[HoldStatus],
        to: HoldStatus,
        actor: str,
        reason: str,
        event: str,
        *,
        due_by: datetime | None = None,
        sets: Mapping[str, Any] | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> bool:
        """One decision that ends (or escalates) a hold not in flight."""
        now = self._now()
        with self._write() as db:
            row = self._lock_hold(db, hold_id)
            status = HoldStatus(row["status"])
            if status not in allowed:
                return False
            if due_by is not None:
                expires = parse_ts(row["expires_at"])
                if expires is None or expires > due_by:
                    return False
            changes: dict[str, Any] = {"status": to.value, "reason": reason}
            changes |= sets or {"decided_by": actor, "decided_at": now, "release_next_at": None}
            if not self._swap(db, row, changes):
                return False
            info = {"reason": reason, "from": status.value, **(details or {})}
            self._append(db, event, actor, hold_id, info)
        return True

    def cancel(self, hold_id: str, actor: str, reason: str) -> bool:
        return self._close(hold_id, UNSENT, HoldStatus.CANCELLED, actor, reason, "cancel")

    def recall(self, hold_id: str, actor: str, reason: str = "recalled") -> bool:
        return self._close(hold_id, UNSENT, HoldStatus.RECALLED, actor, reason, "recall")

    def expire(
        self,
        hold_id: str,
        outcome: ExpiryOutcome,
        *,
        actor: str = "system",
        reason: str = "expired",
        next_expires_at: datetime | None = None,
    ) -> bool:
        now = self._now()
        if ExpiryOutcome(outcome) is ExpiryOutcome.CANCEL:
            return self._close(
                hold_id, AWAITING_DECISION, HoldStatus.EXPIRED, actor, reason, "expire", due_by=now
            )
        sets = {"requires_reviewer": True, "expires_at": next_expires_at}
        info = {"expires_at": ts_text(next_expires_at) if next_expires_at else None}
        return self._close(
            hold_id,
            AWAITING_DECISION,
            HoldStatus.ESCALATED,
            actor,
            reason,
            "escalate",
            due_by=now,
            sets=sets,
            details=info,
        )

    def due_releases(self, now: datetime, limit: int = 100) -> builtins.list[HoldSummary]:
        sql = (
            f"SELECT {_SUMMARY_COLUMNS} FROM holds WHERE "
            "(status = ? AND release_next_at <= ?) "
            "OR (status = ? AND release_at <= ? AND requires_reviewer = ?) "
            "OR (status = ? AND lease_until <= ?) "
            "ORDER BY created_at, id LIMIT ?"
        )
        args = (
            HoldStatus.PENDING.value,
            now,
            HoldStatus.HELD.value,
            now,
            False,
            HoldStatus.RELEASING.value,
            now,
            limit,
        )
        with self._read() as db:
            return [rows.summary(r) for r in db.execute(sql, args).all()]

    def due_expiries(self, now: datetime, limit: int = 100) -> builtins.list[HoldSummary]:
        marks, statuses = _in(AWAITING_DECISION)
        sql = (
            f"SELECT {_SUMMARY_COLUMNS} FROM holds WHERE status IN {marks} "
            "AND expires_at <= ? ORDER BY expires_at, id LIMIT ?"
        )
        with self._read() as db:
            return [rows.summary(r) for r in db.execute(sql, (*statuses, now, limit)).all()]

    def purge_cancelled(self, before: datetime, *, actor: str = "system") -> int:
        marks, statuses = _in(DEAD)
        now = self._now()
        with self._write() as db:
            ids = [
                r["id"]
                for r in db.execute(
                    f"SELECT id FROM holds WHERE status IN {marks} AND decided_at < ? "
                    f"AND purged_at IS NULL ORDER BY id{self._for_update}",
                    (*statuses, before),
                ).all()
            ]
            for hold_id in ids:
                db.execute(
                    "UPDATE holds SET message = ?, payload = NULL, purged_at = ? WHERE id = ?",
                    (b"", now, hold_id),
                )
                self._append(db, "purge", actor, hold_id, {"before": ts_text(before)})
        return len(ids)

    # -- single-use tokens -------------------------------------------------
    def use_token(self, token_id: str, expires_at: datetime) -> bool:
        with self._write() as db:
            cur = db.execute(
                "INSERT INTO used_tokens (id, expires_at, used_at) VALUES (?, ?, ?) "
                "ON CONFLICT (id) DO NOTHING",
                (token_id, expires_at, self._now()),
            )
        return cur.rowcount == 1

    def purge_tokens(self, now: datetime) -> int:
        with self._write() as db:
            return db.execute("DELETE FROM used_tokens WHERE expires_at < ?", (now,)).rowcount

    # -- audit log ---------------------------------------------------------
    def _append(
        self,
        db: Conn,
        event: str,
        actor: str,
        hold_id: str | None,
        details: Mapping[str, Any] | None,
    ) -> AuditEntry:
        """Append inside the caller's transaction, after its other writes:
        the head row's lock is then held only until that commit."""
        parsed, text = canonical_details(details)
        head = db.execute(f"SELECT seq, hash FROM audit_head WHERE id = 1{self._for_update}").one()
        if head is None:
            raise StoreError(f"{self.label}: the audit chain head is missing (verify the log)")
        seq, prev = int(head["seq"]) + 1, str(head["hash"])
        now = self._now()
        digest = entry_hash(
            seq=seq,
            timestamp=now,
            event=event,
            actor=actor,
            hold_id=hold_id,
            details=parsed,
            prev_hash=prev,
        )
        db.execute(
            "INSERT INTO audit_log (seq, ts, event, actor, hold_id, details, prev_hash, hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, now, event, actor, hold_id, text, prev, digest),
        )
        db.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (seq, digest))
        return AuditEntry(
            seq=seq,
            timestamp=now,
            event=event,
            actor=actor,
            hold_id=hold_id,
            details=parsed,
            prev_hash=prev,
            hash=digest,
        )

    def append_audit(
        self,
        event: str,
        *,
        actor: str,
        hold_id: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        with self._write() as db:
            return self._append(db, event, actor, hold_id, details)

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
        clauses: builtins.list[str] = []
        args: builtins.list[Any] = []
        for clause, value in (
            ("ts >= ?", since),
            ("ts < ?", until),
            ("hold_id = ?", hold_id),
            ("event = ?", event),
        ):
            if value is not None:
                clauses.append(clause)
                args.append(value)
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        with self._read() as db:
            found = db.execute(
                f"SELECT * FROM audit_log{where} ORDER BY seq LIMIT ? OFFSET ?",
                (*args, limit, offset),
            ).all()
        return [rows.audit_entry(r) for r in found]

    def verify_audit(self, *, anchor: tuple[int, str] | None = None) -> AuditReport:
        with self._read() as db:
            h = db.execute("SELECT seq, hash FROM audit_head WHERE id = 1").one()
        head = None if h is None else (int(h["seq"]), str(h["hash"]))
        upto = head[0] if head is not None else 2**62  # entries appended later are not judged
        verifier = ChainVerifier(anchor)
        after = 0
        while True:
            with self._read() as db:
                batch = db.execute(
                    "SELECT * FROM audit_log WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                    (after, upto, _AUDIT_BATCH),
                ).all()
            for r in batch:
                try:
                    entry = rows.audit_entry(r)
                except (ValueError, TypeError, StoreError):
                    verifier.fail(int(r["seq"]), f"entry {r['seq']} was altered (unreadable)")
                    return verifier.report(head)
                if not verifier.feed(entry):
                    return verifier.report(head)
            if len(batch) < _AUDIT_BATCH:
                return verifier.report(head)
            after = int(batch[-1]["seq"])
