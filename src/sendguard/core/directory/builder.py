"""Turn raw records into a Directory: check, link, normalise, index.

The builder streams: each record is normalised and encoded as it is added,
so a million-entry source never sits in memory as Python objects. Links
are resolved at the end, when every target has been seen. `build()` either
returns a complete Directory or raises DirectoryError with every problem
found (file, record, field), so a reload never leaves a half directory in
place. Conflicting duplicates (one id with different content, one NHS number
or ODS code on two entries) are errors, never merged; identical repeats are
dropped.
"""

from __future__ import annotations

from array import array
from collections import defaultdict
from collections.abc import Iterable
from datetime import date

import numpy as np
import orjson

from sendguard.core.directory.directory import (
    KIND_CODES,
    LINK_SLOTS,
    Directory,
    encode_record,
    ref_key,
)
from sendguard.core.directory.index import DeletionIndex, MultiMap, salt_of, skey
from sendguard.core.directory.records import (
    PROFESSIONAL_KINDS,
    DirectoryError,
    Kind,
    LinkKind,
    Problem,
    RawEntry,
)
from sendguard.core.normalise.email import EmailSyntaxError, parse_email
from sendguard.core.normalise.names import name_key
from sendguard.core.normalise.nhs import normalise_nhs_number
from sendguard.core.normalise.phone import phone_key
from sendguard.core.normalise.postal import find_postcode, parse_postcode, place_key

__all__ = ["DirectoryBuilder", "build_directory"]

_KIND_CODE = {k: i for i, k in enumerate(KIND_CODES)}
_SLOT = {name: i for i, name in enumerate(LINK_SLOTS)}
_LINK_SLOT = {
    LinkKind.GP: _SLOT["gps"],
    LinkKind.CONTACT_OF: _SLOT["patients"],
    LinkKind.ORGANIZATION: _SLOT["organizations"],
    LinkKind.PRACTITIONER: _SLOT["practitioners"],
}


class DirectoryBuilder:
    """Collects entries one by one; `build()` compiles the Directory."""

    def __init__(self, *, as_of: date, region: str = "GB", max_problems: int = 1000) -> None:
        self.as_of = as_of
        self.region = region
        self.max_problems = max_problems
        self.problems: list[Problem] = []
        self.warnings: list[str] = []
        self._index_of: dict[int, int] = {}  # hash(id) -> entry
        self._ids_seen = 0
        self._alias: dict[str, int] = {}
        self._ods: dict[str, int] = {}
        self._kinds = array("b")
        self._nhs = array("q")
        self._blob = bytearray()
        self._offsets = array("q", [0])
        self._files: list[str] = []
        self._file_at: dict[str, int] = {}
        self._file_of = array("H")  # source file of each entry, for messages
        # links: (source entry, slot, resolved target or -1, pending ref index)
        self._link_src = array("i")
        self._link_slot = array("b")
        self._link_dst = array("i")
        self._pending_refs: list[tuple[str, str]] = []  # (ref, field) of unresolved links
        self._link_ref = array("i")
        self._keys: dict[str, tuple[array[int], array[int]]] = {
            name: (array("Q"), array("i"))
            for name in ("refs", "emails", "numbers", "names", "places")
        }
        self._locals: list[str] = []
        self._salts = array("Q")
        self._local_vals = array("i")
        self._pro_at = array("q")
        self._fax_digits: list[str] = []  # every fax number (current or not), as digits
        self._fax_vals = array("i")
        self._salt_cache: dict[str, int] = {}
        self._domains: dict[str, list[int]] = defaultdict(lambda: [0, 0])

    # -- adding ------------------------------------------------------------
    def fail(self, p: Problem) -> None:
        self.problems.append(p)
        if len(self.problems) >= self.max_problems:
            raise DirectoryError(self.problems)

    def add_all(self, entries: Iterable[RawEntry]) -> None:
        for e in entries:
            self.add(e)

    def add(self, r: RawEntry) -> None:
        i = len(self._kinds)
        record, emails, numbers, places, nhs, ods = self._normalise(r)
        if record is None:
            return
        hid = hash(r.id)
        j = self._index_of.get(hid)
        if j is not None:
            if self._record(j) != record:
                self.fail(
                    r.problem(
                        "id",
                        f"conflicting duplicate of {r.id} (first in "
                        f"{self._where(j)}); entries are never merged",
                    )
                )
            return
        self._index_of[hid] = i
        for a in r.aliases:
            self._alias.setdefault(a, i)
        if ods:
            j = self._ods.setdefault(ods, i)
            if j != i:
                self.fail(r.problem("identifier", f"ODS code {ods} is also on {self._where(j)}"))
        self._kinds.append(_KIND_CODE[r.kind])
        self._nhs.append(int(nhs) if nhs else -1)
        self._blob += record
        self._offsets.append(len(self._blob))
        fi = self._file_at.get(r.file)
        if fi is None:
            fi = self._file_at[r.file] = len(self._files)
            self._files.append(r.file)
        self._file_of.append(fi)
        self._put("refs", skey(r.id), i)
        if nhs:
            self._put("refs", skey(f"nhs:{nhs}"), i)
        if ods:
            self._put("refs", skey(f"ods:{ods}"), i)
        pro = r.kind in PROFESSIONAL_KINDS
        for local, domain, address in emails:
            self._put("emails", skey(address), i)
            salt = self._salt_cache.get(domain)
            if salt is None:
                salt = self._salt_cache[domain] = salt_of(domain)
            if pro:
                self._pro_at.append(len(self._locals))
            self._locals.append(local)
            self._salts.append(salt)
            self._local_vals.append(i)
            counts = self._domains[domain]
            counts[0] += 1
            counts[1] += pro
        for key, system in numbers:
            self._put("numbers", key, i)
            if system == "fax":
                self._fax_digits.append(str(key))
                self._fax_vals.append(i)
        for place in places:
            self._put("places", skey(place), i)
        if r.kind is not Kind.ORGANIZATION:
            nk = name_key(r.given, r.family)
            if nk:
                self._put("names", skey(nk), i)
        for link in r.links:
            if link.kind is LinkKind.PART_OF:
                continue
            self._link_src.append(i)
            self._link_slot.append(_LINK_SLOT[link.kind])
            target = self._index_of.get(hash(link.ref))
            self._link_dst.append(-1 if target is None else target)
            if target is None:
                self._link_ref.append(len(self._pending_refs))
                self._pending_refs.append((link.ref, link.field))
            else:
                self._link_ref.append(-1)

    def _put(self, name: str, key: int, i: int) -> None:
        k, v = self._keys[name]
        k.append(key)
        v.append(i)

    def _record(self, i: int) -> bytes:
        return bytes(self._blob[self._offsets[i] : self._offsets[i + 1]])

    def _id(self, i: int) -> str:
        return str(orjson.loads(self._record(i))[0])

    def _where(self, i: int) -> str:
        """Where entry i came from, for messages: its file and id."""
        return f"{self._files[self._file_of[i]]} {self._id(i)}".strip()

    def _normalise(
        self, r: RawEntry
    ) -> tuple[
        bytes | None,
        list[tuple[str, str, str]],
        list[tuple[int, str]],
        list[str],
        str | None,
        str | None,
    ]:
        """Encode one entry; report bad fields. Returns (record, emails
        (local, domain, address), number keys with their system, place keys,
        NHS, ODS)."""
        before = len(self.problems)
        nhs = None
        if r.nhs_number:
            nhs = normalise_nhs_number(r.nhs_number)
            if nhs is None:
                self.fail(r.problem("identifier", "not a valid NHS number (Modulus 11)"))
        ods = r.ods_code.strip().upper() if r.ods_code else None
        emails: list[tuple[str, int]] = []
        email_keys: list[tuple[str, str, str]] = []
        numbers: list[tuple[int, str, int]] = []
        for t in r.telecoms:
            end = t.end.toordinal() if t.end else 0
            if t.system == "email":
                try:
                    addr = parse_email(t.value)
                except EmailSyntaxError as exc:
                    self.fail(r.problem(t.field, f"not a usable email address: {exc}"))
                    continue
                a = addr.address
                if all(a != e for e, _ in emails):
                    emails.append((a, end))
                    email_keys.append((addr.local, addr.domain, a))
            else:
                key = phone_key(t.value, self.region)
                if key is None:
                    self.fail(r.problem(t.field, f"not a usable {t.system} number: {t.value!r}"))
                    continue
                if all(key != k or s != t.system for k, s, _ in numbers):
                    numbers.append((key, t.system, end))
        addresses: list[tuple[str, str | None, int, str]] = []
        places: list[str] = []
        for ad in r.addresses:
            lines = [x.strip() for x in ad.lines if x.strip()]
            postcode = parse_postcode(ad.postcode) if ad.postcode else None
            if ad.postcode and postcode is None:
                self.warnings.append(
                    f"{r.file} {r.record or r.id} {ad.field}: "
                    f"postcode {ad.postcode!r} is not a UK postcode"
                )
            if postcode is None:
                postcode = find_postcode(" ".join(lines))
            elif postcode.replace(" ", "") not in "".join(lines).upper().replace(" ", ""):
                lines.append(postcode)
            text = ", ".join(lines)
            addresses.append((text, postcode, ad.end.toordinal() if ad.end else 0, ad.use))
            if postcode:
                places.append(place_key(lines, postcode))
        if len(self.problems) > before:
            return None, [], [], [], None, None
        record = encode_record(
            id=r.id,
            nhs_number=nhs,
            ods_code=ods,
            given=r.given,
            family=r.family,
            prefix=r.prefix,
            org_name=r.org_name,
            emails=emails,
            numbers=numbers,
            addresses=addresses,
        )
        return record, email_keys, [(k, s) for k, s, _ in numbers], places, nhs, ods

    # -- building ------------------------------------------------------------
    def _resolve(self, ref: str) -> int | None:
        j = self._index_of.get(hash(ref))
        if j is None:
            j = self._alias.get(ref)
        if j is None:
            key = ref_key(ref)
            if key.startswith("ods:"):
                j = self._ods.get(key[4:])
            elif key.startswith("nhs:") and key[4:].isdigit():
                hits = np.nonzero(np.frombuffer(self._nhs, dtype=np.int64) == int(key[4:]))[0]
                j = int(hits[0]) if len(hits) else None
            elif "/" in ref:  # an absolute URL ending in Type/id
                j = self._index_of.get(hash("/".join(ref.rstrip("/").split("/")[-2:])))
            else:  # a bare code, as CSV files write them
                j = self._ods.get(ref.strip().upper())
        return j

    def build(self) -> Directory:
        n = len(self._kinds)
        nhs = np.frombuffer(self._nhs, dtype=np.int64) if n else np.zeros(0, np.int64)
        order = np.argsort(nhs, kind="stable")
        sorted_nhs = nhs[order]
        for d in np.nonzero((sorted_nhs[1:] == sorted_nhs[:-1]) & (sorted_nhs[1:] >= 0))[
            0
        ].tolist():
            a, b = int(order[d]), int(order[d + 1])
            self.problems.append(
                Problem(
                    self._files[self._file_of[b]],
                    self._id(b),
                    "identifier",
                    f"NHS number is also on {self._id(a)}; entries are never merged",
                )
            )
        if self.problems:
            raise DirectoryError(self.problems)

        # Resolve links; add the reverse of contact and role links. Repeats
        # (a GP named twice) are left for the decoder to drop.
        resolved: dict[int, int | None] = {}
        src = array("i")
        slot = array("b")
        dst = array("i")
        role = _KIND_CODE[Kind.ROLE]
        patients, contacts = _SLOT["patients"], _SLOT["contacts"]
        upward = (_SLOT["organizations"], _SLOT["practitioners"])
        roles = _SLOT["roles"]
        for a, s, b, p in zip(
            self._link_src, self._link_slot, self._link_dst, self._link_ref, strict=True
        ):
            if b < 0:
                if p not in resolved:
                    resolved[p] = self._resolve(self._pending_refs[p][0])
                target = resolved[p]
                if target is None:
                    ref, fld = self._pending_refs[p]
                    self.warnings.append(
                        f"{self._where(a)} {fld}: reference {ref} is not in the directory"
                    )
                    continue
                b = target
            src.append(a)
            slot.append(s)
            dst.append(b)
            if s == patients:
                src.append(b)
                slot.append(contacts)
                dst.append(a)
            elif self._kinds[a] == role and s in upward:
                src.append(b)
                slot.append(roles)
                dst.append(a)
        src_a = np.frombuffer(src, dtype=np.int32) if len(src) else np.zeros(0, np.int32)
        order = np.argsort(src_a, kind="stable")
        link_offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(src_a, minlength=n), out=link_offsets[1:])
        self._index_of.clear()

        def multimap(name: str, dtype: type = np.uint64) -> MultiMap:
            k, v = self._keys.pop(name)
            return MultiMap.from_arrays(
                np.frombuffer(k, dtype=dtype) if len(k) else np.zeros(0, dtype),
                np.frombuffer(v, dtype=np.int32) if len(v) else np.zeros(0, np.int32),
            )

        # Build the big deletion index first and let its inputs go, so the
        # peak stays near twice the final size.
        salts = np.frombuffer(self._salts, dtype=np.uint64) if n else np.zeros(0, np.uint64)
        vals = np.frombuffer(self._local_vals, dtype=np.int32) if n else np.zeros(0, np.int32)
        pro = np.frombuffer(self._pro_at, dtype=np.int64) if n else np.zeros(0, np.int64)
        near_pro = DeletionIndex.build(
            [self._locals[j] for j in pro.tolist()], salts[pro], vals[pro], k=2
        )
        near_all = DeletionIndex.build(self._locals, salts, vals, k=1)
        self._locals, self._salts, self._local_vals = [], array("Q"), array("i")
        near_fax = DeletionIndex.build(
            self._fax_digits,
            np.zeros(len(self._fax_digits), dtype=np.uint64),
            np.frombuffer(self._fax_vals, dtype=np.int32)
            if self._fax_vals
            else np.zeros(0, np.int32),
            k=1,
        )
        self._fax_digits, self._fax_vals = [], array("i")
        links_to = np.frombuffer(dst, dtype=np.int32) if len(dst) else np.zeros(0, np.int32)
        links_kind = np.frombuffer(slot, dtype=np.int8) if len(slot) else np.zeros(0, np.int8)
        return Directory(
            as_of=self.as_of.toordinal(),
            kinds=np.frombuffer(self._kinds, dtype=np.int8) if n else np.zeros(0, np.int8),
            offsets=np.frombuffer(self._offsets, dtype=np.int64),
            blob=memoryview(self._blob),  # handed over, not copied
            link_offsets=link_offsets,
            link_targets=links_to[order],
            link_kinds=links_kind[order],
            refs=multimap("refs"),
            emails=multimap("emails"),
            numbers=multimap("numbers"),
            names=multimap("names"),
            places=multimap("places"),
            near_all=near_all,
            near_pro=near_pro,
            near_fax=near_fax,
            domains={d: (c[0], c[1]) for d, c in self._domains.items()},
            warnings=tuple(self.warnings),
        )


def build_directory(
    raw_entries: Iterable[RawEntry], *, as_of: date, region: str = "GB", max_problems: int = 1000
) -> Directory:
    """Build a directory as of a date (which decides which periods ended)."""
    b = DirectoryBuilder(as_of=as_of, region=region, max_problems=max_problems)
    b.add_all(raw_entries)
    return b.build()
