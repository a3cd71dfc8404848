"""Values that flow through the engine: sends in, findings and a verdict out.

Sends are frozen dataclasses (cheap to build on the hot path); findings and the
verdict are frozen pydantic models because their JSON is a public contract
shared by the library, the CLI and the HTTP API.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ACTION_RANK",
    "Action",
    "Channel",
    "EmailRecipient",
    "EmailSend",
    "FaxSend",
    "Finding",
    "Header",
    "LetterSend",
    "Send",
    "Severity",
    "Verdict",
    "strictest",
]


class Action(StrEnum):
    """What happens to a send, from most to least permissive."""

    ALLOW = "allow"
    WARN = "warn"
    HOLD = "hold"
    REJECT = "reject"


ACTION_RANK: dict[Action, int] = {a: i for i, a in enumerate(Action)}


def strictest(actions: Iterable[Action]) -> Action:
    """The strictest of some actions; `allow` when there are none."""
    best = Action.ALLOW
    for a in actions:
        if ACTION_RANK[a] > ACTION_RANK[best]:
            best = a
    return best


class Channel(StrEnum):
    EMAIL = "email"
    FAX = "fax"
    LETTER = "letter"


class Severity(StrEnum):
    """How strong the evidence behind a finding is.

    `high`: the recipient is near or equal to someone linked to this send (the
    patient, their contacts, the intended contact, a professional contact).
    `low`: a near miss to an unrelated entry, weak evidence in a dense directory.
    Rules may map severities to different actions.
    """

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Header(StrEnum):
    """Where an email recipient appears."""

    TO = "to"
    CC = "cc"
    BCC = "bcc"
    ENVELOPE = "envelope"


@dataclass(frozen=True, kw_only=True, slots=True)
class EmailRecipient:
    address: str
    display_name: str = ""
    header: Header = Header.TO


@dataclass(frozen=True, kw_only=True, slots=True)
class EmailSend:
    """One outbound email.

    `patients` are references (directory id or NHS number) the caller says
    the message concerns; the engine adds any it finds in the content.
    `problems` lists what went wrong parsing the message, if anything.
    `history` holds normalised addresses the sender has written to before.
    """

    recipients: tuple[EmailRecipient, ...]
    sender: str = ""
    patients: tuple[str, ...] = ()
    subject: str = ""
    texts: tuple[str, ...] = ()
    attachment_names: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    history: frozenset[str] = field(default_factory=frozenset)
    secure_tagged: bool = False

    @property
    def channel(self) -> Channel:
        return Channel.EMAIL


@dataclass(frozen=True, kw_only=True, slots=True)
class FaxSend:
    number: str
    intended: str | None = None
    patients: tuple[str, ...] = ()
    sender: str = ""

    @property
    def channel(self) -> Channel:
        return Channel.FAX


@dataclass(frozen=True, kw_only=True, slots=True)
class LetterSend:
    addressee: str
    address: str
    intended: str | None = None
    patients: tuple[str, ...] = ()
    sender: str = ""

    @property
    def channel(self) -> Channel:
        return Channel.LETTER


Send = EmailSend | FaxSend | LetterSend


class Finding(BaseModel):
    """One reason a send looks wrong, with the action its rule assigned."""

    model_config = ConfigDict(frozen=True)

    code: str
    severity: Severity = Severity.HIGH
    recipient: str | None = None
    message: str
    suggestion: str | None = None
    rule: str = ""
    action: Action = Action.ALLOW
    monitor: bool = False


class Verdict(BaseModel):
    """The decision about one send: the strictest action over its findings.

    `recipients` gives each recipient's own action (findings about that
    recipient plus findings about the whole send), so a relay can forward to
    clean recipients and hold only the rest when configured to.
    """

    model_config = ConfigDict(frozen=True)

    action: Action
    channel: Channel
    findings: Annotated[list[Finding], Field(default_factory=list)]
    recipients: Annotated[dict[str, Action], Field(default_factory=dict)]

    def action_for(self, recipient: str) -> Action:
        """The action for one recipient; the whole verdict's if unknown."""
        return self.recipients.get(recipient, self.action)
