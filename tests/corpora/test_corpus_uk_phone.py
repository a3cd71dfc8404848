"""UK phone and fax numbers: `parse_phone` and `phone_key` on public test data.

Number::Phone (OFCOM data), validator.js and phony are independent of the
phonenumbers library sendguard uses; the libphonenumber rows share its
lineage and are only a sanity check. Where a source and phonenumbers
disagree (OFCOM drama numbers that phonenumbers' metadata does not list,
ranges it has retired), the floor records the measured rate.
"""

from __future__ import annotations

import csv
from collections.abc import Callable

import pytest
from corpus_rates import Tallies, assert_all, assert_floor, report

from common import corpus
from sendguard.core.normalise.phone import (
    PhoneKind,
    PhoneNumber,
    PhoneSyntaxError,
    format_international,
    parse_phone,
    phone_key,
)

# libphonenumber PhoneNumberType (the collector's `lpn_type_hint`) -> the
# kinds sendguard may answer; FIXED_LINE_OR_MOBILE is right for either.
KINDS = {
    "FIXED_LINE": {PhoneKind.FIXED_LINE, PhoneKind.FIXED_LINE_OR_MOBILE},
    "MOBILE": {PhoneKind.MOBILE, PhoneKind.FIXED_LINE_OR_MOBILE},
    "TOLL_FREE": {PhoneKind.TOLL_FREE},
    "PREMIUM_RATE": {PhoneKind.PREMIUM_RATE},
    "SHARED_COST": {PhoneKind.SHARED_COST},
    "VOIP": {PhoneKind.VOIP},
    "PERSONAL_NUMBER": {PhoneKind.PERSONAL},
    "PAGER": {PhoneKind.PAGER},
    "UAN": {PhoneKind.UAN},
    "VOICEMAIL": {PhoneKind.VOICEMAIL},
}

NUMBER_PHONE = "DrHyde/perl-modules-Number-Phone"
LIBPHONENUMBER = "google/libphonenumber"
VALIDATOR_JS = "validatorjs/validator.js"
PHONY = "floere/phony"

# Measured rates minus about one row. Number::Phone misses are four OFCOM drama
# numbers (+44 115 496 0881, +44 1632 960000, +44 7700 900011/900471) that
# phonenumbers' metadata treats as invalid.
FLOORS = {
    f"{NUMBER_PHONE}: valid": 0.94,  # 80/84
    f"{NUMBER_PHONE}: type": 0.90,  # 48/52
    f"{NUMBER_PHONE}: E.164": 0.96,  # 25/25
    f"{VALIDATOR_JS}: not a valid mobile": 0.91,  # 12/12
    # Too few rows for a margin, or the same lineage as phonenumbers: exact.
    f"{LIBPHONENUMBER}: valid": 1.0,  # 32/32
    f"{LIBPHONENUMBER}: type": 1.0,  # 33/33
    f"{LIBPHONENUMBER}: E.164": 1.0,  # 2/2
    f"{LIBPHONENUMBER}: not possible, so not valid": 1.0,  # 2/2
    f"{VALIDATOR_JS}: valid": 1.0,  # 3/3
    f"{VALIDATOR_JS}: type": 1.0,  # 3/3
    f"{PHONY}: not possible, so not valid": 1.0,  # 2/2
}


def read(name: str) -> list[dict[str, str]]:
    with corpus("uk_phone", name).open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def parsed(text: str, region: str = "GB") -> PhoneNumber | None:
    try:
        return parse_phone(text, region)
    except PhoneSyntaxError:
        return None


def test_phone_cases(record_property: Callable[[str, object], None]) -> None:
    tallies = Tallies()
    for r in read("uk_phone_cases.csv"):
        src = r["source"].split()[0]
        n = parsed(r["number"])
        valid = n is not None and n.valid
        case = f"{r['number']!r} -> {n}"
        if r["expected_valid"]:
            tallies[f"{src}: valid"].add(valid == (r["expected_valid"] == "true"), case)
        if r["lpn_type_hint"]:
            kinds = KINDS[r["lpn_type_hint"]]
            ok = n is not None and valid and n.kind in kinds
            tallies[f"{src}: type"].add(ok, f"{case}, expected {r['lpn_type_hint']}")
        if r["expected_type"] == "NOT_MOBILE":
            mobile = n is not None and valid and n.kind in KINDS["MOBILE"]
            tallies[f"{src}: not a valid mobile"].add(not mobile, case)
        if r["expected_format"]:
            e164 = r["expected_format"].replace(" ", "")
            ok = n is not None and n.e164 == e164
            tallies[f"{src}: E.164"].add(ok, f"{case}, expected {e164}")
        if r["expected_possible"] == "false":
            tallies[f"{src}: not possible, so not valid"].add(not valid, case)
    report("uk_phone_cases.csv (parse_phone, region GB)", tallies, record_property)
    assert set(tallies) == set(FLOORS)
    for key, floor in FLOORS.items():
        assert_floor(tallies[key], floor)


def test_phone_key_agrees_with_parse_phone_for_every_valid_number() -> None:
    texts = [r["number"] for r in read("uk_phone_cases.csv")]
    texts += [r["number"] for r in read("uk_phone_splits_phony.csv")]
    texts += [r["input"] for r in read("uk_phone_parse_cases.csv") if r["default_region"] == "GB"]
    checked = 0
    for text in texts:
        n = parsed(text)
        if n is None or not n.valid:
            continue
        checked += 1
        assert phone_key(text) == n.key, text
        assert n.e164 == f"+{n.key}", text
    assert checked > 100


def test_phony_splits(record_property: Callable[[str, object], None]) -> None:
    """The international format groups the digits as phony does. Two rows
    fail because phonenumbers no longer lists the ranges: +44 500 (Freefone,
    closed in 2017) and +44 76 (pagers)."""
    tallies = Tallies()
    for r in read("uk_phone_splits_phony.csv"):
        n = parsed(r["number"])
        formatted = format_international(n.key) if n is not None else None
        ok = n is not None and n.valid and formatted == f"+{r['expected_split']}"
        tallies["valid and grouped as phony"].add(
            ok, f"{r['number']} ({r['comment']}) -> {formatted}, valid={n and n.valid}"
        )
        ok = n is not None and n.e164 == r["number"]
        tallies["E.164"].add(ok, f"{r['number']} -> {n}")
    report("uk_phone_splits_phony.csv", tallies, record_property)
    assert_floor(tallies["valid and grouped as phony"], 0.94)  # 52/54
    assert_all(tallies["E.164"])


def test_parse_cases(record_property: Callable[[str, object], None]) -> None:
    """Extensions are dropped from the E.164 form; IDD and length errors are
    PhoneSyntaxError (and no directory key)."""
    tallies = Tallies()
    for r in read("uk_phone_parse_cases.csv"):
        region = r["default_region"]
        if r["expected_error"]:
            with pytest.raises(PhoneSyntaxError):
                parse_phone(r["input"], region)
            tallies["errors"].add(phone_key(r["input"], region) is None, r["input"])
            continue
        n = parse_phone(r["input"], region)
        ok = n.valid and n.e164 == r["expected_e164"]
        tallies["E.164"].add(ok, f"{r['input']!r} ({region}) -> {n}")
        ok = phone_key(r["input"], region) == n.key
        tallies["phone_key"].add(ok, f"{r['input']!r} ({region})")
    report("uk_phone_parse_cases.csv", tallies, record_property)
    for t in tallies.values():
        assert_all(t)
