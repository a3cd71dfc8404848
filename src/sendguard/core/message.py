"""Read an RFC 5322 / MIME message into the parts checks look at.

Bytes in, data out: recipients from To/Cc/Bcc with display names, the
subject, decoded text parts (HTML reduced to text), attachment names and
the `X-Sendguard-Patient` header. It never raises: whatever cannot be read
is listed in `problems`, and the engine holds such a message (fail safe).

The structure is read with the standard library's `compat32` policy and only
the headers checks need are decoded (RFC 2047 words, RFC 2231 parameters,
raw UTF-8). `policy.default` builds a header object for every header and
costs five to ten times as much per message, which the relay pays on every
mail it passes.
"""

from __future__ import annotations

import codecs
import html
import inspect
import re
from dataclasses import dataclass, field
from email import policy
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses

from sendguard.core.models import EmailRecipient, Header

__all__ = ["ParsedMessage", "decode_header_text", "parse_message"]

_TAG = re.compile(r"<[^>]*>")
_SCRIPT = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_PATIENT_SPLIT = re.compile(r"[,;\s]+")
_EMPTY_GROUP = re.compile(r"^[^:@<>]*:\s*;\s*$")
_STRICT_PARSING = "strict" in inspect.signature(getaddresses).parameters
_COMMENT = re.compile(r"\([^()]*\)")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_FAST = BytesParser(policy=policy.compat32)
_CAREFUL = BytesParser(policy=policy.default)


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    recipients: tuple[EmailRecipient, ...] = ()
    sender: str = ""
    subject: str = ""
    texts: tuple[str, ...] = ()
    attachment_names: tuple[str, ...] = ()
    patients: tuple[str, ...] = ()
    message_id: str = ""
    problems: tuple[str, ...] = field(default_factory=tuple)


def parse_message(raw: bytes, *, max_text: int = 1_000_000) -> ParsedMessage:
    """Parse a whole message; `max_text` bounds how much text is kept."""
    try:
        msg = _FAST.parsebytes(raw)
        if not _is_plain(msg):
            msg = _CAREFUL.parsebytes(raw)
    except Exception as exc:  # the parser is lenient; anything here is exotic
        return ParsedMessage(problems=(f"the message cannot be parsed ({type(exc).__name__})",))
    return _read(msg, max_text)


def _is_plain(msg: Message) -> bool:
    """True when the quick reading is as good as the careful one: no part has
    a parse defect (a lost boundary, a broken header) and every header is
    7-bit (raw 8-bit or RFC 2047 text the quick path decodes itself)."""
    for part in msg.walk():
        if part.defects:
            return False
        for _, value in part.raw_items():
            if not isinstance(value, str) or not value.isascii():
                return False
    return True


def _read(msg: Message, max_text: int) -> ParsedMessage:
    problems: list[str] = []
    recipients: list[EmailRecipient] = []
    for name, header in (("to", Header.TO), ("cc", Header.CC), ("bcc", Header.BCC)):
        for display, addr in _addresses(msg, name, problems):
            if addr:
                recipients.append(EmailRecipient(address=addr, display_name=display, header=header))
    subject = " ".join(decode_header_text(v) for v in _raw_values(msg, "subject", problems))
    sender = next((a for _, a in _addresses(msg, "from", problems) if a), "")
    patients = tuple(
        p
        for v in _raw_values(msg, "x-sendguard-patient", problems)
        for p in _PATIENT_SPLIT.split(_unfold(v))
        if p
    )
    message_id = next(iter(_raw_values(msg, "message-id", problems)), "")
    message_id = _unfold(message_id).strip()
    texts: list[str] = []
    names: list[str] = []
    budget = max_text
    try:
        parts = list(msg.walk())
    except Exception as exc:
        parts = []
        problems.append(f"the MIME structure cannot be walked ({type(exc).__name__})")
    for part in parts:
        if part.is_multipart():
            continue
        filename = _filename(part, problems)
        if filename:
            names.append(filename)
        try:
            ctype = part.get_content_type()
            disposition = part.get_content_disposition()
        except Exception:
            problems.append("a part's content type cannot be read")
            continue
        if ctype not in ("text/plain", "text/html") or disposition == "attachment":
            continue
        if budget <= 0:
            continue
        text = _text_of(part, problems)
        if ctype == "text/html":
            text = html.unescape(_TAG.sub(" ", _SCRIPT.sub(" ", text)))
        texts.append(text[:budget])
        budget -= len(text)
    return ParsedMessage(
        recipients=tuple(recipients),
        sender=sender,
        subject=subject,
        texts=tuple(texts),
        attachment_names=tuple(names),
        patients=patients,
        message_id=message_id,
        problems=tuple(problems),
    )


def decode_header_text(value: str) -> str:
    """A header value as text: unfolded, raw UTF-8 read, RFC 2047 words decoded.

    Falls back to the undecoded text when an encoded word is broken: a
    checker would rather see `=?x?q?...?=` than nothing.
    """
    value = _unfold(_utf8(value))
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except (LookupError, UnicodeError, ValueError, TypeError, AssertionError):
        return value


def _unfold(value: str) -> str:
    return _FOLD.sub("", value)


def _utf8(value: str) -> str:
    """compat32 keeps raw 8-bit header bytes as surrogates; read them as UTF-8."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return value


def _raw_values(msg: Message, name: str, problems: list[str]) -> list[str]:
    try:
        values = msg.get_all(name) or []
    except Exception:
        problems.append(f"the {name} header cannot be read")
        return []
    out: list[str] = []
    for v in values:
        try:
            out.append(v if isinstance(v, str) else str(v))
        except Exception:
            problems.append(f"the {name} header cannot be decoded")
    return out


def _addresses(msg: Message, name: str, problems: list[str]) -> list[tuple[str, str]]:
    """(display name, address) pairs; encoded words are decoded after the
    split, so that a comma inside an encoded display name stays in it.

    Each header is read on its own, so one malformed header cannot hide the
    addresses of another; a header with text but no address that can be read
    is a problem (the message is held), except an empty group such as
    `undisclosed-recipients:;`."""
    out: list[tuple[str, str]] = []
    for value in _raw_values(msg, name, problems):
        value = _unfold(_utf8(value))
        try:
            pairs = [(d, a) for d, a in _getaddresses(value) if a]
        except Exception:
            problems.append(f"the {name} header cannot be decoded")
            continue
        if not pairs and value.strip() and not _EMPTY_GROUP.match(value):
            problems.append(f"the {name} header has no address that can be read")
        out.extend((_display(display), addr) for display, addr in pairs)
    return out


def _getaddresses(value: str) -> list[tuple[str, str]]:
    """`email.utils.getaddresses`, lenient: Python releases from 3.11.10 on
    parse strictly by default and then return nothing at all for a header
    with one flaw (a trailing comma), which would hide every recipient."""
    if _STRICT_PARSING:
        return getaddresses([value], strict=False)  # type: ignore[call-arg,unused-ignore]
    return getaddresses([value])


def _display(name: str) -> str:
    """A display name as a person reads it: decoded, comments dropped, spaces collapsed."""
    return " ".join(_COMMENT.sub(" ", decode_header_text(name)).split())


def _filename(part: Message, problems: list[str]) -> str | None:
    try:
        filename = part.get_filename()
    except Exception:
        problems.append("an attachment name cannot be read")
        return None
    if not filename:
        return None
    return decode_header_text(str(filename))


def _text_of(part: Message, problems: list[str]) -> str:
    try:
        payload = part.get_payload(decode=True)
    except Exception as exc:
        problems.append(f"a text part cannot be decoded ({type(exc).__name__})")
        return ""
    if not isinstance(payload, bytes):
        return ""
    charset = "utf-8"
    try:
        charset = part.get_content_charset("utf-8") or "utf-8"
        codecs.lookup(charset)
    except (LookupError, ValueError, TypeError):
        charset = "utf-8"  # unknown charset: read the bytes as UTF-8
    try:
        return payload.decode(charset, errors="replace")
    except (LookupError, UnicodeError, ValueError, TypeError):
        return payload.decode("utf-8", errors="replace")
