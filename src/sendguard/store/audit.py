"""The audit log's hash chain, shared by every backend.

Each entry's hash is the SHA-256 of a canonical serialisation (orjson, keys
sorted) of its fields and the previous entry's hash, so that the same entry
hashes the same on SQLite and PostgreSQL, today and after a restore. The
head (last seq and hash) is also kept in a row of its own: removing the
newest entries then shows as a tail shorter than the head.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from sendguard.store.models import AuditEntry, AuditReport, StoreError

__all__ = ["GENESIS", "ChainVerifier", "canonical_details", "entry_hash", "ts_text"]

GENESIS = "0" * 64
"""The `prev_hash` of the first entry."""


def ts_text(dt: datetime) -> str:
    """Sortable UTC text with microseconds: one instant, one string."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_details(details: Mapping[str, Any] | None) -> tuple[dict[str, Any], str]:
    """The details as they will read back from storage, and their stored text.

    Round-tripping through JSON first makes the hash at append time equal the
    hash recomputed later from the stored text (datetimes become strings...).
    """
    try:
        text = orjson.dumps(dict(details or {}), option=orjson.OPT_SORT_KEYS).decode()
    except TypeError as exc:
        raise StoreError(f"audit details must be JSON: {exc}") from exc
    parsed: dict[str, Any] = orjson.loads(text)
    return parsed, text


def entry_hash(
    *,
    seq: int,
    timestamp: datetime,
    event: str,
    actor: str,
    hold_id: str | None,
    details: Mapping[str, Any],
    prev_hash: str,
) -> str:
    doc = {
        "seq": seq,
        "ts": ts_text(timestamp),
        "event": event,
        "actor": actor,
        "hold_id": hold_id,
        "details": details,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()


class ChainVerifier:
    """Checks entries fed in seq order, stopping at the first break, then
    compares the end of the chain with the stored head."""

    def __init__(self, anchor: tuple[int, str] | None = None) -> None:
        self._expected = 1
        self._prev = GENESIS
        self._anchor = anchor
        self._anchor_seen = False
        self.checked = 0
        self.first_bad: int | None = None
        self.problem: str | None = None

    @property
    def broken(self) -> bool:
        return self.first_bad is not None

    def fail(self, seq: int, problem: str) -> bool:
        """Mark the chain broken at `seq` (also for rows that cannot be read)."""
        if not self.broken:
            self.first_bad, self.problem = seq, problem
        return False

    def feed(self, e: AuditEntry) -> bool:
        """Check the next entry; False once the chain is broken."""
        if self.broken:
            return False
        if e.seq != self._expected:
            missing = f"{self._expected}" + (f"..{e.seq - 1}" if e.seq - 1 > self._expected else "")
            return self.fail(self._expected, f"entry {missing} missing (deleted)")
        if e.prev_hash != self._prev:
            return self.fail(
                e.seq,
                f"entry {e.seq} does not follow entry {e.seq - 1} "
                "(the earlier entry was altered or replaced)",
            )
        recomputed = entry_hash(
            seq=e.seq,
            timestamp=e.timestamp,
            event=e.event,
            actor=e.actor,
            hold_id=e.hold_id,
            details=e.details,
            prev_hash=e.prev_hash,
        )
        if recomputed != e.hash:
            return self.fail(e.seq, f"entry {e.seq} was altered (its hash does not match)")
        if self._anchor is not None and e.seq == self._anchor[0]:
            if e.hash != self._anchor[1]:
                return self.fail(e.seq, f"entry {e.seq} differs from the anchor kept outside")
            self._anchor_seen = True
        self._expected += 1
        self._prev = e.hash
        self.checked += 1
        return True

    def report(self, head: tuple[int, str] | None) -> AuditReport:
        """The verdict, given the stored head (None if its row is gone)."""
        last = self._expected - 1
        head_seq, head_hash = head if head is not None else (-1, "")
        if not self.broken:
            if head is None:
                self.fail(last + 1, "the chain head row is missing")
            elif last < head_seq:
                self.fail(
                    last + 1,
                    f"entries {last + 1}..{head_seq} missing: the log was cut off after {last}",
                )
            elif self._prev != head_hash:
                self.fail(last, f"entry {last} does not match the chain head (rewritten)")
            elif self._anchor is not None and not self._anchor_seen:
                self.fail(min(self._anchor[0], last + 1), "the anchor is not in the chain")
        return AuditReport(
            ok=not self.broken,
            checked=self.checked,
            head_seq=max(head_seq, 0),
            head_hash=head_hash,
            first_bad_seq=self.first_bad,
            problem=self.problem,
        )
