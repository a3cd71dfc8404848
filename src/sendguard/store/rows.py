"""Rows of the holds and audit tables to and from the store's dataclasses.

Both backends store the same columns; PostgreSQL hands JSON back parsed
(jsonb) and timestamps as datetimes, SQLite as text, and these accept both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson

from sendguard.core.models import Action, Verdict
from sendguard.store.conn import parse_ts, require_ts
from sendguard.store.models import (
    AuditEntry,
    HeldMessage,
    HoldKind,
    HoldStatus,
    HoldSummary,
    MailEnvelope,
    NotifyClaim,
    NotifyStatus,
    ReleaseClaim,
)

__all__ = [
    "audit_entry",
    "filters",
    "held",
    "hold_codes",
    "hold_options",
    "load_json",
    "summary",
    "to_json",
]


def to_json(obj: object) -> str:
    return orjson.dumps(obj).decode()


def load_json(value: object) -> Any:
    """A stored JSON value: SQLite text, or already parsed (PostgreSQL jsonb)."""
    if isinstance(value, str | bytes):
        return orjson.loads(value)
    return value


def _verdict(value: object) -> Verdict:
    text = value if isinstance(value, str | bytes) else orjson.dumps(value)
    return Verdict.model_validate_json(text)


def hold_codes(verdict: Verdict) -> list[str]:
    """The codes a send is held for: those acting hold/reject, else all applied."""
    applied = [f for f in verdict.findings if not f.monitor]
    reasons = [f for f in applied if f.action in (Action.HOLD, Action.REJECT)]
    return sorted({f.code for f in reasons or applied})


def hold_options(
    release_at: datetime | None,
    expires_at: datetime | None,
    requires_reviewer: bool,
    meta: Mapping[str, Any] | None,
    patients: Sequence[str],
) -> dict[str, Any]:
    return {
        "release_at": release_at,
        "expires_at": expires_at,
        "requires_reviewer": bool(requires_reviewer),
        "meta": to_json(dict(meta or {})),
        "patients": to_json(list(patients)),
    }


def filters(
    status: HoldStatus | None, since: datetime | None, kind: HoldKind | None
) -> tuple[str, tuple[Any, ...]]:
    clauses: list[str] = []
    args: list[Any] = []
    if status is not None:
        clauses.append("status = ?")
        args.append(HoldStatus(status).value)
    if since is not None:
        clauses.append("created_at >= ?")
        args.append(since)
    if kind is not None:
        clauses.append("kind = ?")
        args.append(HoldKind(kind).value)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), tuple(args)


def summary(r: Mapping[str, Any]) -> HoldSummary:
    return HoldSummary(
        hold_id=r["id"],
        kind=HoldKind(r["kind"]),
        status=HoldStatus(r["status"]),
        created_at=require_ts(r["created_at"]),
        mail_from=r["mail_from"],
        held_recipients=tuple(load_json(r["held_recipients"])),
        message_id=r["message_id"],
        size=int(r["size"]),
        action=r["action"],
        codes=tuple(load_json(r["codes"])),
        notify_status=NotifyStatus(r["notify_status"]),
        patients=tuple(load_json(r["patients"])),
        requires_reviewer=bool(r["requires_reviewer"]),
        release_at=parse_ts(r["release_at"]),
        expires_at=parse_ts(r["expires_at"]),
        decided_by=r["decided_by"],
        decided_at=parse_ts(r["decided_at"]),
        reason=r["reason"],
        release_attempts=int(r["release_attempts"]),
        release_next_at=parse_ts(r["release_next_at"]),
        lease_owner=r["lease_owner"],
        lease_until=parse_ts(r["lease_until"]),
    )


def held(r: Mapping[str, Any]) -> HeldMessage:
    status = HoldStatus(r["status"])
    claim = None
    if status is HoldStatus.RELEASING and r["lease_token"]:
        claim = ReleaseClaim(
            hold_id=r["id"],
            owner=r["lease_owner"],
            token=r["lease_token"],
            lease_until=require_ts(r["lease_until"]),
            attempt=int(r["release_attempts"]),
        )
    notify_status = NotifyStatus(r["notify_status"])
    notify_claim = None
    if notify_status is NotifyStatus.PENDING and r["notify_token"]:
        notify_claim = NotifyClaim(
            hold_id=r["id"],
            owner=r["notify_owner"],
            token=r["notify_token"],
            lease_until=require_ts(r["notify_next_at"]),
            attempt=int(r["notify_attempts"]) + 1,
        )
    payload = load_json(r["payload"])
    return HeldMessage(
        hold_id=r["id"],
        kind=HoldKind(r["kind"]),
        status=status,
        created_at=require_ts(r["created_at"]),
        envelope=MailEnvelope(
            mail_from=r["mail_from"],
            recipients=tuple(load_json(r["recipients"])),
            mail_options=tuple(load_json(r["mail_options"])),
            peer=r["peer"],
            helo=r["helo"],
        ),
        held_recipients=tuple(load_json(r["held_recipients"])),
        message_id=r["message_id"],
        message=bytes(r["message"]),
        sha256=r["sha256"],
        verdict=_verdict(r["verdict"]),
        notify_status=notify_status,
        notify_attempts=int(r["notify_attempts"]),
        notify_next_at=parse_ts(r["notify_next_at"]),
        notify_error=r["notify_error"],
        notified_at=parse_ts(r["notified_at"]),
        notify_claim=notify_claim,
        codes=tuple(load_json(r["codes"])),
        payload=None if payload is None else dict(payload),
        callback_url=r["callback_url"],
        patients=tuple(load_json(r["patients"])),
        meta=dict(load_json(r["meta"])),
        requires_reviewer=bool(r["requires_reviewer"]),
        release_at=parse_ts(r["release_at"]),
        expires_at=parse_ts(r["expires_at"]),
        decided_by=r["decided_by"],
        decided_at=parse_ts(r["decided_at"]),
        reason=r["reason"],
        claim=claim,
        release_attempts=int(r["release_attempts"]),
        release_next_at=parse_ts(r["release_next_at"]),
        release_error=r["release_error"],
        release_reply=r["release_reply"],
        released_at=parse_ts(r["released_at"]),
        purged_at=parse_ts(r["purged_at"]),
    )


def audit_entry(r: Mapping[str, Any]) -> AuditEntry:
    details = load_json(r["details"])
    if not isinstance(details, dict):
        raise ValueError("audit details are not an object")
    return AuditEntry(
        seq=int(r["seq"]),
        timestamp=require_ts(r["ts"]),
        event=r["event"],
        actor=r["actor"],
        hold_id=r["hold_id"],
        details=details,
        prev_hash=r["prev_hash"],
        hash=r["hash"],
    )
