"""Decision callbacks for fax and letter holds: an outbox kept in the audit log.

A practice system that held a fax or letter over HTTP may give a
`callback_url`; when a person decides (released, cancelled, expired,
recalled) sendguard POSTs the decision there as JSON:

    {"hold_id": ..., "kind": "fax", "status": "released", "decided_by": ...,
     "decided_at": "2026-12-01T12:00:00+00:00", "reason": ...}

The decision never waits for it. The outbox is the audit log itself, so it
needs no table of its own and every attempt is on the record:

- the decision queues the callback (`callback_queued`, in the same pass as
  the decision, after it is committed);
- each attempt is one `callback` entry: attempt number, ok, the HTTP status
  or the error class, and the next attempt's time (none when finished);
- `Store.use_token("callback:<hold>:<attempt>")` lets exactly one node make
  each attempt when several run the background jobs.

Attempts back off like releases (`release_backoff`, doubling, up to
`release_attempts`); only 2xx counts as delivered. A queued callback older
than the retry span plus a day is no longer looked for (a node that was
down that long reports it in the audit log as never delivered).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx

from sendguard.review.settings import ReviewSettings
from sendguard.store.base import AuditEntry, HeldMessage, HoldKind, Store

__all__ = ["CallbackOutbox", "callback_body"]

log = logging.getLogger("sendguard.review.callbacks")
_OVERLAP = timedelta(minutes=5)  # entries committed late by other nodes are still seen
_PAGE = 500


def callback_body(held: HeldMessage) -> dict[str, Any]:
    """What the practice system is told: the decision, never the payload."""
    return {
        "hold_id": held.hold_id,
        "kind": held.kind.value,
        "status": held.status.value,
        "decided_by": held.decided_by,
        "decided_at": held.decided_at.isoformat() if held.decided_at else None,
        "reason": held.reason,
    }


def _http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


class CallbackOutbox:
    """Queues and delivers decision callbacks (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        settings: ReviewSettings,
        clock: Callable[[], datetime],
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        self._transport = transport
        self._pending: dict[str, datetime] = {}  # hold id -> not before
        self._finished: dict[str, datetime] = {}  # hold id -> when it was seen finished
        self._blocked: dict[str, tuple[int, datetime]] = {}  # another node's attempt, since
        self._cursor: datetime | None = None

    @property
    def horizon(self) -> timedelta:
        return self._settings.retry_span() + timedelta(days=1)

    @staticmethod
    def wanted(held: HeldMessage) -> bool:
        return held.kind is not HoldKind.EMAIL and bool(held.callback_url)

    async def queue(self, held: HeldMessage) -> None:
        """Record that the decision on `held` must be called back."""
        if not self.wanted(held):
            return
        await asyncio.to_thread(
            self._store.append_audit,
            "callback_queued",
            actor=self._settings.node,
            hold_id=held.hold_id,
            details={"status": held.status.value},
        )
        self._pending.setdefault(held.hold_id, self._clock())

    async def run_due(self) -> tuple[int, int]:
        """Deliver what is due; (delivered, failed attempts) in this pass."""
        now = self._clock()
        await self._discover(now)
        sent = failed = 0
        for hold_id, not_before in sorted(self._pending.items(), key=lambda kv: kv[1]):
            if not_before > now:
                continue
            ok = await self._attempt(hold_id, now)
            if ok is True:
                sent += 1
            elif ok is False:
                failed += 1
        return sent, failed

    async def _discover(self, now: datetime) -> None:
        since = (self._cursor or now - self.horizon) - _OVERLAP
        offset = 0
        while True:
            entries = await asyncio.to_thread(
                self._store.audit_entries,
                event="callback_queued",
                since=since,
                limit=_PAGE,
                offset=offset,
            )
            for e in entries:
                if e.hold_id and e.hold_id not in self._finished:
                    self._pending.setdefault(e.hold_id, e.timestamp)
            if len(entries) < _PAGE:
                break
            offset += _PAGE
        if self._cursor is not None:  # later passes look back only _OVERLAP: forget the rest
            old = now - 2 * _OVERLAP
            self._finished = {h: t for h, t in self._finished.items() if t >= old}
        self._cursor = now

    def _finish(self, hold_id: str) -> None:
        self._pending.pop(hold_id, None)
        self._finished[hold_id] = self._clock()

    async def _attempt(self, hold_id: str, now: datetime) -> bool | None:
        """One attempt if one is due: True delivered, False failed, None nothing done."""
        history: list[AuditEntry] = await asyncio.to_thread(
            self._store.audit_entries, hold_id=hold_id, event="callback", limit=1000
        )
        if history and (history[-1].details.get("ok") or not history[-1].details.get("next")):
            self._finish(hold_id)
            return None
        if history:
            due = datetime.fromisoformat(str(history[-1].details["next"]))
            if due > now:
                self._pending[hold_id] = due
                return None
        attempt = len(history) + 1
        claimed = await asyncio.to_thread(
            self._store.use_token, f"callback:{hold_id}:{attempt}", now + self.horizon
        )
        if not claimed:  # another node makes this attempt; look again later
            await self._maybe_take_over(hold_id, attempt, now)
            return None
        self._blocked.pop(hold_id, None)
        held = await asyncio.to_thread(self._store.get, hold_id)
        if held is None or not held.callback_url:
            self._finish(hold_id)
            return None
        details: dict[str, Any] = {"attempt": attempt}
        if not _http_url(held.callback_url):
            details |= {"ok": False, "error": "not an http(s) URL", "next": None}
        else:
            details |= await self._post(held.callback_url, callback_body(held))
            if not details["ok"] and attempt < self._settings.release_attempts:
                details["next"] = (now + self._settings.backoff(attempt)).isoformat()
            else:
                details["next"] = None
        await asyncio.to_thread(
            self._store.append_audit,
            "callback",
            actor=self._settings.node,
            hold_id=hold_id,
            details=details,
        )
        if details["ok"]:
            log.info("hold %s: decision callback delivered (attempt %d)", hold_id, attempt)
            self._finish(hold_id)
            return True
        if details["next"] is None:
            log.warning("hold %s: decision callback failed for good", hold_id)
            self._finish(hold_id)
        else:
            self._pending[hold_id] = datetime.fromisoformat(details["next"])
            log.warning("hold %s: decision callback attempt %d failed", hold_id, attempt)
        return False

    async def _maybe_take_over(self, hold_id: str, attempt: int, now: datetime) -> None:
        """An attempt claimed but never recorded (its node stopped mid-way) is
        recorded as lost after a while, once, so that the next one can go."""
        self._pending[hold_id] = now + timedelta(seconds=self._settings.poll_interval)
        seen = self._blocked.get(hold_id)
        if seen is None or seen[0] != attempt:
            self._blocked[hold_id] = (attempt, now)
            return
        if now - seen[1] < timedelta(seconds=4 * self._settings.callback_timeout + 60):
            return
        key = f"callback:{hold_id}:{attempt}:lost"
        if await asyncio.to_thread(self._store.use_token, key, now + self.horizon):
            last = attempt >= self._settings.release_attempts
            await asyncio.to_thread(
                self._store.append_audit,
                "callback",
                actor=self._settings.node,
                hold_id=hold_id,
                details={
                    "attempt": attempt,
                    "ok": False,
                    "error": "lost",
                    "next": None if last else now.isoformat(),
                },
            )
        self._blocked.pop(hold_id, None)

    async def _post(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(
                timeout=self._settings.callback_timeout,
                follow_redirects=False,
                trust_env=False,  # never through a proxy from the environment
                transport=self._transport,
            ) as client:
                resp = await client.post(url, json=body, headers={"User-Agent": "sendguard"})
        except httpx.HTTPError as exc:
            return {"ok": False, "error": type(exc).__name__}
        return {"ok": 200 <= resp.status_code < 300, "http_status": resp.status_code}
