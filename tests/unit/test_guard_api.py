"""The public Python contract: Guard.load and the three entry points."""

from __future__ import annotations

import json

import pytest

from sendguard import Action, Guard, Verdict


def codes(v: Verdict) -> set[str]:
    return {f.code for f in v.findings}


def test_correct_email_to_patient_is_only_warned_about_insecure_domain(demo_guard: Guard) -> None:
    v = demo_guard.check_email(["jane.smith@gmail.com"], patient="9434765919")
    assert v.action is Action.WARN
    assert codes(v) == {"email.insecure_domain"}


def test_secure_tag_removes_the_warning(demo_guard: Guard) -> None:
    v = demo_guard.check_email(
        ["jane.smith@gmail.com"], patient="9434765919", subject="[secure] results"
    )
    assert v.action is Action.ALLOW
    assert v.findings == []


def test_domain_typo_is_held_with_suggestion(demo_guard: Guard) -> None:
    v = demo_guard.check_email(["jane.smith@gmial.com"], patient="9434765919")
    assert v.action is Action.HOLD
    typo = next(f for f in v.findings if f.code == "email.domain_typo")
    assert typo.suggestion == "jane.smith@gmail.com"
    assert typo.rule == "email-domain-typo"


def test_verdict_json_shape(demo_guard: Guard) -> None:
    v = demo_guard.check_fax("0113 496 0010", intended="ods:B82005")
    data = json.loads(v.model_dump_json())
    assert data["action"] == "hold"
    assert data["channel"] == "fax"
    f = data["findings"][0]
    assert set(f) >= {"code", "severity", "recipient", "message", "suggestion", "rule", "action"}
    assert Verdict.model_validate_json(v.model_dump_json()) == v


@pytest.mark.parametrize(
    "ref", ["9434765919", "943 476 5919", "Patient/jane-smith", "nhs:9434765919"]
)
def test_patient_accepts_nhs_number_or_id(demo_guard: Guard, ref: str) -> None:
    v = demo_guard.check_email(["david.brown@hotmail.co.uk"], patient=ref)
    assert "email.other_patient" in codes(v)


@pytest.mark.parametrize("ref", ["B82005", "ods:B82005", "Organization/leeds-road-practice"])
def test_intended_accepts_ods_code_or_id(demo_guard: Guard, ref: str) -> None:
    assert demo_guard.check_fax("0113 496 0000", intended=ref).action is Action.ALLOW


def test_recipient_forms(demo_guard: Guard) -> None:
    v = demo_guard.check_email(
        [
            "To: Jane Smith <jane.smith@gmail.com>",
            "Cc: david.brown@hotmail.co.uk",
            {"address": "alice.jones@nhs.net", "header": "bcc"},
        ],
    )
    assert set(v.recipients) == {
        "jane.smith@gmail.com",
        "david.brown@hotmail.co.uk",
        "alice.jones@nhs.net",
    }
    assert v.action_for("alice.jones@nhs.net") is Action.ALLOW
    assert v.action_for("jane.smith@gmail.com") is Action.HOLD  # patients visible in To/Cc


def test_convenient_forms(demo_guard: Guard) -> None:
    v = demo_guard.check_email(to="jane.smith@gmail.com", cc=["david.brown@hotmail.co.uk"])
    assert v.action is Action.HOLD  # two patients see each other
    lines = ["12 High St", "Leeds", "LS1 1AA"]
    assert (
        demo_guard.check_letter(addressee="Mrs J Smith", address=lines, patient=9434765919).action
        is Action.ALLOW
    )
    assert demo_guard.check_fax(1134960000, intended="B82005").action is Action.ALLOW
