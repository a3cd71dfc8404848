"""HL7 FHIR R4 resources to raw directory records.

Reads Patient (with its inline `contact`s), RelatedPerson, Practitioner,
PractitionerRole and Organization, from a Bundle, a single resource or
NDJSON lines. Other resource types are skipped. Problems name the file, the
record (line number or Bundle entry) and the field path.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from typing import Any

import orjson

from sendguard.core.directory.records import (
    Kind,
    LinkKind,
    Problem,
    RawAddress,
    RawEntry,
    RawLink,
    RawTelecom,
)

__all__ = [
    "NHS_NUMBER_SYSTEM",
    "ODS_SYSTEMS",
    "FhirProblem",
    "entries_from_json",
    "entries_from_ndjson_line",
    "entries_from_resource",
]

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
ODS_SYSTEMS = frozenset(
    {"https://fhir.nhs.uk/Id/ods-organization-code", "https://fhir.nhs.uk/Id/ods-site-code"}
)
_TYPES = {
    "Patient": Kind.PATIENT,
    "Practitioner": Kind.PRACTITIONER,
    "PractitionerRole": Kind.ROLE,
    "Organization": Kind.ORGANIZATION,
    "RelatedPerson": Kind.CONTACT,
}
_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")
_NAME_PRIORITY = {"official": 0, "usual": 1, None: 2, "nickname": 3, "maiden": 4, "old": 5}


class FhirProblem(Exception):
    """A problem in one resource; carries where it is."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


class _Ctx:
    __slots__ = ("file", "record")

    def __init__(self, file: str, record: str) -> None:
        self.file = file
        self.record = record

    def fail(self, field: str, message: str) -> FhirProblem:
        return FhirProblem(Problem(self.file, self.record, field, message))


def entries_from_json(data: bytes | str, file: str) -> Iterator[RawEntry]:
    """Entries in a JSON document: a Bundle or one resource.

    Raises FhirProblem for the first malformed record found.
    """
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise FhirProblem(Problem(file, "", "", f"not valid JSON: {exc}")) from None
    yield from _from_document(doc, _Ctx(file, ""))


def entries_from_ndjson_line(line: bytes | str, file: str, lineno: int) -> Iterator[RawEntry]:
    """Entries in one NDJSON line (a resource, or a Bundle)."""
    ctx = _Ctx(file, f"line {lineno}")
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ctx.fail("", f"not valid JSON: {exc}") from None
    yield from _from_document(doc, ctx)


def _from_document(doc: Any, ctx: _Ctx) -> Iterator[RawEntry]:
    if not isinstance(doc, dict):
        raise ctx.fail("", "expected a FHIR resource (a JSON object)")
    if doc.get("resourceType") == "Bundle":
        entries = doc.get("entry", [])
        if not isinstance(entries, list):
            raise ctx.fail("entry", "expected a list")
        base = ctx.record
        for k, item in enumerate(entries):
            where = f"{base} entry[{k}]".strip()
            if not isinstance(item, dict) or not isinstance(item.get("resource"), dict):
                raise FhirProblem(Problem(ctx.file, where, "resource", "missing or not an object"))
            full_url = item.get("fullUrl")
            sub = _Ctx(ctx.file, where)
            yield from _from_document_or_resource(item["resource"], sub, full_url)
        return
    yield from entries_from_resource(doc, ctx.file, ctx.record)


def _from_document_or_resource(res: dict[str, Any], ctx: _Ctx, full_url: Any) -> Iterator[RawEntry]:
    if res.get("resourceType") == "Bundle":
        yield from _from_document(res, ctx)
    else:
        yield from entries_from_resource(
            res, ctx.file, ctx.record, full_url=full_url if isinstance(full_url, str) else None
        )


def entries_from_resource(
    res: dict[str, Any], file: str, record: str, *, full_url: str | None = None
) -> Iterator[RawEntry]:
    """Entries for one resource: usually one, a Patient adds its contacts."""
    ctx = _Ctx(file, record)
    rtype = res.get("resourceType")
    if not isinstance(rtype, str):
        raise ctx.fail("resourceType", "missing")
    kind = _TYPES.get(rtype)
    if kind is None:
        return
    rid = res.get("id")
    if rid is not None and (not isinstance(rid, str) or not rid):
        raise ctx.fail("id", "must be a non-empty string")
    if rid:
        eid = f"{rtype}/{rid}"
    elif full_url:
        eid = full_url
    else:
        raise ctx.fail("id", "the resource has no id (and no Bundle fullUrl)")
    if not ctx.record:
        ctx.record = eid
    aliases = (full_url,) if full_url and full_url != eid else ()

    nhs, ods = _identifiers(res.get("identifier"), ctx, "identifier")
    given: tuple[str, ...] = ()
    prefix: tuple[str, ...] = ()
    family = ""
    org_name = ""
    if kind is Kind.ORGANIZATION:
        name = res.get("name", "")
        if not isinstance(name, str):
            raise ctx.fail("name", "expected a string")
        org_name = name
    elif kind is not Kind.ROLE:
        given, family, prefix = _human_name(res.get("name"), ctx, "name")
    links: list[RawLink] = []
    if kind is Kind.PATIENT:
        for k, ref in enumerate(_list(res.get("generalPractitioner"), ctx, "generalPractitioner")):
            links.append(
                RawLink(
                    kind=LinkKind.GP,
                    ref=_reference(ref, ctx, f"generalPractitioner[{k}]"),
                    field=f"generalPractitioner[{k}]",
                )
            )
    elif kind is Kind.ROLE:
        for fname, lk in (
            ("practitioner", LinkKind.PRACTITIONER),
            ("organization", LinkKind.ORGANIZATION),
        ):
            if res.get(fname) is not None:
                links.append(RawLink(kind=lk, ref=_reference(res[fname], ctx, fname), field=fname))
    elif kind is Kind.ORGANIZATION:
        if res.get("partOf") is not None:
            links.append(
                RawLink(
                    kind=LinkKind.PART_OF,
                    ref=_reference(res["partOf"], ctx, "partOf"),
                    field="partOf",
                )
            )
    elif kind is Kind.CONTACT:
        if res.get("patient") is None:
            raise ctx.fail("patient", "a RelatedPerson must name its patient")
        links.append(
            RawLink(
                kind=LinkKind.CONTACT_OF,
                ref=_reference(res["patient"], ctx, "patient"),
                field="patient",
            )
        )
    active = res.get("active", True) is not False
    yield RawEntry(
        id=eid,
        kind=kind,
        file=ctx.file,
        record=ctx.record,
        nhs_number=nhs if kind is Kind.PATIENT else None,
        ods_code=ods if kind is Kind.ORGANIZATION else None,
        given=given,
        family=family,
        prefix=prefix,
        org_name=org_name,
        relationship=_relationship(res.get("relationship"), ctx) if kind is Kind.CONTACT else "",
        telecoms=_telecoms(res.get("telecom"), ctx, "telecom"),
        addresses=_addresses(res.get("address"), ctx, "address"),
        links=tuple(links),
        aliases=aliases,
        active=active,
    )
    if kind is Kind.PATIENT:
        for k, c in enumerate(_list(res.get("contact"), ctx, "contact")):
            path = f"contact[{k}]"
            if not isinstance(c, dict):
                raise ctx.fail(path, "expected an object")
            g, f, p = _human_name([c["name"]] if c.get("name") else [], ctx, f"{path}.name")
            telecoms = _telecoms(c.get("telecom"), ctx, f"{path}.telecom")
            addresses = _addresses(
                [c["address"]] if c.get("address") else [], ctx, f"{path}.address"
            )
            if not (g or f or telecoms or addresses):
                continue
            yield RawEntry(
                id=f"{eid}#contact-{k}",
                kind=Kind.CONTACT,
                file=ctx.file,
                record=ctx.record,
                given=g,
                family=f,
                prefix=p,
                relationship=_relationship(c.get("relationship"), ctx),
                telecoms=telecoms,
                addresses=addresses,
                links=(RawLink(kind=LinkKind.CONTACT_OF, ref=eid, field=path),),
            )


def _list(value: Any, ctx: _Ctx, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ctx.fail(path, "expected a list")
    return value


def _str(value: Any, ctx: _Ctx, path: str) -> str:
    if not isinstance(value, str):
        raise ctx.fail(path, "expected a string")
    return value


def _identifiers(value: Any, ctx: _Ctx, path: str) -> tuple[str | None, str | None]:
    nhs = ods = None
    for k, ident in enumerate(_list(value, ctx, path)):
        if not isinstance(ident, dict):
            raise ctx.fail(f"{path}[{k}]", "expected an object")
        system = ident.get("system")
        if system == NHS_NUMBER_SYSTEM:
            nhs = _str(ident.get("value"), ctx, f"{path}[{k}].value")
            if not nhs.replace(" ", "").isdigit():
                raise ctx.fail(f"{path}[{k}].value", "an NHS number is ten digits")
        elif system in ODS_SYSTEMS:
            ods = _str(ident.get("value"), ctx, f"{path}[{k}].value")
    return nhs, ods


def _human_name(value: Any, ctx: _Ctx, path: str) -> tuple[tuple[str, ...], str, tuple[str, ...]]:
    names = _list(value, ctx, path)
    best: tuple[int, int] | None = None
    chosen: dict[str, Any] | None = None
    for k, n in enumerate(names):
        if not isinstance(n, dict):
            raise ctx.fail(f"{path}[{k}]", "expected an object")
        ended = isinstance(n.get("period"), dict) and n["period"].get("end") is not None
        rank = (_NAME_PRIORITY.get(n.get("use"), 2) + (10 if ended else 0), k)
        if best is None or rank < best:
            best, chosen = rank, n
    if chosen is None:
        return (), "", ()
    k = best[1] if best else 0
    given = tuple(
        _str(g, ctx, f"{path}[{k}].given")
        for g in _list(chosen.get("given"), ctx, f"{path}[{k}].given")
    )
    family = chosen.get("family", "")
    if not isinstance(family, str):
        raise ctx.fail(f"{path}[{k}].family", "expected a string")
    prefix = tuple(
        _str(p, ctx, f"{path}[{k}].prefix")
        for p in _list(chosen.get("prefix"), ctx, f"{path}[{k}].prefix")
    )
    if not given and not family and isinstance(chosen.get("text"), str):
        words = chosen["text"].split()
        given, family = tuple(words[:-1]), words[-1] if words else ""
    return given, family, prefix


def _end_date(period: Any, ctx: _Ctx, path: str) -> date | None:
    if period is None:
        return None
    if not isinstance(period, dict):
        raise ctx.fail(path, "expected an object")
    end = period.get("end")
    if end is None:
        return None
    m = _DATE.match(end) if isinstance(end, str) else None
    if m is None:
        raise ctx.fail(f"{path}.end", f"not a FHIR date: {end!r}")
    y, mo, d = m.groups()
    try:
        if d:
            return date(int(y), int(mo), int(d))
        if mo:  # a partial date ends at the end of its month
            nxt = date(int(y) + (mo == "12"), int(mo) % 12 + 1, 1)
            return date.fromordinal(nxt.toordinal() - 1)
        return date(int(y), 12, 31)
    except ValueError:
        raise ctx.fail(f"{path}.end", f"not a valid date: {end!r}") from None


def _telecoms(value: Any, ctx: _Ctx, path: str) -> tuple[RawTelecom, ...]:
    out = []
    for k, t in enumerate(_list(value, ctx, path)):
        p = f"{path}[{k}]"
        if not isinstance(t, dict):
            raise ctx.fail(p, "expected an object")
        system = t.get("system")
        if system not in ("email", "fax", "phone"):
            continue
        v = t.get("value")
        if not isinstance(v, str) or not v.strip():
            raise ctx.fail(f"{p}.value", f"a {system} contact point needs a value")
        out.append(
            RawTelecom(
                system=system, value=v, end=_end_date(t.get("period"), ctx, f"{p}.period"), field=p
            )
        )
    return tuple(out)


def _addresses(value: Any, ctx: _Ctx, path: str) -> tuple[RawAddress, ...]:
    out = []
    for k, a in enumerate(_list(value, ctx, path)):
        p = f"{path}[{k}]"
        if not isinstance(a, dict):
            raise ctx.fail(p, "expected an object")
        lines = [_str(x, ctx, f"{p}.line") for x in _list(a.get("line"), ctx, f"{p}.line")]
        for part in ("city", "district"):
            if a.get(part):
                lines.append(_str(a[part], ctx, f"{p}.{part}"))
        if not lines and isinstance(a.get("text"), str):
            lines = [x.strip() for x in re.split(r"[,\n]", a["text"]) if x.strip()]
        postcode = a.get("postalCode", "")
        if not isinstance(postcode, str):
            raise ctx.fail(f"{p}.postalCode", "expected a string")
        if not lines and not postcode:
            continue
        use = a.get("use", "home")
        out.append(
            RawAddress(
                lines=tuple(lines),
                postcode=postcode,
                use=use if isinstance(use, str) else "home",
                end=_end_date(a.get("period"), ctx, f"{p}.period"),
                field=p,
            )
        )
    return tuple(out)


def _reference(ref: Any, ctx: _Ctx, path: str) -> str:
    if not isinstance(ref, dict):
        raise ctx.fail(path, "expected a Reference object")
    if isinstance(ref.get("reference"), str) and ref["reference"]:
        return str(ref["reference"])
    ident = ref.get("identifier")
    if isinstance(ident, dict) and isinstance(ident.get("value"), str):
        if ident.get("system") in ODS_SYSTEMS:
            return f"ods:{ident['value']}"
        if ident.get("system") == NHS_NUMBER_SYSTEM:
            return f"nhs:{ident['value']}"
    raise ctx.fail(path, "a Reference needs `reference` or an NHS/ODS `identifier`")


def _relationship(value: Any, ctx: _Ctx) -> str:
    if isinstance(value, list) and value and isinstance(value[0], dict):
        first = value[0]
        if isinstance(first.get("text"), str):
            return str(first["text"])
        coding = first.get("coding")
        if isinstance(coding, list) and coding and isinstance(coding[0], dict):
            return str(coding[0].get("display") or coding[0].get("code") or "")
    return ""
