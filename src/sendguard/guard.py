"""`Guard`: the Python entry point that loads a directory and rules and checks sends.

It owns the I/O the core must not do (reading files, today's date) and
holds one Engine, swapped whole on reload so that a check in flight always
sees one consistent directory and rule set. A failed reload raises and
leaves the previous engine in place.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from email.utils import getaddresses
from pathlib import Path
from typing import Any

from sendguard.config import Config, load_config
from sendguard.core.directory import Directory
from sendguard.core.engine import Engine, Trace
from sendguard.core.message import ParsedMessage, parse_message
from sendguard.core.models import (
    EmailRecipient,
    EmailSend,
    FaxSend,
    Header,
    LetterSend,
    Send,
    Verdict,
)
from sendguard.core.rules import RuleSet
from sendguard.sources import load_or_build, load_rules, shipped_rules_dir

__all__ = ["Guard", "RecipientSpec", "parse_recipients"]

PathLike = str | os.PathLike[str]
RecipientSpec = str | EmailRecipient | dict[str, str]
_NEEDS_PARSER = re.compile(r'[<>,;"()]')
_HEADER_PREFIX = re.compile(r"^\s*(to|cc|bcc|envelope)\s*:\s*(.*)$", re.IGNORECASE | re.DOTALL)
# One `Name <address>` or `"Quoted, Name" <address>` with nothing unusual in
# it: what getaddresses would return, without its tokenizer (a fifth of a
# named recipient's check). Anything else goes to getaddresses. Words and
# the blanks between them are disjoint, so a match or a miss is linear in
# the length of the text (a pattern that let blanks fall to either side
# took seconds on a few thousand of them).
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_WORD = r'[^ \t()<>@,:;"\[\]\\\r\n]+'
_SIMPLE_NAMED = re.compile(
    rf'[ \t]*(?:(?:"(?P<quoted>[^"\\\r\n]*)"|(?P<plain>{_WORD}(?:[ \t]+{_WORD})*))[ \t]*)?'
    rf"<(?P<address>{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)>[ \t]*"
)
_BLANKS = re.compile(r"[ \t]+")


def parse_recipients(items: Iterable[RecipientSpec] | str) -> list[EmailRecipient]:
    """Recipients from the forms callers use.

    "To: Jane Smith <j@x.org>, b@y.org", "Cc: ...", "Bcc: ...", a bare
    address, an EmailRecipient, or {"address": ..., "name": ..., "header": ...}.
    Unprefixed strings are To recipients.
    """
    if isinstance(items, str):
        items = [items]
    out: list[EmailRecipient] = []
    for item in items:
        if isinstance(item, EmailRecipient):
            out.append(item)
            continue
        if isinstance(item, dict):
            out.append(
                EmailRecipient(
                    address=str(item.get("address", "")),
                    display_name=str(item.get("name") or item.get("display_name") or ""),
                    header=Header(str(item.get("header", "to")).lower()),
                )
            )
            continue
        header = Header.TO
        text = str(item)
        m = _HEADER_PREFIX.match(text)
        if m:
            header, text = Header(m.group(1).lower()), m.group(2)
        if not _NEEDS_PARSER.search(text):  # a bare address: no name, no list
            out.append(EmailRecipient(address=text.strip(), header=header))
            continue
        simple = _SIMPLE_NAMED.fullmatch(text)
        if simple is not None:
            name = simple["quoted"]
            if name is None:
                name = _BLANKS.sub(" ", simple["plain"] or "")
            out.append(EmailRecipient(address=simple["address"], display_name=name, header=header))
            continue
        pairs = [(n, a) for n, a in getaddresses([text]) if a]
        if not pairs or (len(pairs) == 1 and "@" not in pairs[0][1]):
            out.append(
                EmailRecipient(address=text.strip(), header=header)
            )  # let the checks say why
        else:
            out.extend(EmailRecipient(address=a, display_name=n, header=header) for n, a in pairs)
    return out


PatientRefs = str | int | Sequence[str | int] | None


def _refs(value: PatientRefs) -> tuple[str, ...]:
    """References as given: one, a list, or "a, b"; NHS numbers may be ints."""
    if value is None:
        return ()
    if isinstance(value, int):
        return (str(value),)
    if isinstance(value, str):
        return tuple(p for p in re.split(r"[,;]\s*", value) if p.strip())
    return tuple(str(v) for v in value)


@dataclass(frozen=True, slots=True)
class _Sources:
    directory: tuple[Path, ...]
    snapshot: Path | None
    rules: tuple[Path, ...] | None
    local_rules: tuple[Path, ...]
    region: str
    as_of: date | None


class Guard:
    """Checks emails, faxes and letters against the directory and rules."""

    def __init__(
        self, engine: Engine, sources: _Sources | None = None, config: Config | None = None
    ) -> None:
        self._engine = engine
        self._sources = sources
        self._lock = threading.Lock()
        self.config = config

    # -- loading -----------------------------------------------------------
    @classmethod
    def load(
        cls,
        config: PathLike | Config | None = None,
        *,
        directory: PathLike | Sequence[PathLike] | Directory | None = None,
        rules: PathLike | Sequence[PathLike] | RuleSet | None = None,
        local_rules: PathLike | Sequence[PathLike] = (),
        region: str | None = None,
        as_of: date | None = None,
    ) -> Guard:
        """Load from a config file, or from directory files and rule folders.

        `directory`: FHIR JSON/NDJSON or CSV files or folders (or a built
        Directory). `rules`: rule folders/files replacing the shipped
        defaults; `local_rules`: folders/files merged over them. Arguments
        given here win over the config file.
        """
        cfg = config if isinstance(config, Config) else load_config(config)
        reg = region or cfg.directory.region
        dir_paths: tuple[Path, ...] = ()
        snap: Path | None = None
        if isinstance(directory, Directory):
            built = directory
        else:
            if directory is None:  # the config's sources, through its snapshot
                dir_paths, snap = tuple(cfg.directory.sources), cfg.directory.snapshot
            else:
                dir_paths = tuple(map(Path, _paths(directory)))
            built = load_or_build(dir_paths, snap, as_of=as_of, region=reg)
        local_paths = (
            tuple(map(Path, _paths(local_rules)))
            or tuple(cfg.rules.local)
            or _default_local_rules()
        )
        if isinstance(rules, RuleSet):
            ruleset, rule_paths = rules, None
        else:
            rule_paths = (
                tuple(map(Path, _paths(rules)))
                if rules is not None
                else (tuple(cfg.rules.defaults) if cfg.rules.defaults is not None else None)
            )
            ruleset = load_rules(rule_paths, local_paths)
        sources = _Sources(dir_paths, snap, rule_paths, local_paths, reg, as_of)
        return cls(Engine(built, ruleset, region=reg), sources, cfg)

    def reload(self, *, directory: bool = True, rules: bool = True) -> Engine:
        """Rebuild from the same sources and swap in; raises (keeping the old
        engine) if anything is wrong with the new directory or rules."""
        if self._sources is None:
            raise RuntimeError("this Guard was built from objects, not files; nothing to reload")
        src = self._sources
        with self._lock:
            old = self._engine
            built = (
                load_or_build(src.directory, src.snapshot, as_of=src.as_of, region=src.region)
                if directory and (src.directory or src.snapshot)
                else old.directory
            )
            ruleset = load_rules(src.rules, src.local_rules) if rules else old.rules
            new = Engine(built, ruleset, region=src.region)
            self._engine = new
        return new

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def directory(self) -> Directory:
        return self._engine.directory

    @property
    def rules(self) -> RuleSet:
        return self._engine.rules

    # -- checking ----------------------------------------------------------
    def check(self, send: Send, trace: Trace | None = None) -> Verdict:
        return self._engine.evaluate(send, trace)

    def check_email(
        self,
        recipients: Iterable[RecipientSpec] | str = (),
        *,
        to: Iterable[RecipientSpec] | str = (),
        cc: Iterable[RecipientSpec] | str = (),
        bcc: Iterable[RecipientSpec] | str = (),
        sender: str = "",
        patient: PatientRefs = None,
        subject: str = "",
        body: str | Sequence[str] = "",
        attachments: Sequence[str] = (),
        history: Iterable[str] = (),
        secure: bool = False,
    ) -> Verdict:
        """Check an email before it is sent.

        `recipients` may carry their header ("Cc: ..."); `to`, `cc` and `bcc`
        say it instead. `patient`: the patient(s) it concerns (directory id
        or NHS number); NHS numbers in the subject, body and attachment names
        are found too. `history`: addresses the sender has written to before.
        """
        listed = parse_recipients(recipients)
        for header, items in ((Header.TO, to), (Header.CC, cc), (Header.BCC, bcc)):
            listed += [replace(r, header=header) for r in parse_recipients(items)]
        send = EmailSend(
            recipients=tuple(listed),
            sender=sender,
            patients=_refs(patient),
            subject=subject,
            texts=(body,) if isinstance(body, str) else tuple(body),
            attachment_names=tuple(attachments),
            history=frozenset(map(str.lower, history)),
            secure_tagged=secure,
        )
        return self.check(send)

    def email_send(
        self,
        raw: bytes,
        *,
        envelope_recipients: Sequence[str] = (),
        sender: str = "",
        history: Iterable[str] = (),
    ) -> tuple[EmailSend, ParsedMessage]:
        """The send a raw message amounts to: header recipients (with display
        names), plus envelope recipients not in the headers (as Bcc)."""
        msg = parse_message(raw)
        recipients = list(msg.recipients)
        listed = {r.address.lower() for r in recipients}
        for rcpt in envelope_recipients:
            if rcpt.lower() not in listed:
                recipients.append(EmailRecipient(address=rcpt, header=Header.ENVELOPE))
        send = EmailSend(
            recipients=tuple(recipients),
            sender=sender or msg.sender,
            patients=msg.patients,
            subject=msg.subject,
            texts=msg.texts,
            attachment_names=msg.attachment_names,
            problems=msg.problems,
            history=frozenset(map(str.lower, history)),
        )
        return send, msg

    def check_message(
        self,
        raw: bytes,
        *,
        envelope_recipients: Sequence[str] = (),
        sender: str = "",
        history: Iterable[str] = (),
    ) -> Verdict:
        """Check a whole RFC 5322 message (as the relay does)."""
        send, _ = self.email_send(
            raw, envelope_recipients=envelope_recipients, sender=sender, history=history
        )
        return self.check(send)

    def check_fax(
        self,
        number: str | int,
        *,
        intended: str | None = None,
        patient: PatientRefs = None,
        sender: str = "",
    ) -> Verdict:
        """Check a fax number before dialling. `intended`: the contact the fax
        is for (directory id or ODS code)."""
        return self.check(
            FaxSend(number=str(number), intended=intended, patients=_refs(patient), sender=sender)
        )

    def check_letter(
        self,
        *,
        addressee: str,
        address: str | Sequence[str],
        patient: PatientRefs = None,
        intended: str | None = None,
        sender: str = "",
    ) -> Verdict:
        """Check a letter's addressee and postal address (text, or a list of
        lines) before printing."""
        if not isinstance(address, str):
            address = "\n".join(address)
        return self.check(
            LetterSend(
                addressee=addressee,
                address=address,
                intended=intended,
                patients=_refs(patient),
                sender=sender,
            )
        )


def _default_local_rules() -> tuple[Path, ...]:
    """`local.d` beside the shipped rules, where admins keep their changes."""
    local = shipped_rules_dir() / "local.d"
    return (local,) if local.is_dir() else ()


def _paths(value: Any) -> list[PathLike]:
    if value is None:
        return []
    if isinstance(value, str | os.PathLike):
        return [value]
    return list(value)
