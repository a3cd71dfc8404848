"""What directory sources produce: plain records, before normalisation.

FHIR and CSV readers turn their input into `RawEntry` values; the builder
checks, links and indexes them. A `Problem` names the file, the record and
the field, so an admin can find and fix a bad line.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import NamedTuple

__all__ = [
    "PROFESSIONAL_KINDS",
    "DirectoryError",
    "Kind",
    "LinkKind",
    "Problem",
    "RawAddress",
    "RawEntry",
    "RawLink",
    "RawTelecom",
]


class Kind(StrEnum):
    PATIENT = "patient"
    PRACTITIONER = "practitioner"
    ROLE = "role"
    ORGANIZATION = "organization"
    CONTACT = "contact"


PROFESSIONAL_KINDS = frozenset({Kind.PRACTITIONER, Kind.ROLE, Kind.ORGANIZATION})
"""Clinicians and organisations: the correspondents staff write to every day."""


class LinkKind(StrEnum):
    GP = "gp"  # patient -> practitioner / role / organization
    CONTACT_OF = "contact_of"  # contact -> patient
    PRACTITIONER = "practitioner"  # role -> practitioner
    ORGANIZATION = "organization"  # role / practitioner -> organization
    PART_OF = "part_of"  # organization -> parent organization


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the input, located precisely."""

    file: str
    record: str
    field: str
    message: str

    def __str__(self) -> str:
        where = ", ".join(p for p in (self.file, self.record, self.field) if p)
        return f"{where}: {self.message}" if where else self.message


class DirectoryError(ValueError):
    """A directory could not be loaded; `problems` lists every reason found."""

    def __init__(self, problems: list[Problem], *, limit: int = 20) -> None:
        self.problems = problems
        shown = "\n  ".join(str(p) for p in problems[:limit])
        more = f"\n  ... and {len(problems) - limit} more" if len(problems) > limit else ""
        super().__init__(f"directory not loaded ({len(problems)} problem(s)):\n  {shown}{more}")


# Raw records are built a million times per load: named tuples and a plain
# slots dataclass construct several times faster than frozen dataclasses.


class RawTelecom(NamedTuple):
    system: str  # "email" | "fax" | "phone"
    value: str
    end: date | None = None
    field: str = ""


class RawAddress(NamedTuple):
    lines: tuple[str, ...]
    postcode: str = ""
    use: str = "home"  # FHIR address use: home | work | temp | old | billing
    end: date | None = None
    field: str = ""


class RawLink(NamedTuple):
    kind: LinkKind
    ref: str  # "Patient/1", "urn:uuid:...", "ods:B82005", "nhs:9434765919", ...
    field: str = ""


@dataclass(kw_only=True, slots=True)
class RawEntry:
    """One directory entry as read from its source.

    `id` is the canonical reference ("Patient/123"); `aliases` are other
    spellings a reference may use (a Bundle's `urn:uuid:` fullUrl).
    """

    id: str
    kind: Kind
    file: str = ""
    record: str = ""
    nhs_number: str | None = None
    ods_code: str | None = None
    given: tuple[str, ...] = ()
    family: str = ""
    prefix: tuple[str, ...] = ()
    org_name: str = ""
    relationship: str = ""
    telecoms: tuple[RawTelecom, ...] = ()
    addresses: tuple[RawAddress, ...] = ()
    links: tuple[RawLink, ...] = ()
    aliases: tuple[str, ...] = ()
    active: bool = True

    def problem(self, field: str, message: str) -> Problem:
        return Problem(self.file, self.record or self.id, field, message)
