"""The sendguard directory CSV, for sites without a FHIR export.

One row per entry, a header row naming the columns (any order; only `id`
and `kind` are required). Lists are separated by `;`, address lines by `|`
or line breaks. The README documents every column.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import date

from sendguard.core.directory.records import (
    Kind,
    LinkKind,
    Problem,
    RawAddress,
    RawEntry,
    RawLink,
    RawTelecom,
)

__all__ = ["CSV_COLUMNS", "CsvProblem", "entries_from_csv"]

CSV_COLUMNS: dict[str, str] = {
    "id": "unique id of the entry, e.g. P0001 (required)",
    "kind": "patient | practitioner | role | organization | contact (required)",
    "nhs_number": "patient's NHS number (10 digits, spaces allowed)",
    "ods_code": "organisation's ODS code",
    "title": "Mr, Mrs, Dr, ...",
    "given": "given names, space-separated",
    "family": "family name",
    "name": "organisation name (or a person's full name when given/family are empty)",
    "email": "current email addresses, `;`-separated",
    "fax": "current fax numbers, `;`-separated",
    "phone": "current phone numbers, `;`-separated",
    "previous_email": "email addresses no longer in use, `;`-separated",
    "previous_fax": "fax numbers no longer in use, `;`-separated",
    "address": "current postal address, lines separated by `|`",
    "postcode": "postcode of `address` (may instead be its last line)",
    "previous_address": "a previous postal address, lines separated by `|`",
    "previous_postcode": "postcode of `previous_address`",
    "gp": "patient: ids or ODS codes of their GP practitioner/role/practice, `;`-separated",
    "contact_of": "contact: ids or NHS numbers of the patients they are a contact of",
    "organization": "practitioner or role: id or ODS code of their organisation",
    "practitioner": "role: id of the practitioner",
    "relationship": "contact: relationship to the patient (next of kin, carer, ...)",
}
_KINDS = {k.value: k for k in Kind} | {"organisation": Kind.ORGANIZATION}
_SPLIT_LINES = str.maketrans({"|": "\n"})
_LONG_AGO = date(1900, 1, 1)  # end date given to `previous_*` values


class CsvProblem(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def _items(cell: str) -> list[str]:
    return [x.strip() for x in cell.split(";") if x.strip()]


def _ref(value: str) -> str:
    v = value.strip()
    if v.replace(" ", "").isdigit() and len(v.replace(" ", "")) == 10:
        return f"nhs:{v}"
    return v


def entries_from_csv(lines: Iterable[str], file: str) -> Iterator[RawEntry]:
    """Entries from the lines of a directory CSV file.

    Raises CsvProblem for an unknown column or a malformed row.
    """
    reader = csv.DictReader(iter(lines), strict=True)
    try:
        header = reader.fieldnames
    except csv.Error as exc:
        raise CsvProblem(Problem(file, "header", "", f"not valid CSV: {exc}")) from None
    if not header:
        raise CsvProblem(Problem(file, "header", "", "the file is empty"))
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if unknown:
        raise CsvProblem(
            Problem(
                file,
                "header",
                unknown[0],
                f"unknown column; known columns are {', '.join(CSV_COLUMNS)}",
            )
        )
    for required in ("id", "kind"):
        if required not in header:
            raise CsvProblem(Problem(file, "header", required, "required column is missing"))
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise CsvProblem(
                Problem(file, f"line {reader.line_num}", "", f"not valid CSV: {exc}")
            ) from None
        where = f"line {reader.line_num}"
        if None in row:
            raise CsvProblem(Problem(file, where, "", "more cells than header columns"))
        yield _entry(row, file, where)


def _entry(row: dict[str, str], file: str, where: str) -> RawEntry:
    def get(col: str) -> str:
        return (row.get(col) or "").strip()

    def fail(col: str, message: str) -> CsvProblem:
        return CsvProblem(Problem(file, where, col, message))

    eid = get("id")
    if not eid:
        raise fail("id", "every row needs an id")
    kind = _KINDS.get(get("kind").lower())
    if kind is None:
        raise fail(
            "kind", f"unknown kind {get('kind')!r}; use one of {', '.join(k.value for k in Kind)}"
        )
    given = tuple(get("given").split())
    family = get("family")
    name = get("name")
    org_name = ""
    if kind is Kind.ORGANIZATION:
        org_name = name
    elif not given and not family and name:
        words = name.split()
        given, family = tuple(words[:-1]), words[-1]
    telecoms: list[RawTelecom] = []
    for col, system, ended in (
        ("email", "email", False),
        ("fax", "fax", False),
        ("phone", "phone", False),
        ("previous_email", "email", True),
        ("previous_fax", "fax", True),
    ):
        for v in _items(get(col)):
            telecoms.append(
                RawTelecom(system=system, value=v, field=col, end=_LONG_AGO if ended else None)
            )
    addresses: list[RawAddress] = []
    for col, pc_col, use in (
        ("address", "postcode", "home"),
        ("previous_address", "previous_postcode", "old"),
    ):
        lines = tuple(x.strip() for x in get(col).translate(_SPLIT_LINES).splitlines() if x.strip())
        if lines or get(pc_col):
            addresses.append(RawAddress(lines=lines, postcode=get(pc_col), use=use, field=col))
    links: list[RawLink] = []
    for col, lk in (
        ("gp", LinkKind.GP),
        ("contact_of", LinkKind.CONTACT_OF),
        ("organization", LinkKind.ORGANIZATION),
        ("practitioner", LinkKind.PRACTITIONER),
    ):
        links.extend(RawLink(kind=lk, ref=_ref(v), field=col) for v in _items(get(col)))
    if kind is Kind.CONTACT and not any(lk.kind is LinkKind.CONTACT_OF for lk in links):
        raise fail("contact_of", "a contact must name the patient(s) it is a contact of")
    return RawEntry(
        id=eid,
        kind=kind,
        file=file,
        record=where,
        nhs_number=get("nhs_number") or None,
        ods_code=get("ods_code") or None,
        given=given,
        family=family,
        prefix=tuple(get("title").split()),
        org_name=org_name,
        relationship=get("relationship"),
        telecoms=tuple(telecoms),
        addresses=tuple(addresses),
        links=tuple(links),
    )
