"""The relay's life: start, serve, reload on SIGHUP, drain on SIGTERM.

`Relay` wires the parts together from a `Config`: the quarantine store, a
checker (worker processes, or an in-process `Guard`), the next hop, the
hold notifier, the review jobs (`ReviewService.run`: release retries,
delay-and-recall releases, expiry, purging, callbacks; safe on every node
of a shared PostgreSQL quarantine) and the aiosmtpd server. Startup fails
loudly (with the reason) rather than serving half-configured.

Signals (installed by `run()`):
- SIGHUP: reload directory and rules (and the AUTH users file) without
  dropping connections; a bad reload keeps the running ones and logs why.
  Every reload is audited (`rules_reload`, ok or not).
- SIGTERM / SIGINT: stop accepting, let messages in flight finish (up to
  `shutdown_timeout`), say 421 to idle clients, then exit.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from pathlib import Path
from typing import Any

from sendguard.config import Config, parse_host_port
from sendguard.core.rules import ReviewPolicy, RulesError
from sendguard.guard import Guard
from sendguard.relay.access import AccessPolicy, PasswordFile
from sendguard.relay.checker import Checker, InlineChecker, ReloadFailed
from sendguard.relay.forward import NextHop
from sendguard.relay.handler import HandlerSettings, RelayHandler
from sendguard.relay.logsafe import log_error
from sendguard.relay.notify import Notifier
from sendguard.relay.smtp import RelaySMTP, Sessions, server_tls_context
from sendguard.relay.workers import WorkerPool
from sendguard.review.secret import SecretError
from sendguard.review.service import ReviewService
from sendguard.sources import load_rules, shipped_rules_dir
from sendguard.store import Store, StoreError, open_store

__all__ = ["Relay", "RelayStartError"]

log = logging.getLogger("sendguard.relay")


class RelayStartError(Exception):
    """The relay cannot start; the message says what to fix."""


class Relay:
    """One sendguard relay: build with a Config, `await start()`, `await stop()`.

    `guard` (tests, embedding) checks in this process instead of starting
    worker processes; `store` replaces the configured quarantine.
    """

    def __init__(
        self, config: Config, *, guard: Guard | None = None, store: Store | None = None
    ) -> None:
        self.config = config
        rc = config.relay
        self.hostname = rc.hostname or socket.getfqdn()
        self.node = f"relay@{self.hostname}"
        """Who this relay is in the audit log (holds, notices, releases, reloads)."""
        self._guard = guard
        self.store = store
        self.checker: Checker | None = None
        self.next_hop: NextHop | None = None
        self.notifier: Notifier | None = None
        self.handler: RelayHandler | None = None
        self.review: ReviewService | None = None
        self.sessions = Sessions(rc.max_connections)
        self.users: PasswordFile | None = None
        self._server: asyncio.Server | None = None
        self._notify_task: asyncio.Task[None] | None = None
        self._review_task: asyncio.Task[None] | None = None
        self._review_stop = asyncio.Event()
        self._stopped = asyncio.Event()
        self._stopping = False
        self._reloads: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> tuple[str, int]:
        """The address actually listened on (useful with port 0)."""
        assert self._server is not None
        assert self._server.sockets
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    # -- start / stop ------------------------------------------------------
    async def start(self) -> None:
        rc = self.config.relay
        smtp_log = logging.getLogger("mail.log")  # aiosmtpd logs every command, addresses too
        if smtp_log.level == logging.NOTSET:
            smtp_log.setLevel(logging.WARNING)
        host, port = parse_host_port(rc.listen)
        try:
            tls = (
                server_tls_context(rc.tls_cert, rc.tls_key) if rc.tls_cert and rc.tls_key else None
            )
            self.users = PasswordFile(rc.auth_users) if rc.auth_users else None
        except ValueError as exc:
            raise RelayStartError(str(exc)) from None
        if self.store is None:
            try:
                self.store = await asyncio.to_thread(open_store, self.config.store.url)
            except Exception as exc:
                raise RelayStartError(f"cannot open the quarantine: {exc}") from exc
        if self._guard is not None:
            self.checker = InlineChecker(self._guard, timeout=rc.check_timeout)
        elif rc.check_workers == 0:
            try:
                guard = await asyncio.to_thread(Guard.load, self.config)
            except Exception as exc:
                raise RelayStartError(f"cannot load directory and rules: {exc}") from exc
            self.checker = InlineChecker(guard, timeout=rc.check_timeout)
        else:
            self.checker = WorkerPool(self.config, size=rc.check_workers, timeout=rc.check_timeout)
        try:
            loaded = await self.checker.start()
        except ReloadFailed as exc:
            raise RelayStartError(f"cannot load directory and rules: {exc}") from exc
        self.next_hop = NextHop.from_config(rc, local_hostname=self.hostname)
        node = self.node
        try:
            self.review = ReviewService.from_config(
                self.config, self.store, self.next_hop, node=node
            )
            policy = await asyncio.to_thread(self._review_policy)
        except (SecretError, RulesError) as exc:
            await self._close_parts()
            raise RelayStartError(str(exc)) from None
        if rc.notify:
            self.notifier = Notifier(
                self.store,
                self.next_hop,
                sender=rc.notify_from,
                hostname=self.hostname,
                attempts=rc.notify_attempts,
                retry=rc.notify_retry,
                links=self.review.notice_links if self.config.review.base_url else None,
                node=node,
                lease=self.config.review.release_lease.total_seconds(),
            )
            self._notify_task = asyncio.create_task(self.notifier.run(), name="sendguard-notify")
        self.handler = RelayHandler(
            checker=self.checker,
            store=self.store,
            next_hop=self.next_hop,
            access=AccessPolicy(rc.client_networks),
            notifier=self.notifier,
            settings=HandlerSettings(
                max_recipients=rc.max_recipients,
                split_mixed=rc.mixed_policy == "split",
                notify=rc.notify,
                auth_enabled=self.users is not None,
                expire_after=self.config.review.expire_after,
                node=node,
            ),
        )
        self.handler.review_policy = policy
        self._review_task = asyncio.create_task(
            self.review.run(self._review_stop), name="sendguard-review"
        )
        handler, sessions = self.handler, self.sessions

        def factory() -> RelaySMTP:
            return RelaySMTP(
                handler,
                sessions=sessions,
                line_length_limit=rc.max_line_length,
                data_size_limit=rc.max_message_size,
                enable_SMTPUTF8=rc.smtputf8,
                hostname=self.hostname,
                ident="sendguard ESMTP",
                tls_context=tls,
                require_starttls=rc.require_starttls,
                timeout=rc.timeout,
                authenticator=self.users,
                auth_require_tls=True,
            )

        try:
            self._server = await asyncio.get_running_loop().create_server(
                factory, host, port, reuse_address=True, backlog=512
            )
        except OSError as exc:
            await self._close_parts()
            raise RelayStartError(f"cannot listen on {rc.listen}: {exc.strerror or exc}") from exc
        log.info(
            "sendguard relay listening on %s:%d, next hop %s, %s, checks in %s",
            *self.address,
            self.next_hop.name,
            loaded,
            f"{rc.check_workers} worker process(es)"
            if self._guard is None and rc.check_workers
            else "the relay process",
        )

    async def stop(self, timeout: float | None = None) -> None:
        """Stop accepting, finish messages in flight, close everything."""
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        limit = self.config.relay.shutdown_timeout if timeout is None else timeout
        log.info("stopping: finishing messages in flight (up to %g s)", limit)
        if self._server is not None:
            self._server.close()
        cut = await self.sessions.drain(limit)
        if cut:
            log.warning(
                "stopped with %d message(s) still being received; their senders "
                "got no answer and will retry",
                cut,
            )
        await self._close_parts()
        if self._server is not None:
            await self._server.wait_closed()
        log.info("stopped")
        self._stopped.set()

    async def _close_parts(self) -> None:
        for t in list(self._reloads):
            t.cancel()
        if self.notifier is not None:
            self.notifier.close()
        if self._notify_task is not None:
            await asyncio.wait([self._notify_task], timeout=5)
        self._review_stop.set()
        if self._review_task is not None:
            await asyncio.wait([self._review_task], timeout=5)
        if self.next_hop is not None:
            await self.next_hop.close()
        if self.checker is not None:
            await self.checker.close()
        if self.store is not None:
            await asyncio.to_thread(self.store.close)

    # -- reload ------------------------------------------------------------
    async def reload(self) -> bool:
        """Re-read directory, rules and users; True if all went in."""
        assert self.checker is not None
        ok = True
        log.info("reloading directory and rules")
        try:
            loaded = await self.checker.reload()
        except ReloadFailed as exc:
            log.error("reload failed, keeping the directory and rules in use: %s", _one_line(exc))
            ok = False
        else:
            log.info("reloaded: %s", loaded)
            try:
                policy = await asyncio.to_thread(self._review_policy)
            except RulesError as exc:  # changed again since the checker read them
                log.error("review options not reloaded, keeping the previous: %s", _one_line(exc))
                ok = False
            else:
                if self.handler is not None:
                    self.handler.review_policy = policy
        await self._audit_reload(ok)
        if self.users is not None:
            try:
                n = await asyncio.to_thread(self.users.load)
                log.info("reloaded %d AUTH user(s)", n)
            except ValueError as exc:
                log.error("AUTH users not reloaded, keeping the previous ones: %s", _one_line(exc))
                ok = False
        return ok

    def _review_policy(self) -> ReviewPolicy:
        """The rules' review options, from the rules the checks use."""
        if isinstance(self.checker, InlineChecker):
            return ReviewPolicy(self.checker.guard.rules)
        cfg = self.config.rules
        local = tuple(cfg.local) or _default_local_rules()
        return ReviewPolicy(load_rules(cfg.defaults, local))

    async def _audit_reload(self, ok: bool) -> None:
        if self.store is None:
            return
        try:
            await asyncio.to_thread(
                self.store.append_audit,
                "rules_reload",
                actor=self.node,
                details={"ok": ok},
            )
        except StoreError as exc:
            log_error(log, "reload not audited", exc)

    def _reload_soon(self) -> None:
        task = asyncio.create_task(self._reload_logged())
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    async def _reload_logged(self) -> None:
        try:
            await self.reload()
        except Exception as exc:
            log_error(log, "reload failed unexpectedly; keeping what is in use", exc)

    # -- running as a service ----------------------------------------------
    async def run(self) -> None:
        """Start, serve until SIGTERM/SIGINT, then stop gracefully."""
        await self.start()
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGHUP, self._reload_soon)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        try:
            await stop.wait()
        finally:
            for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            await self.stop()

    def stats(self) -> dict[str, Any]:
        return dict(self.handler.stats) if self.handler is not None else {}


def _default_local_rules() -> tuple[Path, ...]:
    """As `Guard.load` does: `local.d` beside the shipped rules, if present."""
    local = shipped_rules_dir() / "local.d"
    return (local,) if local.is_dir() else ()


def _one_line(exc: BaseException) -> str:
    """A multi-line error (every bad rule, every bad record) as one log line."""
    return "; ".join(part.strip() for part in str(exc).splitlines() if part.strip())
