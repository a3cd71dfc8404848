"""What checks know about one send, resolved once against the directory.

Every check of a send reads the same context; each fact is computed on
first use and kept, so ten checks do not parse an address ten times.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from rapidfuzz import fuzz

from sendguard.core.directory import Directory, Entry, Kind, Names
from sendguard.core.models import EmailSend, FaxSend, Header, LetterSend
from sendguard.core.normalise.email import EmailAddress, EmailSyntaxError, parse_email
from sendguard.core.normalise.names import name_matches
from sendguard.core.normalise.nhs import find_nhs_numbers
from sendguard.core.normalise.phone import PhoneNumber, PhoneSyntaxError, parse_phone
from sendguard.core.normalise.postal import NormalAddress, normalise_address

__all__ = ["EmailContext", "FaxContext", "LetterContext", "RecipientInfo", "SendContext"]


class SendContext:
    """Facts shared by all channels: the patients and contacts involved."""

    def __init__(
        self, directory: Directory, patient_refs: tuple[str, ...], intended_ref: str | None = None
    ) -> None:
        self.directory = directory
        self.patient_refs = patient_refs
        self.intended_ref = intended_ref

    @cached_property
    def _resolved_patients(self) -> tuple[list[int], list[str]]:
        found: list[int] = []
        unknown: list[str] = []
        for ref in self.patient_refs:
            hits = [i for i in self.directory.find(ref) if self.directory.kind(i) is Kind.PATIENT]
            if hits:
                found.extend(h for h in hits if h not in found)
            else:
                unknown.append(ref)
        return found, unknown

    @property
    def named_patients(self) -> list[int]:
        """Patients the caller said the send concerns."""
        return self._resolved_patients[0]

    @property
    def unknown_patient_refs(self) -> list[str]:
        return self._resolved_patients[1]

    @property
    def content_patients(self) -> list[int]:
        """Patients whose NHS numbers appear in the content (email only)."""
        return []

    @cached_property
    def patients(self) -> list[int]:
        """Every patient the send concerns: named, or found in the content."""
        out = list(self.named_patients)
        out.extend(p for p in self.content_patients if p not in out)
        return out

    @cached_property
    def linked(self) -> set[int]:
        """The patients, their contacts and their GPs."""
        out: set[int] = set()
        for p in self.patients:
            out |= self.directory.linked(p)
        return out

    @cached_property
    def intended(self) -> list[int]:
        if not self.intended_ref:
            return []
        return self.directory.find(self.intended_ref)

    @cached_property
    def intended_family(self) -> set[int]:
        """The intended contact and everyone acting for it."""
        out: set[int] = set()
        for i in self.intended:
            out |= self.directory.family(i)
        return out

    def entry(self, i: int) -> Entry:
        return self.directory.entry(i)


@dataclass(slots=True)
class RecipientInfo:
    raw: str
    header: Header
    display_name: str
    address: EmailAddress | None
    error: str | None
    owners: list[int]

    @property
    def label(self) -> str:
        return self.address.address if self.address else self.raw

    @property
    def visible(self) -> bool:
        return self.header in (Header.TO, Header.CC)


class EmailContext(SendContext):
    def __init__(self, send: EmailSend, directory: Directory) -> None:
        super().__init__(directory, send.patients)
        self.send = send

    @cached_property
    def recipients(self) -> list[RecipientInfo]:
        out: list[RecipientInfo] = []
        seen: set[str] = set()
        for r in self.send.recipients:
            try:
                addr: EmailAddress | None = parse_email(r.address)
                error = None
            except EmailSyntaxError as exc:
                addr, error = None, str(exc)
            key = addr.address if addr else r.address
            if key in seen:
                continue
            seen.add(key)
            owners = self.directory.by_email(addr.address) if addr else []
            out.append(RecipientInfo(r.address, r.header, r.display_name, addr, error, owners))
        return out

    @cached_property
    def content_nhs_numbers(self) -> list[str]:
        s = self.send
        text = "\n".join((s.subject, *s.attachment_names, *s.texts))
        return find_nhs_numbers(text)

    @cached_property
    def content_patients(self) -> list[int]:
        out: list[int] = []
        for nhs in self.content_nhs_numbers:
            for i in self.directory.find(f"nhs:{nhs}"):
                if self.directory.kind(i) is Kind.PATIENT and i not in out:
                    out.append(i)
        return out

    def private_owners(self, r: RecipientInfo) -> list[int]:
        """Owners of a recipient's address who are patients or their contacts."""
        return [i for i in r.owners if not self.directory.is_professional(i)]


class FaxContext(SendContext):
    def __init__(self, send: FaxSend, directory: Directory, region: str = "GB") -> None:
        super().__init__(directory, send.patients, send.intended)
        self.send = send
        self.region = region

    @cached_property
    def parsed(self) -> PhoneNumber | str:
        """The parsed number, or the reason it cannot be parsed."""
        try:
            return parse_phone(self.send.number, self.region)
        except PhoneSyntaxError as exc:
            return str(exc)
        except Exception as exc:  # whatever phonenumbers trips on, it is not a number
            return f"it cannot be read ({type(exc).__name__})"

    @property
    def number(self) -> PhoneNumber | None:
        p = self.parsed
        return p if isinstance(p, PhoneNumber) else None

    @cached_property
    def owners(self) -> list[int]:
        n = self.number
        return self.directory.by_number(n.key) if n else []

    @property
    def label(self) -> str:
        n = self.number
        return n.e164 if n and n.valid else self.send.number.strip()


class LetterContext(SendContext):
    def __init__(self, send: LetterSend, directory: Directory) -> None:
        super().__init__(directory, send.patients, send.intended)
        self.send = send

    @cached_property
    def addressed(self) -> tuple[int, ...]:
        """Entries among the intended contact, the patients and their
        contacts that the addressee names ("Parents of Tom Smith" names Tom)."""
        addressee = _FILLER.sub("", self.send.addressee)
        d = self.directory
        pool = sorted(self.intended_family | self.linked)
        return tuple(i for i in pool if _names(addressee, d.names_of(i)))

    @cached_property
    def address(self) -> NormalAddress:
        return normalise_address(self.send.address)

    @property
    def label(self) -> str:
        return self.send.addressee or "(no addressee)"


_FILLER = re.compile(
    r"^\s*(?:to\s+)?(?:the\s+)?"
    r"(?:(?:parents?|guardians?|carers?|family|next of kin)\s*(?:or|and|/)?\s*)+of\s+",
    re.IGNORECASE,
)


def _names(text: str, e: Names) -> bool:
    """Whether a written addressee names this entry: a person by name, an
    organisation (or a role's organisation) by a close enough name."""
    if e.kind is Kind.ORGANIZATION:
        return bool(e.org_name) and fuzz.token_set_ratio(text.lower(), e.org_name.lower()) >= 85
    return name_matches(text, e.given, e.family) or (
        e.kind is Kind.ROLE
        and bool(e.org_name)
        and fuzz.token_set_ratio(text.lower(), e.org_name.lower()) >= 85
    )
