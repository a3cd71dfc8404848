"""The UK fast path of parse_phone gives exactly what phonenumbers gives.

`_parse_uk_fast` mirrors the few steps of phonenumbers' parse and
number_type that matter for UK numbers written the usual ways; these tests
hold it to the library field by field, on random UK-style text and on every
number of the public UK phone corpus, and check that it is actually taken.
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Callable

import phonenumbers
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from common import corpus
from sendguard.core.normalise.phone import (
    PhoneNumber,
    PhoneSyntaxError,
    _parse_uk_fast,
    _parse_with_library,
    _uk_plan,
    parse_phone,
)

SETTINGS = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])

Outcome = dict[str, object] | str


def outcome(parse: Callable[[str, str], PhoneNumber], text: str, region: str = "GB") -> Outcome:
    """The fields of the result, or the error text: comparable either way."""
    try:
        return dataclasses.asdict(parse(text, region))
    except PhoneSyntaxError as exc:
        return f"PhoneSyntaxError: {exc}"


def assert_same_as_library(text: str, region: str = "GB") -> bool:
    """parse_phone agrees with the library path; True when the fast path
    answered (so callers can check it is not always declining)."""
    expected = outcome(_parse_with_library, text, region)
    assert outcome(parse_phone, text, region) == expected, text
    if region != "GB":
        return False
    fast = _parse_uk_fast(text)
    if fast is None:
        return False
    assert dataclasses.asdict(fast) == expected, text
    return True


# -- random UK-style text ------------------------------------------------------

# Leading digits of national numbers: every UK range start, the Crown
# dependencies' ranges (GG, IM, JE share +44), GB's other national prefix
# (180020), and leading zeros and 44s that the library reads differently.
PREFIXES = [
    *"12356789",
    *["11", "113", "1134", "121", "131", "141", "1481", "1534", "1624", "16977", "1768"],
    *["180020", "20", "203", "207", "28", "29", "30", "33", "34", "37", "55", "56"],
    *["70", "74576", "7524", "7624", "76", "7700", "7781", "7839", "7911", "7937"],
    *["80", "800", "8001111", "808", "84", "845", "87", "870", "90", "906", "908", "98"],
    *["0", "00", "01", "44", "440"],
]

SEPARATORS = [" ", "", "-", ".", "/", "  ", " - ", "\t", "\u00a0", "\n", "\x1c", "\u2009"]

FORMS = [
    "0{b}",
    "+44{b}",
    "+44 {b}",
    "+44 (0){b}",
    "+44(0) {b}",
    "+44 (0) {b}",
    "+44 0{b}",
    "+44 (0)0{b}",
    "+440{b}",
    "0044 {b}",
    "0044{b}",
    "0044 (0) {b}",
    "0044 0{b}",
    "00{b}",
    "{b}",
    "44 {b}",
    "(0{a}) {r}",
    "0{a} {r}",
    "+44 ({a}) {r}",
    "(+44) {b}",
    "+44 (0)({a}) {r}",
    "0(0){b}",
]

PADDING = ["", " ", "  ", "\t", "\n", "(", ")", "-", ".", "\u00a0", "tel ", "x"]


@st.composite
def national_digits(draw: st.DrawFn) -> str:
    prefix: str = draw(st.sampled_from(PREFIXES))
    length = draw(st.integers(min_value=6, max_value=12))
    rest = draw(st.text(alphabet="0123456789", min_size=length, max_size=length))
    return (prefix + rest)[: max(length, len(prefix))]


@st.composite
def grouped(draw: st.DrawFn, digits: str) -> str:
    """`digits` split at random points, joined by one separator style."""
    if len(digits) < 2:
        return digits
    sep = draw(st.sampled_from(SEPARATORS))
    cuts = sorted(draw(st.sets(st.integers(1, len(digits) - 1), max_size=3)))
    parts = [digits[a:b] for a, b in zip([0, *cuts], [*cuts, len(digits)], strict=True)]
    return sep.join(parts)


@st.composite
def uk_style_text(draw: st.DrawFn) -> str:
    digits = draw(national_digits())
    split = draw(st.integers(min_value=1, max_value=5))
    form = draw(st.sampled_from(FORMS))
    text = form.format(b=draw(grouped(digits)), a=digits[:split], r=draw(grouped(digits[split:])))
    before, after = draw(st.sampled_from(PADDING)), draw(st.sampled_from(PADDING))
    return before + text + after


@SETTINGS
@given(uk_style_text())
@example("0113 496 0000")
@example("+44 (0)161 2927239")
@example("0044 121 566 8357")
@example("07700 900123")
@example("09065 123456")
@example("+44 (0)01134960000")  # the library strips one 0, phone_key's reading two
@example("+4401134960000")
@example("00113 496 0000")  # 00 is the international prefix
@example("+44 1800201234")  # 180020 is a national prefix too
@example("0113\t496 0000")  # a tab is not phone number punctuation
@example("0113 496 0000 x12")
@example("+44 1481 234567")  # Guernsey
@example("07624 123456")  # Isle of Man mobile
def test_fast_path_agrees_with_the_library(text: str) -> None:
    assert_same_as_library(text)


@SETTINGS
@given(st.text(alphabet="0123456789+() -./", max_size=24))
def test_fast_path_agrees_with_the_library_on_any_such_text(text: str) -> None:
    assert_same_as_library(text)


# -- the public corpus ---------------------------------------------------------


def read(name: str) -> list[dict[str, str]]:
    with corpus("uk_phone", name).open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def written_forms(nsn: str) -> list[str]:
    """The ways a UK number is usually written, from its national number."""
    head, tail = nsn[:4], nsn[4:]
    return [
        f"0{nsn}",
        f"0{head} {tail}",
        f"0{head}-{tail[:3]}-{tail[3:]}",
        f"(0{head}) {tail}",
        f"+44{nsn}",
        f"+44 {head} {tail}",
        f"+44 (0){head} {tail}",
        f"+44 (0) {head}.{tail}",
        f"0044 {head} {tail}",
        f"0044 (0){nsn}",
    ]


def test_fast_path_agrees_with_the_library_on_the_corpus() -> None:
    cases = [(r["number"], r["region"] or "GB") for r in read("uk_phone_cases.csv")]
    cases += [(r["number"], "GB") for r in read("uk_phone_splits_phony.csv")]
    cases += [(r["input"], r["default_region"]) for r in read("uk_phone_parse_cases.csv")]
    # The corpus is mostly E.164: each UK number is also checked as written.
    for text, region in list(cases):
        try:
            n = _parse_with_library(text, region)
        except PhoneSyntaxError:
            continue
        if n.country_code == 44:
            cases += [(form, "GB") for form in written_forms(n.national)]
    fast = sum(assert_same_as_library(text, region) for text, region in cases)
    assert len(cases) > 500
    assert fast > len(cases) // 2


# -- the fast path is taken ----------------------------------------------------

TYPICAL = [
    "0113 496 0000",
    "+44 (0)161 2927239",
    "0044 121 566 8357",
    "07700 900123",
    "09065 123456",
    "020 7946 0958",
    "+447911 123456",
    "0800 123 4567",
    "01481 234567",
    "07624 123456",
]


def test_fast_path_is_taken_for_ordinary_uk_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _uk_plan() is not None, "the +44 metadata is no longer shaped as the fast path assumes"
    expected = {text: _parse_with_library(text, "GB") for text in TYPICAL}

    def refuse(*args: object, **kwargs: object) -> object:
        raise AssertionError("parse_phone fell back to phonenumbers")

    monkeypatch.setattr(phonenumbers, "parse", refuse)
    monkeypatch.setattr(phonenumbers, "number_type", refuse)
    for text in TYPICAL:
        assert parse_phone(text) == expected[text], text


def test_other_regions_and_odd_text_still_use_the_library(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    parse = phonenumbers.parse

    def counting(text: str, region: str | None) -> phonenumbers.PhoneNumber:
        calls.append(text)
        return parse(text, region)

    monkeypatch.setattr(phonenumbers, "parse", counting)
    for text, region in [
        ("0113 496 0000", "IE"),
        ("+44 (0)01134960000", "GB"),
        ("0113 496 0000 ext. 12", "GB"),
        ("+33 1 23 45 67 89", "GB"),
    ]:
        parse_phone(text, region)
    assert len(calls) == 4
