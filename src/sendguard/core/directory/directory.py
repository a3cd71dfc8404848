"""The compiled, immutable directory and the lookups checks use.

Entries are stored as one bytes blob of compact JSON records with an offset
array (about 150 bytes an entry), and decoded only when a lookup touches
them; every lookup goes through an index built at load time. A reload builds
a new Directory and swaps it in whole.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import orjson
from rapidfuzz.distance import OSA

from sendguard.core.directory.index import DeletionIndex, MultiMap, salt_of, skey
from sendguard.core.directory.records import PROFESSIONAL_KINDS, Kind
from sendguard.core.normalise.email import split_address

__all__ = [
    "KIND_CODES",
    "LINK_SLOTS",
    "Address",
    "Directory",
    "DirectoryStats",
    "Email",
    "Entry",
    "Names",
    "NearEmail",
    "Number",
    "ref_key",
]

KIND_CODES: tuple[Kind, ...] = tuple(Kind)


# Entries and their parts are named tuples rather than frozen dataclasses:
# just as immutable, and built three times faster, which matters because
# every lookup decodes the entries it touches.


class Email(NamedTuple):
    address: str
    current: bool


class Number(NamedTuple):
    key: int  # E.164 digits as an int
    system: str  # "fax" | "phone"
    current: bool


class Address(NamedTuple):
    text: str  # the lines as written, joined with ", "
    postcode: str | None
    current: bool
    use: str


class Names(NamedTuple):
    """What an entry is called: enough to match a written name against it."""

    kind: Kind
    given: tuple[str, ...]
    family: str
    org_name: str


class Entry(NamedTuple):
    """One decoded directory entry; `index` is its number in the directory
    (the field hides tuple.index, which nothing here uses)."""

    index: int  # type: ignore[assignment]
    id: str
    kind: Kind
    nhs_number: str | None
    ods_code: str | None
    given: tuple[str, ...]
    family: str
    prefix: tuple[str, ...]
    org_name: str
    emails: tuple[Email, ...]
    numbers: tuple[Number, ...]
    addresses: tuple[Address, ...]
    gps: tuple[int, ...] = ()
    contacts: tuple[int, ...] = ()
    patients: tuple[int, ...] = ()
    organizations: tuple[int, ...] = ()
    practitioners: tuple[int, ...] = ()
    roles: tuple[int, ...] = ()

    @property
    def professional(self) -> bool:
        return self.kind in PROFESSIONAL_KINDS

    @property
    def person_name(self) -> str:
        return " ".join((*self.given, self.family)).strip()

    @property
    def label(self) -> str:
        """How findings name this entry: professionals by name, private
        people by kind and id only (minimum patient data)."""
        if self.kind is Kind.ORGANIZATION:
            return self.org_name or self.id
        if self.kind in (Kind.PRACTITIONER, Kind.ROLE):
            title = " ".join(self.prefix)
            name = " ".join(p for p in (title, self.person_name) if p)
            return f"{name} ({self.org_name})" if self.org_name else (name or self.id)
        if self.kind is Kind.CONTACT:
            return f"a contact of another patient ({self.id})"
        return f"another patient ({self.id})"

    def current_emails(self) -> list[str]:
        return [e.address for e in self.emails if e.current]

    def current_numbers(self, system: str | None = None) -> list[int]:
        return [n.key for n in self.numbers if n.current and (system is None or n.system == system)]


@dataclass(frozen=True, slots=True)
class NearEmail:
    """A directory address a few edits from a query."""

    address: str
    distance: int
    entries: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class DirectoryStats:
    entries: int
    by_kind: dict[str, int]
    emails: int
    numbers: int
    addresses: int
    domains: int
    index_bytes: int
    record_bytes: int
    warnings: int


def ref_key(ref: str) -> str:
    """Normal form of a reference used in the id index.

    "ods:b82005" and "ODS:B82005" are the same; ids keep their case.
    """
    scheme, sep, rest = ref.partition(":")
    if sep and scheme.lower() in ("ods", "nhs"):
        return f"{scheme.lower()}:{rest.replace(' ', '').upper()}"
    return ref


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class Directory:
    """Patients, contacts, clinicians and organisations, with their indexes."""

    as_of: int  # date ordinal: periods that ended before it are previous
    kinds: npt.NDArray[np.int8]
    offsets: npt.NDArray[np.int64]
    blob: bytes | memoryview
    link_offsets: npt.NDArray[np.int64]  # CSR: links of entry i are [off[i], off[i+1])
    link_targets: npt.NDArray[np.int32]
    link_kinds: npt.NDArray[np.int8]  # index into LINK_SLOTS
    refs: MultiMap  # hash(ref_key) -> entry
    emails: MultiMap  # hash(address) -> entry
    numbers: MultiMap  # E.164 int -> entry (fax and phone)
    names: MultiMap  # hash(name key) -> entry
    places: MultiMap  # hash(postcode|premise) -> entry
    near_all: DeletionIndex  # local parts within 1 edit, blocked by domain
    near_pro: DeletionIndex  # professionals' local parts within 2 edits
    near_fax: DeletionIndex  # fax numbers' digits within 1 edit
    domains: dict[str, tuple[int, int]]  # domain -> (entries, professional entries)
    warnings: tuple[str, ...] = ()
    keep: object = None  # what the arrays view (a memory map), kept alive with them
    _cache: dict[int, Entry] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.kinds)

    def on(self, day_ordinal: int) -> Directory:
        """The same directory judged as of another day (which periods ended)."""
        if day_ordinal == self.as_of:
            return self
        return dataclasses.replace(self, as_of=day_ordinal, _cache={})

    # -- entries ---------------------------------------------------------
    def entry(self, i: int) -> Entry:
        cached = self._cache.get(i)
        if cached is not None:
            return cached
        e = _decode(i, KIND_CODES[self.kinds[i]], self._record(i), self._links(i), self.as_of)
        if e.kind in (Kind.ROLE, Kind.PRACTITIONER) and (not e.family or not e.org_name):
            e = self._borrow_names(e)
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[i] = e
        return e

    def _links(self, i: int) -> list[list[int]]:
        """Entry i's links, one list per LINK_SLOTS slot, without repeats."""
        lo, hi = self.link_offsets[i : i + 2].tolist()
        links: list[list[int]] = [[] for _ in LINK_SLOTS]
        if hi > lo:
            for t, k in zip(
                self.link_targets[lo:hi].tolist(), self.link_kinds[lo:hi].tolist(), strict=True
            ):
                if t not in links[k]:
                    links[k].append(t)
        return links

    def names_of(self, i: int) -> Names:
        """How entry i is named, as `entry(i)` would say, read from records
        alone: name matching runs over every entry linked to a send and
        needs nothing else of them."""
        cached = self._cache.get(i)
        if cached is not None:
            return Names(cached.kind, cached.given, cached.family, cached.org_name)
        given, family, _, org_name = self._named(i, set())
        return Names(KIND_CODES[self.kinds[i]], given, family, org_name)

    def _borrow_names(self, e: Entry) -> Entry:
        """A role is named after its practitioner and organisation."""
        given, family, prefix, org_name = self._named(e.index, set())
        return e._replace(given=given, family=family, prefix=prefix, org_name=org_name)

    def _named(self, i: int, seen: set[int]) -> tuple[tuple[str, ...], str, tuple[str, ...], str]:
        """(given, family, prefix, organisation name) of entry i, a role or
        practitioner borrowing what it lacks from the practitioner and
        organisation it links to, and those from theirs. Read from records
        alone (decoding whole entries tripled a role's cost); `seen`, the
        entries already on this path, stops a loop of links."""
        r = self._record(i)
        given, family, prefix, org_name = tuple(r[3]), r[4], tuple(r[5]), r[6]
        kind = KIND_CODES[self.kinds[i]]
        if kind in (Kind.ROLE, Kind.PRACTITIONER) and (not family or not org_name):
            path = seen | {i}
            links = self._links(i)
            lent = [j for j in links[_PRACTITIONERS][:1] if j not in path]
            if not family and lent:
                given, family, prefix, _ = self._named(lent[0], path)
            lent = [j for j in links[_ORGANIZATIONS][:1] if j not in path]
            if not org_name and lent:
                org_name = self._named(lent[0], path)[3]
        return given, family, prefix, org_name

    def entries(self, idxs: Iterable[int]) -> list[Entry]:
        return [self.entry(i) for i in idxs]

    def __iter__(self) -> Iterator[Entry]:
        return (self.entry(i) for i in range(len(self)))

    def kind(self, i: int) -> Kind:
        return KIND_CODES[int(self.kinds[i])]

    def is_professional(self, i: int) -> bool:
        return KIND_CODES[self.kinds[i]] in PROFESSIONAL_KINDS

    # -- exact lookups ---------------------------------------------------
    def find(self, ref: str) -> list[int]:
        """Entries a reference names: a directory id, NHS number or ODS code.

        Bare ten-digit NHS numbers and bare ODS codes are accepted too.
        """
        ref = ref.strip()
        if not ref:
            return []
        key = ref_key(ref)
        hits = self._confirm_ref(key, self.refs.get(skey(key)))
        if hits:
            return hits
        compact = ref.replace(" ", "").replace("-", "")
        if compact.isdigit() and len(compact) == 10:
            return self._confirm_ref(f"nhs:{compact}", self.refs.get(skey(f"nhs:{compact}")))
        if ":" not in ref:
            ods = f"ods:{compact.upper()}"
            return self._confirm_ref(ods, self.refs.get(skey(ods)))
        return []

    def _confirm_ref(self, key: str, idxs: list[int]) -> list[int]:
        out = []
        for i in idxs:
            e = self.entry(i)
            if (
                key == e.id
                or (e.nhs_number and key == f"nhs:{e.nhs_number}")
                or (e.ods_code and key == f"ods:{e.ods_code}")
            ):
                out.append(i)
        return out

    def by_email(self, address: str) -> list[int]:
        return [i for i in self.emails.get(skey(address)) if self._has_email(i, address)]

    def _has_email(self, i: int, address: str) -> bool:
        return address in self.emails_of(i)

    def emails_of(self, i: int) -> list[str]:
        """Entry i's email addresses, current and ended.

        Read straight from the record, without building the entry: fuzzy
        lookups confirm many candidates and need only these (a fifth of the
        cost of `entry`, and nothing borrowed from linked entries).
        """
        cached = self._cache.get(i)
        if cached is not None:
            return [e.address for e in cached.emails]
        return [a for a, _ in self._record(i)[7]]

    def numbers_of(self, i: int) -> list[Number]:
        """Entry i's phone and fax numbers, read like `emails_of`."""
        cached = self._cache.get(i)
        if cached is not None:
            return list(cached.numbers)
        as_of = self.as_of
        return [Number(k, s, not e or e >= as_of) for k, s, e in self._record(i)[8]]

    def _record(self, i: int) -> list[Any]:
        start, end = self.offsets[i : i + 2].tolist()
        return orjson.loads(self.blob[start:end])  # type: ignore[no-any-return]

    def by_number(self, key: int) -> list[int]:
        return [i for i in self.numbers.get(key) if any(n.key == key for n in self.numbers_of(i))]

    def fax_numbers_near(self, key: int) -> list[int]:
        """Entries that hold (or held) a fax number that may be one keying
        slip from `key`; the caller confirms each. A superset of those whose
        digits are one edit away, adjacent swaps included."""
        return self.near_fax.candidates(str(key), 0)

    def by_name(self, key: str) -> list[int]:
        return self.names.get(skey(key))

    def by_place(self, key: str) -> list[int]:
        return self.places.get(skey(key))

    def domain_support(self, domain: str) -> tuple[int, int]:
        """(entries, professional entries) with an address at `domain`."""
        return self.domains.get(domain, (0, 0))

    # -- fuzzy lookups ---------------------------------------------------
    def near_emails(self, address: str, *, max_edits: int = 2) -> list[NearEmail]:
        """Directory addresses within `max_edits` (OSA) of `address`, same domain.

        Professionals are found up to two edits away, everyone else up to one
        (a dense directory makes two-edit neighbours of strangers common).
        """
        local, domain = split_address(address)
        # both indexes are blocked by domain: skip the ones that hold nothing there
        everyone, professionals = self.domain_support(domain)
        if not everyone:
            return []
        salt = salt_of(domain)
        cands = set(self.near_all.candidates(local, salt))
        if max_edits >= 2 and professionals:
            cands.update(self.near_pro.candidates(local, salt))
        owners: dict[str, list[int]] = {}
        dist: dict[str, int] = {}
        for i in sorted(cands):
            limit = max_edits if self.is_professional(i) else min(1, max_edits)
            for em in self.emails_of(i):
                if em == address:
                    continue
                if em not in dist:
                    l2, d2 = split_address(em)
                    dist[em] = (
                        max_edits + 1
                        if d2 != domain
                        else OSA.distance(local, l2, score_cutoff=max_edits)
                    )
                if dist[em] <= limit:
                    owners.setdefault(em, []).append(i)
        return sorted(
            (NearEmail(a, dist[a], tuple(dict.fromkeys(owners[a]))) for a in owners),
            key=lambda n: (n.distance, n.address),
        )

    # -- relations -------------------------------------------------------
    def family(self, i: int) -> set[int]:
        """Entries that act for entry i: a practitioner with their roles and
        those roles' organisations, an organisation with its roles, a role
        with its practitioner and organisation."""
        e = self.entry(i)
        out = {i}
        if e.kind is Kind.PRACTITIONER:
            out.update(e.roles)
            for r in e.roles:
                out.update(self.entry(r).organizations)
            out.update(e.organizations)
        elif e.kind is Kind.ORGANIZATION:
            out.update(e.roles)
        elif e.kind is Kind.ROLE:
            out.update(e.practitioners)
            out.update(e.organizations)
        return out

    def linked(self, patient: int) -> set[int]:
        """The patient, their contacts and everyone acting as their GP."""
        e = self.entry(patient)
        out = {patient, *e.contacts}
        for g in e.gps:
            out |= self.family(g)
        return out

    def patients_of(self, i: int) -> set[int]:
        """The patients an entry is, or is a private contact of."""
        e = self.entry(i)
        if e.kind is Kind.PATIENT:
            return {i}
        if e.kind is Kind.CONTACT:
            return set(e.patients)
        return set()

    # -- reporting -------------------------------------------------------
    def stats(self) -> DirectoryStats:
        counts = np.bincount(self.kinds, minlength=len(KIND_CODES))
        return DirectoryStats(
            entries=len(self),
            by_kind={k.value: int(c) for k, c in zip(KIND_CODES, counts, strict=True)},
            emails=len(self.emails),
            numbers=len(self.numbers),
            addresses=len(self.places),
            domains=len(self.domains),
            index_bytes=sum(
                m.nbytes
                for m in (
                    self.refs,
                    self.emails,
                    self.numbers,
                    self.names,
                    self.places,
                    self.near_all,
                    self.near_pro,
                    self.near_fax,
                )
            )
            + sum(
                int(a.nbytes)
                for a in (
                    self.offsets,
                    self.kinds,
                    self.link_offsets,
                    self.link_targets,
                    self.link_kinds,
                )
            ),
            record_bytes=len(self.blob),
            warnings=len(self.warnings),
        )


LINK_SLOTS = ("gps", "contacts", "patients", "organizations", "practitioners", "roles")
_ORGANIZATIONS = LINK_SLOTS.index("organizations")
_PRACTITIONERS = LINK_SLOTS.index("practitioners")


def encode_record(
    *,
    id: str,
    nhs_number: str | None,
    ods_code: str | None,
    given: Iterable[str],
    family: str,
    prefix: Iterable[str],
    org_name: str,
    emails: Iterable[tuple[str, int]],
    numbers: Iterable[tuple[int, str, int]],
    addresses: Iterable[tuple[str, str | None, int, str]],
) -> bytes:
    """Compact JSON for one entry's own data (the inverse of `_decode`).

    The ints are end dates as ordinals (0: no end), so whether something
    is current is decided at lookup time from the directory's `as_of`.
    """
    return orjson.dumps(
        [
            id,
            nhs_number or "",
            ods_code or "",
            list(given),
            family,
            list(prefix),
            org_name,
            [[a, e] for a, e in emails],
            [[k, s, e] for k, s, e in numbers],
            [[t, p or "", e, u] for t, p, e, u in addresses],
        ]
    )


@lru_cache(maxsize=64)
def _system(s: str) -> str:
    return s


def _decode(i: int, kind: Kind, r: list[Any], links: list[list[int]], as_of: int) -> Entry:
    """The entry an `encode_record` record `r` (parsed) and its links describe."""
    # positional and with list comprehensions: this runs for every entry a
    # lookup touches, and keywords and generators cost a third of it
    return Entry(
        i,
        r[0],
        kind,
        r[1] or None,
        r[2] or None,
        tuple(r[3]),
        r[4],
        tuple(r[5]),
        r[6],
        tuple([Email(a, not e or e >= as_of) for a, e in r[7]]),
        tuple([Number(k, _system(s), not e or e >= as_of) for k, s, e in r[8]]),
        tuple(
            [Address(t, p or None, u != "old" and (not e or e >= as_of), u) for t, p, e, u in r[9]]
        ),
        tuple(links[0]),
        tuple(links[1]),
        tuple(links[2]),
        tuple(links[3]),
        tuple(links[4]),
        tuple(links[5]),
    )
