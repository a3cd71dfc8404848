"""Phone and fax numbers: parsing with phonenumbers, UK by default.

`parse_phone` is for the number being sent to (validity and type matter).
`phone_key` is for directory numbers: a fast digit-only normal form (the
E.164 digits as an int) that agrees with phonenumbers for UK and
international numbers, so a million entries load in seconds. Both read UK
numbers written the usual ways without phonenumbers' generic machinery, and
agree with the library exactly (tests/unit/test_phone_fast_path.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cache, lru_cache

import phonenumbers
from phonenumbers import (
    NumberParseException,
    PhoneMetadata,
    PhoneNumberDesc,
    PhoneNumberFormat,
    PhoneNumberType,
)

__all__ = [
    "PhoneKind",
    "PhoneNumber",
    "PhoneSyntaxError",
    "format_international",
    "parse_phone",
    "phone_key",
]


class PhoneSyntaxError(ValueError):
    """The text cannot be read as a phone number; `str()` says why."""


class PhoneKind(StrEnum):
    FIXED_LINE = "fixed_line"
    MOBILE = "mobile"
    FIXED_LINE_OR_MOBILE = "fixed_line_or_mobile"
    TOLL_FREE = "toll_free"
    PREMIUM_RATE = "premium_rate"
    SHARED_COST = "shared_cost"
    VOIP = "voip"
    PERSONAL = "personal"
    PAGER = "pager"
    UAN = "uan"
    VOICEMAIL = "voicemail"
    UNKNOWN = "unknown"


_KINDS = {
    PhoneNumberType.FIXED_LINE: PhoneKind.FIXED_LINE,
    PhoneNumberType.MOBILE: PhoneKind.MOBILE,
    PhoneNumberType.FIXED_LINE_OR_MOBILE: PhoneKind.FIXED_LINE_OR_MOBILE,
    PhoneNumberType.TOLL_FREE: PhoneKind.TOLL_FREE,
    PhoneNumberType.PREMIUM_RATE: PhoneKind.PREMIUM_RATE,
    PhoneNumberType.SHARED_COST: PhoneKind.SHARED_COST,
    PhoneNumberType.VOIP: PhoneKind.VOIP,
    PhoneNumberType.PERSONAL_NUMBER: PhoneKind.PERSONAL,
    PhoneNumberType.PAGER: PhoneKind.PAGER,
    PhoneNumberType.UAN: PhoneKind.UAN,
    PhoneNumberType.VOICEMAIL: PhoneKind.VOICEMAIL,
}


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    """A parsed number. `key` is the E.164 digits as an int (the index key)."""

    e164: str
    country_code: int
    national: str
    valid: bool
    kind: PhoneKind

    @property
    def key(self) -> int:
        return int(self.e164[1:])


def parse_phone(text: str, region: str = "GB") -> PhoneNumber:
    """Parse a number as dialled from `region`.

    Raises PhoneSyntaxError when the text is not a number at all; a number
    that parses but is not valid comes back with `valid=False`. UK numbers
    written the usual ways take `_parse_uk_fast`, which gives what
    phonenumbers would at a fraction of the cost (this is most of a fax
    check); anything else goes through the library.
    """
    if len(text) > 64:
        raise PhoneSyntaxError("the number is too long to be a phone number")
    if region == "GB":
        fast = _parse_uk_fast(text)
        if fast is not None:
            return fast
    return _parse_with_library(text, region)


def _parse_with_library(text: str, region: str) -> PhoneNumber:
    """parse_phone through phonenumbers, for any number (and the reference
    the UK fast path is tested against)."""
    try:
        n = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        raise PhoneSyntaxError(_parse_error_text(exc)) from None
    # A number is valid exactly when it has a type (is_valid_number works the
    # type out itself): one pass over the metadata instead of two.
    national = str(n.national_number)
    if n.italian_leading_zero:
        national = "0" * (n.number_of_leading_zeros or 1) + national
    return _phone_number(n.country_code or 0, national, phonenumbers.number_type(n))


def _phone_number(country_code: int, national: str, number_type: int) -> PhoneNumber:
    """The one place both paths turn a phonenumbers type into a PhoneNumber."""
    valid = number_type != PhoneNumberType.UNKNOWN
    kind = _KINDS.get(number_type, PhoneKind.UNKNOWN) if valid else PhoneKind.UNKNOWN
    return PhoneNumber(
        e164=f"+{country_code}{national}",
        country_code=country_code,
        national=national,
        valid=valid,
        kind=kind,
    )


def _parse_error_text(exc: NumberParseException) -> str:
    reasons = {
        NumberParseException.INVALID_COUNTRY_CODE: "the country code is not valid",
        NumberParseException.NOT_A_NUMBER: "it is not a phone number",
        NumberParseException.TOO_SHORT_AFTER_IDD: "it is too short",
        NumberParseException.TOO_SHORT_NSN: "it is too short",
        NumberParseException.TOO_LONG: "it is too long",
    }
    return reasons.get(exc.error_type, "it is not a phone number")


_SEPARATORS = re.compile(r"[\s\-./]+")
# Group 1: the digits after the country code as dialled (a trunk 0 or "(0)"
# included); group 2: the national significant number phone_key reads.
_UK_PLUS = re.compile(r"\+44((?:\(0\))?0?(\d{9,10}))")
_UK_IDD = re.compile(r"0044((?:\(0\))?0?(\d{9,10}))")
_UK_TRUNK = re.compile(r"(0(\d{9,10}))")
_NEEDS_LIBRARY = re.compile(r"[^\d+()]")


def _uk_written(text: str) -> tuple[str, str] | None:
    """(digits after +44 as dialled, national significant number) for a UK
    number written the usual ways (0113 496 0000, +44 (0)113 4960000,
    0044 ...), or None when only phonenumbers can tell."""
    compact = _SEPARATORS.sub("", text)
    if _NEEDS_LIBRARY.search(compact.replace("(0)", "")):
        return None
    plain = compact.replace("(", "").replace(")", "") if "(0)" not in compact else compact
    for pattern in (_UK_PLUS, _UK_IDD, _UK_TRUNK):
        m = pattern.fullmatch(plain)
        if m is not None:
            return m.group(1).replace("(0)", "0"), m.group(2)
    return None


def phone_key(text: str, region: str = "GB") -> int | None:
    """The E.164 digits of a directory number as an int, or None if it is
    not a phone number at all.

    A number on file is matched as written, valid or not (a fax to an
    invalid number is refused when it is checked). UK numbers written in
    the usual ways take a regex fast path; anything else (other countries,
    extensions, letters) goes through phonenumbers.
    """
    if region == "GB":
        written = _uk_written(text)
        if written is not None:
            return int("44" + written[1])
    try:
        return parse_phone(text, region).key
    except PhoneSyntaxError:
        return None


# -- the UK fast path of parse_phone -------------------------------------------
#
# phonenumbers spends most of a parse in generic machinery (recompiling or
# looking up metadata patterns, trying GB, GG, IM and JE in turn). For text
# that `_uk_written` reads, the steps that matter are few: strip the national
# prefix the way `parse` does, pick the region the way `region_code_for_number`
# does, and type the number the way `_number_type_helper` does. Those steps
# are mirrored here over the library's own metadata, compiled once, so the
# answers track library upgrades; whatever the mirror is not sure of goes to
# the library.

# Text made only of these (after trimming whitespace, which parse ignores at
# either end) reaches phonenumbers' digit handling unchanged: no letters,
# extensions, RFC 3966 parameters, non-ASCII digits or odd whitespace.
_UK_TEXT = re.compile(r"[0-9+() ./\-]+")


@dataclass(frozen=True, slots=True)
class _Desc:
    """A PhoneNumberDesc as `_is_number_matching_desc` reads it."""

    lengths: frozenset[int]
    pattern: re.Pattern[str] | None

    @classmethod
    def of(cls, desc: PhoneNumberDesc | None) -> _Desc:
        if desc is None:
            return cls(frozenset(), None)  # a missing desc matches nothing
        return cls(frozenset(desc.possible_length), _compiled(desc.national_number_pattern))

    def matches(self, nsn: str) -> bool:
        if self.lengths and len(nsn) not in self.lengths:
            return False
        return self.pattern is not None and self.pattern.fullmatch(nsn) is not None


def _compiled(pattern: str | None) -> re.Pattern[str] | None:
    """An empty or missing metadata pattern matches nothing, as in the library."""
    return re.compile(pattern) if pattern else None


@dataclass(frozen=True, slots=True)
class _RegionTypes:
    """One region's metadata as `_region_code_for_number_from_list` and
    `_number_type_helper` read it."""

    leading_digits: re.Pattern[str] | None
    general: _Desc
    special: tuple[tuple[_Desc, int], ...]  # premium rate ... voicemail, in the library's order
    fixed_line: _Desc
    mobile: _Desc
    same_mobile_and_fixed_line: bool

    @classmethod
    def of(cls, metadata: PhoneMetadata, one_of_several: bool) -> _RegionTypes:
        """With a single region for the country code the library takes it
        without looking at its leading digits."""
        leading = metadata.leading_digits if one_of_several else None
        t = PhoneNumberType
        special = (
            (metadata.premium_rate, t.PREMIUM_RATE),
            (metadata.toll_free, t.TOLL_FREE),
            (metadata.shared_cost, t.SHARED_COST),
            (metadata.voip, t.VOIP),
            (metadata.personal_number, t.PERSONAL_NUMBER),
            (metadata.pager, t.PAGER),
            (metadata.uan, t.UAN),
            (metadata.voicemail, t.VOICEMAIL),
        )
        return cls(
            # Even an empty pattern decides the region (it matches anything).
            leading_digits=None if leading is None else re.compile(leading),
            general=_Desc.of(metadata.general_desc),
            # Descs with no pattern never match: leaving them out saves time only.
            special=tuple(
                (_Desc.of(d), kind)
                for d, kind in special
                if d is not None and d.national_number_pattern
            ),
            fixed_line=_Desc.of(metadata.fixed_line),
            mobile=_Desc.of(metadata.mobile),
            same_mobile_and_fixed_line=metadata.same_mobile_and_fixed_line_pattern,
        )

    def number_type(self, nsn: str) -> int:
        if not self.general.matches(nsn):
            return PhoneNumberType.UNKNOWN
        for desc, number_type in self.special:
            if desc.matches(nsn):
                return number_type
        if self.fixed_line.matches(nsn):
            if self.same_mobile_and_fixed_line or self.mobile.matches(nsn):
                return PhoneNumberType.FIXED_LINE_OR_MOBILE
            return PhoneNumberType.FIXED_LINE
        if not self.same_mobile_and_fixed_line and self.mobile.matches(nsn):
            return PhoneNumberType.MOBILE
        return PhoneNumberType.UNKNOWN


@dataclass(frozen=True, slots=True)
class _UkPlan:
    """What `parse` and `number_type` read of the metadata for +44."""

    national_prefix: re.Pattern[str] | None
    general: re.Pattern[str] | None
    lengths: tuple[int, ...]
    local_lengths: tuple[int, ...]
    regions: tuple[_RegionTypes, ...]

    def national_number(self, dialled: str) -> str:
        """The national number `parse` keeps of the digits after +44: its
        `_maybe_strip_national_prefix_carrier_code` (no transform rule) and
        the length check that decides whether the stripped form is kept."""
        m = self.national_prefix.match(dialled) if self.national_prefix else None
        if m is None:
            return dialled
        rest = dialled[m.end() :]
        if self._viable(dialled) and not self._viable(rest):
            return dialled
        return rest if self._length_allows_stripping(len(rest)) else dialled

    def _viable(self, number: str) -> bool:
        return self.general is not None and self.general.fullmatch(number) is not None

    def _length_allows_stripping(self, n: int) -> bool:
        """`_test_number_length` on the general desc is neither TOO_SHORT,
        IS_POSSIBLE_LOCAL_ONLY nor INVALID_LENGTH."""
        if n in self.local_lengths:
            return False
        if n == self.lengths[0]:
            return True
        if n < self.lengths[0]:
            return False
        return n > self.lengths[-1] or n in self.lengths[1:]

    def number_type(self, nsn: str) -> int:
        """`number_type`: the region as `region_code_for_number` picks it
        (leading digits if the region has them, else a known type), then
        that region's type."""
        for region in self.regions:
            if region.leading_digits is not None:
                if region.leading_digits.match(nsn):
                    return region.number_type(nsn)
            else:
                number_type = region.number_type(nsn)
                if number_type != PhoneNumberType.UNKNOWN:
                    return number_type
        return PhoneNumberType.UNKNOWN


@cache
def _uk_plan() -> _UkPlan | None:
    """The +44 metadata compiled once, or None (always use the library) when
    it is not shaped the way the fast path assumes: GB the main region for
    44, 00 its international prefix, no national prefix transform rule, and
    no country code 4 that "+44" or "0044" could be read as instead."""
    gb = PhoneMetadata.metadata_for_region("GB", None)
    if (
        gb is None
        or gb.country_code != 44
        or gb.international_prefix != "00"
        or gb.national_prefix_transform_rule
        or gb.general_desc is None
        or not gb.general_desc.possible_length
        or phonenumbers.region_code_for_country_code(44) != "GB"
        or phonenumbers.region_codes_for_country_code(4)
    ):
        return None
    codes = phonenumbers.region_codes_for_country_code(44)
    regions = []
    for code in codes:
        metadata = PhoneMetadata.metadata_for_region(code.upper(), None)
        if metadata is None:
            continue  # the library skips it too
        regions.append(_RegionTypes.of(metadata, one_of_several=len(codes) > 1))
    return _UkPlan(
        national_prefix=_compiled(gb.national_prefix_for_parsing),
        general=_compiled(gb.general_desc.national_number_pattern),
        lengths=tuple(gb.general_desc.possible_length),
        local_lengths=tuple(gb.general_desc.possible_length_local_only),
        regions=tuple(regions),
    )


def _parse_uk_fast(text: str) -> PhoneNumber | None:
    """parse_phone(text, "GB") without phonenumbers' generic machinery, or
    None when the library has to decide (not written the usual UK ways, a
    national number with a leading zero, or the library would strip the
    national prefix differently from phone_key's reading)."""
    if _UK_TEXT.fullmatch(text.strip()) is None:
        return None
    written = _uk_written(text)
    plan = _uk_plan()
    if written is None or plan is None:
        return None
    dialled, nsn = written
    if nsn[0] == "0" or plan.national_number(dialled) != nsn:
        return None
    return _phone_number(44, nsn, plan.number_type(nsn))


@lru_cache(maxsize=4096)
def format_international(key: int) -> str:
    """Readable form of an index key, e.g. +44 113 496 0000."""
    digits = str(key)
    for size in (1, 2, 3):  # country codes are one to three digits
        cc = int(digits[:size])
        if phonenumbers.region_code_for_country_code(cc) != "ZZ":
            n = phonenumbers.PhoneNumber(country_code=cc, national_number=int(digits[size:] or 0))
            return phonenumbers.format_number(n, PhoneNumberFormat.INTERNATIONAL)
    return f"+{digits}"
