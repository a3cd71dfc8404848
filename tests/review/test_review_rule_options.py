"""The two review options of a rule: `require_reviewer` and `delay_minutes`,
as rule files declare them, lint validates them, and the policy applies them
to a verdict."""

from __future__ import annotations

import pytest

from sendguard.core.models import Action, Channel, Finding, Severity, Verdict
from sendguard.core.rules import ReviewPolicy, RulesError, parse_rules
from sendguard.sources import load_rules

BASE = """
[[rule]]
name = "other"
check = "email.other_patient"
action = "hold"
require_reviewer = true

[[rule]]
name = "typo"
check = "email.domain_typo"
action = "hold"

[[rule]]
name = "insecure"
check = "email.insecure_domain"
action = "warn"
delay_minutes = 15

[[rule]]
name = "near"
check = "email.near_known"
action = "hold"
require_reviewer = ["email.near_known"]
[rule.actions]
low = "warn"
"""


def finding(code: str, rule: str, action: Action, recipient: str | None = "a@x.org") -> Finding:
    return Finding(
        code=code,
        message=code,
        rule=rule,
        action=action,
        recipient=recipient,
        severity=Severity.HIGH,
    )


def verdict(*findings: Finding) -> Verdict:
    from sendguard.core.engine import decide

    return decide(Channel.EMAIL, list(findings), ["a@x.org", "b@x.org"])


@pytest.fixture
def policy() -> ReviewPolicy:
    return ReviewPolicy(parse_rules([("base.toml", BASE)]))


def test_shipped_rules_make_high_risk_findings_reviewer_only() -> None:
    policy = ReviewPolicy(load_rules())
    for code, rule in [
        ("email.other_patient", "email-other-patient"),
        ("email.nhs_number", "email-nhs-number"),
        ("email.patients_visible", "email-patients-visible"),
    ]:
        assert policy.plan(verdict(finding(code, rule, Action.HOLD))).requires_reviewer, code
    typo = finding("email.domain_typo", "email-domain-typo", Action.HOLD)
    assert not policy.plan(verdict(typo)).requires_reviewer
    insecure = finding("email.insecure_domain", "email-insecure-domain", Action.WARN)
    assert policy.plan(verdict(insecure)).delay_minutes is None  # off unless configured


def test_reviewer_only_when_a_marked_finding_applies(policy: ReviewPolicy) -> None:
    assert policy.plan(
        verdict(finding("email.other_patient", "other", Action.HOLD))
    ).requires_reviewer
    assert not policy.plan(
        verdict(finding("email.domain_typo", "typo", Action.HOLD))
    ).requires_reviewer
    monitored = finding("email.other_patient", "other", Action.HOLD).model_copy(
        update={"monitor": True}
    )
    typo = finding("email.domain_typo", "typo", Action.HOLD)
    assert not policy.plan(verdict(monitored, typo)).requires_reviewer
    allowed = finding("email.other_patient", "other", Action.ALLOW)
    assert not policy.plan(verdict(allowed, typo)).requires_reviewer
    assert policy.plan(verdict(finding("email.near_known", "near", Action.WARN))).requires_reviewer


def test_delay_applies_only_when_nothing_holds(policy: ReviewPolicy) -> None:
    warn = finding("email.insecure_domain", "insecure", Action.WARN, recipient="b@x.org")
    plan = policy.plan(verdict(warn))
    assert plan.delay_minutes == 15
    assert plan.delayed == {"b@x.org"}
    assert not plan.whole_send
    assert not plan.requires_reviewer
    held = policy.plan(verdict(warn, finding("email.domain_typo", "typo", Action.HOLD)))
    assert held.delay_minutes is None  # a real hold waits for a person, never a timer
    general = finding("email.insecure_domain", "insecure", Action.WARN, recipient=None)
    assert policy.plan(verdict(general)).whole_send


def test_a_hold_of_no_known_rule_is_reviewer_only(policy: ReviewPolicy) -> None:
    """A message that could not be checked (or a finding of a rule renamed
    since) fails closed: its sender cannot confirm it from a link."""
    plan = policy.plan(verdict(finding("relay.not_checked", "relay", Action.HOLD)))
    assert plan.requires_reviewer
    assert plan.delay_minutes is None
    renamed = policy.plan(verdict(finding("email.domain_typo", "old-name", Action.HOLD)))
    assert renamed.requires_reviewer
    warned = policy.plan(verdict(finding("email.insecure_domain", "old-name", Action.WARN)))
    assert not warned.requires_reviewer


def test_local_files_can_switch_the_options(policy: ReviewPolicy) -> None:
    local = '[[rule]]\nname = "other"\nrequire_reviewer = false\n'
    relaxed = ReviewPolicy(parse_rules([("base.toml", BASE)], [("local.toml", local)]))
    assert not relaxed.plan(
        verdict(finding("email.other_patient", "other", Action.HOLD))
    ).requires_reviewer


@pytest.mark.parametrize(
    ("local", "field", "message"),
    [
        (
            '[[rule]]\nname = "typo"\ndelay_minutes = 5\n',
            "delay_minutes",
            "at most warn (this one can hold)",
        ),
        (
            '[[rule]]\nname = "insecure"\n[rule.actions]\nhigh = "reject"\n',
            "delay_minutes",
            "can reject",
        ),
        ('[[rule]]\nname = "insecure"\ndelay_minutes = 0\n', "delay_minutes", "greater than"),
        (
            '[[rule]]\nname = "other"\nrequire_reviewer = ["email.nope"]\n',
            "require_reviewer",
            "not a finding code of email.other_patient",
        ),
        ('[[rule]]\nname = "other"\nrequire_reviewer = "yes please"\n', "require_reviewer", ""),
    ],
)
def test_bad_options_are_refused_by_name(local: str, field: str, message: str) -> None:
    with pytest.raises(RulesError) as err:
        parse_rules([("base.toml", BASE)], [("local.toml", local)])
    problems = [p for p in err.value.problems if p.field.startswith(field)]
    assert problems, err.value.problems
    assert message in problems[0].message
