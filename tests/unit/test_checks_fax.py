"""Fax checks, table-driven against the demo directory.

Leeds Road Practice (ODS B82005): fax 0113 496 0000, phone 0113 496 0999;
Dr Alice Jones's role there: fax 0113 496 0001. St James's (RR813): fax
0113 496 0100; Dr Ravi Patel's role there: 0113 496 0101. Harrogate Road
Surgery (B86016): fax 0113 496 0200.
"""

from __future__ import annotations

import pytest

from sendguard import Action, Guard

LEEDS = "B82005"
ALICE_ROLE = "PractitionerRole/alice-jones-leeds-road"
JANE = "9434765919"

CASES = [
    # (name, number, intended, patient, action, codes that must appear, suggestion)
    ("on file, national format", "0113 496 0000", LEEDS, None, Action.ALLOW, set(), None),
    ("on file, +44 (0) format", "+44 (0)113 4960000", LEEDS, None, Action.ALLOW, set(), None),
    ("on file, no spaces", "01134960000", LEEDS, None, Action.ALLOW, set(), None),
    ("on file, international", "+44 113 496 0000", LEEDS, None, Action.ALLOW, set(), None),
    ("role fax acts for its practice", "0113 496 0001", LEEDS, None, Action.ALLOW, set(), None),
    (
        "practice fax acts for its clinician",
        "0113 496 0000",
        ALICE_ROLE,
        None,
        Action.ALLOW,
        set(),
        None,
    ),
    ("the patient's GP, no intended", "0113 496 0001", None, JANE, Action.ALLOW, set(), None),
    ("letters are not a number", "fax me", LEEDS, None, Action.REJECT, {"fax.invalid"}, None),
    ("too short", "0113 49", LEEDS, None, Action.REJECT, {"fax.invalid"}, None),
    ("too long", "0113 496 00000 1", LEEDS, None, Action.REJECT, {"fax.invalid"}, None),
    ("premium rate", "0909 879 0845", LEEDS, None, Action.REJECT, {"fax.premium_rate"}, None),
    ("personal number", "070 1234 5678", LEEDS, None, Action.REJECT, {"fax.personal"}, None),
    ("mobile", "07400 123456", LEEDS, None, Action.HOLD, {"fax.mobile"}, None),
    (
        "one digit off",
        "0113 496 0010",
        LEEDS,
        None,
        Action.HOLD,
        {"fax.near_known", "fax.not_on_file"},
        "+44 113 496 0000",
    ),
    (
        "adjacent digits swapped",
        "0113 469 0000",
        LEEDS,
        None,
        Action.HOLD,
        {"fax.near_known"},
        "+44 113 496 0000",
    ),
    (
        "another contact's fax",
        "0113 496 0100",
        LEEDS,
        None,
        Action.HOLD,
        {"fax.other_contact"},
        "+44 113 496 0000",
    ),
    (
        "the practice phone, not its fax",
        "0113 496 0999",
        LEEDS,
        None,
        Action.HOLD,
        {"fax.voice_number"},
        "+44 113 496 0000",
    ),
    ("valid but not on file", "0113 496 0555", LEEDS, None, Action.HOLD, {"fax.not_on_file"}, None),
    (
        "unknown number and nobody intended",
        "0113 496 0555",
        None,
        None,
        Action.HOLD,
        {"fax.not_on_file"},
        None,
    ),
    (
        "intended contact unknown",
        "0113 496 0000",
        "Z99999",
        None,
        Action.HOLD,
        {"fax.unknown_intended"},
        None,
    ),
    (
        "another patient's GP practice, for this patient",
        "0113 496 0200",
        None,
        JANE,
        Action.ALLOW,
        set(),
        None,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_fax_case(demo_guard: Guard, case: tuple) -> None:  # type: ignore[type-arg]
    _, number, intended, patient, action, codes, suggestion = case
    v = demo_guard.check_fax(number, intended=intended, patient=patient)
    got = {f.code for f in v.findings}
    assert v.action is action, v.findings
    assert codes <= got, got
    if suggestion:
        assert suggestion in {f.suggestion for f in v.findings}


def test_other_contact_names_whose_number_it_is(demo_guard: Guard) -> None:
    v = demo_guard.check_fax("0113 496 0100", intended=LEEDS)
    other = next(f for f in v.findings if f.code == "fax.other_contact")
    assert "St James's University Hospital" in other.message


def test_fax_to_a_patient_number_names_no_patient(demo_guard: Guard) -> None:
    v = demo_guard.check_fax("07400 654321", patient="9434765870")  # John Smith's mobile
    other = next(f for f in v.findings if f.code == "fax.other_contact")
    assert "Smith" not in other.message
