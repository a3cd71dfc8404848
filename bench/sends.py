"""Labelled sends over a generated world: wrong recipients, correct ones, insecure domains.

Every send is a call of the public Python API (`Guard.check_email`,
`check_fax`, `check_letter`) with its arguments, a label (`wrong`,
`correct` or `insecure`), its kind and, where a careful checker could know
it, the suggestion expected ("did you mean ...?").

The sends are built to be hard in the ways real mistakes are: typos are
keyboard slips (neighbouring keys, transpositions, doubled or dropped
letters); the wrong patient is often a namesake; fresh genuine addresses
come from the same names, styles and providers as the directory, so many
sit one edit from somebody on file; correct letters are written with the
variations people use (case, line breaks, Rd/Road, postcode spacing,
"SMITH, Jane").
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
from phonenumbers import PhoneNumberType
from rapidfuzz.distance import OSA

from bench.generate import (
    TOWNS,
    Addr,
    Org,
    Patient,
    Phone,
    World,
    format_local,
    local_part,
    write_phone,
)
from sendguard import Guard, Verdict
from sendguard.core.checks.providers import REAL_DOMAINS, TYPO_TARGETS

__all__ = [
    "EXTRA_KINDS",
    "KINDS",
    "LabelledSend",
    "make_sends",
    "norm_address",
    "norm_email",
    "norm_fax",
    "norm_name",
    "suggestion_matches",
]


@dataclass
class LabelledSend:
    kind: str
    label: str  # "wrong" | "correct" | "insecure"
    channel: str  # "email" | "fax" | "letter"
    args: dict[str, Any]
    expected: str | None = None  # the suggestion a careful checker would make
    expect_type: str | None = None  # "email" | "fax" | "address" | "name"
    note: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def run(self, guard: Guard) -> Verdict:
        if self.channel == "email":
            return guard.check_email(**self.args)
        if self.channel == "fax":
            return guard.check_fax(**self.args)
        return guard.check_letter(**self.args)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "label": self.label,
            "channel": self.channel,
            "args": self.args,
            "expected": self.expected,
            "note": self.note,
        }


class Skip(Exception):
    """This draw cannot make a send of the kind; draw again."""


# -- normal forms for comparing suggestions --------------------------------------------


def norm_email(text: str) -> str:
    m = re.search(r"[^\s<>\"']+@[^\s<>\"']+", text)
    return (m.group(0) if m else text).strip().lower().rstrip(".")


def norm_fax(text: str) -> str:
    try:
        n = phonenumbers.parse(text, "GB")
    except phonenumbers.NumberParseException:
        return re.sub(r"\D", "", text)
    return f"+{n.country_code}{n.national_number}"


_PC = re.compile(r"\b([A-Z]{1,2}[0-9][0-9A-Z]?)\s*([0-9][A-Z]{2})\b")
_ABBR = {
    "road": "rd",
    "street": "st",
    "avenue": "ave",
    "lane": "ln",
    "drive": "dr",
    "close": "cl",
    "crescent": "cres",
    "gardens": "gdns",
    "terrace": "ter",
    "terr": "ter",
    "court": "ct",
    "place": "pl",
}


def norm_address(text: str) -> tuple[str, tuple[str, ...], frozenset[str]]:
    """(postcode, house/flat numbers, street words) of a written address."""
    up = text.upper()
    pcs = _PC.findall(up)
    pc = f"{pcs[-1][0]} {pcs[-1][1]}" if pcs else ""
    if pcs:
        up = _PC.sub(" ", up)
    toks = re.findall(r"[a-z0-9]+", up.lower().replace("'", ""))
    nums = tuple(sorted(t for t in toks if any(c.isdigit() for c in t)))
    words = frozenset(_ABBR.get(t, t) for t in toks if not any(c.isdigit() for c in t))
    return pc, nums, words


_TITLES = {"mr", "mrs", "ms", "miss", "dr", "master", "mx", "prof"}


def norm_name(text: str) -> tuple[str, ...]:
    if "," in text:
        fam, _, giv = text.partition(",")
        text = f"{giv} {fam}"
    return tuple(
        t for t in re.findall(r"[a-z]+", text.lower().replace("'", "")) if t not in _TITLES
    )


def suggestion_matches(kind: str | None, suggestion: str | None, expected: str | None) -> bool:
    """Whether a finding's suggestion is the expected one, whatever its formatting."""
    if not suggestion or not expected or kind is None:
        return False
    if kind == "email":
        return norm_email(suggestion) == norm_email(expected)
    if kind == "fax":
        return norm_fax(suggestion) == norm_fax(expected)
    if kind == "address":
        spc, snums, swords = norm_address(suggestion)
        epc, enums, ewords = norm_address(expected)
        if not spc or spc != epc:
            return False
        if not snums and not swords - {"", *epc.lower().split()}:
            return True  # only the postcode was suggested, and it is the right one
        return snums == enums and len(swords & ewords) >= min(1, len(ewords))
    if kind == "name":
        s, e = norm_name(suggestion), norm_name(expected)
        return bool(e) and e[-1] in s and any(t in s or t[0] in s for t in e[:-1])
    return False


# -- slips -----------------------------------------------------------------------------

_ROWS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm")
_NEAR: dict[str, str] = {}
for _r, _row in enumerate(_ROWS):
    for _c, _ch in enumerate(_row):
        near = [_row[j] for j in (_c - 1, _c + 1) if 0 <= j < len(_row)]
        if _r > 0:
            near += [_ROWS[_r - 1][j] for j in (_c, _c + 1) if j < len(_ROWS[_r - 1])]
        if _r + 1 < len(_ROWS):
            near += [_ROWS[_r + 1][j] for j in (_c - 1, _c) if 0 <= j < len(_ROWS[_r + 1])]
        _NEAR[_ch] = "".join(near)
_KEYPAD = {
    "1": "24",
    "2": "135",
    "3": "26",
    "4": "157",
    "5": "2468",
    "6": "359",
    "7": "480",
    "8": "5790",
    "9": "68",
    "0": "8",
}
_LOCAL_OK = re.compile(r"[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?")


def _one_slip(s: str, rng: random.Random, alphabet_near: dict[str, str] = _NEAR) -> str:
    """One keying slip: neighbouring key, adjacent swap, dropped or doubled letter."""
    if len(s) < 2:
        raise Skip
    op = rng.random()
    i = rng.randrange(len(s))
    if op < 0.35:
        near = alphabet_near.get(s[i])
        if not near:
            raise Skip
        return s[:i] + rng.choice(near) + s[i + 1 :]
    if op < 0.6:
        i = rng.randrange(len(s) - 1)
        if s[i] == s[i + 1]:
            raise Skip
        return s[:i] + s[i + 1] + s[i] + s[i + 2 :]
    if op < 0.8:
        return s[:i] + s[i + 1 :]
    if op < 0.92:
        return s[:i] + s[i] + s[i:]
    near = alphabet_near.get(s[i])
    if not near:
        raise Skip
    return s[:i] + rng.choice(near) + s[i:]


def local_slip(local: str, rng: random.Random, edits: int) -> str:
    out = local
    for _ in range(edits):
        out = _one_slip(out, rng)
    if not _LOCAL_OK.fullmatch(out) or ".." in out or out == local:
        raise Skip
    d = OSA.distance(out, local)
    if not 1 <= d <= edits:
        raise Skip
    return out


_SUFFIX_SLIPS = {
    "com": ("con", "cmo", "co", "comm", "vom", "cpm", "xom", "ocm", "coom"),
    "co.uk": (
        "co.ku",
        "co.uj",
        "co.k",
        "co.um",
        "cp.uk",
        "co.ukk",
        "co.yk",
        "c.uk",
        "co.uk.",
        "couk",
    ),
    "net": ("nte", "ent", "met", "bet", "ner", "nett", "ne", "nrt"),
}
_SLIP_BLOCK = frozenset((*REAL_DOMAINS, *TYPO_TARGETS))


def domain_slip(domain: str, rng: random.Random) -> str:
    """A mistyped domain: a slip in the name ("gmial") or in the suffix ("con", "nte")."""
    labels = domain.split(".")
    if domain.endswith(".co.uk"):
        name, suffix = ".".join(labels[:-2]), "co.uk"
    else:
        name, suffix = ".".join(labels[:-1]), labels[-1]
    if rng.random() < 0.55 or suffix not in _SUFFIX_SLIPS:
        new_name = _one_slip(name, rng)
        if "." in new_name or not new_name or not new_name[0].isalnum():
            raise Skip
        typo = f"{new_name}.{suffix}"
    else:
        s = rng.choice(_SUFFIX_SLIPS[suffix])
        typo = f"{name}{s}" if s == "couk" else f"{name}.{s}"
    if typo == domain or typo in _SLIP_BLOCK or typo.rstrip(".") == domain:
        raise Skip
    return typo


# -- how people write names, addresses and recipients ----------------------------------


def _nhs_text(nhs: str, rng: random.Random) -> str:
    r = rng.random()
    if r < 0.5:
        return f"{nhs[:3]} {nhs[3:6]} {nhs[6:]}"
    if r < 0.85:
        return nhs
    return f"{nhs[:3]}-{nhs[3:6]}-{nhs[6:]}"


def patient_ref(p: Patient, rng: random.Random) -> str:
    r = rng.random()
    if r < 0.45:
        return p.nhs
    if r < 0.65:
        return f"{p.nhs[:3]} {p.nhs[3:6]} {p.nhs[6:]}"
    if r < 0.9:
        return f"Patient/{p.id}"
    return f"nhs:{p.nhs}"


def full_name(given: tuple[str, ...], family: str) -> str:
    return f"{given[0]} {family}"


def addressee_forms(
    given: tuple[str, ...], family: str, prefix: str, rng: random.Random, child: bool = False
) -> str:
    """How a letter names a person: "Mrs J. Smith", "Jane Smith", "SMITH, Jane", ..."""
    g = given[0]
    mid = given[1][0] if len(given) > 1 else ""
    title = prefix or ""
    if ("-" in family or "'" in family) and rng.random() < 0.5:
        # Smith-Jones written "Smith Jones", O'Brien written "OBrien" or "O Brien"
        family = family.replace("-", " ").replace("'", rng.choice(("", " ")))
    forms = [
        f"{g} {family}",
        f"{title} {g[0]}. {family}".strip(),
        f"{title} {g[0]} {family}".strip(),
        f"{family.upper()}, {g}",
        f"{title} {g} {family}".strip(),
        f"{g[0]} {family}",
        f"{g.upper()} {family.upper()}",
    ]
    if mid:
        forms += [f"{title} {g[0]} {mid} {family}".strip(), f"{g} {mid}. {family}"]
    if child:
        forms += [f"The parent or guardian of {g} {family}", f"Parents of {g} {family}"]
    return rng.choice(forms)


_STREET_ABBR = (
    ("Road", "Rd"),
    ("Street", "St"),
    ("Avenue", "Ave"),
    ("Drive", "Dr"),
    ("Close", "Cl"),
    ("Crescent", "Cres"),
    ("Gardens", "Gdns"),
    ("Terrace", "Terr"),
    ("Court", "Ct"),
    ("Place", "Pl"),
)


def write_address(a: Addr, rng: random.Random, *, harmless_variations: bool = True) -> str:
    """A postal address as typed into a letter, with the usual harmless variations."""
    lines = list(a.lines)
    city, pc = a.city, a.postcode
    if harmless_variations:
        if rng.random() < 0.35:
            for long, short in _STREET_ABBR:
                if f" {long}" in lines[-1]:
                    dot = "." if rng.random() < 0.2 else ""
                    lines[-1] = re.sub(rf"\b{long}\b", short + dot, lines[-1])
                    break
        if rng.random() < 0.06 and lines[-1][0].isdigit():
            num, _, rest = lines[-1].partition(" ")
            lines[-1] = f"{num}, {rest}"
        if len(lines) == 2 and lines[0].startswith("Flat "):
            r = rng.random()
            if r < 0.3:
                sep = ", " if "," in lines[0] else " "
                lines = [f"{lines[0]}{sep}{lines[1]}"]
            elif r < 0.4 and "," not in lines[0]:
                lines = [f"{lines[1]}, {lines[0]}"]  # "42 Kirkstall Road, Flat 3"
        r = rng.random()
        if r < 0.15:
            pc = pc.replace(" ", "")
        elif r < 0.2:
            pc = pc.replace(" ", "  ")
        tail = [city]
        if a.county and rng.random() < 0.12:
            tail.append(a.county)
        if rng.random() < 0.04:
            tail = []  # the town is not needed when the postcode is there
        parts = [*lines, *tail, pc]
        if rng.random() < 0.03:
            parts.append("United Kingdom")
        r = rng.random()
        if r < 0.5:
            text = "\n".join(parts)
        elif r < 0.85:
            text = ", ".join(parts)
        else:
            text = ",\n".join(parts)
        r = rng.random()
        if r < 0.15:
            text = text.upper()
        elif r < 0.2:
            text = text.lower()
        return text
    return "\n".join([*lines, city, pc])


def recipient(addr: str, name: str, rng: random.Random, header: str = "To") -> str | dict[str, str]:
    r = rng.random()
    if r < 0.35 or not name:
        return addr if header == "To" and rng.random() < 0.7 else f"{header}: {addr}"
    if r < 0.7:
        return f"{header}: {name} <{addr}>"
    if r < 0.8 and " " in name:
        g, _, f = name.rpartition(" ")
        return f'{header}: "{f}, {g}" <{addr}>'
    if r < 0.9:
        return {"address": addr, "name": name, "header": header.lower()}
    return f"{name} <{addr}>" if header == "To" else f"{header}: {name} <{addr}>"


_SUBJECTS = (
    "Your appointment",
    "Appointment confirmation",
    "Your test results",
    "Clinic letter",
    "Discharge summary",
    "Prescription update",
    "Referral update",
    "Letter from the practice",
    "Follow-up after your visit",
    "Medication review",
)
_DOCS = ("clinic_letter", "results", "discharge_summary", "referral", "letter", "scan_report")
_NON_PATIENT_SUBJECTS = (
    "Re: your enquiry",
    "Practice newsletter",
    "Volunteer rota",
    "Meeting on Thursday",
    "Re: Patient participation group",
    "Training session",
    "Room booking",
    "Invoice 2291",
)


def patient_content(
    p: Patient, rng: random.Random, secure: bool, other_nhs: str | None = None
) -> dict[str, Any]:
    """Subject, body and attachments of an email about patient p."""
    subject = rng.choice(_SUBJECTS)
    if secure:
        subject = f"{rng.choice(('[secure]', '[SECURE]', '[Secure]'))} {subject}"
    nhs = other_nhs or p.nhs
    body = f"Dear {p.given[0]},\n\nPlease find attached your letter.\n"
    attachments: list[str] = []
    r = rng.random()
    if other_nhs is not None:
        where = rng.random()
        if where < 0.4:
            attachments.append(f"{rng.choice(_DOCS)}_{nhs}.pdf")
        elif where < 0.8:
            body += f"\nNHS number: {_nhs_text(nhs, rng)}\n"
        else:
            subject += f" (NHS no. {_nhs_text(nhs, rng)})"
    elif r < 0.35:
        body += f"\nNHS number: {_nhs_text(nhs, rng)}\n"
    elif r < 0.6:
        attachments.append(f"{rng.choice(_DOCS)}_{nhs}.pdf")
    elif r < 0.8:
        attachments.append(f"{rng.choice(_DOCS)}.pdf")
    body += "\nKind regards,\nThe practice team\n"
    return {"subject": subject, "body": body, "attachments": attachments}


# -- picking people --------------------------------------------------------------------


def _age(w: World, p: Patient) -> int:
    from bench.generate import AS_OF

    return AS_OF.year - p.birth_year


def pick(
    w: World, rng: random.Random, pred: Callable[[Patient], bool], tries: int = 400
) -> Patient:
    for _ in range(tries):
        p = w.patients[rng.randrange(len(w.patients))]
        if pred(p):
            return p
    raise Skip


def linked_emails(w: World, p: Patient) -> set[str]:
    out = {p.email, p.old_email} | {c.email for c in p.contacts}
    return {e for e in out if e}


def _same_household(w: World, a: Patient, b: Patient) -> bool:
    return a.household == b.household


def _sender(w: World, p: Patient | None, rng: random.Random) -> str:
    if p is not None and p.gp_org >= 0:
        o = w.orgs[p.gp_org]
        return rng.choice((o.email, f"reception.{o.ods.lower()}@nhs.net"))
    return rng.choice(w.orgs).email


def _gp_org(w: World, p: Patient) -> Org:
    return w.orgs[p.gp_org]


# -- email: wrong ----------------------------------------------------------------------


def email_domain_typo(w: World, rng: random.Random) -> LabelledSend:
    if rng.random() < 0.75:
        p = pick(w, rng, lambda p: bool(p.email))
        addr = p.email
        assert addr
        name = full_name(p.given, p.family)
        ctx = patient_content(p, rng, secure=True)
        patient = patient_ref(p, rng) if rng.random() < 0.8 else None
        if patient is None:
            ctx["body"] += f"\nNHS number: {_nhs_text(p.nhs, rng)}\n"
        sender = _sender(w, p, rng)
    else:
        pr = rng.choice(w.practitioners)
        addr = pr.email
        name = f"{pr.prefix} {pr.given[0]} {pr.family}"
        p = pick(w, rng, lambda p: True)
        ctx = patient_content(p, rng, secure=False)
        ctx["body"] = ctx["body"].replace(f"Dear {p.given[0]}", f"Dear {pr.prefix} {pr.family}")
        patient = patient_ref(p, rng)
        sender = _sender(w, p, rng)
    local, _, domain = addr.partition("@")
    typo = f"{local}@{domain_slip(domain, rng)}"
    return LabelledSend(
        "email.domain_typo",
        "wrong",
        "email",
        {"recipients": [recipient(typo, name, rng)], "patient": patient, "sender": sender, **ctx},
        expected=addr,
        expect_type="email",
    )


def email_own_typo(w: World, rng: random.Random) -> LabelledSend:
    p = pick(w, rng, lambda p: bool(p.email))
    assert p.email
    local, _, domain = p.email.partition("@")
    edits = 1 if rng.random() < 0.7 else 2
    typo = f"{local_slip(local, rng, edits)}@{domain}"
    if typo in w.emails:
        raise Skip  # that is somebody else's address: another kind
    ctx = patient_content(p, rng, secure=True)
    patient = patient_ref(p, rng) if rng.random() < 0.85 else None
    if patient is None:
        ctx["attachments"] = [f"{rng.choice(_DOCS)}_{p.nhs}.pdf"]
    return LabelledSend(
        "email.own_typo",
        "wrong",
        "email",
        {
            "recipients": [recipient(typo, full_name(p.given, p.family), rng)],
            "patient": patient,
            "sender": _sender(w, p, rng),
            **ctx,
        },
        expected=p.email,
        expect_type="email",
        note=f"{edits} edit(s)",
    )


def email_other_patient(w: World, rng: random.Random) -> LabelledSend:
    p = pick(w, rng, lambda p: bool(p.email))
    r = rng.random()
    if r < 0.45:  # autocomplete picked a namesake
        cands = [j for j in w.by_name().get((p.given[0], p.family), []) if w.patients[j] is not p]
        how = "namesake"
    elif r < 0.65:
        cands = w.by_family().get(p.family, [])
        how = "same family name"
    else:
        cands = [rng.randrange(len(w.patients)) for _ in range(5)]
        how = "random"
    cands = [
        j
        for j in cands
        if w.patients[j].email
        and not _same_household(w, p, w.patients[j])
        and w.patients[j].email not in linked_emails(w, p)
    ]
    if not cands:
        raise Skip
    q = w.patients[rng.choice(cands)]
    assert q.email
    ctx = patient_content(p, rng, secure=True)
    name = full_name(q.given, q.family) if rng.random() < 0.6 else ""
    return LabelledSend(
        "email.other_patient",
        "wrong",
        "email",
        {
            "recipients": [recipient(q.email, name, rng)],
            "patient": patient_ref(p, rng),
            "sender": _sender(w, p, rng),
            **ctx,
        },
        expected=p.email,
        expect_type="email",
        note=how,
    )


def email_other_nok(w: World, rng: random.Random) -> LabelledSend:
    p = pick(w, rng, lambda p: bool(p.email))
    for _ in range(200):
        q = pick(w, rng, lambda q: any(c.email for c in q.contacts))
        c = rng.choice([c for c in q.contacts if c.email])
        if c.patient >= 0 and rng.random() < 0.6:
            continue  # prefer next of kin who are not patients themselves
        if _same_household(w, p, q) or c.email in linked_emails(w, p):
            continue
        break
    else:
        raise Skip
    assert c.email
    ctx = patient_content(p, rng, secure=True)
    name = full_name(c.given, c.family) if rng.random() < 0.5 else ""
    return LabelledSend(
        "email.other_patient_nok",
        "wrong",
        "email",
        {
            "recipients": [recipient(c.email, name, rng)],
            "patient": patient_ref(p, rng),
            "sender": _sender(w, p, rng),
            **ctx,
        },
        expected=p.email,
        expect_type="email",
        note=c.relationship,
    )


def email_nhs_number_other(w: World, rng: random.Random) -> LabelledSend:
    """The right recipient, the wrong patient's letter attached."""
    b = pick(w, rng, lambda p: bool(p.email))
    a = pick(w, rng, lambda a: a.household != b.household)
    ctx = patient_content(b, rng, secure=True, other_nhs=a.nhs)
    return LabelledSend(
        "email.nhs_number_other",
        "wrong",
        "email",
        {
            "recipients": [recipient(b.email or "", full_name(b.given, b.family), rng)],
            "patient": patient_ref(b, rng) if rng.random() < 0.5 else None,
            "sender": _sender(w, b, rng),
            **ctx,
        },
    )


def email_patients_visible(w: World, rng: random.Random) -> LabelledSend:
    """A group invitation with the patients in To/Cc instead of Bcc."""
    k = rng.choice((2, 2, 3, 3, 4, 6, 8))
    chosen: list[Patient] = []
    homes: set[int] = set()
    for _ in range(k * 30):
        p = pick(w, rng, lambda p: bool(p.email))
        if p.household not in homes:
            chosen.append(p)
            homes.add(p.household)
        if len(chosen) == k:
            break
    if len(chosen) < 2:
        raise Skip
    rcpts: list[str | dict[str, str]] = []
    parents = 0
    for n, p in enumerate(chosen):
        header = "To" if n == 0 or rng.random() < 0.6 else "Cc"
        addr, name = p.email or "", full_name(p.given, p.family)
        kin = [c for c in p.contacts if c.email and c.email != p.email]
        if kin and n > 0 and rng.random() < 0.5:  # a parent or carer on the list instead
            c = rng.choice(kin)
            addr, name = c.email or "", full_name(c.given, c.family)
            parents += 1
        rcpts.append(recipient(addr, name, rng, header))
    if rng.random() < 0.3:  # a clinician copied in, visibly
        pr = w.practitioners[rng.randrange(len(w.practitioners))]
        rcpts.insert(rng.randrange(len(rcpts) + 1), f"Cc: {pr.email}")
    if rng.random() < 0.3:
        rcpts.append(f"Bcc: {w.orgs[chosen[0].gp_org].email}")
    return LabelledSend(
        "email.patients_visible",
        "wrong",
        "email",
        {
            "recipients": rcpts,
            "sender": _sender(w, chosen[0], rng),
            "subject": rng.choice(
                ("Diabetes education group", "Your invitation: flu clinic", "Group session")
            ),
            "body": "Dear all,\n\nYou are invited to the group session on Tuesday.\n",
        },
        note=f"{len(chosen)} patients" + (f", {parents} by their next of kin" if parents else ""),
    )


def email_group_bcc(w: World, rng: random.Random) -> LabelledSend:
    """The right way to write to many patients: the practice in To, the patients in Bcc."""
    k = rng.choice((2, 3, 5, 8, 12))
    chosen = [pick(w, rng, lambda p: bool(p.email)) for _ in range(k)]
    o = w.orgs[chosen[0].gp_org]
    rcpts: list[str | dict[str, str]] = [f"To: {o.name} <{o.email}>"]
    for p in chosen:
        rcpts.append(recipient(p.email or "", full_name(p.given, p.family), rng, "Bcc"))
    return LabelledSend(
        "email.group_bcc",
        "correct",
        "email",
        {
            "recipients": rcpts,
            "sender": o.email,
            "subject": rng.choice(("Flu clinic dates", "Group session", "Practice closure")),
            "body": "Dear all,\n\nThe practice will be closed on Monday.\n",
        },
        note=f"{k} patients in Bcc",
    )


def _names_differ(g1: str, f1: str, given2: tuple[str, ...], f2: str) -> bool:
    """Names that a reader would not take for the same person."""
    return f1.lower() != f2.lower() or all(g[0].lower() != g1[0].lower() for g in given2)


_PRACT_BY_FAMILY: dict[int, dict[str, list[int]]] = {}


def _practitioners_by_family(w: World) -> dict[str, list[int]]:
    d = _PRACT_BY_FAMILY.get(id(w))
    if d is None:
        d = {}
        for k, pr in enumerate(w.practitioners):
            d.setdefault(pr.family, []).append(k)
        _PRACT_BY_FAMILY.clear()
        _PRACT_BY_FAMILY[id(w)] = d
    return d


def _namesakes(w: World, given: str, family: str) -> int:
    """People on file with an email address and this first name and family name."""
    n = sum(1 for j in w.by_name().get((given, family), []) if w.patients[j].email)
    return n + sum(
        1
        for k in _practitioners_by_family(w).get(family, [])
        if w.practitioners[k].given[0] == given
    )


def email_display_name(w: World, rng: random.Random) -> LabelledSend:
    """Autocomplete: the display name of one person, the address of another.

    The expected suggestion is the named person's address when the patient is
    named or the display name is unique; with namesakes and no patient it
    cannot be known, so it is not scored.
    """
    if rng.random() < 0.65:
        a = pick(w, rng, lambda p: bool(p.email))
        r = rng.random()
        pool = (
            w.by_family().get(a.family, [])
            if r < 0.6
            else [rng.randrange(len(w.patients)) for _ in range(8)]
        )
        cands = [
            w.patients[j]
            for j in pool
            if w.patients[j].email
            and w.patients[j].household != a.household
            and _names_differ(a.given[0], a.family, w.patients[j].given, w.patients[j].family)
        ]
        if not cands:
            raise Skip
        b = rng.choice(cands)
        assert a.email
        assert b.email
        named = rng.random() < 0.5
        ctx = (
            patient_content(a, rng, secure=True)
            if named
            else {
                "subject": "[secure] " + rng.choice(_SUBJECTS),
                "body": f"Dear {a.given[0]},\n\nPlease call the surgery.\n",
            }
        )
        args: dict[str, Any] = {
            "recipients": [f"To: {a.given[0]} {a.family} <{b.email}>"],
            "sender": _sender(w, a, rng),
            **ctx,
        }
        if named:
            args["patient"] = patient_ref(a, rng)
        known = named or _namesakes(w, a.given[0], a.family) == 1
        return LabelledSend(
            "email.display_name",
            "wrong",
            "email",
            args,
            expected=a.email if known else None,
            expect_type="email",
            note="patients, patient named" if named else "patients, no patient named",
        )
    # professionals: Dr Alice Jones <alan.jones@nhs.net>
    by_fam = _practitioners_by_family(w)
    a = w.practitioners[rng.randrange(len(w.practitioners))]
    cands = [
        w.practitioners[k]
        for k in by_fam.get(a.family, [])
        if _names_differ(a.given[0], a.family, w.practitioners[k].given, a.family)
    ]
    if not cands or rng.random() < 0.3:
        cands = [
            pr
            for pr in rng.sample(w.practitioners, min(10, len(w.practitioners)))
            if _names_differ(a.given[0], a.family, pr.given, pr.family)
        ]
    if not cands:
        raise Skip
    b = rng.choice(cands)
    p = pick(w, rng, lambda p: True)
    known = _namesakes(w, a.given[0], a.family) == 1
    return LabelledSend(
        "email.display_name",
        "wrong",
        "email",
        {
            "recipients": [f"To: {a.prefix} {a.given[0]} {a.family} <{b.email}>"],
            "patient": patient_ref(p, rng) if rng.random() < 0.5 else None,
            "sender": _sender(w, p, rng),
            "subject": "Referral",
            "body": "Dear colleague,\n\nPlease see the attached referral.\n",
        },
        expected=a.email if known else None,
        expect_type="email",
        note="professionals",
    )


def email_previous_address(w: World, rng: random.Random) -> LabelledSend:
    p = pick(w, rng, lambda p: bool(p.old_email and p.email), tries=4000)
    assert p.old_email
    return LabelledSend(
        "email.previous_address",
        "wrong",
        "email",
        {
            "recipients": [recipient(p.old_email, full_name(p.given, p.family), rng)],
            "patient": patient_ref(p, rng),
            "sender": _sender(w, p, rng),
            **patient_content(p, rng, secure=True),
        },
        expected=p.email,
        expect_type="email",
    )


# -- email: correct --------------------------------------------------------------------


def _nick_or_name(given: tuple[str, ...], family: str, rng: random.Random) -> str:
    from bench.generate import NICKNAMES

    g = given[0]
    r = rng.random()
    if r < 0.1 and g.lower() in NICKNAMES:
        return f"{NICKNAMES[g.lower()].capitalize()} {family}"
    if r < 0.15:
        return g
    return f"{g} {family}"


def email_correct_patient(w: World, rng: random.Random) -> LabelledSend:
    p = pick(w, rng, lambda p: bool(p.email))
    assert p.email
    addr = p.email
    if rng.random() < 0.1:  # typed with capitals: the same mailbox
        local, _, domain = addr.partition("@")
        addr = f"{'.'.join(x.capitalize() for x in local.split('.'))}@{domain.capitalize()}"
    rcpts = [recipient(addr, _nick_or_name(p.given, p.family, rng), rng)]
    if rng.random() < 0.15:
        o = _gp_org(w, p)
        rcpts.append(f"Cc: {o.name} <{o.email}>")
    return LabelledSend(
        "email.patient",
        "correct",
        "email",
        {
            "recipients": rcpts,
            "patient": patient_ref(p, rng),
            "sender": _sender(w, p, rng),
            **patient_content(p, rng, secure=True),
        },
    )


def email_correct_nok(w: World, rng: random.Random) -> LabelledSend:
    p = pick(w, rng, lambda p: any(c.email for c in p.contacts), tries=4000)
    c = rng.choice([c for c in p.contacts if c.email])
    assert c.email
    ctx = patient_content(p, rng, secure=True)
    ctx["body"] = ctx["body"].replace(f"Dear {p.given[0]}", f"Dear {c.given[0]}")
    return LabelledSend(
        "email.next_of_kin",
        "correct",
        "email",
        {
            "recipients": [recipient(c.email, _nick_or_name(c.given, c.family, rng), rng)],
            "patient": patient_ref(p, rng),
            "sender": _sender(w, p, rng),
            **ctx,
        },
        note=c.relationship,
    )


def email_correct_gp(w: World, rng: random.Random) -> LabelledSend:
    p = pick(w, rng, lambda p: True)
    o = _gp_org(w, p)
    r = rng.random()
    if p.gp_ref.startswith("PractitionerRole/") or (r < 0.5 and o.roles):
        role = next((x for x in o.roles if p.gp_ref.endswith(w.roles[x].id)), None)
        role = role if role is not None else rng.choice(o.roles)
        pr = w.practitioners[w.roles[role].practitioner]
        addr, name = pr.email, f"{pr.prefix} {pr.given[0]} {pr.family}"
        note = "GP practitioner"
        role_email = w.roles[role].email
        if role_email and rng.random() < 0.5:
            addr, note = role_email, "GP role mailbox"
    else:
        addr, name, note = o.email, o.name, "practice mailbox"
    secure = not addr.endswith("@nhs.net")
    return LabelledSend(
        "email.gp",
        "correct",
        "email",
        {
            "recipients": [recipient(addr, name, rng)],
            "patient": patient_ref(p, rng),
            "sender": f"{rng.choice(('outpatients', 'discharge', 'results'))}.team@nhs.net",
            **patient_content(p, rng, secure=secure),
        },
        note=note,
    )


_CACHE: dict[tuple[int, str], Any] = {}


def _cached(w: World, key: str, make: Callable[[], Any]) -> Any:
    """A list derived from the world, computed once per world."""
    k = (id(w), key)
    if k not in _CACHE:
        if any(kk[0] != id(w) for kk in _CACHE):
            _CACHE.clear()
        _CACHE[k] = make()
    return _CACHE[k]


_HOSPITAL_ROLES: dict[int, list[int]] = {}


def _hospital_contact(w: World, rng: random.Random) -> tuple[str, str, str]:
    hosp = _HOSPITAL_ROLES.get(id(w))
    if hosp is None:
        hosp = [k for k, r in enumerate(w.roles) if w.orgs[r.org].kind == "hospital"]
        _HOSPITAL_ROLES.clear()
        _HOSPITAL_ROLES[id(w)] = hosp
    role = w.roles[rng.choice(hosp)]
    pr = w.practitioners[role.practitioner]
    o = w.orgs[role.org]
    r = rng.random()
    if r < 0.65:
        return pr.email, f"{pr.prefix} {pr.given[0]} {pr.family}", "consultant"
    if r < 0.85 and role.email:
        return role.email, f"{role.specialty} secretaries", "department mailbox"
    return o.email, o.name, "referrals mailbox"


def email_correct_referral(w: World, rng: random.Random) -> LabelledSend:
    p = pick(w, rng, lambda p: True)
    addr, name, note = _hospital_contact(w, rng)
    return LabelledSend(
        "email.referral",
        "correct",
        "email",
        {
            "recipients": [recipient(addr, name, rng)],
            "patient": patient_ref(p, rng),
            "sender": _sender(w, p, rng),
            **patient_content(p, rng, secure=not addr.endswith("@nhs.net")),
        },
        note=note,
    )


def _fresh_private(w: World, rng: random.Random) -> tuple[str, str]:
    """A genuine address nobody in the directory has, from the same names and styles."""
    from bench.generate import _EMAIL_STYLES, WEBMAIL

    if rng.random() < 0.4:
        q = w.patients[rng.randrange(len(w.patients))]  # a namesake of someone on file
        given, family = q.given[0], q.family
        by = q.birth_year + rng.randint(-30, 30)
    else:
        pools = w.pools
        given = rng.choices(pools.male + pools.female, weights=pools.male_w + pools.female_w)[0]
        family = rng.choices(pools.family, weights=pools.family_w)[0]
        by = rng.randint(1940, 2008)
    domain = rng.choices([d for d, _ in WEBMAIL], weights=[x for _, x in WEBMAIL])[0]
    for _ in range(20):
        style = rng.choices([s for s, _ in _EMAIL_STYLES], weights=[x for _, x in _EMAIL_STYLES])[0]
        addr = f"{local_part(rng, given, family, by, style)}@{domain}"
        if addr not in w.emails:
            return addr, f"{given} {family}"
    raise Skip


def sender_history(w: World, rng: random.Random, size: int) -> list[str]:
    """Addresses a practice mailbox has written to before: patients and professionals."""
    out = []
    for _ in range(size):
        if rng.random() < 0.8:
            p = w.patients[rng.randrange(len(w.patients))]
            if p.email:
                out.append(p.email)
        else:
            out.append(w.practitioners[rng.randrange(len(w.practitioners))].email)
    return out


def email_correct_fresh(w: World, rng: random.Random) -> LabelledSend:
    addr, name = _fresh_private(w, rng)
    args: dict[str, Any] = {
        "recipients": [recipient(addr, name, rng)],
        "sender": rng.choice(w.orgs).email,
        "subject": rng.choice(_NON_PATIENT_SUBJECTS),
        "body": "Hello,\n\nThanks for getting in touch.\n",
    }
    note = ""
    if rng.random() < 0.5:  # a relay that passes the sender's history
        args["history"] = sender_history(w, rng, rng.choice((20, 100, 400)))
        note = f"with {len(args['history'])} addresses of sender history"
    return LabelledSend("email.fresh_private", "correct", "email", args, note=note)


def email_own_typo_history(w: World, rng: random.Random) -> LabelledSend:
    """A slip in a patient's address in a message that names no patient (no NHS
    number either); the sender has written to the patient before."""
    p = pick(w, rng, lambda p: bool(p.email))
    assert p.email
    local, _, domain = p.email.partition("@")
    typo = f"{local_slip(local, rng, 1 if rng.random() < 0.7 else 2)}@{domain}"
    if typo in w.emails:
        raise Skip
    history = [*sender_history(w, rng, rng.choice((20, 100, 400))), p.email]
    rng.shuffle(history)
    return LabelledSend(
        "email.own_typo_history",
        "wrong",
        "email",
        {
            "recipients": [recipient(typo, full_name(p.given, p.family), rng)],
            "sender": _sender(w, p, rng),
            "subject": rng.choice(("Your appointment on Tuesday", "Re: prescription", "Call back")),
            "body": f"Dear {p.given[0]},\n\nPlease call the surgery.\n",
            "history": history,
        },
        expected=p.email,
        expect_type="email",
        note=f"{len(history)} addresses of sender history",
    )


_SIBLING_DOMAINS = {
    "hotmail.co.uk": ("hotmail.com",),
    "hotmail.com": ("hotmail.co.uk",),
    "yahoo.co.uk": ("yahoo.com",),
    "yahoo.com": ("yahoo.co.uk",),
    "live.co.uk": ("live.com",),
    "live.com": ("live.co.uk",),
    "outlook.com": ("outlook.co.uk", "hotmail.com"),
    "btinternet.com": ("btopenworld.com",),
}


def email_wrong_provider(w: World, rng: random.Random) -> LabelledSend:
    """The patient's mailbox name at a sibling provider domain (hotmail.com for
    hotmail.co.uk): both domains are real, so no domain-typo check can see it.
    (gmail.com/googlemail.com and icloud.com/me.com are left out: often one mailbox.)"""
    p = pick(w, rng, lambda p: bool(p.email) and p.email.split("@")[1] in _SIBLING_DOMAINS)
    assert p.email
    local, _, domain = p.email.partition("@")
    wrong = f"{local}@{rng.choice(_SIBLING_DOMAINS[domain])}"
    if wrong in w.emails:
        raise Skip
    return LabelledSend(
        "email.wrong_provider",
        "wrong",
        "email",
        {
            "recipients": [recipient(wrong, full_name(p.given, p.family), rng)],
            "patient": patient_ref(p, rng),
            "sender": _sender(w, p, rng),
            **patient_content(p, rng, secure=True),
        },
        expected=p.email,
        expect_type="email",
        note=f"{domain} -> {wrong.split('@')[1]}",
    )


def email_correct_fresh_nhs(w: World, rng: random.Random) -> LabelledSend:
    """A new colleague on NHSmail, not in the directory yet (NHSmail adds digits to namesakes)."""
    if rng.random() < 0.5:
        pr = rng.choice(w.practitioners)
        given, family = pr.given[0], pr.family
    else:
        pools = w.pools
        given = rng.choices(pools.male + pools.female, weights=pools.male_w + pools.female_w)[0]
        family = rng.choices(pools.family, weights=pools.family_w)[0]
    base = f"{re.sub(r'[^a-z]', '', given.lower())}.{family.lower().replace(chr(39), '')}"
    addr = f"{base}@nhs.net"
    k = 0
    while addr in w.emails:
        k += 1
        addr = f"{base}{k}@nhs.net"
    return LabelledSend(
        "email.fresh_nhs",
        "correct",
        "email",
        {
            "recipients": [recipient(addr, f"{given} {family}", rng)],
            "sender": rng.choice(w.orgs).email,
            "subject": rng.choice(_NON_PATIENT_SUBJECTS),
            "body": "Hello,\n\nWelcome to the team.\n",
        },
    )


# -- email: insecure domain ------------------------------------------------------------


def email_insecure(w: World, rng: random.Random) -> LabelledSend:
    r = rng.random()
    if r < 0.6:
        p = pick(w, rng, lambda p: bool(p.email))
        addr, name, note = p.email or "", full_name(p.given, p.family), "patient webmail"
    elif r < 0.8:
        p = pick(w, rng, lambda p: any(c.email for c in p.contacts), tries=4000)
        c = rng.choice([c for c in p.contacts if c.email])
        addr, name, note = c.email or "", full_name(c.given, c.family), "next of kin"
    else:
        p = pick(w, rng, lambda p: True)
        trust = _cached(
            w, "trust", lambda: [x for x in w.practitioners if not x.email.endswith("@nhs.net")]
        )
        if not trust:
            raise Skip
        pr = rng.choice(trust)
        addr, name, note = pr.email, f"{pr.prefix} {pr.given[0]} {pr.family}", "trust nhs.uk"
    return LabelledSend(
        "email.insecure_domain",
        "insecure",
        "email",
        {
            "recipients": [recipient(addr, name, rng)],
            "patient": patient_ref(p, rng),
            "sender": _sender(w, p, rng),
            **patient_content(p, rng, secure=False),
        },
        note=note,
    )


# -- fax -------------------------------------------------------------------------------


def _fax_target(w: World, rng: random.Random) -> tuple[str, Phone, set[str], str, Org]:
    """(intended reference, its fax on file, numbers of its family, note, organisation)."""
    if rng.random() < 0.6:
        o = rng.choice(w.orgs)
        r = rng.random()
        if r < 0.5:
            ref = f"Organization/{o.id}"
        elif r < 0.8:
            ref = o.ods
        else:
            ref = f"ods:{o.ods}"
        family = {o.fax.e164} | {w.roles[x].fax.e164 for x in o.roles if w.roles[x].fax}
        return ref, o.fax, family, f"organisation ({o.kind})", o
    cands = _cached(w, "role_fax", lambda: [r for r in w.roles if r.fax is not None])
    role = rng.choice(cands)
    o = w.orgs[role.org]
    assert role.fax
    ref = f"PractitionerRole/{role.id}"
    return ref, role.fax, {role.fax.e164, o.fax.e164}, "role", o


def _written(p: Phone, rng: random.Random) -> str:
    return write_phone(p, rng.randrange(8))


def _valid(text: str) -> tuple[bool, int]:
    try:
        n = phonenumbers.parse(text, "GB")
    except phonenumbers.NumberParseException:
        return False, -1
    return phonenumbers.is_valid_number(n), phonenumbers.number_type(n)


def _fax_patient(w: World, o: Org, rng: random.Random) -> str | None:
    if rng.random() < 0.5:
        return None
    p = pick(w, rng, lambda p: True)
    return patient_ref(p, rng)


def fax_correct(w: World, rng: random.Random) -> LabelledSend:
    ref, fax, _, note, o = _fax_target(w, rng)
    number = fax
    if ref.startswith(("Organization/", "ods:")) or ref == o.ods:
        own = [w.roles[x].fax for x in o.roles if w.roles[x].fax]
        if own and rng.random() < 0.15:
            number = rng.choice(own)
            note += ", a clinician's line at it"
    elif rng.random() < 0.2:
        number = o.fax
        note += ", the organisation's main fax"
    return LabelledSend(
        "fax.on_file",
        "correct",
        "fax",
        {"number": _written(number, rng), "intended": ref, "patient": _fax_patient(w, o, rng)},
        note=note,
    )


def fax_invalid(w: World, rng: random.Random) -> LabelledSend:
    ref, fax, _, _, o = _fax_target(w, rng)
    nat = fax.national
    r = rng.random()
    if r < 0.4:
        i = rng.randrange(2, len(nat))
        text = nat[:i] + nat[i + 1 :]
        how = "digit dropped"
    elif r < 0.7:
        i = rng.randrange(2, len(nat) + 1)
        text = nat[:i] + rng.choice("0123456789") + nat[i:]
        how = "digit added"
    else:
        text = format_local(fax.local)
        how = "no area code"
    ok, _ = _valid(text)
    if ok:
        raise Skip
    if how != "no area code":
        text = write_phone(
            Phone(text[: len(fax.code)], text[len(fax.code) :]), rng.choice((0, 1, 2))
        )
    return LabelledSend(
        "fax.invalid",
        "wrong",
        "fax",
        {"number": text, "intended": ref, "patient": _fax_patient(w, o, rng)},
        note=how,
    )


def _special(rng: random.Random, want: int, make: Callable[[], str]) -> str:
    for _ in range(50):
        text = make()
        ok, t = _valid(text)
        if ok and t == want:
            return text
    raise Skip


def fax_premium(w: World, rng: random.Random) -> LabelledSend:
    ref, fax, _, _, o = _fax_target(w, rng)

    def make() -> str:
        if fax.code.startswith("01") and rng.random() < 0.5:
            return "09" + fax.national[2:]  # 0113 ... keyed as 0913 ...
        return f"09{rng.choice(('06', '08', '09', '04', '11'))} {rng.randrange(10**7):07d}"

    text = _special(rng, PhoneNumberType.PREMIUM_RATE, make)
    return LabelledSend(
        "fax.premium_rate",
        "wrong",
        "fax",
        {"number": text, "intended": ref, "patient": _fax_patient(w, o, rng)},
    )


def fax_personal(w: World, rng: random.Random) -> LabelledSend:
    ref, _, _, _, o = _fax_target(w, rng)
    text = _special(
        rng,
        PhoneNumberType.PERSONAL_NUMBER,
        lambda: f"070 {rng.randrange(10**4):04d} {rng.randrange(10**4):04d}",
    )
    return LabelledSend(
        "fax.personal",
        "wrong",
        "fax",
        {"number": text, "intended": ref, "patient": _fax_patient(w, o, rng)},
    )


def fax_mobile(w: World, rng: random.Random) -> LabelledSend:
    ref, _, _, _, _ = _fax_target(w, rng)
    patient = None
    if rng.random() < 0.5:
        p = pick(w, rng, lambda p: bool(p.phone and p.phone.code.startswith("07")))
        assert p.phone
        text = p.phone.written
        patient = patient_ref(p, rng)
        note = "the patient's mobile"
    else:
        text = _special(
            rng,
            PhoneNumberType.MOBILE,
            lambda: f"07{rng.choice('123459')}{rng.randrange(100):02d} {rng.randrange(10**6):06d}",
        )
        note = "a mobile"
    ok, t = _valid(text)
    if not ok or t != PhoneNumberType.MOBILE:
        raise Skip
    return LabelledSend(
        "fax.mobile",
        "wrong",
        "fax",
        {"number": text, "intended": ref, "patient": patient},
        note=note,
    )


def _mutated_fax(w: World, fax: Phone, text: str, rng: random.Random) -> str:
    ok, t = _valid(text)
    if not ok or t not in (PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE):
        raise Skip
    e164 = "+44" + text[1:]
    if e164 in w.numbers:
        raise Skip  # someone's number: a different kind of mistake
    code_len = len(fax.code)
    return write_phone(Phone(text[:code_len], text[code_len:]), rng.randrange(8))


def fax_one_digit(w: World, rng: random.Random) -> LabelledSend:
    ref, fax, _, note, o = _fax_target(w, rng)
    nat = fax.national
    # mostly in the local number, sometimes in the dialling code
    i = (
        rng.randrange(len(fax.code), len(nat))
        if rng.random() < 0.85
        else rng.randrange(2, len(fax.code))
    )
    d = (
        rng.choice(_KEYPAD[nat[i]])
        if rng.random() < 0.7
        else rng.choice("0123456789".replace(nat[i], ""))
    )
    text = nat[:i] + d + nat[i + 1 :]
    return LabelledSend(
        "fax.one_digit_off",
        "wrong",
        "fax",
        {
            "number": _mutated_fax(w, fax, text, rng),
            "intended": ref,
            "patient": _fax_patient(w, o, rng),
        },
        expected=fax.e164,
        expect_type="fax",
        note=note,
    )


def fax_swap(w: World, rng: random.Random) -> LabelledSend:
    ref, fax, _, note, o = _fax_target(w, rng)
    nat = fax.national
    i = rng.randrange(2, len(nat) - 1)
    if nat[i] == nat[i + 1]:
        raise Skip
    text = nat[:i] + nat[i + 1] + nat[i] + nat[i + 2 :]
    return LabelledSend(
        "fax.digits_swapped",
        "wrong",
        "fax",
        {
            "number": _mutated_fax(w, fax, text, rng),
            "intended": ref,
            "patient": _fax_patient(w, o, rng),
        },
        expected=fax.e164,
        expect_type="fax",
        note=note,
    )


def fax_other_contact(w: World, rng: random.Random) -> LabelledSend:
    ref, fax, family, note, o = _fax_target(w, rng)
    same_town = [x for x in w.orgs if x.town == o.town and x is not o]
    if same_town and rng.random() < 0.6:
        other = rng.choice(same_town)
        how = "another organisation in the town"
    else:
        other = rng.choice(w.orgs)
        how = "another organisation"
    if other is o:
        raise Skip
    numbers = [other.fax] + [w.roles[x].fax for x in other.roles if w.roles[x].fax]
    number = rng.choice(numbers)
    if number.e164 in family:
        raise Skip
    return LabelledSend(
        "fax.other_contact",
        "wrong",
        "fax",
        {"number": _written(number, rng), "intended": ref, "patient": _fax_patient(w, o, rng)},
        expected=fax.e164,
        expect_type="fax",
        note=f"{note}; {how}",
    )


def fax_not_on_file(w: World, rng: random.Random) -> LabelledSend:
    ref, fax, _, note, o = _fax_target(w, rng)
    t = next(t for t in TOWNS if t[4] == fax.code)
    from bench.generate import _local_number

    if ref.startswith("PractitionerRole/") or rng.random() < 0.8:
        text = _mutated_fax(w, fax, fax.code + _local_number(rng, fax.code, t[5]), rng)
    else:
        text, note = _written(o.phone, rng), f"{note}; its phone line, not its fax"
    return LabelledSend(
        "fax.not_on_file",
        "wrong",
        "fax",
        {
            "number": text,
            "intended": ref,
            "patient": _fax_patient(w, o, rng),
        },
        expected=fax.e164,
        expect_type="fax",
        note=note,
    )


def fax_previous(w: World, rng: random.Random) -> LabelledSend:
    olds = _cached(w, "old_fax", lambda: [o for o in w.orgs if o.old_fax])
    if not olds:
        raise Skip
    o = rng.choice(olds)
    assert o.old_fax
    return LabelledSend(
        "fax.previous_number",
        "wrong",
        "fax",
        {
            "number": _written(o.old_fax, rng),
            "intended": rng.choice((f"Organization/{o.id}", o.ods)),
        },
        expected=o.fax.e164,
        expect_type="fax",
    )


# -- letters ---------------------------------------------------------------------------


def _letter_args(
    w: World, p: Patient, addressee: str, address: str, rng: random.Random
) -> dict[str, Any]:
    return {"addressee": addressee, "address": address, "patient": patient_ref(p, rng)}


def letter_correct_patient(w: World, rng: random.Random) -> LabelledSend:
    p = pick(w, rng, lambda p: True)
    child = _age(w, p) < 16
    return LabelledSend(
        "letter.patient",
        "correct",
        "letter",
        _letter_args(
            w,
            p,
            addressee_forms(p.given, p.family, p.prefix, rng, child=child),
            write_address(p.address, rng),
            rng,
        ),
    )


def letter_street_slip(w: World, rng: random.Random) -> LabelledSend:
    """The patient's address with a slip in the street name: the letter still arrives."""
    p = pick(w, rng, lambda p: p.address.house > 0)
    a = p.address
    num, _, street = a.lines[-1].partition(" ")
    words = street.split()
    k = max(range(len(words)), key=lambda j: len(words[j]))
    if len(words[k]) < 5:
        raise Skip
    word = _one_slip(words[k].lower(), rng)
    words[k] = word.capitalize() if words[k][0].isupper() else word
    lines = (*a.lines[:-1], f"{num} {' '.join(words)}")
    return LabelledSend(
        "letter.patient_street_slip",
        "correct",
        "letter",
        _letter_args(
            w,
            p,
            addressee_forms(p.given, p.family, p.prefix, rng),
            write_address(Addr(lines, a.city, a.postcode, a.county), rng),
            rng,
        ),
        note=f"{street} -> {' '.join(words)}",
    )


def letter_correct_contact(w: World, rng: random.Random) -> LabelledSend:
    p = pick(w, rng, lambda p: any(c.address for c in p.contacts), tries=4000)
    c = rng.choice([c for c in p.contacts if c.address])
    assert c.address
    return LabelledSend(
        "letter.next_of_kin",
        "correct",
        "letter",
        _letter_args(
            w,
            p,
            addressee_forms(c.given, c.family, c.prefix, rng),
            write_address(c.address, rng),
            rng,
        ),
        note=c.relationship,
    )


def letter_correct_gp(w: World, rng: random.Random) -> LabelledSend:
    p = pick(w, rng, lambda p: True)
    o = _gp_org(w, p)
    if o.roles and rng.random() < 0.5:
        pr = w.practitioners[w.roles[rng.choice(o.roles)].practitioner]
        addressee = f"{pr.prefix} {pr.given[0][0]} {pr.family}"
    else:
        addressee = rng.choice((o.name, f"The Practice Manager, {o.name}", o.name.upper()))
    ref = rng.choice((f"Organization/{o.id}", o.ods))
    return LabelledSend(
        "letter.gp_practice",
        "correct",
        "letter",
        {
            "addressee": addressee,
            "address": write_address(o.address, rng),
            "patient": patient_ref(p, rng),
            "intended": ref,
        },
    )


_PSEUDO = ("ZZ99 3VZ", "ZZ99 3WZ", "ZZ99 3CZ", "ZZ99 3GZ", "ZZ99 3EZ")


def letter_pseudo(w: World, rng: random.Random) -> LabelledSend:
    p = pick(w, rng, lambda p: True)
    pc = rng.choice(_PSEUDO)
    if rng.random() < 0.5:
        a = p.address
        address = write_address(Addr(a.lines, a.city, pc, a.county), rng)
    else:
        address = rng.choice(("No fixed abode", "Address not known")) + "\n" + pc
    return LabelledSend(
        "letter.pseudo_postcode",
        "wrong",
        "letter",
        _letter_args(w, p, addressee_forms(p.given, p.family, p.prefix, rng), address, rng),
    )


def _free_address(w: World, town: int, rng: random.Random) -> Addr:
    streets = [s for s in w.by_street() if w.streets[s].town == town] or list(w.by_street())
    for _ in range(50):
        s = rng.choice(streets)
        st = w.streets[s]
        house = rng.randint(1, st.houses)
        if (s, house, 0) not in w.places and not st.flats:
            return Addr(
                (f"{house} {st.name}",),
                TOWNS[st.town][0],
                st.postcode(house),
                TOWNS[st.town][1],
                s,
                house,
                0,
            )
    raise Skip


def _house_slip(w: World, p: Patient, rng: random.Random) -> Addr:
    """The patient's street with a mistyped house number (nobody on file lives there)."""
    a = p.address
    if a.house <= 0 or a.flat:
        raise Skip
    num = str(a.house)
    if len(num) >= 2 and rng.random() < 0.5 and num[0] != num[1]:
        new = int(num[1] + num[0] + num[2:])
    else:
        i = rng.randrange(len(num))
        new = int(num[:i] + rng.choice(_KEYPAD[num[i]]) + num[i + 1 :])
    st = w.streets[a.street]
    if new == a.house or not 1 <= new <= st.houses or (a.street, new, 0) in w.places:
        raise Skip
    return Addr((f"{new} {st.name}",), a.city, st.postcode(new), a.county, a.street, new, 0)


def letter_mismatch(w: World, rng: random.Random) -> LabelledSend:
    p = pick(w, rng, lambda p: p.address.street >= 0)
    if rng.random() < 0.4:
        a, note = _house_slip(w, p, rng), "house number slip"
    else:
        a, note = _free_address(w, w.streets[p.address.street].town, rng), "another street"
    return LabelledSend(
        "letter.address_mismatch",
        "wrong",
        "letter",
        _letter_args(
            w, p, addressee_forms(p.given, p.family, p.prefix, rng), write_address(a, rng), rng
        ),
        expected=p.address.text(),
        expect_type="address",
        note=note,
    )


def letter_previous(w: World, rng: random.Random) -> LabelledSend:
    p = pick(w, rng, lambda p: p.old_address is not None, tries=4000)
    assert p.old_address
    return LabelledSend(
        "letter.previous_address",
        "wrong",
        "letter",
        _letter_args(
            w,
            p,
            addressee_forms(p.given, p.family, p.prefix, rng),
            write_address(p.old_address, rng),
            rng,
        ),
        expected=p.address.text(),
        expect_type="address",
        note=f"use={p.old_address_use}",
    )


def letter_other_patient(w: World, rng: random.Random) -> LabelledSend:
    p = pick(w, rng, lambda p: p.address.street >= 0)
    r = rng.random()
    if r < 0.5:
        homes = [h for h in w.by_street().get(p.address.street, []) if h != p.household]
        how = "neighbour"
    elif r < 0.75:
        homes = [w.patients[j].household for j in w.by_name().get((p.given[0], p.family), [])]
        how = "namesake"
    else:
        homes = [rng.randrange(len(w.households)) for _ in range(3)]
        how = "random"
    contact_places = {(c.address.postcode, c.address.lines) for c in p.contacts if c.address}
    homes = [
        h
        for h in homes
        if h != p.household
        and (
            w.patients[w.households[h][0]].address.postcode,
            w.patients[w.households[h][0]].address.lines,
        )
        not in contact_places
        and w.patients[w.households[h][0]].address.lines != p.address.lines
    ]
    if not homes:
        raise Skip
    q = w.patients[w.households[rng.choice(homes)][0]]
    return LabelledSend(
        "letter.other_patient_address",
        "wrong",
        "letter",
        _letter_args(
            w,
            p,
            addressee_forms(p.given, p.family, p.prefix, rng),
            write_address(q.address, rng),
            rng,
        ),
        expected=p.address.text(),
        expect_type="address",
        note=how,
    )


_PC_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"


def postcode_slip(pc: str, rng: random.Random) -> str:
    out_, in_ = pc.split()
    r = rng.random()
    if r < 0.4:  # an inward letter: neighbouring key or another valid letter
        k = rng.choice((1, 2))
        near = [c for c in _NEAR.get(in_[k].lower(), "").upper() if c in _PC_LETTERS]
        c = rng.choice(near) if near and rng.random() < 0.7 else rng.choice(_PC_LETTERS)
        in2 = in_[:k] + c + in_[k + 1 :]
        new = f"{out_} {in2}"
    elif r < 0.6:  # the inward digit
        d = rng.choice(_KEYPAD[in_[0]] + "0123456789")
        new = f"{out_} {d}{in_[1:]}"
    elif r < 0.8:  # swapped inward letters
        new = f"{out_} {in_[0]}{in_[2]}{in_[1]}"
    else:  # the district number
        digits = [k for k, c in enumerate(out_) if c.isdigit()]
        k = digits[-1]
        d = rng.choice(_KEYPAD[out_[k]])
        new = f"{out_[:k]}{d}{out_[k + 1 :]} {in_}"
    if new == pc:
        raise Skip
    return new


def letter_postcode_typo(w: World, rng: random.Random) -> LabelledSend:
    p = pick(w, rng, lambda p: True)
    a = p.address
    pc = postcode_slip(a.postcode, rng)
    return LabelledSend(
        "letter.postcode_typo",
        "wrong",
        "letter",
        _letter_args(
            w,
            p,
            addressee_forms(p.given, p.family, p.prefix, rng),
            write_address(Addr(a.lines, a.city, pc, a.county), rng),
            rng,
        ),
        expected=a.text(),
        expect_type="address",
    )


def letter_wrong_addressee(w: World, rng: random.Random) -> LabelledSend:
    p = pick(w, rng, lambda p: True)
    people = [(w.patients[j].given, w.patients[j].family) for j in w.households[p.household]]
    people += [(c.given, c.family) for c in p.contacts]
    r = rng.random()
    if r < 0.4:  # wrong patient picked: a different patient's name
        q = w.patients[rng.randrange(len(w.patients))]
        given, family, prefix, how = q.given, q.family, q.prefix, "another patient"
    else:  # same family name, a given name nobody here has
        pools = w.pools
        gender = rng.choice(("male", "female"))
        names = pools.male if gender == "male" else pools.female
        given = (rng.choice(names[:60]),)
        family, prefix, how = p.family, "Mr" if gender == "male" else "Mrs", "same family name"
    for g, f in people:
        # not a name a reader could take for the patient or someone at home
        if f == family and any(x[0] == y[0] for x in g for y in given):
            raise Skip
    return LabelledSend(
        "letter.addressee_unknown",
        "wrong",
        "letter",
        _letter_args(
            w, p, addressee_forms(given, family, prefix, rng), write_address(p.address, rng), rng
        ),
        expected=f"{p.given[0]} {p.family}",
        expect_type="name",
        note=how,
    )


# -- registry --------------------------------------------------------------------------

EXTRA_KINDS = frozenset(
    {
        "email.own_typo_history",
        "email.wrong_provider",
        "email.previous_address",
        "fax.previous_number",
        "letter.patient_street_slip",
    }
)
"""Kinds beyond the requirements' list: reported, but outside the headline rates."""

KINDS: dict[str, Callable[[World, random.Random], LabelledSend]] = {
    # email, wrong
    "email.domain_typo": email_domain_typo,
    "email.own_typo": email_own_typo,
    "email.own_typo_history": email_own_typo_history,
    "email.wrong_provider": email_wrong_provider,
    "email.other_patient": email_other_patient,
    "email.other_patient_nok": email_other_nok,
    "email.nhs_number_other": email_nhs_number_other,
    "email.patients_visible": email_patients_visible,
    "email.display_name": email_display_name,
    "email.previous_address": email_previous_address,
    # email, correct
    "email.patient": email_correct_patient,
    "email.next_of_kin": email_correct_nok,
    "email.gp": email_correct_gp,
    "email.referral": email_correct_referral,
    "email.group_bcc": email_group_bcc,
    "email.fresh_private": email_correct_fresh,
    "email.fresh_nhs": email_correct_fresh_nhs,
    # email, insecure domain (warn expected; not a wrong recipient)
    "email.insecure_domain": email_insecure,
    # fax, wrong
    "fax.invalid": fax_invalid,
    "fax.premium_rate": fax_premium,
    "fax.personal": fax_personal,
    "fax.mobile": fax_mobile,
    "fax.one_digit_off": fax_one_digit,
    "fax.digits_swapped": fax_swap,
    "fax.other_contact": fax_other_contact,
    "fax.not_on_file": fax_not_on_file,
    "fax.previous_number": fax_previous,
    # fax, correct
    "fax.on_file": fax_correct,
    # letter, wrong
    "letter.pseudo_postcode": letter_pseudo,
    "letter.address_mismatch": letter_mismatch,
    "letter.previous_address": letter_previous,
    "letter.other_patient_address": letter_other_patient,
    "letter.postcode_typo": letter_postcode_typo,
    "letter.addressee_unknown": letter_wrong_addressee,
    # letter, correct
    "letter.patient": letter_correct_patient,
    "letter.patient_street_slip": letter_street_slip,
    "letter.next_of_kin": letter_correct_contact,
    "letter.gp_practice": letter_correct_gp,
}


def make_sends(
    w: World, per_kind: int, seed: int = 1, kinds: list[str] | None = None
) -> list[LabelledSend]:
    """`per_kind` labelled sends of each kind (deterministic for a world and seed)."""
    out: list[LabelledSend] = []
    for n, (kind, make) in enumerate(KINDS.items()):
        if kinds and kind not in kinds:
            continue
        rng = random.Random(seed * 1_000_003 + n)
        made = 0
        attempts = 0
        while made < per_kind and attempts < per_kind * 200:
            attempts += 1
            try:
                s = make(w, rng)
            except Skip:
                continue
            out.append(s)
            made += 1
    return out
