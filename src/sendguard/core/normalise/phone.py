"""Phone and fax numbers: parsing with phonenumbers, UK by default.

`parse_phone` is for the number being sent to (validity and type matter).
`phone_key` is for directory numbers: a fast digit-only normal form (the
E.164 digits as an int) that agrees with phonenumbers for UK and
international numbers, so a million entries load in seconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

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
    that parses but is not valid comes back with `valid=False`.
    """
    if len(text) > 64:
        raise PhoneSyntaxError("the number is too long to be a phone number")
    try:
        n = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        raise PhoneSyntaxError(_parse_error_text(exc)) from None
    # A number is valid exactly when it has a type (is_valid_number works the
    # type out itself): one pass over the metadata instead of two, and the
    # larger part of a fax check's cost.
    number_type = phonenumbers.number_type(n)
    valid = number_type != PhoneNumberType.UNKNOWN
    kind = _KINDS.get(number_type, PhoneKind.UNKNOWN) if valid else PhoneKind.UNKNOWN
    national = str(n.national_number)
    if n.italian_leading_zero:
        national = "0" * (n.number_of_leading_zeros or 1) + national
    return PhoneNumber(
        e164=f"+{n.country_code}{national}",
        country_code=n.country_code or 0,
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
_UK_PLUS = re.compile(r"\+44(?:\(0\))?0?(\d{9,10})")
_UK_IDD = re.compile(r"0044(?:\(0\))?0?(\d{9,10})")
_UK_TRUNK = re.compile(r"0(\d{9,10})")
_NEEDS_LIBRARY = re.compile(r"[^\d+()]")


def phone_key(text: str, region: str = "GB") -> int | None:
    """The E.164 digits of a directory number as an int, or None if it is
    not a phone number at all.

    A number on file is matched as written, valid or not (a fax to an
    invalid number is refused when it is checked). UK numbers written in
    the usual ways take a regex fast path; anything else (other countries,
    extensions, letters) goes through phonenumbers.
    """
    compact = _SEPARATORS.sub("", text)
    if region == "GB" and not _NEEDS_LIBRARY.search(compact.replace("(0)", "")):
        plain = compact.replace("(", "").replace(")", "") if "(0)" not in compact else compact
        for pattern in (_UK_PLUS, _UK_IDD, _UK_TRUNK):
            m = pattern.fullmatch(plain)
            if m is not None:
                return int("44" + m.group(1))
    try:
        return parse_phone(text, region).key
    except PhoneSyntaxError:
        return None


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
