"""Letter checks, table-driven against the demo directory.

Jane Smith (9434765919): 12 High Street, Leeds, LS1 1AA; previously
3 Park Lane, Leeds, LS6 2AB. David Brown (9434765870): Flat 3, 42 Kirkstall
Road, Leeds, LS3 1LH. Thomas Wilson lives at 12 High Street, LS1 1AB.
Sarah Khan's mother Nadia lives with her at 7 Chapel Allerton Avenue, LS7 3HY.
"""

from __future__ import annotations

import pytest

from sendguard import Action, Guard

JANE, DAVID, SARAH = "9434765919", "9434765870", "9434765773"
JANE_HOME = "12 High Street, Leeds, LS1 1AA"

CASES = [
    # (name, addressee, address, patient, intended, action, codes, suggestion)
    ("as on file", "Mrs Jane Smith", JANE_HOME, JANE, None, Action.ALLOW, set(), None),
    (
        "initial and abbreviation",
        "Mrs J. Smith",
        "12 High St\nLeeds\nLS1 1AA",
        JANE,
        None,
        Action.ALLOW,
        set(),
        None,
    ),
    (
        "upper case, no postcode space",
        "SMITH, Jane",
        "12 HIGH STREET LEEDS LS11AA",
        JANE,
        None,
        Action.ALLOW,
        set(),
        None,
    ),
    (
        "punctuation and lines",
        "Jane Smith",
        "12, High Street.\r\nLeeds.\r\nls1 1aa",
        JANE,
        None,
        Action.ALLOW,
        set(),
        None,
    ),
    (
        "town left out",
        "Jane Smith",
        "12 High Street LS1 1AA",
        JANE,
        None,
        Action.ALLOW,
        set(),
        None,
    ),
    (
        "flat and house number",
        "Mr D Brown",
        "Flat 3\n42 Kirkstall Rd\nLeeds LS3 1LH",
        DAVID,
        None,
        Action.ALLOW,
        set(),
        None,
    ),
    (
        "next of kin at the patient's address",
        "Mrs Nadia Khan",
        "7 Chapel Allerton Ave, Leeds LS7 3HY",
        SARAH,
        None,
        Action.ALLOW,
        set(),
        None,
    ),
    (
        "parent or guardian of",
        "The parent or guardian of Sarah Khan",
        "7 Chapel Allerton Avenue, Leeds LS7 3HY",
        SARAH,
        None,
        Action.ALLOW,
        set(),
        None,
    ),
    (
        "the GP at the practice",
        "Dr A Jones",
        "1 Leeds Road, Leeds, LS1 4AP",
        JANE,
        None,
        Action.ALLOW,
        set(),
        None,
    ),
    (
        "intended organisation",
        "Leeds Road Practice",
        "1 Leeds Road, Leeds LS1 4AP",
        JANE,
        "B82005",
        Action.ALLOW,
        set(),
        None,
    ),
    (
        "pseudo-postcode",
        "Mr D Brown",
        "No fixed abode, ZZ99 3VZ",
        DAVID,
        None,
        Action.REJECT,
        {"letter.pseudo_postcode"},
        None,
    ),
    (
        "no postcode",
        "Mrs J Smith",
        "12 High Street, Leeds",
        JANE,
        None,
        Action.REJECT,
        {"letter.postcode_missing"},
        None,
    ),
    (
        "O for 0 in the postcode",
        "Mrs J Smith",
        "12 High Street, Leeds, LS1 OAA",
        JANE,
        None,
        Action.REJECT,
        {"letter.postcode_invalid"},
        "LS1 0AA",
    ),
    (
        "different address",
        "Mrs J Smith",
        "9 Low Lane, Leeds, LS2 7AB",
        JANE,
        None,
        Action.HOLD,
        {"letter.address_mismatch"},
        JANE_HOME,
    ),
    (
        "wrong house number",
        "Mrs J Smith",
        "14 High Street, Leeds, LS1 1AA",
        JANE,
        None,
        Action.HOLD,
        {"letter.address_mismatch"},
        JANE_HOME,
    ),
    (
        "previous address",
        "Mrs J Smith",
        "3 Park Lane, Leeds LS6 2AB",
        JANE,
        None,
        Action.HOLD,
        {"letter.previous_address"},
        JANE_HOME,
    ),
    (
        "another patient's address",
        "Mr T Wilson",
        "Flat 3, 42 Kirkstall Road, Leeds LS3 1LH",
        "4010232137",
        None,
        Action.HOLD,
        {"letter.other_patient_address"},
        None,
    ),
    (
        "postcode one character off",
        "Mrs J Smith",
        "12 High Street, Leeds, LS1 1AE",
        JANE,
        None,
        Action.HOLD,
        {"letter.postcode_typo"},
        JANE_HOME,
    ),
    (
        "addressee not linked",
        "Mr David Brown",
        JANE_HOME,
        JANE,
        None,
        Action.HOLD,
        {"letter.addressee_unknown"},
        None,
    ),
    (
        "wrong given name",
        "Mrs Janet Smith",
        JANE_HOME,
        JANE,
        None,
        Action.HOLD,
        {"letter.addressee_unknown"},
        None,
    ),
    (
        "wrong initial",
        "Mr K Smith",
        JANE_HOME,
        JANE,
        None,
        Action.HOLD,
        {"letter.addressee_unknown"},
        None,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_letter_case(demo_guard: Guard, case: tuple) -> None:  # type: ignore[type-arg]
    _, addressee, address, patient, intended, action, codes, suggestion = case
    v = demo_guard.check_letter(
        addressee=addressee, address=address, patient=patient, intended=intended
    )
    got = {f.code for f in v.findings}
    assert v.action is action, v.findings
    assert codes <= got, got
    if suggestion:
        assert suggestion in {f.suggestion for f in v.findings}
