"""Letter checks: a mailable postcode, the address and addressee on file."""

from __future__ import annotations

import re
from typing import Any

from sendguard.core.checks.base import Params, register
from sendguard.core.context import LetterContext
from sendguard.core.directory import Kind
from sendguard.core.models import Channel, Finding, Severity
from sendguard.core.normalise.postal import (
    PSEUDO_POSTCODE,
    NormalAddress,
    fix_postcode,
    normalise_address,
    parse_postcode,
    postcode_slip,
    same_place,
)

__all__: list[str] = []

LETTER = Channel.LETTER


class NoParams(Params):
    pass


@register(
    "letter.postcode",
    LETTER,
    NoParams,
    ("letter.postcode_missing", "letter.postcode_invalid", "letter.pseudo_postcode"),
)
def postcode(ctx: LetterContext, p: NoParams, state: Any) -> list[Finding]:
    """The address ends in a valid UK postcode that Royal Mail can deliver to."""
    pc = ctx.address.postcode
    if pc is None:
        lines = [x.strip() for x in re.split(r"[\n,]", ctx.send.address) if x.strip()]
        last = lines[-1] if lines else ""
        fixed = fix_postcode(last)
        if fixed and parse_postcode(fixed):
            return [
                Finding(
                    code="letter.postcode_invalid",
                    recipient=ctx.label,
                    message=f"{last!r} is not a valid postcode",
                    suggestion=fixed,
                )
            ]
        return [
            Finding(
                code="letter.postcode_missing",
                recipient=ctx.label,
                message="the address has no valid UK postcode",
            )
        ]
    if pc.startswith(PSEUDO_POSTCODE):
        return [
            Finding(
                code="letter.pseudo_postcode",
                recipient=ctx.label,
                message=f"{pc} is an NHS pseudo-postcode (no fixed abode, abroad or not "
                "known), never a mailable address",
            )
        ]
    return []


@register("letter.addressee", LETTER, NoParams, ("letter.addressee_unknown",))
def addressee(ctx: LetterContext, p: NoParams, state: Any) -> list[Finding]:
    """The addressee is neither the patient, a linked contact, nor the intended contact."""
    if not ctx.patients and not ctx.intended:
        return []
    if ctx.addressed:
        return []
    meant = ctx.intended[0] if ctx.intended else ctx.patients[0]
    e = ctx.entry(meant)
    name = e.org_name if e.kind is Kind.ORGANIZATION else " ".join((*e.prefix, e.person_name))
    return [
        Finding(
            code="letter.addressee_unknown",
            recipient=ctx.label,
            message=f"{ctx.send.addressee!r} is neither the patient nor one of their contacts",
            suggestion=name.strip() or None,
        )
    ]


def _targets(ctx: LetterContext) -> list[int]:
    """Whose address the letter should go to."""
    if ctx.intended:
        return sorted(ctx.intended_family)
    named = ctx.addressed
    if named:
        out: set[int] = set()
        for i in named:
            out |= ctx.directory.family(i)
        return sorted(out)
    return list(ctx.patients)


@register(
    "letter.address",
    LETTER,
    NoParams,
    (
        "letter.address_mismatch",
        "letter.previous_address",
        "letter.other_patient_address",
        "letter.postcode_typo",
        "letter.address_not_on_file",
    ),
)
def address(ctx: LetterContext, p: NoParams, state: Any) -> list[Finding]:
    """The address is the addressee's current address on file."""
    sent = ctx.address
    if sent.postcode is None or sent.postcode.startswith(PSEUDO_POSTCODE):
        return []  # letter.postcode reports it
    targets = _targets(ctx)
    if not targets:
        return []
    current: list[tuple[str, NormalAddress]] = []
    previous: list[str] = []  # normalised only if no current address matches
    for i in targets:
        for a in ctx.entry(i).addresses:
            if a.current:
                current.append((a.text, normalise_address(a.text)))
            else:
                previous.append(a.text)
    label = ctx.label
    if not current and not previous:
        return [
            Finding(
                code="letter.address_not_on_file",
                recipient=label,
                severity=Severity.MEDIUM,
                message="there is no address on file to confirm this one against",
            )
        ]
    if any(same_place(sent, f) for _, f in current):
        return []
    suggestion = current[0][0] if current else None
    if any(same_place(sent, normalise_address(text)) for text in previous):
        return [
            Finding(
                code="letter.previous_address",
                recipient=label,
                message="this is a previous address; the addressee has moved",
                suggestion=suggestion,
            )
        ]
    slip = next((text for text, f in current if postcode_slip(sent, f)), None)
    if slip:
        return [
            Finding(
                code="letter.postcode_typo",
                recipient=label,
                message=f"the postcode {sent.postcode} is one character off the address on file",
                suggestion=slip,
            )
        ]
    others = _others_at(ctx, sent, set(targets))
    if others:
        return [
            Finding(
                code="letter.other_patient_address",
                recipient=label,
                message=f"this is the address of {ctx.entry(others[0]).label}",
                suggestion=suggestion,
            )
        ]
    return [
        Finding(
            code="letter.address_mismatch",
            recipient=label,
            message="the address is not the one on file for the addressee",
            suggestion=suggestion,
        )
    ]


def _others_at(ctx: LetterContext, sent: NormalAddress, exclude: set[int]) -> list[int]:
    """Private entries, not among `exclude` or linked, living at `sent`."""
    out = []
    d = ctx.directory
    for i in d.by_place(sent.key):
        if i in exclude or i in ctx.linked or d.is_professional(i):
            continue
        if any(
            a.current and same_place(sent, normalise_address(a.text)) for a in d.entry(i).addresses
        ):
            out.append(i)
    return out
