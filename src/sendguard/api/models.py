"""Request and response bodies of the HTTP API.

The check requests mirror the `Guard.check_email|fax|letter` arguments, so
a practice system that moves from the library to HTTP (or back) sends the
same values under the same names. Unknown fields are refused (422), so a
misspelt `patinet` is an error rather than a silently unchecked patient.
Bounds on lengths keep one request's work proportionate; the body limit
(`[api] max_body`) caps it overall.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    field_validator,
)
from pydantic.json_schema import WithJsonSchema

from sendguard.core.models import Header, Verdict

__all__ = [
    "EmailCheck",
    "ErrorBody",
    "FaxCheck",
    "HealthBody",
    "HeldVerdict",
    "LetterCheck",
    "Recipient",
    "ReloadBody",
]

Text = Annotated[str, StringConstraints(max_length=1000)]


def _number_as_text(v: Any) -> Any:
    """A JSON number as its digits (an NHS number or fax number sent as a
    number); 2.0 is an integer to JSON Schema, so it is taken too."""
    if isinstance(v, bool):
        return v
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v) if isinstance(v, int) else v


def _schema(max_length: int) -> dict[str, Any]:
    return {"anyOf": [{"type": "string", "maxLength": max_length}, {"type": "integer"}]}


FaxNumber = Annotated[
    str,
    BeforeValidator(_number_as_text),
    StringConstraints(max_length=100),
    WithJsonSchema(_schema(100)),
]
MAX_REFS, MAX_REF = 50, 200


def _refs(v: Any) -> str | list[str] | None:
    """`patient`: one reference or a list, each a string or a number; kept
    as given (a string may list several, "a, b", as in the library)."""
    if v is None:
        return None
    items = v if isinstance(v, list) else [v]
    if len(items) > MAX_REFS:
        raise ValueError(f"at most {MAX_REFS} references")
    out = []
    for item in items:
        item = _number_as_text(item)
        if not isinstance(item, str):
            raise ValueError("a reference is a string (directory id, NHS number) or a number")
        if len(item) > MAX_REF:
            raise ValueError(f"a reference is at most {MAX_REF} characters")
        out.append(item)
    return out if isinstance(v, list) else out[0]


# One validator for the whole field rather than a union of types, so that an
# error points at `patient` itself.
Refs = Annotated[
    str | list[str] | None,
    PlainValidator(_refs),
    WithJsonSchema(
        {
            "anyOf": [
                *_schema(MAX_REF)["anyOf"],
                {"type": "array", "items": _schema(MAX_REF), "maxItems": MAX_REFS},
                {"type": "null"},
            ]
        }
    ),
]
MAX_RECIPIENTS = 1000


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Recipient(_Body):
    """One email recipient with its display name and the header it is in."""

    address: Annotated[str, StringConstraints(max_length=1000)]
    name: Text = ""
    header: Literal["to", "cc", "bcc", "envelope"] = "to"

    @field_validator("header", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v

    def spec(self) -> dict[str, str]:
        return {"address": self.address, "name": self.name, "header": Header(self.header).value}


RecipientIn = Annotated[str, StringConstraints(max_length=10_000)] | Recipient


class EmailCheck(_Body):
    """`Guard.check_email`: recipients (with their headers), sender, the
    patient(s) it concerns, and the content that may name patients."""

    recipients: Annotated[list[RecipientIn], Field(min_length=1, max_length=MAX_RECIPIENTS)] = (
        Field(
            description='"To: Jane Smith <j@x.org>", "Cc: ...", "Bcc: ...", a bare address '
            '(To), or {"address", "name", "header": to|cc|bcc|envelope}'
        )
    )
    sender: Text = ""
    patient: Refs = Field(
        default=None, description="the patient(s) it concerns: directory id or NHS number"
    )
    subject: Text = ""
    body: str | Annotated[list[str], Field(max_length=100)] = Field(
        default="", description="text of the message (or of each text part)"
    )
    attachments: Annotated[list[Text], Field(max_length=100)] = Field(
        default_factory=list, description="attachment file names"
    )
    history: Annotated[list[Text], Field(max_length=MAX_RECIPIENTS)] = Field(
        default_factory=list, description="addresses the sender has written to before"
    )
    secure: bool = Field(default=False, description="the subject carries a [secure] tag")


# An http(s) URL with a host (a DNS name, IPv4 or [IPv6] address), an optional
# port up to 65535, and printable ASCII after it; no user name or password.
# The schema publishes the same pattern, so generated "valid" values are valid.
# Where the host may be is checked after this, against [api] callback_networks
# (review.callbacknet: it needs a DNS lookup, which a validator must not make).
_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
CALLBACK_PATTERN = (
    r"^[Hh][Tt][Tt][Pp][Ss]?://(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
    rf"(?::{_PORT})?(?:[/?#][!-~]*)?$"
)
_CALLBACK_RE = re.compile(CALLBACK_PATTERN)
MAX_CALLBACK_URL = 2000


def _callback_url(v: Any) -> str | None:
    if v is None:
        return None
    if not isinstance(v, str) or len(v) > MAX_CALLBACK_URL or not _CALLBACK_RE.fullmatch(v):
        raise ValueError(
            "an http:// or https:// URL with a host name, at most "
            f"{MAX_CALLBACK_URL} characters, without a user name or password"
        )
    return v


CallbackUrl = Annotated[
    str | None,
    PlainValidator(_callback_url),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "maxLength": MAX_CALLBACK_URL, "pattern": CALLBACK_PATTERN},
                {"type": "null"},
            ],
            "description": "called (POST, JSON) once a person decides on the hold: the "
            "decision only (hold id, kind, status, decided_by, decided_at, reason). Its host "
            "must resolve only to addresses in the server's [api] callback_networks (422 "
            "otherwise; none are allowed unless configured)",
        }
    ),
]


class _HoldOptions(_Body):
    """What happens to a fax or letter the verdict holds."""

    hold: bool = Field(
        default=True,
        description="keep a held send in the quarantine for a person to decide (the answer's "
        "`hold_id`); false: advice only, nothing is stored",
    )
    callback_url: CallbackUrl = None


class FaxCheck(_HoldOptions):
    """`Guard.check_fax`: the number to be dialled and whom it is meant for."""

    number: FaxNumber
    intended: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        default=None, description="the contact the fax is for: directory id or ODS code"
    )
    patient: Refs = None
    sender: Text = ""


class LetterCheck(_HoldOptions):
    """`Guard.check_letter`: addressee and postal address (text or lines)."""

    addressee: Text
    address: (
        Annotated[str, StringConstraints(max_length=2000)]
        | Annotated[list[Text], Field(max_length=20)]
    )
    patient: Refs = None
    intended: Annotated[str, StringConstraints(max_length=200)] | None = None
    sender: Text = ""


class HeldVerdict(Verdict):
    """A fax or letter verdict: the library's `Verdict` JSON plus `hold_id`."""

    hold_id: str | None = Field(
        description="the hold kept for a person to decide (poll GET /v1/held/{hold_id}); "
        "null unless the action is hold and the request did not say hold=false"
    )


class ErrorBody(BaseModel):
    detail: str


class ReloadBody(BaseModel):
    """What a successful reload put in use."""

    status: Literal["reloaded"] = "reloaded"
    entries: int
    rules: int
    seconds: float


class HealthPart(BaseModel):
    ok: bool
    entries: int | None = None
    error: str | None = None


class HealthBody(BaseModel):
    """`ok` or `failing`, and each part; never data, only counts and error kinds."""

    status: Literal["ok", "failing"]
    checks: dict[str, HealthPart]
