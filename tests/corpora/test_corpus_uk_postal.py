"""UK postcodes and addresses: the postal normalisers on public test data.

Postcodes: validity and normal form (ideal-postcodes, django-localflavor,
validator.js), keying-slip repair and extraction from free text
(ideal-postcodes). Addresses: the same address written two ways (libpostal's
free text against its parsed components, OpenCage's components against its
formatted lines, Royal Mail PAF fields against Clear Addressing lines) must
be `same_place`; case, separators, postcode spacing and Rd/St-style
abbreviations must not change `normalise_address` at all; nothing raises.
"""

from __future__ import annotations

import csv
import itertools
import json
import re
from collections.abc import Callable
from pathlib import Path

from corpus_rates import Tallies, assert_all, assert_floor, report

from common import corpus
from sendguard.core.normalise.postal import (
    find_postcode,
    fix_postcode,
    normalise_address,
    parse_postcode,
    postcode_slip,
    same_place,
)

IDEAL = "ideal-postcodes/postcode"
DJANGO = "django/django-localflavor"
VALIDATOR_JS = "validatorjs/validator.js"

# Row-level pass rates (every expectation the row states holds), measured
# minus about one row. The one miss is validator.js's `SA99`, an outward code
# alone, which is not a postcode a letter can be addressed to.
POSTCODE_FLOORS = {IDEAL: 0.97, DJANGO: 0.9, VALIDATOR_JS: 0.83}  # 43/43, 11/11, 11/12

LIBPOSTAL_ORDER = (
    "unit",
    "level",
    "house",
    "po_box",
    "house_number",
    "road",
    "suburb",
    "city_district",
    "city",
    "state_district",
    "state",
    "postcode",
    "country",
)
PAF_FIELDS = (
    "paf_organisation_name",
    "paf_department_name",
    "paf_po_box",
    "paf_sub_building_name",
    "paf_building_name",
    "paf_building_number",
    "paf_dependant_thoroughfare",
    "paf_thoroughfare",
    "paf_double_dependant_locality",
    "paf_dependant_locality",
    "paf_post_town",
    "paf_postcode",
)
PAF_LINES = (
    "expected_line_1",
    "expected_line_2",
    "expected_line_3",
    "expected_post_town",
    "expected_postcode",
)


def read(name: str) -> list[dict[str, str]]:
    with corpus("uk_postal", name).open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


# -- postcodes -----------------------------------------------------------------


def test_postcode_cases(record_property: Callable[[str, object], None]) -> None:
    tallies = Tallies()
    for r in read("uk_postcode_cases.csv"):
        pc = parse_postcode(r["input"])
        outward, _, inward = (pc or "").partition(" ")
        checks: list[bool] = []
        if r["expected_valid"]:
            checks.append((pc is not None) == (r["expected_valid"] == "true"))
        if r["expected_normalised"]:
            expected = None if r["expected_normalised"] == "null" else r["expected_normalised"]
            checks.append(pc == expected)
        if r["expected_outcode"] == "invalid":
            checks.append(pc is None)
        elif r["expected_outcode"]:
            checks.append(outward == r["expected_outcode"])
        if r["expected_incode"]:
            checks.append(inward == r["expected_incode"])
        if r["expected_sector"]:
            checks.append(pc is not None and f"{outward} {inward[:1]}" == r["expected_sector"])
        if r["expected_unit"]:
            checks.append(pc is not None and inward[1:] == r["expected_unit"])
        source = r["source"].split()[0]
        tallies[source].add(all(checks), f"{r['input']!r} -> {pc}")
    report("uk_postcode_cases.csv (parse_postcode)", tallies, record_property)
    assert set(tallies) == set(POSTCODE_FLOORS)
    for key, floor in POSTCODE_FLOORS.items():
        assert_floor(tallies[key], floor)


def test_postcode_fix_cases(record_property: Callable[[str, object], None]) -> None:
    """Every repair ideal-postcodes makes, sendguard makes; the case it
    leaves unchanged, sendguard refuses to repair."""
    tallies = Tallies()
    for r in read("uk_postcode_fix_cases.csv"):
        fixed = fix_postcode(r["input"])
        if r["expected_fixed"] == r["input"]:  # not fixable
            ok = fixed is None or parse_postcode(fixed) is None
        else:
            ok = fixed == r["expected_fixed"]
        tallies["fix_postcode"].add(ok, f"{r['input']!r} -> {fixed!r}")
    report("uk_postcode_fix_cases.csv", tallies, record_property)
    assert_all(tallies["fix_postcode"])


def test_postcode_extraction(record_property: Callable[[str, object], None]) -> None:
    """`find_postcode` returns the last postcode of a text; cut the text
    after each expected match and it returns that one."""
    tallies = Tallies()
    for r in read("uk_postcode_extraction.csv"):
        text = r["text"]
        matches = r["expected_matches"].split("|") if r["expected_matches"] else []
        normals = r["expected_normalised"].split("|") if r["expected_normalised"] else []
        got = find_postcode(text)
        tallies["find_postcode"].add(got == (normals[-1] if normals else None), f"{text!r}: {got}")
        at = 0
        for match, normal in zip(matches, normals, strict=True):
            at = text.index(match, at) + len(match)
            got = find_postcode(text[:at])
            tallies["find_postcode"].add(got == normal, f"{text[:at]!r}: {got}")
    report("uk_postcode_extraction.csv", tallies, record_property)
    assert_all(tallies["find_postcode"])


# -- addresses -----------------------------------------------------------------


def libpostal_rows() -> list[tuple[str, dict[str, str]]]:
    return [
        (r["input"], json.loads(r["expected_components_json"]))
        for r in read("uk_address_parse_libpostal.csv")
    ]


def from_components(c: dict[str, str]) -> str:
    """libpostal's components written back as lines, in upper case."""
    lines: list[str] = []
    for key in LIBPOSTAL_ORDER:
        if key not in c:
            continue
        if key == "road" and "house_number" in c:
            lines[-1] += f" {c[key]}"
        else:
            lines.append(str(c[key]))
    return "\n".join(line.upper() for line in lines)


def opencage_rows() -> list[tuple[str, str]]:
    """(formatted address, all components as one comma-separated line)."""
    out = []
    for r in read("uk_address_format_opencage.csv"):
        c = json.loads(r["components_json"])
        flat = ", ".join(str(v) for k, v in c.items() if not k.endswith("_code"))
        out.append((r["expected_formatted"], flat))
    return out


def paf_rows() -> list[tuple[str, str]]:
    """(PAF fields joined with commas, Clear Addressing lines)."""
    out = []
    for r in read("uk_paf_address_formatting.csv"):
        fields = [
            f"PO Box {r[f]}" if f == "paf_po_box" else r[f] for f in PAF_FIELDS if r[f].strip()
        ]
        out.append((", ".join(fields), "\n".join(r[f] for f in PAF_LINES if r[f])))
    return out


def test_same_address_written_two_ways(record_property: Callable[[str, object], None]) -> None:
    tallies = Tallies()
    for text, components in libpostal_rows():
        a = normalise_address(text)
        if a.postcode is None:  # "Stoke-on-Trent, United Kingdom": nothing to compare
            continue
        other = from_components(components)
        tallies["libpostal: input vs components"].add(
            same_place(a, normalise_address(other)), f"{text!r} vs {other!r}"
        )
    for formatted, flat in opencage_rows():
        a = normalise_address(formatted)
        if a.postcode is None:  # locality-only or outward-code-only rows
            continue
        tallies["opencage: formatted vs components"].add(
            same_place(a, normalise_address(flat)), f"{formatted!r} vs {flat!r}"
        )
    for fields, lines in paf_rows():
        tallies["paf: fields vs clear addressing"].add(
            same_place(normalise_address(fields), normalise_address(lines)),
            f"{fields!r} vs {lines!r}",
        )
    report("uk addresses: same_place on two formattings", tallies, record_property)
    assert_all(tallies["libpostal: input vs components"])  # 29/29
    assert_all(tallies["opencage: formatted vs components"])  # 9/9
    # 62/64: PAF building number 0 means "no number" and a lone sub-building
    # letter ("A" + 12 -> "12A") is merged into the number by Clear Addressing.
    assert_floor(tallies["paf: fields vs clear addressing"], 0.95)


def test_different_premises_at_one_postcode_are_not_the_same_place() -> None:
    """libpostal rows that share a postcode: the same place exactly when
    libpostal parsed the same premise and street."""
    premise_keys = ("unit", "house", "house_number", "road", "po_box")
    compared = 0
    for (ta, ca), (tb, cb) in itertools.combinations(libpostal_rows(), 2):
        a, b = normalise_address(ta), normalise_address(tb)
        if a.postcode is None or a.postcode != b.postcode:
            continue
        compared += 1
        same = all(ca.get(k) == cb.get(k) for k in premise_keys)
        assert same_place(a, b) is same, (ta, tb)
    assert compared >= 4


ABBREVIATIONS = {
    "Road": "Rd",
    "Street": "St",
    "Avenue": "Ave",
    "Lane": "Ln",
    "Drive": "Dr",
    "Close": "Cl",
    "Court": "Ct",
    "Square": "Sq",
}
_POSTCODE_IN_TEXT = re.compile(r"\b([A-Z]{1,2}[0-9][0-9A-Z]?) ([0-9][A-Z]{2})\b", re.IGNORECASE)


def variants(text: str) -> dict[str, str]:
    """The same address as staff might type it differently."""
    out = {
        "upper": text.upper(),
        "lower": text.lower(),
        "lines": re.sub(r"\s*,\s*", "\n", text),
        "one line": re.sub(r"\s*\n\s*", ", ", text.strip()),
        "no commas": re.sub(r"[\s,]+", " ", text),
        "CRLF": re.sub(r"\s*[\n,]\s*", "\r\n", text),
        "postcode unspaced": _POSTCODE_IN_TEXT.sub(r"\1\2", text),
        "postcode spaced out": _POSTCODE_IN_TEXT.sub(r"\1   \2", text),
        "padded": f"  {text}\n\n",
    }
    short = text
    long = text
    for word, abbr in ABBREVIATIONS.items():
        short = re.sub(rf"\b{word}\b", abbr, short, flags=re.IGNORECASE)
        long = re.sub(rf"\b{abbr}\b\.?", word, long, flags=re.IGNORECASE)
    out["abbreviated"] = short
    out["abbreviated with full stops"] = re.sub(
        rf"\b({'|'.join(ABBREVIATIONS.values())})\b", r"\1.", short
    )
    out["spelt out"] = long
    return out


def address_texts() -> list[str]:
    texts = [t for t, _ in libpostal_rows()]
    texts += [from_components(c) for _, c in libpostal_rows()]
    for formatted, flat in opencage_rows():
        texts += [formatted, flat]
    for fields, lines in paf_rows():
        texts += [fields, lines]
    return texts


def test_formatting_variants_normalise_identically(
    record_property: Callable[[str, object], None],
) -> None:
    tallies = Tallies()
    for text in address_texts():
        base = normalise_address(text)
        for name, variant in variants(text).items():
            got = normalise_address(variant)
            tallies[name].add(got == base, f"{variant!r}: {got} != {base}")
    report("uk addresses: normalise_address under formatting variants", tallies, record_property)
    for t in tallies.values():
        assert_all(t)


def all_cells() -> list[str]:
    folder: Path = corpus("uk_postal", "uk_postcode_cases.csv").parent
    cells: list[str] = []
    for path in sorted(folder.glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f):
                cells += [v for v in r.values() if v]
    return cells


def test_nothing_raises_on_any_cell() -> None:
    """Every cell of every postal corpus file, and its variants, through every
    postal function, and each address compared with its neighbour."""
    previous = normalise_address("")
    seen = 0
    for cell in all_cells():
        for text in (cell, *variants(cell).values()):
            a = normalise_address(text)
            same_place(a, previous)
            postcode_slip(a, previous)
            parse_postcode(text)
            fix_postcode(text)
            find_postcode(text)
            a.text()
            assert isinstance(a.key, str)
            previous = a
            seen += 1
    assert seen > 1000
