"""Fax checks: a valid number, on file for the intended contact."""

from __future__ import annotations

from typing import Any

from rapidfuzz.distance import OSA

from sendguard.core.checks.base import Params, register
from sendguard.core.context import FaxContext
from sendguard.core.models import Channel, Finding, Severity
from sendguard.core.normalise.phone import PhoneKind, format_international

__all__ = ["one_slip"]

FAX = Channel.FAX


class NoParams(Params):
    pass


_KIND_CODES = {
    PhoneKind.PREMIUM_RATE: ("fax.premium_rate", "a premium-rate number"),
    PhoneKind.PERSONAL: ("fax.personal", "a personal (070) number that can be redirected anywhere"),
    PhoneKind.MOBILE: ("fax.mobile", "a mobile number, which is not a fax line"),
    PhoneKind.PAGER: ("fax.mobile", "a pager number, which is not a fax line"),
}


class NumberParams(Params):
    home_country_code: int = 44
    """Numbers outside this country code are reported as fax.international."""


@register(
    "fax.number",
    FAX,
    NumberParams,
    ("fax.invalid", "fax.premium_rate", "fax.personal", "fax.mobile", "fax.international"),
)
def number(ctx: FaxContext, p: NumberParams, state: Any) -> list[Finding]:
    """The number parses, is valid, and is a kind of line a fax may go to."""
    parsed = ctx.parsed
    if isinstance(parsed, str):
        return [
            Finding(
                code="fax.invalid",
                recipient=ctx.label,
                message=f"{ctx.send.number!r} is not a phone number: {parsed}",
            )
        ]
    if not parsed.valid:
        return [
            Finding(
                code="fax.invalid",
                recipient=ctx.label,
                message=f"{ctx.send.number!r} is not a valid number (too short, too long "
                "or an unused range)",
            )
        ]
    out = []
    kind = _KIND_CODES.get(parsed.kind)
    if kind:
        out.append(
            Finding(code=kind[0], recipient=ctx.label, message=f"{parsed.e164} is {kind[1]}")
        )
    if parsed.country_code != p.home_country_code:
        out.append(
            Finding(
                code="fax.international",
                recipient=ctx.label,
                severity=Severity.MEDIUM,
                message=f"{parsed.e164} is outside the home country",
            )
        )
    return out


def one_slip(key: int, other: int, country_code: int) -> bool:
    """Whether `other` is one keying slip from `key` in the national part:
    one digit changed, two adjacent digits swapped, one dropped or added,
    the national part never starting with 0."""
    cc = str(country_code)
    a, b = str(key), str(other)
    if not (a.startswith(cc) and b.startswith(cc)):
        return False
    mine, theirs = a[len(cc) :], b[len(cc) :]
    if len(mine) < 2 or not theirs or theirs[0] == "0" or mine == theirs:
        return False
    return OSA.distance(mine, theirs, score_cutoff=1) == 1


@register("fax.near_known", FAX, NoParams, ("fax.near_known",))
def near_known(ctx: FaxContext, p: NoParams, state: Any) -> list[Finding]:
    """An unknown number one digit off (or two digits swapped) from a known fax number."""
    n = ctx.number
    if n is None or not n.valid or ctx.owners:
        return []
    d = ctx.directory
    near: list[tuple[int, int]] = []  # (entry, number)
    for i in d.fax_numbers_near(n.key):
        near.extend(
            (i, x.key)
            for x in d.numbers_of(i)
            if x.current and x.system == "fax" and one_slip(n.key, x.key, n.country_code)
        )
    if not near:
        return []
    own = set(ctx.intended)
    preferred = ctx.intended_family or ctx.linked
    strong = [x for x in near if x[0] in preferred]
    i, k = min(strong or near, key=lambda x: (x[0] not in own, x[0] not in preferred, x))
    return [
        Finding(
            code="fax.near_known",
            recipient=ctx.label,
            severity=Severity.HIGH if strong else Severity.MEDIUM,
            message=f"{n.e164} is not on file but is one keying slip from the fax number of "
            f"{d.entry(i).label}",
            suggestion=format_international(k),
        )
    ]


@register("fax.other_contact", FAX, NoParams, ("fax.other_contact",))
def other_contact(ctx: FaxContext, p: NoParams, state: Any) -> list[Finding]:
    """The number belongs to another contact than the intended one (or, with
    no intended contact, to another patient's side than the patient's)."""
    if not ctx.owners:
        return []
    d = ctx.directory
    owners = set(ctx.owners)
    if ctx.intended_family:
        if owners & ctx.intended_family:
            return []
    elif ctx.patients:
        if owners & ctx.linked or all(d.is_professional(i) for i in owners):
            return []
    else:
        return []
    whose = ", ".join(d.entry(i).label for i in sorted(owners)[:3])
    return [
        Finding(
            code="fax.other_contact",
            recipient=ctx.label,
            message=f"{ctx.label} is on file for {whose}, not for the intended contact",
            suggestion=_intended_fax(ctx),
        )
    ]


def _intended_fax(ctx: FaxContext) -> str | None:
    """The intended contact's own fax, else one of those acting for it."""
    for group in (ctx.intended, sorted(ctx.intended_family)):
        for i in group:
            faxes = ctx.directory.entry(i).current_numbers("fax")
            if faxes:
                return format_international(faxes[0])
    return None


@register(
    "fax.not_on_file",
    FAX,
    NoParams,
    ("fax.not_on_file", "fax.previous_number", "fax.voice_number", "fax.unknown_intended"),
)
def not_on_file(ctx: FaxContext, p: NoParams, state: Any) -> list[Finding]:
    """The number is not a current fax number of the intended contact (or, with
    no intended contact, not in the directory at all): confirm by phone, as
    safe-haven procedure asks."""
    n = ctx.number
    if n is None or not n.valid:
        return []
    d = ctx.directory
    if ctx.intended_ref and not ctx.intended:
        return [
            Finding(
                code="fax.unknown_intended",
                recipient=ctx.label,
                message=f"the intended contact {ctx.intended_ref!r} is not in the directory, "
                "so the number cannot be confirmed",
            )
        ]
    family = ctx.intended_family
    if not family:
        if ctx.owners:
            return []
        return [
            Finding(
                code="fax.not_on_file",
                recipient=ctx.label,
                severity=Severity.MEDIUM,
                message=f"{n.e164} is not in the directory; confirm it by phone before sending",
            )
        ]
    # owners are every entry holding the number, current or not: no need to
    # open each of a large organisation's roles to find it
    mine = [
        x
        for i in sorted(family.intersection(ctx.owners))
        for x in d.numbers_of(i)
        if x.key == n.key
    ]
    if any(x.current and x.system == "fax" for x in mine):
        return []
    if any(x.system == "fax" for x in mine):
        return [
            Finding(
                code="fax.previous_number",
                recipient=ctx.label,
                message=f"{n.e164} is a fax number the intended contact no longer uses",
                suggestion=_intended_fax(ctx),
            )
        ]
    if mine:
        return [
            Finding(
                code="fax.voice_number",
                recipient=ctx.label,
                message=f"{n.e164} is the intended contact's phone number, not their fax",
                suggestion=_intended_fax(ctx),
            )
        ]
    label = d.entry(ctx.intended[0]).label
    return [
        Finding(
            code="fax.not_on_file",
            recipient=ctx.label,
            severity=Severity.MEDIUM,
            message=f"{n.e164} is not on file for {label}; confirm it by phone before sending",
            suggestion=_intended_fax(ctx),
        )
    ]
