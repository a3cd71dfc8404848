"""Read an RFC 5322 / MIME message into the parts checks look at.

Bytes in, data out: recipients from To/Cc/Bcc with display names, the
subject, decoded text parts (HTML reduced to text), attachment names and
the `X-Sendguard-Patient` header. It never raises: whatever cannot be read
is listed in `problems`, and the engine holds such a message (fail safe).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses

from sendguard.core.models import EmailRecipient, Header

__all__ = ["ParsedMessage", "parse_message"]

_TAG = re.compile(r"<[^>]*>")
_SCRIPT = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_PATIENT_SPLIT = re.compile(r"[,;\s]+")


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
    problems: list[str] = []
    try:
        msg = BytesParser(policy=policy.default).parsebytes(raw)
    except Exception as exc:  # the parser is lenient; anything here is exotic
        return ParsedMessage(problems=(f"the message cannot be parsed ({type(exc).__name__})",))
    recipients: list[EmailRecipient] = []
    for name, header in (("to", Header.TO), ("cc", Header.CC), ("bcc", Header.BCC)):
        for value in _header_values(msg, name, problems):
            for display, addr in getaddresses([value]):
                if addr:
                    recipients.append(
                        EmailRecipient(address=addr, display_name=display, header=header)
                    )
    subject = " ".join(_header_values(msg, "subject", problems))
    sender = next((a for _, a in getaddresses(_header_values(msg, "from", problems)) if a), "")
    patients = tuple(
        p
        for v in _header_values(msg, "x-sendguard-patient", problems)
        for p in _PATIENT_SPLIT.split(v)
        if p
    )
    message_id = next(iter(_header_values(msg, "message-id", problems)), "").strip()
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
        try:
            filename = part.get_filename()
        except Exception:
            filename = None
            problems.append("an attachment name cannot be read")
        if filename:
            names.append(str(filename))
        ctype = part.get_content_type()
        if (
            ctype not in ("text/plain", "text/html")
            or part.get_content_disposition() == "attachment"
        ):
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


def _header_values(msg: Message, name: str, problems: list[str]) -> list[str]:
    """Header values as text; falls back to the raw value if decoding fails."""
    out: list[str] = []
    try:
        values = msg.get_all(name) or []
    except Exception:
        problems.append(f"the {name} header cannot be read")
        return out
    for v in values:
        try:
            out.append(str(v))
        except Exception:
            problems.append(f"the {name} header cannot be decoded")
    return out


def _text_of(part: Message, problems: list[str]) -> str:
    if isinstance(part, EmailMessage):
        try:
            content = part.get_content()
            if isinstance(content, str):
                return content
        except (LookupError, UnicodeError, ValueError, AssertionError):
            pass  # unknown charset or broken encoding: decode the bytes below
        except Exception as exc:
            problems.append(f"a text part cannot be decoded ({type(exc).__name__})")
            return ""
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if isinstance(payload, bytes):
        return payload.decode("utf-8", errors="replace")
    return ""
