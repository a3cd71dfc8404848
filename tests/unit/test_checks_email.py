"""Email checks, table-driven against the demo directory.

The demo directory (demo/directory.json): patients Jane Smith (NHS 9434765919,
jane.smith@gmail.com, husband john.smith@outlook.com, GP Dr Alice Jones at
Leeds Road Practice), David Brown (9434765870, david.brown@hotmail.co.uk),
Sarah Khan (9434765773, sarah.khan@yahoo.co.uk, mother nadia.khan@gmail.com),
Thomas Wilson, Emily Taylor; clinicians alice.jones@nhs.net, ravi.patel@nhs.net.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from sendguard import Action, Guard, Verdict

JANE = "9434765919"
DAVID = "9434765870"
SARAH = "9434765773"


@dataclass
class Case:
    name: str
    recipients: list[str]
    action: Action
    codes: set[str] = field(default_factory=set)  # must all be present
    absent: set[str] = field(default_factory=set)  # must not be present
    suggestion: str | None = None
    patient: str | None = None
    subject: str = "[secure]"  # by default no insecure-domain warning
    body: str = ""
    attachments: tuple[str, ...] = ()


CASES = [
    # correct sends
    Case("patient's own address", ["jane.smith@gmail.com"], Action.ALLOW, patient=JANE),
    Case("patient's next of kin", ["john.smith@outlook.com"], Action.ALLOW, patient=JANE),
    Case("patient's GP", ["alice.jones@nhs.net"], Action.ALLOW, patient=JANE),
    Case("GP practice mailbox", ["leeds.roadpractice@nhs.net"], Action.ALLOW, patient=JANE),
    Case("unrelated consultant (a referral)", ["ravi.patel@nhs.net"], Action.ALLOW, patient=JANE),
    Case("fresh address, no patient", ["someone.new@example.org"], Action.ALLOW),
    Case("case does not matter", ["Jane.Smith@GMAIL.com"], Action.ALLOW, patient=JANE),
    Case("display name of the owner", ["Jane Smith <jane.smith@gmail.com>"], Action.ALLOW),
    Case(
        "display name unknown to the directory", ["Reception <alice.jones@nhs.net>"], Action.ALLOW
    ),
    # syntax
    Case("not an address", ["jane.smith"], Action.REJECT, {"email.invalid"}),
    Case("two @", ["jane@@gmail.com"], Action.REJECT, {"email.invalid"}),
    Case(
        "domain without dot gets a suggestion",
        ["jane.smith@gmail"],
        Action.REJECT,
        {"email.invalid"},
        suggestion="jane.smith@gmail.com",
    ),
    # domain typos
    Case(
        "gmial.com",
        ["jane.smith@gmial.com"],
        Action.HOLD,
        {"email.domain_typo"},
        suggestion="jane.smith@gmail.com",
        patient=JANE,
    ),
    Case(
        "nhs.nte",
        ["alice.jones@nhs.nte"],
        Action.HOLD,
        {"email.domain_typo"},
        suggestion="alice.jones@nhs.net",
    ),
    Case(
        "hotmail.co.uk slip",
        ["david.brown@hotmial.co.uk"],
        Action.HOLD,
        {"email.domain_typo"},
        suggestion="david.brown@hotmail.co.uk",
    ),
    Case(
        "real domain is never corrected",
        ["someone@mail.com"],
        Action.ALLOW,
        absent={"email.domain_typo"},
    ),
    # near a known address
    Case(
        "transposition in the patient's address",
        ["jane.smiht@gmail.com"],
        Action.HOLD,
        {"email.near_known"},
        suggestion="jane.smith@gmail.com",
        patient=JANE,
    ),
    Case(
        "two edits from the patient's address",
        ["jane.smth2@gmail.com"],
        Action.HOLD,
        {"email.near_known"},
        suggestion="jane.smith@gmail.com",
        patient=JANE,
    ),
    Case(
        "slip in a clinician's address",
        ["alice.jnoes@nhs.net"],
        Action.HOLD,
        {"email.near_known"},
        suggestion="alice.jones@nhs.net",
    ),
    Case(
        "slip in an unrelated patient's address is only a warning",
        ["david.browne@hotmail.co.uk"],
        Action.WARN,
        {"email.near_known"},
        patient=JANE,
    ),
    # another patient
    Case(
        "another patient",
        ["david.brown@hotmail.co.uk"],
        Action.HOLD,
        {"email.other_patient"},
        patient=JANE,
    ),
    Case(
        "another patient's next of kin",
        ["nadia.khan@gmail.com"],
        Action.HOLD,
        {"email.other_patient_contact"},
        patient=JANE,
    ),
    Case(
        "another patient found by NHS number in the subject",
        ["david.brown@hotmail.co.uk"],
        Action.HOLD,
        {"email.other_patient", "email.nhs_number_other_patient"},
        subject="[secure] results for 943 476 5919",
    ),
    Case(
        "NHS number in an attachment name",
        ["jane.smith@gmail.com"],
        Action.HOLD,
        {"email.nhs_number_other_patient"},
        attachments=("letter-9434765870.pdf",),
    ),
    Case(
        "own NHS number is fine",
        ["jane.smith@gmail.com"],
        Action.ALLOW,
        body="Your NHS number is 943 476 5919",
    ),
    Case(
        "another patient's NHS number to a clinician is fine",
        ["ravi.patel@nhs.net"],
        Action.ALLOW,
        body="Referral for 9434765870",
    ),
    Case(
        "invalid NHS-like number is ignored",
        ["jane.smith@gmail.com"],
        Action.ALLOW,
        body="Order 943 476 5918",
    ),
    # visibility
    Case(
        "two patients in To",
        ["To: jane.smith@gmail.com", "To: david.brown@hotmail.co.uk"],
        Action.HOLD,
        {"email.patients_visible"},
    ),
    Case(
        "patients in Bcc are fine",
        ["Bcc: jane.smith@gmail.com", "Bcc: david.brown@hotmail.co.uk"],
        Action.ALLOW,
    ),
    Case(
        "a patient and her husband in To are one family",
        ["To: jane.smith@gmail.com", "Cc: john.smith@outlook.com"],
        Action.ALLOW,
    ),
    # display name
    Case(
        "display name of another person",
        ["Jane Smith <david.brown@hotmail.co.uk>"],
        Action.HOLD,
        {"email.display_name_mismatch"},
        suggestion="jane.smith@gmail.com",
    ),
    # previous address (none in the demo): unknown patient reference
    Case(
        "unknown patient is a warning",
        ["jane.smith@gmail.com"],
        Action.WARN,
        {"send.unknown_patient"},
        patient="4010232145",
    ),
]


def _check(guard: Guard, c: Case) -> Verdict:
    return guard.check_email(
        c.recipients, patient=c.patient, subject=c.subject, body=c.body, attachments=c.attachments
    )


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_email_case(demo_guard: Guard, case: Case) -> None:
    v = _check(demo_guard, case)
    got = {f.code for f in v.findings}
    assert v.action is case.action, v.findings
    assert case.codes <= got, got
    assert not (case.absent & got), got
    if case.suggestion:
        assert case.suggestion in {f.suggestion for f in v.findings}


def test_insecure_domain_only_with_patient_data(demo_guard: Guard) -> None:
    with_patient = demo_guard.check_email(["jane.smith@gmail.com"], patient=JANE)
    assert [f.code for f in with_patient.findings] == ["email.insecure_domain"]
    assert with_patient.action is Action.WARN
    no_patient = demo_guard.check_email(["jane.smith@gmail.com"])
    assert no_patient.findings == []
    to_nhs = demo_guard.check_email(["alice.jones@nhs.net"], patient=JANE)
    assert to_nhs.findings == []


def test_per_recipient_actions(demo_guard: Guard) -> None:
    v = demo_guard.check_email(
        ["jane.smith@gmial.com", "alice.jones@nhs.net"], patient=JANE, subject="[secure]"
    )
    assert v.action is Action.HOLD
    assert v.action_for("jane.smith@gmial.com") is Action.HOLD
    assert v.action_for("alice.jones@nhs.net") is Action.ALLOW


def test_unparseable_message_is_held(demo_guard: Guard) -> None:
    from sendguard.core.models import EmailRecipient, EmailSend

    send = EmailSend(
        recipients=(EmailRecipient(address="alice.jones@nhs.net"),),
        problems=("the MIME structure cannot be walked",),
    )
    v = demo_guard.check(send)
    assert v.action is Action.HOLD
    assert [f.code for f in v.findings] == ["email.unparseable"]


def test_history_makes_a_near_miss_strong(demo_guard: Guard) -> None:
    weak = demo_guard.check_email(["pat.lee@example.org"])
    assert weak.findings == []
    strong = demo_guard.check_email(["pat.lee@example.org"], history=["pat.lea@example.org"])
    assert strong.action is Action.HOLD
    assert strong.findings[0].suggestion == "pat.lea@example.org"
