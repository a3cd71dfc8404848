"""Prometheus metrics for the check API and the relay, in their own registry.

A registry per server (not prometheus_client's global one) keeps two
servers in one process (tests, the API beside the relay) from counting into
each other. Labels carry channels, actions, outcomes and finding codes:
bounded sets, and never an address, a name or a number.

Only this module and the API import prometheus_client; the relay gets the
`observe_relay_message` method as a plain callback.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from sendguard.core.models import Action, Channel, Verdict

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
# no `_created` twin of every series: they double the output (untyped in prometheus_client)
disable_created_metrics()  # type: ignore[no-untyped-call]
# A check takes tens of microseconds to a few milliseconds; the relay's
# messages include the next hop's answer, so they reach seconds.
_CHECK_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1)
_RELAY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
RELAY_ACTIONS = ("forwarded", "held", "rejected", "deferred")
HOLD_CHANNELS = (Channel.FAX, Channel.LETTER)  # held over HTTP; email is held by the relay


class Metrics:
    """Every metric `sendguard serve` exposes at /metrics."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.checks = Counter(
            "sendguard_checks",
            "Checks answered over HTTP, by channel and verdict action",
            ["channel", "action"],
            registry=r,
        )
        self.findings = Counter(
            "sendguard_findings",
            "Findings in the verdicts of HTTP checks, by channel and finding code",
            ["channel", "code"],
            registry=r,
        )
        self.check_seconds = Histogram(
            "sendguard_check_duration_seconds",
            "Time to check one send (the library call, without HTTP), by channel",
            ["channel"],
            buckets=_CHECK_BUCKETS,
            registry=r,
        )
        self.requests = Counter(
            "sendguard_http_requests",
            "HTTP requests answered, by route and status code",
            ["route", "status"],
            registry=r,
        )
        self.api_holds = Counter(
            "sendguard_api_holds",
            "Fax and letter checks held over HTTP (kept in the quarantine), by channel",
            ["channel"],
            registry=r,
        )
        self.api_hold_failures = Counter(
            "sendguard_api_hold_failures",
            "Fax and letter checks that had to be held but could not be stored "
            "(answered 503), by channel",
            ["channel"],
            registry=r,
        )
        self.holds_pending = Gauge(
            "sendguard_holds_pending",
            "Messages in the quarantine waiting for a person to decide (read at scrape time)",
            registry=r,
        )
        self.store_up = Gauge(
            "sendguard_store_up",
            "1 if the quarantine answered at the last scrape, else 0",
            registry=r,
        )
        self.directory_entries = Gauge(
            "sendguard_directory_entries", "Entries in the directory in use", registry=r
        )
        self.rules = Gauge("sendguard_rules", "Rules in the rule set in use", registry=r)
        self.loaded_at = Gauge(
            "sendguard_directory_loaded_timestamp_seconds",
            "Unix time the directory and rules in use were loaded",
            registry=r,
        )
        self.load_seconds = Gauge(
            "sendguard_directory_load_duration_seconds",
            "Seconds the last successful load or reload of directory and rules took",
            registry=r,
        )
        self.reloads = Counter(
            "sendguard_reloads",
            "Reloads of directory and rules, by result (ok, failed)",
            ["result"],
            registry=r,
        )
        self.relay_messages = Counter(
            "sendguard_relay_messages",
            "Messages answered by the relay (when run by sendguard serve), by what it did: "
            "forwarded, held, rejected or deferred (4xx, the client retries)",
            ["action"],
            registry=r,
        )
        self.relay_seconds = Histogram(
            "sendguard_relay_message_duration_seconds",
            "Time from the end of DATA to the relay's answer, by what it did",
            ["action"],
            buckets=_RELAY_BUCKETS,
            registry=r,
        )
        # Zero series for the known label values, so dashboards see them from the start.
        for ch in Channel:
            self.check_seconds.labels(ch.value)
            for a in Action:
                self.checks.labels(ch.value, a.value)
        for ch in HOLD_CHANNELS:
            self.api_holds.labels(ch.value)
            self.api_hold_failures.labels(ch.value)
        for result in ("ok", "failed"):
            self.reloads.labels(result)
        for action in RELAY_ACTIONS:
            self.relay_messages.labels(action)
            self.relay_seconds.labels(action)

    def observe_check(self, channel: Channel, verdict: Verdict, seconds: float) -> None:
        ch = channel.value
        self.checks.labels(ch, verdict.action.value).inc()
        self.check_seconds.labels(ch).observe(seconds)
        for f in verdict.findings:
            self.findings.labels(ch, f.code).inc()

    def observe_hold(self, channel: Channel, *, stored: bool) -> None:
        """A check over HTTP that holds: kept in the quarantine, or not (503)."""
        (self.api_holds if stored else self.api_hold_failures).labels(channel.value).inc()

    def observe_load(self, entries: int, rules: int, at: float, seconds: float) -> None:
        """A directory and rule set went into use at `at` (Unix time)."""
        self.directory_entries.set(entries)
        self.rules.set(rules)
        self.loaded_at.set(at)
        self.load_seconds.set(seconds)

    def observe_relay_message(self, action: str, seconds: float) -> None:
        """The relay's callback (`RelayHandler.observe`): one message answered."""
        self.relay_messages.labels(action).inc()
        self.relay_seconds.labels(action).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
