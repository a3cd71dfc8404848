"""Rules: admin configuration that turns checks on and maps findings to actions.

Rule files are TOML with `[[rule]]` tables. The shipped defaults are read
first; local files then merge over them by rule name (rspamd's local.d
idea): a local rule with a known name changes only the keys it sets
(`params`, `scope` and `actions` merge key by key), a new name adds a
rule. Everything is validated before anything is used: a bad file is
refused with every problem named by file, rule and field.
"""

from __future__ import annotations

import fnmatch
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sendguard.core.checks import CHECKS, CheckSpec, Params
from sendguard.core.models import ACTION_RANK, Action, Finding, Severity, Verdict

__all__ = [
    "CompiledRule",
    "ReviewPlan",
    "ReviewPolicy",
    "Rule",
    "RuleProblem",
    "RuleSet",
    "RulesError",
    "Scope",
    "parse_rules",
]


@dataclass(frozen=True, slots=True)
class RuleProblem:
    file: str
    rule: str
    field: str
    message: str

    def __str__(self) -> str:
        where = ", ".join(
            x for x in (self.file, f"rule {self.rule!r}" if self.rule else "", self.field) if x
        )
        return f"{where}: {self.message}"


class RulesError(ValueError):
    """A rule set was refused; `problems` says why, precisely."""

    def __init__(self, problems: list[RuleProblem]) -> None:
        self.problems = problems
        super().__init__("rules not loaded:\n  " + "\n  ".join(str(p) for p in problems))


def _glob(patterns: tuple[str, ...], value: str) -> bool:
    v = value.lower()
    return any(fnmatch.fnmatchcase(v, p.lower()) for p in patterns)


class Scope(BaseModel):
    """Where a rule applies. Empty lists mean everywhere."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    senders: tuple[str, ...] = ()
    exclude_senders: tuple[str, ...] = ()
    recipient_domains: tuple[str, ...] = ()
    exclude_recipient_domains: tuple[str, ...] = ()

    def covers_sender(self, sender: str) -> bool:
        if self.senders and not _glob(self.senders, sender):
            return False
        return not (self.exclude_senders and _glob(self.exclude_senders, sender))

    def covers_recipient(self, recipient: str | None) -> bool:
        """Email recipients are scoped by domain; faxes and letters are not."""
        if recipient is None or "@" not in recipient:
            return True
        domain = recipient.rpartition("@")[2]
        if self.recipient_domains and not _glob(self.recipient_domains, domain):
            return False
        return not (
            self.exclude_recipient_domains and _glob(self.exclude_recipient_domains, domain)
        )


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=80)
    check: str
    description: str = ""
    enabled: bool = True
    monitor: bool = False
    action: Action = Action.HOLD
    actions: dict[str, Action] = Field(default_factory=dict)
    scope: Scope = Field(default_factory=Scope)
    params: dict[str, Any] = Field(default_factory=dict)
    require_reviewer: bool | tuple[str, ...] = False
    """A hold made on this rule's findings (all of them, or those with the
    finding codes listed) is released only by a reviewer, never by the
    sender's confirm link."""
    delay_minutes: int | None = Field(default=None, ge=1, le=7 * 24 * 60)
    """Delay-and-recall: mail this rule warns about (or allows) is held this
    many minutes, then sent unless the sender recalled it. Only for rules
    whose findings are at most `warn`."""

    def action_for(self, finding: Finding) -> Action:
        """By finding code first, then by severity, then the rule's action."""
        return (
            self.actions.get(finding.code)
            or self.actions.get(finding.severity.value)
            or self.action
        )

    def requires_reviewer(self, code: str) -> bool:
        if isinstance(self.require_reviewer, bool):
            return self.require_reviewer
        return code in self.require_reviewer


@dataclass(frozen=True, slots=True)
class CompiledRule:
    rule: Rule
    spec: CheckSpec[Any, Any]
    params: Params
    files: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[CompiledRule, ...]
    files: tuple[str, ...]

    def get(self, name: str) -> CompiledRule | None:
        return next((r for r in self.rules if r.rule.name == name), None)


@dataclass(frozen=True, slots=True)
class ReviewPlan:
    """How a send's hold is to be reviewed, from its findings' rules.

    `delay_minutes` set: a delay-and-recall hold of a send the verdict would
    otherwise let through, for `delayed` (finding recipients; empty: the
    whole send).
    """

    requires_reviewer: bool = False
    delay_minutes: int | None = None
    delayed: frozenset[str] = frozenset()
    whole_send: bool = True


class ReviewPolicy:
    """The review options of a rule set (`require_reviewer`, `delay_minutes`),
    looked up by the rule name every finding carries."""

    def __init__(self, rules: RuleSet) -> None:
        self._rules = {r.rule.name: r.rule for r in rules.rules if r.rule.enabled}

    def plan(self, verdict: Verdict) -> ReviewPlan:
        """Applied findings that warn or worse from a `require_reviewer` rule
        make the hold reviewer-only; a verdict of at most warn with findings
        from a `delay_minutes` rule becomes a delay-and-recall hold.

        A hold from a finding of no known rule (a message that could not be
        checked, or a rule renamed since the check ran) is reviewer-only too:
        nothing says its sender may wave it through."""
        applied = [(f, self._rules.get(f.rule)) for f in verdict.findings if not f.monitor]
        warn, hold = ACTION_RANK[Action.WARN], ACTION_RANK[Action.HOLD]
        reviewer = any(
            (ACTION_RANK[f.action] >= hold)
            if rule is None
            else (ACTION_RANK[f.action] >= warn and rule.requires_reviewer(f.code))
            for f, rule in applied
        )
        delays = [
            (f, rule.delay_minutes)
            for f, rule in applied
            if rule is not None and rule.delay_minutes is not None
        ]
        if not delays or ACTION_RANK[verdict.action] > warn:
            return ReviewPlan(requires_reviewer=reviewer)
        return ReviewPlan(
            requires_reviewer=reviewer,
            delay_minutes=max(m for _, m in delays if m is not None),
            delayed=frozenset(f.recipient for f, _ in delays if f.recipient is not None),
            whole_send=any(f.recipient is None for f, _ in delays),
        )


_MERGED_KEYS = ("params", "scope", "actions")


def _read(file: str, text: str, problems: list[RuleProblem]) -> list[dict[str, Any]]:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problems.append(RuleProblem(file, "", "", f"not valid TOML: {exc}"))
        return []
    for key in doc:
        if key != "rule":
            problems.append(
                RuleProblem(file, "", key, "unknown top-level key; rules are [[rule]] tables")
            )
    rules = doc.get("rule", [])
    if not isinstance(rules, list):
        problems.append(RuleProblem(file, "", "rule", "write rules as [[rule]] tables"))
        return []
    out = []
    for k, r in enumerate(rules):
        if not isinstance(r.get("name"), str):
            problems.append(RuleProblem(file, f"#{k + 1}", "name", "every rule needs a name"))
            continue
        out.append(r)
    return out


def parse_rules(
    defaults: Sequence[tuple[str, str]], local: Sequence[tuple[str, str]] = ()
) -> RuleSet:
    """Build a rule set from (file name, TOML text) pairs, defaults then local.

    Raises RulesError listing every problem; nothing half-valid is returned.
    """
    problems: list[RuleProblem] = []
    merged: dict[str, dict[str, Any]] = {}
    origin: dict[str, list[str]] = {}
    for file, text in defaults:
        for r in _read(file, text, problems):
            if r["name"] in merged:
                problems.append(
                    RuleProblem(
                        file, r["name"], "name", f"defined twice (also in {origin[r['name']][0]})"
                    )
                )
                continue
            merged[r["name"]] = dict(r)
            origin[r["name"]] = [file]
    for file, text in local:
        for r in _read(file, text, problems):
            name = r["name"]
            if name not in merged:
                merged[name] = dict(r)
                origin[name] = [file]
                continue
            base = merged[name]
            for key, value in r.items():
                if (
                    key in _MERGED_KEYS
                    and isinstance(value, dict)
                    and isinstance(base.get(key), dict)
                ):
                    base[key] = {**base[key], **value}
                else:
                    base[key] = value
            origin[name].append(file)
    compiled: list[CompiledRule] = []
    for name, data in merged.items():
        file = origin[name][-1]
        try:
            rule = Rule.model_validate(data)
        except ValidationError as exc:
            problems.extend(_pydantic_problems(file, name, exc))
            continue
        spec = CHECKS.get(rule.check)
        if spec is None:
            problems.append(
                RuleProblem(
                    file,
                    name,
                    "check",
                    f"unknown check {rule.check!r}; known checks: " + ", ".join(sorted(CHECKS)),
                )
            )
            continue
        allowed = {*spec.codes, *(s.value for s in Severity)}
        for key in rule.actions:
            if key not in allowed:
                problems.append(
                    RuleProblem(
                        file,
                        name,
                        f"actions.{key}",
                        f"not a finding code of {rule.check} nor a severity; "
                        f"use one of {', '.join(sorted(allowed))}",
                    )
                )
        problems.extend(_review_problems(file, rule, spec.codes))
        try:
            params = spec.params.model_validate(rule.params)
        except ValidationError as exc:
            problems.extend(_pydantic_problems(file, name, exc, prefix="params."))
            continue
        compiled.append(CompiledRule(rule, spec, params, tuple(origin[name])))
    if problems:
        raise RulesError(problems)
    files = tuple(f for f, _ in (*defaults, *local))
    return RuleSet(tuple(compiled), files)


def _review_problems(file: str, rule: Rule, codes: Sequence[str]) -> list[RuleProblem]:
    out: list[RuleProblem] = []
    if not isinstance(rule.require_reviewer, bool):
        for code in rule.require_reviewer:
            if code not in codes:
                out.append(
                    RuleProblem(
                        file,
                        rule.name,
                        "require_reviewer",
                        f"{code!r} is not a finding code of {rule.check}; "
                        f"use true, false or some of {', '.join(sorted(codes))}",
                    )
                )
    if rule.delay_minutes is not None:
        worst = max((rule.action, *rule.actions.values()), key=ACTION_RANK.__getitem__)
        if ACTION_RANK[worst] > ACTION_RANK[Action.WARN]:
            out.append(
                RuleProblem(
                    file,
                    rule.name,
                    "delay_minutes",
                    f"only for rules whose findings are at most warn (this one can "
                    f"{worst.value}): held mail waits for a person, never for a timer",
                )
            )
    return out


def _pydantic_problems(
    file: str, rule: str, exc: ValidationError, prefix: str = ""
) -> list[RuleProblem]:
    return [
        RuleProblem(file, rule, prefix + ".".join(str(x) for x in e["loc"]), e["msg"])
        for e in exc.errors()
    ]
