"""Email address syntax and normalisation.

email-validator is the authority (no DNS); a strict fast path handles plain
ASCII addresses, which are nearly all of them, in a fraction of the time.
The fast path accepts only a subset of what email-validator accepts and
normalises the same way (a property test guards that).

Matching is case-insensitive: the normal form lowercases the local part too,
because practice staff and directories never rely on case in mailbox names.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

__all__ = ["EmailAddress", "EmailSyntaxError", "email_key", "parse_email", "split_address"]

_ATEXT = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_FAST = re.compile(
    rf"(?P<local>{_ATEXT}+(?:\.{_ATEXT}+)*)@(?P<domain>(?:{_LABEL}\.)+[a-z]{{2,63}})",
)
_SPECIAL_TLDS = frozenset({"arpa", "invalid", "local", "localhost", "onion", "test"})


class EmailSyntaxError(ValueError):
    """The text is not a usable email address; `str()` says why."""


@dataclass(frozen=True, slots=True)
class EmailAddress:
    """A normalised address: lowercase local part, Unicode (IDN) domain."""

    local: str
    domain: str
    ascii_domain: str

    @property
    def address(self) -> str:
        return f"{self.local}@{self.domain}"

    def __str__(self) -> str:
        return self.address


def _fast(text: str) -> EmailAddress | None:
    lowered = text.lower()
    m = _FAST.fullmatch(lowered)
    if m is None or len(lowered) > 254:
        return None
    local, domain = m.group("local"), m.group("domain")
    if len(local) > 64:
        return None
    for label in domain.split("."):
        # "xn--" and other "??--" labels need IDNA rules: leave them to email-validator.
        if label[2:4] == "--":
            return None
    if domain.rsplit(".", 1)[1] in _SPECIAL_TLDS:
        return None
    return EmailAddress(local=local, domain=domain, ascii_domain=domain)


def parse_email(text: str) -> EmailAddress:
    """Validate and normalise one bare address (no display name).

    Raises EmailSyntaxError for anything email-validator refuses, and never
    any other exception, whatever the input.
    """
    text = text.strip()
    fast = _fast(text)
    if fast is not None:
        return fast
    if not text:
        raise EmailSyntaxError("the address is empty")
    try:
        v = validate_email(text, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise EmailSyntaxError(str(exc)) from None
    except (ValueError, UnicodeError) as exc:  # odd code points inside idna/unicodedata
        raise EmailSyntaxError(f"the address cannot be read: {exc}") from None
    local = unicodedata.normalize("NFC", v.local_part).lower()
    domain = unicodedata.normalize("NFC", v.domain).lower()
    return EmailAddress(local=local, domain=domain, ascii_domain=(v.ascii_domain or domain).lower())


def email_key(text: str) -> str | None:
    """The normal form of an address from a directory, or None if unusable."""
    try:
        return parse_email(text).address
    except EmailSyntaxError:
        return None


def split_address(address: str) -> tuple[str, str]:
    """Split a normalised address into local part and domain."""
    local, _, domain = address.rpartition("@")
    return local, domain
