"""The sendguard SMTP relay: mail servers route outbound mail through it.

    from sendguard.relay import Relay
    relay = Relay(load_config("sendguard.toml"))
    await relay.run()          # until SIGTERM; SIGHUP reloads

Modules, one job each: `handler` (the aiosmtpd hooks: verdict, then
forward, hold or reject), `checker` and `workers` (where checks run, with
deadlines), `forward` (pooled connections to the next hop), `notify` (hold
notifications to senders), `access` (client networks, AUTH), `smtp` (the
protocol's limits and draining), `server` (lifecycle and signals).
"""

from __future__ import annotations

from sendguard.relay.checker import Checker, CheckFailed, InlineChecker, ReloadFailed
from sendguard.relay.forward import NextHop, Reply
from sendguard.relay.handler import RelayHandler, failsafe_verdict, verdict_header
from sendguard.relay.server import Relay, RelayStartError
from sendguard.relay.workers import WorkerPool

__all__ = [
    "CheckFailed",
    "Checker",
    "InlineChecker",
    "NextHop",
    "Relay",
    "RelayHandler",
    "RelayStartError",
    "ReloadFailed",
    "Reply",
    "WorkerPool",
    "failsafe_verdict",
    "verdict_header",
]
