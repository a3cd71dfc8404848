"""Run the rules' checks on a send and decide: collect, then decide.

An Engine binds one rule set to one directory (preparing per-directory
state once) and is immutable; a reload builds a new Engine. Checks only
record findings; `decide` alone turns them into the verdict.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sendguard.core.context import EmailContext, FaxContext, LetterContext, SendContext
from sendguard.core.directory import Directory
from sendguard.core.models import (
    Action,
    Channel,
    EmailSend,
    FaxSend,
    Finding,
    Send,
    Verdict,
    strictest,
)
from sendguard.core.rules import CompiledRule, RuleSet

__all__ = ["Engine", "RuleOutcome", "Trace", "decide"]


def decide(channel: Channel, findings: list[Finding], recipients: Iterable[str]) -> Verdict:
    """The one place findings become a verdict: the strictest applied action
    wins, for the whole send and for each recipient."""
    applied = [f for f in findings if not f.monitor]
    per: dict[str, Action] = {}
    general = strictest(f.action for f in applied if f.recipient is None)
    for r in recipients:
        per[r] = strictest([general, *(f.action for f in applied if f.recipient == r)])
    for f in applied:  # findings about recipients the caller did not list
        if f.recipient is not None and f.recipient not in per:
            per[f.recipient] = strictest([general, f.action])
    return Verdict(
        action=strictest(f.action for f in applied),
        channel=channel,
        findings=findings,
        recipients=per,
    )


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    """What one rule did with one send, for `sendguard rules test`."""

    rule: str
    check: str
    status: str  # "fired" | "quiet" | "out of scope" | "disabled" | "failed"
    findings: tuple[Finding, ...] = ()


@dataclass(slots=True)
class Trace:
    outcomes: list[RuleOutcome] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Bound:
    compiled: CompiledRule
    state: Any


class Engine:
    """Rules bound to a directory. Safe to share between threads and tasks."""

    def __init__(self, directory: Directory, rules: RuleSet, *, region: str = "GB") -> None:
        self.directory = directory
        self.rules = rules
        self.region = region
        self._bound: dict[Channel, list[_Bound]] = {c: [] for c in Channel}
        self._disabled = [r for r in rules.rules if not r.rule.enabled]
        for cr in rules.rules:
            if not cr.rule.enabled:
                continue
            state = cr.spec.prepare(directory, cr.params) if cr.spec.prepare else None
            for ch in [cr.spec.channel] if cr.spec.channel else list(Channel):
                self._bound[ch].append(_Bound(cr, state))

    def context(self, send: Send) -> SendContext:
        if isinstance(send, EmailSend):
            return EmailContext(send, self.directory)
        if isinstance(send, FaxSend):
            return FaxContext(send, self.directory, self.region)
        return LetterContext(send, self.directory)

    def evaluate(self, send: Send, trace: Trace | None = None) -> Verdict:
        ctx = self.context(send)
        findings: list[Finding] = []
        for b in self._bound[send.channel]:
            rule = b.compiled.rule
            if not rule.scope.covers_sender(send.sender):
                if trace is not None:
                    trace.outcomes.append(RuleOutcome(rule.name, rule.check, "out of scope"))
                continue
            try:
                raw = b.compiled.spec.run(ctx, b.compiled.params, b.state)
                status = "fired"
            except Exception as exc:  # a failing check holds the send: fail safe
                raw = [
                    Finding(
                        code="engine.check_failed",
                        action=Action.HOLD,
                        message=f"check {rule.check} failed ({type(exc).__name__}); "
                        "held for a person to look at",
                    )
                ]
                status = "failed"
            mine = []
            for f in raw:
                if not rule.scope.covers_recipient(f.recipient):
                    continue
                action = Action.HOLD if f.code == "engine.check_failed" else rule.action_for(f)
                mine.append(
                    f.model_copy(
                        update={"rule": rule.name, "action": action, "monitor": rule.monitor}
                    )
                )
            findings.extend(mine)
            if trace is not None:
                trace.outcomes.append(
                    RuleOutcome(rule.name, rule.check, status if mine else "quiet", tuple(mine))
                )
        if trace is not None:
            trace.outcomes.extend(
                RuleOutcome(r.rule.name, r.rule.check, "disabled")
                for r in self._disabled
                if r.spec.channel in (None, send.channel)
            )
        return decide(send.channel, findings, _recipient_labels(ctx))


def _recipient_labels(ctx: SendContext) -> list[str]:
    if isinstance(ctx, EmailContext):
        return [r.label for r in ctx.recipients]
    if isinstance(ctx, FaxContext | LetterContext):
        return [ctx.label]
    return []
