"""Email checks: one concern each, findings only."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from typing import Any

from pydantic import Field
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from sendguard.core.checks.base import Params, register
from sendguard.core.checks.domains import DomainTable
from sendguard.core.checks.providers import REAL_DOMAINS, TYPO_TARGETS
from sendguard.core.context import EmailContext, RecipientInfo
from sendguard.core.directory import Directory, Entry, Kind, NearEmail
from sendguard.core.models import Channel, Finding, Severity
from sendguard.core.normalise.email import split_address
from sendguard.core.normalise.names import display_key, name_key, name_matches, name_tokens

__all__: list[str] = []

EMAIL = Channel.EMAIL


class NoParams(Params):
    pass


@register("email.message", EMAIL, NoParams, ("email.unparseable",))
def message_problems(ctx: EmailContext, p: NoParams, state: Any) -> list[Finding]:
    """A message that could not be parsed is held, never passed unchecked."""
    if not ctx.send.problems:
        return []
    return [
        Finding(
            code="email.unparseable",
            message="the message could not be read in full ("
            + "; ".join(ctx.send.problems[:3])
            + "), so it was not fully checked",
        )
    ]


class DomainParams(Params):
    providers: tuple[str, ...] = TYPO_TARGETS
    real_domains: tuple[str, ...] = REAL_DOMAINS
    extra_known_domains: tuple[str, ...] = ()
    min_support: int = 5


def _domain_table(directory: Directory, p: DomainParams) -> DomainTable:
    return DomainTable.for_directory(
        directory,
        providers=p.providers,
        real_domains=(*p.real_domains, *p.extra_known_domains),
        min_support=p.min_support,
    )


@register("email.syntax", EMAIL, DomainParams, ("email.invalid",), prepare=_domain_table)
def syntax(ctx: EmailContext, p: DomainParams, table: DomainTable) -> list[Finding]:
    """Recipients that are not valid email addresses (email-validator, no DNS)."""
    out = []
    for r in ctx.recipients:
        if r.address is not None:
            continue
        suggestion = None
        local, at, domain = r.raw.strip().rpartition("@")
        if at and local:
            fixed = table.suggest(domain)
            if fixed:
                suggestion = f"{local}@{fixed}"
        out.append(
            Finding(
                code="email.invalid",
                recipient=r.label,
                suggestion=suggestion,
                message=f"{r.raw!r} is not a valid email address: {r.error}",
            )
        )
    return out


@register("email.domain_typo", EMAIL, DomainParams, ("email.domain_typo",), prepare=_domain_table)
def domain_typo(ctx: EmailContext, p: DomainParams, table: DomainTable) -> list[Finding]:
    """The domain is unknown and a slip or two from a common or directory domain."""
    out = []
    for r in ctx.recipients:
        if r.address is None or r.owners:
            continue
        fixed = table.suggest(r.address.domain)
        if fixed is None:
            continue
        meant = f"{r.address.local}@{fixed}"
        owners = ctx.directory.by_email(meant)
        strong = bool(set(owners) & ctx.linked) or any(
            ctx.directory.is_professional(i) for i in owners
        )
        out.append(
            Finding(
                code="email.domain_typo",
                recipient=r.label,
                severity=Severity.HIGH if strong else Severity.MEDIUM,
                message=f"the domain {r.address.domain} looks like a typing slip for {fixed}",
                suggestion=meant,
            )
        )
    return out


class NearParams(Params):
    max_edits: int = Field(default=2, ge=1, le=2)
    """Edits (adjacent transposition counts as one) from a known address: 1 or 2."""
    min_local_length: int = 3
    """Shorter local parts are too close to everything to judge."""


def _near_in(
    local: str, domain: str, addresses: Sequence[str], max_edits: int
) -> tuple[str, int] | None:
    """Closest of `addresses` to local@domain within max_edits (any domain);
    of equally close ones, the first. One C loop: a sender's history can
    hold hundreds of addresses."""
    full = f"{local}@{domain}"
    hits = process.extract(full, addresses, scorer=OSA.distance, score_cutoff=max_edits, limit=None)
    return next(((a, int(d)) for a, d, _ in hits if a != full), None)


_TRAILING_NUMBER = re.compile(r"\d+$")


def _namesake(a: str, b: str) -> bool:
    """Local parts that differ only in a trailing number ("jane.smith1" and
    "jane.smith", "j.smith42" and "j.smith43"): how NHSmail and webmail tell
    namesakes apart, so distinct people rather than a keying slip."""
    return a != b and _TRAILING_NUMBER.sub("", a) == _TRAILING_NUMBER.sub("", b)


@register("email.near_known", EMAIL, NearParams, ("email.near_known",))
def near_known(ctx: EmailContext, p: NearParams, state: Any) -> list[Finding]:
    """An unknown address a slip or two from a known one.

    Strong evidence (severity high): the known address belongs to someone
    linked to this send, is one the sender has written to before, or is a
    professional's (see `_professional_strength`). Weak evidence (severity
    low): a near miss to an unrelated private address, which a dense
    directory makes common.
    """
    out = []
    d = ctx.directory
    linked_addrs: list[str] | None = None
    for r in ctx.recipients:
        a = r.address
        if (
            a is None
            or r.owners
            or a.address in ctx.send.history
            or len(a.local) < p.min_local_length
        ):
            continue
        if linked_addrs is None:
            linked_addrs = [a for i in sorted(ctx.linked) for a in d.emails_of(i)]
        hit = _near_in(a.local, a.domain, linked_addrs, p.max_edits)
        whose = "someone this message concerns"
        if hit is None and ctx.send.history:
            hit = _near_in(a.local, a.domain, sorted(ctx.send.history), p.max_edits)
            whose = "an address the sender has written to before"
        severity = Severity.HIGH
        if hit is None:
            near = d.near_emails(a.address, max_edits=p.max_edits)
            pro = [n for n in near if any(d.is_professional(i) for i in n.entries)]
            if pro:
                owner = next(i for i in pro[0].entries if d.is_professional(i))
                hit, whose = (pro[0].address, pro[0].distance), d.entry(owner).label
                severity = _professional_strength(ctx, r.display_name, a.local, pro[0])
            elif near and near[0].distance <= 1:
                hit, whose = (near[0].address, near[0].distance), "an unrelated directory entry"
                severity = Severity.LOW
        if hit is None:
            continue
        out.append(
            Finding(
                code="email.near_known",
                recipient=r.label,
                severity=severity,
                message=f"{a.address} is not in the directory but is {hit[1]} edit(s) from the "
                f"address of {whose}",
                suggestion=hit[0],
            )
        )
    return out


def _professional_strength(
    ctx: EmailContext, display_name: str, local: str, near: NearEmail
) -> Severity:
    """A near miss to a professional's address is strong evidence, unless
    the two addresses are namesakes, or the display name fits the address as
    typed and is not the near address's owner (a colleague a few letters
    away: linda.shah and tina.shah)."""
    other = split_address(near.address)[0]
    if _namesake(local, other) or _other_name(local, other):
        return Severity.LOW
    if _someone_else(ctx, local, other, near.entries):
        return Severity.LOW
    if display_name and any(_named_by(display_name, ctx.entry(i)) for i in near.entries):
        return Severity.HIGH
    return Severity.LOW if _fits(display_name, local) else Severity.HIGH


_LOCAL_WORDS = re.compile(r"[^\W\d_]+")
_SEPARATORS = re.compile(r"[._-]")


def _other_name(a: str, b: str) -> bool:
    """Local parts whose one differing word is two edits from the other's
    (sarah.murray / sarah.murphy, katherine.gray / katherine.may): a
    similar-looking different name. Keying slips are one edit, or spread
    over the address (alcie.jnoes)."""
    ta, tb = _SEPARATORS.split(a), _SEPARATORS.split(b)
    if len(ta) != len(tb):
        return False
    diff = [(x, y) for x, y in zip(ta, tb, strict=True) if x != y]
    if len(diff) != 1:
        return False
    x, y = diff[0]
    if min(len(x), len(y)) < 3 or not x.isalpha() or not y.isalpha():
        return False
    return OSA.distance(x, y) == 2


def _someone_else(ctx: EmailContext, local: str, other: str, owners: Sequence[int]) -> bool:
    """Whether the address as typed spells the full name of another person in
    the directory ("emma.robinson" beside gemma.robinson@, "christine.doyle"
    beside christine.boyle@) when the known address's own name does not.
    A keying slip seldom lands on a real name; a new colleague's address
    often sits one letter from an existing one. Only name.name local parts
    count: initials and digits say too little."""
    words = _SEPARATORS.split(local)
    if len(words) != 2 or not all(len(w) >= 2 and w.isalpha() for w in words):
        return False
    typed = f"{words[0]} {words[1]}"
    if display_key(other.replace(".", " ")) == typed:
        return False
    d = ctx.directory
    return any(
        i not in owners and name_key(d.entry(i).given, d.entry(i).family) == typed
        for i in d.by_name(typed)
    )


def _fits(display_name: str, local: str) -> bool:
    """Whether a display name is a person's name that the local part spells
    ("Linda Shah" for linda.shah, "L Shah" for lshah): then the sender meant
    that person, not a namesake a few letters away."""
    words = name_tokens(display_name)
    if len(words) < 2:
        return False
    parts = _LOCAL_WORDS.findall(local.lower())
    joined = "".join(parts)
    family = words[-1]
    if family not in parts and not joined.endswith(family):
        return False
    first = words[0]
    return first in parts or joined.startswith((first, first[0] + family))


@register("email.previous_address", EMAIL, NoParams, ("email.previous_address",))
def previous_address(ctx: EmailContext, p: NoParams, state: Any) -> list[Finding]:
    """The address is on file only as no longer in use."""
    out = []
    for r in ctx.recipients:
        if r.address is None or not r.owners:
            continue
        entries = ctx.directory.entries(r.owners)
        if any(e.address == r.address.address and e.current for x in entries for e in x.emails):
            continue
        current = next((c for x in entries for c in x.current_emails()), None)
        out.append(
            Finding(
                code="email.previous_address",
                recipient=r.label,
                message=f"{r.address.address} is on file only as an address no longer in use",
                suggestion=current,
            )
        )
    return out


@register(
    "email.other_patient", EMAIL, NoParams, ("email.other_patient", "email.other_patient_contact")
)
def other_patient(ctx: EmailContext, p: NoParams, state: Any) -> list[Finding]:
    """The recipient is another patient, or another patient's contact, than the
    patient(s) the message concerns."""
    if not ctx.patients:
        return []
    out = []
    for r in ctx.recipients:
        private = ctx.private_owners(r)
        if not private or set(r.owners) & ctx.linked:
            continue
        e = ctx.entry(private[0])
        code = "email.other_patient" if e.kind is Kind.PATIENT else "email.other_patient_contact"
        out.append(
            Finding(
                code=code,
                recipient=r.label,
                message=f"{r.label} belongs to {e.label}, not to the patient this "
                "message concerns or their contacts",
                suggestion=_linked_address(ctx, r),
            )
        )
    return out


def _linked_address(ctx: EmailContext, r: RecipientInfo) -> str | None:
    """The address the message was most likely meant for: the patient's own,
    else their private contacts', closest to the recipient first."""
    for group in (
        ctx.patients,
        sorted(i for i in ctx.linked if not ctx.directory.is_professional(i)),
    ):
        candidates = [a for i in group for a in ctx.entry(i).current_emails()]
        if candidates:
            return max(candidates, key=lambda a: fuzz.ratio(a, r.label))
    return None


@register("email.nhs_number", EMAIL, NoParams, ("email.nhs_number_other_patient",))
def nhs_number(ctx: EmailContext, p: NoParams, state: Any) -> list[Finding]:
    """The content carries the NHS number of a patient other than the
    (private) recipient's own patient."""
    if not ctx.content_patients:
        return []
    out = []
    for r in ctx.recipients:
        private = ctx.private_owners(r)
        if not private:
            continue
        own: set[int] = set()
        for i in private:
            own |= ctx.directory.patients_of(i)
        others = [c for c in ctx.content_patients if c not in own]
        if others:
            out.append(
                Finding(
                    code="email.nhs_number_other_patient",
                    recipient=r.label,
                    message=f"the message carries the NHS number of {len(others)} patient(s) other "
                    f"than {r.label}'s own",
                )
            )
    return out


class VisibleParams(Params):
    min_patients: int = 2
    """Private parties of this many different patients in To/Cc hold the message."""


@register("email.patients_visible", EMAIL, VisibleParams, ("email.patients_visible",))
def patients_visible(ctx: EmailContext, p: VisibleParams, state: Any) -> list[Finding]:
    """Several patients (or contacts of different patients) can see each other
    in To/Cc; they belong in Bcc."""
    groups: dict[frozenset[int], list[str]] = {}
    for r in ctx.recipients:
        if not r.visible:
            continue
        own: set[int] = set()
        for i in ctx.private_owners(r):
            own |= ctx.directory.patients_of(i)
        if own:
            groups.setdefault(frozenset(own), []).append(r.label)
    distinct: set[int] = set()
    for key in groups:
        distinct |= key
    if len(groups) < p.min_patients or len(distinct) < p.min_patients:
        return []
    labels = [label for ls in groups.values() for label in ls]
    return [
        Finding(
            code="email.patients_visible",
            recipient=label,
            message=f"{len(labels)} recipients in To/Cc belong to {len(distinct)} different "
            "patients and would see each other's addresses",
            suggestion="move the patients' addresses to Bcc",
        )
        for label in labels
    ]


class SecureParams(Params):
    secure_domains: tuple[str, ...] = ("nhs.net",)
    """Domains (glob patterns allowed, e.g. *.nhs.uk) that meet the secure email standard."""
    secure_tags: tuple[str, ...] = ("[secure]",)
    """A subject carrying one of these tags is encrypted by the mail system."""


@register("email.insecure_domain", EMAIL, SecureParams, ("email.insecure_domain",))
def insecure_domain(ctx: EmailContext, p: SecureParams, state: Any) -> list[Finding]:
    """Patient data goes to a domain outside the secure list, untagged."""
    if not ctx.patients:
        return []
    subject = ctx.send.subject.lower()
    if ctx.send.secure_tagged or any(t.lower() in subject for t in p.secure_tags):
        return []
    out = []
    for r in ctx.recipients:
        if r.address is None:
            continue
        dom = r.address.domain
        if any(fnmatch.fnmatchcase(dom, pat) for pat in p.secure_domains):
            continue
        out.append(
            Finding(
                code="email.insecure_domain",
                recipient=r.label,
                severity=Severity.MEDIUM,
                message=f"patient data to {dom}, which is not on the secure list",
                suggestion=f"add {p.secure_tags[0]} to the subject" if p.secure_tags else None,
            )
        )
    return out


def _named_by(text: str, e: Entry) -> bool:
    if e.kind is Kind.ORGANIZATION:
        return bool(e.org_name) and fuzz.token_set_ratio(text.lower(), e.org_name.lower()) >= 90
    return name_matches(text, e.given, e.family)


@register("email.display_name", EMAIL, NoParams, ("email.display_name_mismatch",))
def display_name(ctx: EmailContext, p: NoParams, state: Any) -> list[Finding]:
    """The display name belongs to a different directory entry than the address."""
    out = []
    d = ctx.directory
    for r in ctx.recipients:
        if not r.display_name or not r.owners or r.address is None:
            continue
        owners = d.entries(r.owners)
        if any(_named_by(r.display_name, e) for e in owners):
            continue
        key = display_key(r.display_name)
        named = (
            [e for e in d.entries(d.by_name(key)) if _named_by(r.display_name, e)] if key else []
        )
        if not named:
            continue  # a name nobody in the directory has: an alias, not a mix-up
        preferred = [e for e in named if e.index in ctx.linked] or named
        suggestion = next((a for e in preferred for a in e.current_emails()), None)
        out.append(
            Finding(
                code="email.display_name_mismatch",
                recipient=r.label,
                message=f"the display name {r.display_name!r} is a different directory entry "
                f"than the owner of {r.address.address}",
                suggestion=suggestion,
            )
        )
    return out
