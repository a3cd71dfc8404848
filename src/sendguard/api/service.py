"""What the HTTP endpoints act on: one Guard, the tokens, metrics, health.

`ApiService` owns the state the API shares with the relay when both run in
one process: the `Guard` (one directory in memory), the quarantine store
and the reload path. Reloads are serialised and atomic: a bad directory or
rule file raises `ReloadFailed` and the running ones stay in use.

`hold_send` keeps a fax or letter that a check holds in the quarantine, for
a person to decide on (`sendguard.review`); it raises `HoldFailed` when the
quarantine cannot take it, and the caller must then not answer "held".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sendguard.api.logs import log_event
from sendguard.api.metrics import Metrics
from sendguard.api.tokens import TokenTable
from sendguard.config import Config, parse_host_port
from sendguard.core.directory import Kind
from sendguard.core.models import Verdict
from sendguard.core.rules import ReviewPlan, ReviewPolicy, RuleSet
from sendguard.guard import Guard
from sendguard.relay.logsafe import describe_error
from sendguard.review.settings import ReviewSettings
from sendguard.sources import directory_files, rule_files, shipped_rules_dir
from sendguard.store import HoldKind, HoldStatus, Store, open_store

__all__ = ["ApiService", "HealthResult", "HoldFailed", "ReloadFailed", "ReloadResult"]

log = logging.getLogger("sendguard.api")
HEALTH_TIMEOUT = 2.0  # seconds each health probe may take
MAX_PATIENTS = 50  # patient references kept with a hold (as the relay keeps)


class HoldFailed(Exception):
    """A send the verdict holds could not be kept in the quarantine (it is
    down, or refused the write); the cause is chained, never shown."""


class ReloadFailed(Exception):
    """The new directory or rules were refused; the message says why (for
    the admin who asked, never for the log)."""

    def __init__(self, message: str, *, busy: bool = False) -> None:
        super().__init__(message)
        self.busy = busy


@dataclass(frozen=True, slots=True)
class ReloadResult:
    entries: int
    rules: int
    seconds: float


@dataclass(frozen=True, slots=True)
class HealthResult:
    directory: tuple[bool, int, str | None]
    store: tuple[bool, str | None]
    next_hop: tuple[bool, str | None]

    @property
    def ok(self) -> bool:
        return self.directory[0] and self.store[0] and self.next_hop[0]


class ApiService:
    """The API's state. `store`: an open quarantine to share (the relay's);
    without one, the configured `[store] url` is opened when first needed
    and reopened after a failure. `extra_reload`: also run on every reload
    (the relay's AUTH users file)."""

    def __init__(
        self,
        config: Config,
        guard: Guard,
        *,
        tokens: TokenTable | None = None,
        metrics: Metrics | None = None,
        store: Store | None = None,
        extra_reload: Callable[[], object] | None = None,
    ) -> None:
        self.config = config
        self.guard = guard
        self.tokens = tokens if tokens is not None else TokenTable(config.api.tokens_file)
        self.metrics = metrics or Metrics()
        self._store = store
        self._owns_store = store is None
        self._store_lock = asyncio.Lock()
        self._reload_lock = asyncio.Lock()
        self.extra_reload = extra_reload
        self.review_settings = ReviewSettings.from_config(config.review)
        self._policy: tuple[RuleSet, ReviewPolicy] | None = None
        self.metrics.observe_load(len(guard.directory), len(guard.rules.rules), time.time(), 0.0)

    # -- reload ------------------------------------------------------------
    async def reload(self, reason: str) -> ReloadResult:
        """Re-read directory and rules (and what `extra_reload` covers).

        The audit entry is written once the reload lock is free again, so a
        slow store never makes the next reload look busy."""
        if self._reload_lock.locked():
            raise ReloadFailed(
                "a reload is already running; try again when it has finished", busy=True
            )
        try:
            async with self._reload_lock:
                result = await self._reload(reason)
        except ReloadFailed as exc:
            cause = exc.__cause__
            await self._audit_reload(reason, ok=False, error=type(cause or exc).__name__)
            raise
        await self._audit_reload(reason, ok=True, entries=result.entries, rules=result.rules)
        return result

    async def _reload(self, reason: str) -> ReloadResult:
        log_event(log, "reload_started", reason=reason)
        t0 = time.perf_counter()
        try:
            await asyncio.to_thread(self.guard.reload)
            if self.extra_reload is not None:
                await asyncio.to_thread(self.extra_reload)
        except Exception as exc:
            self.metrics.reloads.labels("failed").inc()
            problems = getattr(exc, "problems", None)
            log_event(
                log,
                "reload_failed",
                level=logging.ERROR,
                reason=reason,
                error=describe_error(exc),
                problems=len(problems) if isinstance(problems, list) else None,
                kept="the directory and rules in use",
            )
            raise ReloadFailed(str(exc) or type(exc).__name__) from exc
        seconds = time.perf_counter() - t0
        result = ReloadResult(len(self.guard.directory), len(self.guard.rules.rules), seconds)
        self.metrics.reloads.labels("ok").inc()
        self.metrics.observe_load(result.entries, result.rules, time.time(), seconds)
        log_event(
            log,
            "reloaded",
            reason=reason,
            entries=result.entries,
            rules=result.rules,
            seconds=round(seconds, 3),
        )
        return result

    async def _audit_reload(self, reason: str, **details: Any) -> None:
        """Every reload, kept or refused, is in the audit log (counts and an
        error type only). An unreachable store never fails the reload."""
        try:
            store = await self._get_store()
            await asyncio.to_thread(
                store.append_audit,
                "rules_reload",
                actor=f"api@{socket.gethostname()}",
                details={"via": reason, **details},
            )
        except Exception as exc:
            log_event(log, "reload_not_audited", level=logging.WARNING, error=describe_error(exc))

    def watched_files(self) -> list[Path]:
        """The directory source files and rule files a reload would read."""
        d, r = self.config.directory, self.config.rules
        files = directory_files(d.sources)
        shipped = shipped_rules_dir()
        rule_paths: list[Path] = list(r.defaults) if r.defaults is not None else [shipped]
        local = list(r.local) or [shipped / "local.d"]
        for p in (*rule_paths, *local):
            with contextlib.suppress(Exception):  # a missing folder is the reload's to report
                files.extend(rule_files([p]))
        return files

    def files_stamp(self) -> tuple[tuple[str, int, int], ...]:
        """Path, mtime and size of every watched file (blocking: call in a thread)."""
        out = []
        for f in self.watched_files():
            try:
                st = f.stat()
                out.append((str(f), st.st_mtime_ns, st.st_size))
            except OSError:
                out.append((str(f), -1, -1))
        return tuple(out)

    async def watch(self, interval: float, since: tuple[tuple[str, int, int], ...]) -> None:
        """Reload whenever a watched file's mtime or size changes (or a file
        comes or goes) from `since` on. A failed reload is not retried until
        the files change again; it is logged and counted like any other."""
        last = since
        while True:
            await asyncio.sleep(interval)
            try:
                now = await asyncio.to_thread(self.files_stamp)
            except Exception as exc:
                log_event(log, "watch_failed", level=logging.WARNING, error=describe_error(exc))
                continue
            if now == last:
                continue
            last = now
            with contextlib.suppress(ReloadFailed):
                await self.reload("files changed")

    # -- quarantine --------------------------------------------------------
    async def _get_store(self) -> Store:
        async with self._store_lock:
            if self._store is None:
                self._store = await asyncio.to_thread(open_store, self.config.store.url)
            return self._store

    async def _drop_store(self, store: Store) -> None:
        """Forget a store that failed, so that the next call opens it afresh."""
        if not self._owns_store:
            return
        async with self._store_lock:
            if self._store is store:
                self._store = None
        with contextlib.suppress(Exception):
            await asyncio.to_thread(store.close)

    def review_plan(self, verdict: Verdict) -> ReviewPlan:
        """How a hold of this verdict is reviewed, from the rules in use:
        the relay's `ReviewPolicy.plan`, so mail and faxes are judged alike."""
        rules = self.guard.rules
        if self._policy is None or self._policy[0] is not rules:  # a reload swapped them
            self._policy = (rules, ReviewPolicy(rules))
        return self._policy[1].plan(verdict)

    def patient_ids(self, refs: str | Sequence[str] | None) -> list[str]:
        """The patients a check names, as directory ids where the directory
        knows them and as given otherwise (for the hold and its audit entry)."""
        if refs is None:
            return []
        items = [refs] if isinstance(refs, str) else list(refs)
        directory = self.guard.directory
        out: list[str] = []
        for item in items:
            for ref in (p.strip() for p in re.split(r"[,;]", item)):
                if not ref:
                    continue
                found = [
                    directory.entry(i).id
                    for i in directory.find(ref)
                    if directory.kind(i) is Kind.PATIENT
                ]
                out.extend(p for p in found or [ref] if p not in out)
        return out[:MAX_PATIENTS]

    async def hold_send(
        self,
        kind: HoldKind,
        payload: Mapping[str, Any],
        verdict: Verdict,
        *,
        sender: str,
        patients: Sequence[str],
        callback_url: str | None,
        actor: str,
        meta: Mapping[str, Any],
    ) -> str:
        """Keep a held fax or letter check in the quarantine; its hold id.

        Reviewer-only when the rules say so (`review_plan`); expires after
        `[review] expire_after`. Raises `HoldFailed` if the quarantine cannot
        take it: the send must then be treated as not checked.
        """
        plan = self.review_plan(verdict)
        now = datetime.now(UTC)
        try:
            store = await self._get_store()
        except Exception as exc:
            raise HoldFailed("the quarantine cannot be opened") from exc
        try:
            return await asyncio.to_thread(
                store.hold_send,
                kind,
                payload,
                verdict,
                sender,
                callback_url,
                expires_at=self.review_settings.expires_at(now),
                requires_reviewer=plan.requires_reviewer,
                meta=meta,
                patients=patients,
                actor=actor,
            )
        except Exception as exc:
            await self._drop_store(store)
            raise HoldFailed("the quarantine did not take the hold") from exc

    async def holds_pending(self) -> int:
        """Holds waiting for a decision; raises if the quarantine cannot say."""
        store = await asyncio.wait_for(self._get_store(), HEALTH_TIMEOUT)
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(store.count, status=HoldStatus.HELD), HEALTH_TIMEOUT
            )
        except Exception:
            await self._drop_store(store)
            raise

    async def refresh_hold_metrics(self) -> None:
        try:
            n = await self.holds_pending()
        except Exception as exc:
            self.metrics.store_up.set(0)
            log_event(log, "store_unreachable", level=logging.WARNING, error=describe_error(exc))
        else:
            self.metrics.store_up.set(1)
            self.metrics.holds_pending.set(n)

    async def close(self) -> None:
        if self._owns_store and self._store is not None:
            store, self._store = self._store, None
            await asyncio.to_thread(store.close)

    # -- health ------------------------------------------------------------
    async def health(self) -> HealthResult:
        """Directory loaded (and not empty), quarantine answering, next hop
        accepting connections. Errors are kinds, never messages."""

        async def store() -> tuple[bool, str | None]:
            try:
                await self.holds_pending()
            except Exception as exc:
                log_event(
                    log, "health_store_failed", level=logging.WARNING, error=describe_error(exc)
                )
                return False, "unreachable"
            return True, None

        async def next_hop() -> tuple[bool, str | None]:
            host, port = parse_host_port(self.config.relay.next_hop)
            try:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, port), HEALTH_TIMEOUT
                )
            except TimeoutError:
                return False, "timeout"
            except OSError:
                return False, "unreachable"
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return True, None

        entries = len(self.guard.directory)
        directory = (entries > 0, entries, None if entries else "empty")
        s, h = await asyncio.gather(store(), next_hop())
        return HealthResult(directory, s, h)
