"""What a breach report needs from the quarantine, for a time window.

A data breach must be reported to the regulator within 72 hours, with who
sent what about which patients to whom, and what was done about it. For
every hold that has an audit entry in [since, until) this gives: the sender
(envelope), the Message-ID, size and SHA-256 of what was held (never the
subject or text), the patients (ids) it concerns, the recipients it was held
for and those it went to at once, the finding codes, what was decided, by
whom, when and why, and the hold's whole audit trail. Audit entries in the
window that belong to no hold (users, reloads) are listed too, and the
report says whether the audit chain verified.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sendguard.store.base import AuditEntry, HeldMessage, Store

__all__ = ["CSV_COLUMNS", "breach_report", "report_csv"]

_PAGE = 1000
CSV_COLUMNS = (
    "hold_id",
    "kind",
    "created_at",
    "sender",
    "message_id",
    "size",
    "sha256",
    "patients",
    "held_recipients",
    "forwarded_recipients",
    "codes",
    "requires_reviewer",
    "status",
    "decided_by",
    "decided_at",
    "reason",
    "released_at",
    "release_reply",
    "notified",
    "purged_at",
    "trail",
)


def _entries(store: Store, **query: Any) -> Iterator[AuditEntry]:
    offset = 0
    while True:
        page = store.audit_entries(limit=_PAGE, offset=offset, **query)
        yield from page
        if len(page) < _PAGE:
            return
        offset += _PAGE


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def _entry(e: AuditEntry) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "at": e.timestamp.isoformat(),
        "event": e.event,
        "actor": e.actor,
        "hold_id": e.hold_id,
        "details": e.details,
    }


def _hold(held: HeldMessage, trail: list[AuditEntry]) -> dict[str, Any]:
    held_set = set(held.held_recipients)
    return {
        "hold_id": held.hold_id,
        "kind": held.kind.value,
        "created_at": held.created_at.isoformat(),
        "sender": held.envelope.mail_from,
        "message_id": held.message_id,
        "size": int(trail[0].details.get("size", held.size)) if trail else held.size,
        "sha256": held.sha256,
        "patients": list(held.patients),
        "held_recipients": list(held.held_recipients),
        "forwarded_recipients": [r for r in held.envelope.recipients if r not in held_set],
        "codes": list(held.codes),
        "requires_reviewer": held.requires_reviewer,
        "status": held.status.value,
        "decided_by": held.decided_by,
        "decided_at": _iso(held.decided_at),
        "reason": held.reason,
        "released_at": _iso(held.released_at),
        "release_reply": held.release_reply,
        "notified": held.notify_status.value,
        "purged_at": _iso(held.purged_at),
        "trail": [_entry(e) for e in trail],
    }


def breach_report(
    store: Store, since: datetime, until: datetime | None = None, *, now: datetime
) -> dict[str, Any]:
    """The report as JSON-ready data (see the module docstring)."""
    hold_ids: list[str] = []
    other: list[dict[str, Any]] = []
    for e in _entries(store, since=since, until=until):
        if e.hold_id is None:
            other.append(_entry(e))
        elif e.hold_id not in hold_ids:
            hold_ids.append(e.hold_id)
    holds = []
    missing = []
    for hold_id in hold_ids:
        held = store.get(hold_id)
        if held is None:  # discarded (the client was told 4xx and sent it again)
            missing.append(hold_id)
            continue
        holds.append(_hold(held, list(_entries(store, hold_id=hold_id))))
    check = store.verify_audit()
    return {
        "generated_at": now.isoformat(),
        "since": since.isoformat(),
        "until": _iso(until),
        "audit_chain": {
            "ok": check.ok,
            "entries": check.checked,
            "head_seq": check.head_seq,
            "head_hash": check.head_hash,
            "first_bad_seq": check.first_bad_seq,
            "problem": check.problem,
        },
        "holds": holds,
        "holds_no_longer_stored": missing,
        "other_events": other,
    }


def _cell(value: Any) -> Any:
    """A cell a spreadsheet will not run as a formula (an address can start with '=')."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def report_csv(report: dict[str, Any]) -> str:
    """One row per hold; lists joined with `;`, the trail as `at event actor` items."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for h in report["holds"]:
        row = dict(h)
        for key in ("patients", "held_recipients", "forwarded_recipients", "codes"):
            row[key] = ";".join(h[key])
        row["trail"] = " | ".join(
            f"{e['at']} {e['event']} {e['actor']}"
            + (f" ({e['details']['reason']})" if "reason" in e["details"] else "")
            for e in h["trail"]
        )
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return out.getvalue()
