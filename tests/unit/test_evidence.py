"""How strong a near miss is: the rules that keep false holds rare."""

from __future__ import annotations

import pytest

from common import directory_of
from sendguard import Action, Guard
from sendguard.core.checks.domains import DomainTable
from sendguard.core.checks.email import _fits, _namesake, _other_name
from sendguard.core.directory import Kind, RawEntry, RawTelecom
from sendguard.core.normalise.names import name_matches
from sendguard.core.normalise.postal import normalise_address, same_place


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("leah.jackson1", "leah.jackson", True),
        ("j.smith42", "j.smith43", True),
        ("leah.jackson", "leah.jacksn", False),
        ("leah.jackson", "leah.jackson", False),
    ],
)
def test_namesake(a: str, b: str, expected: bool) -> None:
    assert _namesake(a, b) is expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("sarah.murray", "sarah.murphy", True),
        ("katherine.gray", "katherine.may", True),
        ("alice.jnoes", "alice.jones", False),  # one slip
        ("alcie.jnoes", "alice.jones", False),  # slips in two words
        ("jane.smth2", "jane.smith", False),
    ],
)
def test_other_name(a: str, b: str, expected: bool) -> None:
    assert _other_name(a, b) is expected


@pytest.mark.parametrize(
    ("display", "local", "expected"),
    [
        ("Linda Shah", "linda.shah", True),
        ("L Shah", "lshah", True),
        ("Tina Shah", "linda.shah", False),
        ("Reception", "reception", False),
    ],
)
def test_display_name_fits_address(display: str, local: str, expected: bool) -> None:
    assert _fits(display, local) is expected


def _guard() -> Guard:
    def pro(i: str, given: str, family: str, email: str) -> RawEntry:
        return RawEntry(
            id=f"Practitioner/{i}",
            kind=Kind.PRACTITIONER,
            given=(given,),
            family=family,
            telecoms=(RawTelecom(system="email", value=email),),
        )

    return Guard.load(
        directory=directory_of(
            pro("1", "Tina", "Shah", "tina.shah@nhs.net"),
            pro("2", "Leah", "Jackson", "leah.jackson@nhs.net"),
            pro("3", "Sarah", "Murphy", "sarah.murphy@nhs.net"),
            pro("4", "Gemma", "Robinson", "gemma.robinson@nhs.net"),
            RawEntry(id="P1", kind=Kind.PATIENT, given=("Emma",), family="Robinson"),
        )
    )


@pytest.mark.parametrize(
    ("recipient", "action"),
    [
        ("tian.shah@nhs.net", Action.HOLD),  # a slip in a colleague's address
        ("Tina Shah <tian.shah@nhs.net>", Action.HOLD),  # the display name names her
        ("Linda Shah <linda.shah@nhs.net>", Action.WARN),  # another colleague
        ("leah.jackson1@nhs.net", Action.WARN),  # a namesake (NHSmail numbering)
        ("sarah.murray@nhs.net", Action.WARN),  # a different surname
        ("emma.robinson@nhs.net", Action.WARN),  # spells another person's name
        ("gemma.robinsn@nhs.net", Action.HOLD),  # a slip that spells nobody
        ("gemma.robinson1@nhs.net", Action.WARN),  # a namesake
    ],
)
def test_professional_near_miss_strength(recipient: str, action: Action) -> None:
    v = _guard().check_email([recipient])
    assert v.action is action
    assert v.findings[0].code == "email.near_known"


def test_domain_with_a_lost_dot() -> None:
    t = DomainTable(["gmail.com"], ["leedshospitals.nhs.uk", "bishopfamily.co.uk"])
    assert t.suggest("leedshospitalsnhs.uk") == "leedshospitals.nhs.uk"
    assert t.suggest("bishopfamilycouk") == "bishopfamily.co.uk"
    assert t.suggest("nsh.net") is None  # nhs.net is not a target of this table
    assert DomainTable(["nhs.net"], []).suggest("nsh.net") == "nhs.net"


@pytest.mark.parametrize(
    ("sent", "on_file", "same"),
    [
        ("14 Korris Rd, Birmingham B11 3LG", "14 Morris Road, Birmingham, B11 3LG", True),
        ("43 Webb Cour, Oldham OL9 8TU", "43 Webb Court, Oldham, OL9 8TU", True),
        ("14 Ben Steret, London N19 5BG", "14 Ben Street, London, N19 5BG", True),
        ("41 Gardenr Road, L13 1YQ", "41 Gardner Road, Liverpool, L13 1YQ", True),
        ("12 Low Street, LS1 1AA", "12 High Street, Leeds, LS1 1AA", False),
        ("14 High Street, LS1 1AA", "12 High Street, Leeds, LS1 1AA", False),
    ],
)
def test_street_slips_with_the_same_postcode_and_number(
    sent: str, on_file: str, same: bool
) -> None:
    assert same_place(normalise_address(sent), normalise_address(on_file)) is same


@pytest.mark.parametrize(
    ("written", "given", "family", "expected"),
    [
        ("Tom Smith", ("Thomas",), "Smith", True),
        ("Bob Jones", ("Robert",), "Jones", True),
        ("Tim Smith", ("Thomas",), "Smith", False),
        ("C Lord", ("Claire",), "Lord", True),
        ("Dr A Jones MBBS", ("Alice",), "Jones", True),
        ("Mrs Smith", ("Jane",), "Smith", True),
    ],
)
def test_names(written: str, given: tuple[str, ...], family: str, expected: bool) -> None:
    assert name_matches(written, given, family) is expected
