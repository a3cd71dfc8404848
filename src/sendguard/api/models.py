"""Request and response bodies of the HTTP API.

The check requests mirror the `Guard.check_email|fax|letter` arguments, so
a practice system that moves from the library to HTTP (or back) sends the
same values under the same names. Unknown fields are refused (422), so a
misspelt `patinet` is an error rather than a silently unchecked patient.
Bounds on lengths keep one request's work proportionate; the body limit
(`[api] max_body`) caps it overall.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.json_schema import WithJsonSchema

from sendguard.core.models import Header

__all__ = [
    "EmailCheck",
    "ErrorBody",
    "FaxCheck",
    "HealthBody",
    "LetterCheck",
    "Recipient",
    "ReloadBody",
]

Text = Annotated[str, StringConstraints(max_length=1000)]


def _number_as_text(v: Any) -> Any:
    return str(v) if isinstance(v, int) and not isinstance(v, bool) else v


def _schema(max_length: int) -> WithJsonSchema:
    return WithJsonSchema(
        {"anyOf": [{"type": "string", "maxLength": max_length}, {"type": "integer"}]}
    )


# A string, or a JSON number taken as its digits (NHS numbers, fax numbers),
# as the library accepts; one type rather than a union, so that an error
# points at the field itself.
Ref = Annotated[
    str, BeforeValidator(_number_as_text), StringConstraints(max_length=200), _schema(200)
]
FaxNumber = Annotated[
    str, BeforeValidator(_number_as_text), StringConstraints(max_length=100), _schema(100)
]
Refs = Ref | Annotated[list[Ref], Field(max_length=50)] | None
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
RecipientList = Annotated[list[RecipientIn], Field(max_length=MAX_RECIPIENTS)]


class EmailCheck(_Body):
    """`Guard.check_email`: at least one recipient in `recipients`, `to`, `cc` or `bcc`."""

    recipients: RecipientList = Field(
        default_factory=list,
        description='"To: Jane Smith <j@x.org>", "Cc: ...", a bare address, '
        "or {address, name, header}",
    )
    to: RecipientList = Field(default_factory=list)
    cc: RecipientList = Field(default_factory=list)
    bcc: RecipientList = Field(default_factory=list)
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

    @model_validator(mode="after")
    def _someone(self) -> EmailCheck:
        n = len(self.recipients) + len(self.to) + len(self.cc) + len(self.bcc)
        if n == 0:
            raise ValueError("give at least one recipient (recipients, to, cc or bcc)")
        if n > MAX_RECIPIENTS:
            raise ValueError(f"at most {MAX_RECIPIENTS} recipients in one check")
        return self


class FaxCheck(_Body):
    """`Guard.check_fax`: the number to be dialled and whom it is meant for."""

    number: FaxNumber
    intended: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        default=None, description="the contact the fax is for: directory id or ODS code"
    )
    patient: Refs = None
    sender: Text = ""


class LetterCheck(_Body):
    """`Guard.check_letter`: addressee and postal address (text or lines)."""

    addressee: Text
    address: (
        Annotated[str, StringConstraints(max_length=2000)]
        | Annotated[list[Text], Field(max_length=20)]
    )
    patient: Refs = None
    intended: Annotated[str, StringConstraints(max_length=200)] | None = None
    sender: Text = ""


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
