"""Email syntax: `parse_email` against six public address test suites.

Suites disagree with each other (and with RFC 5322) about obsolete syntax,
comments, quoted local parts and display names, so each suite is scored on
its own. sendguard follows email-validator (no DNS), which refuses most of
that legacy syntax on purpose: a recipient written that way is held for a
person to look at rather than guessed. What sendguard promises exactly is
tested exactly: no input makes `parse_email` raise anything but
EmailSyntaxError, and the fast path accepts only what email-validator
accepts, with the same normal form.
"""

from __future__ import annotations

import contextlib
import csv
import json
import unicodedata
from collections.abc import Callable

import pytest
from corpus_rates import Tallies, assert_floor, report
from email_validator import EmailNotValidError, validate_email

from common import corpus
from sendguard.core.normalise.email import EmailSyntaxError, _fast, parse_email

ESCAPED = "JSON-escaped form"
"""Marker in `comment` of the rows that hold a lone surrogate, stored escaped."""

# Measured agreement with `expected_valid` minus about one row.
FLOORS = {
    "isemail-3.05": 0.73,  # 121/164
    "isemail-original-3.04": 0.74,  # 208/279
    "hapi-isemail": 0.77,  # 166/212
    "iamcal-rfc822": 0.62,  # 176/280
    "jmail": 0.71,  # 204/285
    "flanker": 0.72,  # 172/236
}
# Invalid addresses the suites expect refused. The remaining accepts are
# surrounding whitespace/CRLF (stripped before parsing), local parts over 64
# characters (email-validator does not enforce RFC 5321 lengths unless
# strict) and Unicode symbols in the local part (allowed by RFC 6531).
FLOORS_REJECTED = {
    "isemail-3.05": 0.79,  # 100/125
    "isemail-original-3.04": 0.98,  # 169/171
    "hapi-isemail": 0.84,  # 150/177
    "iamcal-rfc822": 0.97,  # 136/138
    "jmail": 0.91,  # 145/157
    "flanker": 0.98,  # 85/85
}


def rows() -> list[dict[str, str]]:
    path = corpus("email_syntax", "email_address_syntax_cases.csv")
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def address_of(row: dict[str, str]) -> str:
    """The address as the source tested it (lone surrogates decoded)."""
    if ESCAPED in row["comment"]:
        return str(json.loads(f'"{row["address_escaped"]}"'))
    return row["address"]


def suite_of(row: dict[str, str]) -> str:
    return row["suite"].split(" (")[0]


def accepts(text: str) -> bool:
    try:
        parse_email(text)
    except EmailSyntaxError:
        return False
    return True


def test_agreement_per_suite(record_property: Callable[[str, object], None]) -> None:
    tallies = Tallies()
    for r in rows():
        assert r["expected_valid"] in ("true", "false"), r
        expected = r["expected_valid"] == "true"
        got = accepts(address_of(r))
        case = f"{r['address_escaped']} expected {'valid' if expected else 'invalid'}"
        suite = suite_of(r)
        tallies[suite].add(got == expected, case)
        side = "valid accepted" if expected else "invalid rejected"
        tallies[f"{suite}: {side}"].add(got == expected, case)
    report("email syntax: agreement with expected_valid", tallies, record_property)
    assert {k for k in tallies if ":" not in k} == set(FLOORS)
    for suite, floor in FLOORS.items():
        assert_floor(tallies[suite], floor)
    for suite, floor in FLOORS_REJECTED.items():
        assert_floor(tallies[f"{suite}: invalid rejected"], floor)


def test_only_email_syntax_error_escapes_on_any_row() -> None:
    """CR, LF, NUL, lone surrogates, display names, comments: whatever the
    text, `parse_email` returns an address or raises EmailSyntaxError."""
    seen = 0
    for r in rows():
        for text in {r["address"], r["address_escaped"], address_of(r)}:
            for variant in (text, f" {text} ", f"<{text}>", text.upper(), text + "\x00"):
                with contextlib.suppress(EmailSyntaxError):
                    parse_email(variant)
                seen += 1
    assert seen > 5 * 1400


def test_lone_surrogates_are_refused() -> None:
    surrogate_rows = [r for r in rows() if ESCAPED in r["comment"]]
    assert len(surrogate_rows) == 5
    for r in surrogate_rows:
        text = address_of(r)
        assert any(0xD800 <= ord(c) <= 0xDFFF for c in text)
        with pytest.raises(EmailSyntaxError):
            parse_email(text)


def test_fast_path_accepts_only_what_email_validator_accepts() -> None:
    """The fast path is a strict subset of email-validator, normalising the
    same way (lowercase local part and domain)."""
    fast_accepted = 0
    for r in rows():
        text = address_of(r).strip()
        fast = _fast(text)
        if fast is None:
            continue
        fast_accepted += 1
        try:
            v = validate_email(text, check_deliverability=False)
        except EmailNotValidError as exc:  # pragma: no cover - reported by the assert
            pytest.fail(f"fast path accepted {text!r}, email-validator refuses it: {exc}")
        local = unicodedata.normalize("NFC", v.local_part).lower()
        domain = unicodedata.normalize("NFC", v.domain).lower()
        assert (fast.local, fast.domain) == (local, domain), text
        assert fast.ascii_domain == (v.ascii_domain or v.domain).lower(), text
    assert fast_accepted > 100


def test_accepted_addresses_are_stable_under_reparsing() -> None:
    for r in rows():
        text = address_of(r)
        try:
            a = parse_email(text)
        except EmailSyntaxError:
            continue
        assert parse_email(a.address) == a, text
