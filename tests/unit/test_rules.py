"""Rules: validation naming file/rule/field, local overrides, scope, monitor, actions."""

from __future__ import annotations

from pathlib import Path

import pytest

from sendguard import Action, Guard, RulesError
from sendguard.core.engine import Engine, Trace
from sendguard.core.models import EmailRecipient, EmailSend
from sendguard.core.rules import parse_rules
from sendguard.sources import load_rules, shipped_rules_dir

JANE = "9434765919"


def rules_of(text: str, local: str = "") -> list[str]:
    rs = parse_rules([("base.toml", text)], [("local.toml", local)] if local else [])
    return [r.rule.name for r in rs.rules]


def problems(text: str, local: str = "") -> list[tuple[str, str, str, str]]:
    with pytest.raises(RulesError) as info:
        parse_rules([("base.toml", text)], [("local.toml", local)] if local else [])
    return [(p.file, p.rule, p.field, p.message) for p in info.value.problems]


def test_shipped_rules_are_valid_and_cover_every_check() -> None:
    from sendguard.core.checks import CHECKS

    rs = load_rules()
    assert {r.rule.check for r in rs.rules} == set(CHECKS)


@pytest.mark.parametrize(
    ("text", "where", "fragment"),
    [
        ("[[rule]\nname = 'x'", ("base.toml", "", ""), "not valid TOML"),
        ("[[rule]]\ncheck = 'email.syntax'", ("base.toml", "#1", "name"), "needs a name"),
        ("[[rule]]\nname='a'\ncheck='email.nope'", ("base.toml", "a", "check"), "unknown check"),
        (
            "[[rule]]\nname='a'\ncheck='email.near_known'\naction='block'",
            ("base.toml", "a", "action"),
            "Input should be",
        ),
        (
            "[[rule]]\nname='a'\ncheck='email.near_known'\n[rule.params]\nmax_edits=5",
            ("base.toml", "a", "params.max_edits"),
            "less than or equal",
        ),
        (
            "[[rule]]\nname='a'\ncheck='email.near_known'\n[rule.params]\nmax_edit=1",
            ("base.toml", "a", "params.max_edit"),
            "Extra inputs",
        ),
        (
            "[[rule]]\nname='a'\ncheck='fax.number'\n[rule.actions]\n'fax.mobil'='hold'",
            ("base.toml", "a", "actions.fax.mobil"),
            "not a finding code",
        ),
        (
            "[[rule]]\nname='a'\ncheck='email.syntax'\nscope={senders='x@y'}",
            ("base.toml", "a", "scope.senders"),
            "valid tuple",
        ),
        ("[[rule]]\nname='a b'\ncheck='email.syntax'", ("base.toml", "a b", "name"), "pattern"),
        ("[[rules]]\nname='a'", ("base.toml", "", "rules"), "unknown top-level key"),
        (
            "[[rule]]\nname='a'\ncheck='email.syntax'\n[[rule]]\nname='a'\ncheck='email.syntax'",
            ("base.toml", "a", "name"),
            "defined twice",
        ),
    ],
)
def test_bad_rule_is_refused_naming_file_rule_and_field(
    text: str, where: tuple[str, str, str], fragment: str
) -> None:
    found = problems(text)
    assert any((f, r, fld) == where and fragment in m for f, r, fld, m in found), found


def test_local_override_merges_by_name() -> None:
    base = (
        "[[rule]]\nname='near'\ncheck='email.near_known'\naction='hold'\n"
        "[rule.actions]\nlow='warn'\n[rule.params]\nmax_edits=2\nmin_local_length=3\n"
    )
    local = "[[rule]]\nname='near'\n[rule.params]\nmax_edits=1\n[rule.actions]\nmedium='allow'\n"
    rs = parse_rules([("base.toml", base)], [("local.toml", local)])
    r = rs.rules[0]
    assert r.params.max_edits == 1
    assert r.params.min_local_length == 3
    assert r.rule.actions == {"low": Action.WARN, "medium": Action.ALLOW}
    assert r.files == ("base.toml", "local.toml")


def test_local_rule_can_disable_and_add() -> None:
    base = "[[rule]]\nname='syn'\ncheck='email.syntax'\naction='reject'\n"
    local = (
        "[[rule]]\nname='syn'\nenabled=false\n"
        "[[rule]]\nname='extra'\ncheck='email.display_name'\naction='warn'\n"
    )
    rs = parse_rules([("base.toml", base)], [("local.toml", local)])
    assert [(r.rule.name, r.rule.enabled) for r in rs.rules] == [("syn", False), ("extra", True)]


def test_local_rule_with_a_new_name_must_be_complete() -> None:
    found = problems("", "[[rule]]\nname='x'\naction='hold'\n")
    assert ("local.toml", "x", "check", "Field required") in found


def _guard_with(tmp_path: Path, local: str, demo_guard: Guard) -> Guard:
    (tmp_path / "local.toml").write_text(local)
    return Guard.load(directory=demo_guard.directory, local_rules=tmp_path)


def test_monitor_records_without_applying(tmp_path: Path, demo_guard: Guard) -> None:
    g = _guard_with(
        tmp_path,
        "[[rule]]\nname='email-domain-typo'\nmonitor=true\n"
        "[[rule]]\nname='email-near-known'\nmonitor=true\n",
        demo_guard,
    )
    v = g.check_email(["jane.smith@gmial.com"], patient=JANE, subject="[secure]")
    assert v.action is Action.ALLOW
    assert {f.code for f in v.findings} == {"email.domain_typo", "email.near_known"}
    assert all(f.monitor and f.action is Action.HOLD for f in v.findings)


def test_scope_by_sender_and_recipient_domain(tmp_path: Path, demo_guard: Guard) -> None:
    local = (
        "[[rule]]\nname='email-insecure-domain'\naction='hold'\n"
        "[rule.scope]\nsenders=['*@cancer.example.nhs.uk']\n"
        "exclude_recipient_domains=['outlook.com']\n"
    )
    g = _guard_with(tmp_path, local, demo_guard)
    team = "a.nurse@cancer.example.nhs.uk"
    assert g.check_email(["jane.smith@gmail.com"], patient=JANE, sender=team).action is Action.HOLD
    assert (
        g.check_email(["john.smith@outlook.com"], patient=JANE, sender=team).action is Action.ALLOW
    )
    assert (
        g.check_email(["jane.smith@gmail.com"], patient=JANE, sender="gp@example.nhs.net").action
        is Action.ALLOW
    )


def test_action_by_code_then_severity_then_rule(demo_guard: Guard) -> None:
    v = demo_guard.check_fax("07400 123456", intended="B82005")
    mobile = next(f for f in v.findings if f.code == "fax.mobile")
    assert mobile.action is Action.HOLD  # by code, although the rule's action is reject
    v = demo_guard.check_email(["david.browne@hotmail.co.uk"], patient=JANE, subject="[secure]")
    assert [(f.severity.value, f.action) for f in v.findings] == [("low", Action.WARN)]


def test_rules_test_trace_says_which_rules_fired(demo_guard: Guard) -> None:
    trace = Trace()
    demo_guard.check(
        EmailSend(recipients=(EmailRecipient(address="jane.smith@gmial.com"),), patients=(JANE,)),
        trace,
    )
    status = {o.rule: o.status for o in trace.outcomes}
    assert status["email-domain-typo"] == "fired"
    assert status["email-display-name"] == "quiet"
    assert "fax-number" not in status


def test_a_failing_check_holds_the_send(demo_guard: Guard) -> None:
    from dataclasses import replace

    from sendguard.core.checks import CHECKS

    rs = load_rules([shipped_rules_dir()])
    broken = tuple(
        replace(r, spec=replace(r.spec, run=_boom)) if r.rule.check == "email.display_name" else r
        for r in rs.rules
    )
    engine = Engine(demo_guard.directory, replace(rs, rules=broken))
    v = engine.evaluate(EmailSend(recipients=(EmailRecipient(address="alice.jones@nhs.net"),)))
    assert v.action is Action.HOLD
    assert [f.code for f in v.findings] == ["engine.check_failed"]
    assert "RuntimeError" in v.findings[0].message
    assert CHECKS["email.display_name"].run is not _boom


def _boom(*args: object) -> list[object]:
    raise RuntimeError("boom")
