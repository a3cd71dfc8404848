"""The aiosmtpd handler: SMTP in, a verdict, then forward, hold or reject.

A thin adapter: it turns each SMTP transaction into calls to a `Checker`
and acts on the verdict. The rule that matters most: answer 250 only once
the message is with the next hop or committed to the quarantine; every
failure before that answers 4xx (never 500: a 5xx makes the sending MTA
drop the mail), so the sender keeps the message and retries.

Replies, one per outcome:
- 250 2.0.0 Forwarded / Held for review as <hold id>
- 451 4.x.x next hop down or said 4xx; the hold could not be stored; internal error
- 5xx        the next hop refused (passed back as it said)
- 550 5.7.1  a rule rejects the message (naming the finding); a reject about an
             address that is only in the headers (no mail goes to it) holds instead
- 550 5.1.3  / 550 5.7.1 at RCPT: a recipient with bad syntax / rejected by a rule
- 452 4.5.3  too many recipients; 550 5.7.1 client not allowed to relay
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import secrets
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sendguard.core.engine import decide
from sendguard.core.models import (
    ACTION_RANK,
    Action,
    Channel,
    Finding,
    Severity,
    Verdict,
    strictest,
)
from sendguard.core.normalise.email import email_key
from sendguard.core.rules import ReviewPlan, ReviewPolicy
from sendguard.relay.access import AccessPolicy
from sendguard.relay.checker import Checker, CheckFailed
from sendguard.relay.forward import NextHop, Reply, smtp_text
from sendguard.relay.logsafe import log_error
from sendguard.relay.notify import Notifier
from sendguard.store.base import MailEnvelope, Store, StoreError

__all__ = ["HandlerSettings", "RelayHandler", "failsafe_verdict", "verdict_header"]

log = logging.getLogger("sendguard.relay")
VERDICT_HEADER = "X-Sendguard-Verdict"
_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(<[^>\r\n]{1,250}>)", re.IGNORECASE | re.MULTILINE)
_PATIENT = re.compile(rb"^x-sendguard-patient:[ \t]*([^\r\n]{1,500})", re.IGNORECASE | re.MULTILINE)
_KEPT_MAIL_OPTIONS = ("BODY=8BITMIME", "SMTPUTF8")
_INTERNAL = "451 4.3.0 Internal error; the message was not accepted, try again later"


@dataclass(frozen=True, kw_only=True, slots=True)
class HandlerSettings:
    max_recipients: int = 1000
    split_mixed: bool = False
    notify: bool = True
    auth_enabled: bool = False
    expire_after: timedelta | None = None
    """Undecided holds expire this long after they were made ([review])."""
    node: str = "relay"
    """Who accepts holds in the audit log: `relay@<hostname>`, so that with
    several relays on one quarantine the trail says which node it was."""


def failsafe_verdict(reason: str) -> Verdict:
    """The verdict for a message that could not be checked: hold it."""
    return Verdict(
        action=Action.HOLD,
        channel=Channel.EMAIL,
        findings=[
            Finding(
                code="relay.not_checked",
                severity=Severity.HIGH,
                message=f"the message could not be checked ({reason}); "
                "held for a person to look at",
                rule="relay",
                action=Action.HOLD,
            )
        ],
        recipients={},
    )


def verdict_header(verdict: Verdict, recipients: Sequence[str]) -> bytes:
    """`X-Sendguard-Verdict: warn (email.insecure_domain)` for the copy
    going to `recipients`: finding codes only, never addresses or names."""
    keys = {_key(r) for r in recipients}
    relevant = [
        f
        for f in verdict.findings
        if not f.monitor
        and f.action is not Action.ALLOW
        and (f.recipient in keys or not f.recipient)
    ]
    action = strictest(f.action for f in relevant)
    codes = sorted({f.code for f in relevant})
    value = action.value + (f" ({', '.join(codes)})" if codes else "")
    return f"{VERDICT_HEADER}: {value}\r\n".encode("ascii", "replace")


def _key(address: str) -> str:
    return email_key(address) or address


def _message_id(raw: bytes) -> str:
    end = raw.find(b"\r\n\r\n")
    m = _MESSAGE_ID.search(raw, 0, end if end >= 0 else min(len(raw), 65536))
    return m.group(1).decode("ascii", "replace") if m else ""


class RelayHandler:
    """aiosmtpd hooks for the sendguard relay."""

    def __init__(
        self,
        *,
        checker: Checker,
        store: Store,
        next_hop: NextHop,
        access: AccessPolicy,
        notifier: Notifier | None = None,
        settings: HandlerSettings | None = None,
    ) -> None:
        self.checker = checker
        self.store = store
        self.next_hop = next_hop
        self.access = access
        self.notifier = notifier
        self.settings = settings or HandlerSettings()
        self.stats: Counter[str] = Counter()
        # transaction ids for the logs: unique per process start, cheap per message
        self._txid_prefix = secrets.token_hex(2)
        self._txids = itertools.count(1)
        self.review_policy: ReviewPolicy | None = None
        """The rules' review options (reviewer-only holds, delay-and-recall);
        replaced on reload. None: every hold is a plain one."""
        self.observe: Callable[[str, float], None] | None = None
        """Called with (outcome, seconds) for every message answered at DATA:
        forwarded, held, rejected or deferred (metrics of `sendguard serve`)."""

    # -- session -----------------------------------------------------------
    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if not self.settings.auth_enabled:
            responses = [r for r in responses if not r[4:].upper().startswith("AUTH")]
        return responses

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        if not self.access.allows(session):
            self.stats["refused_client"] += 1
            log.warning(
                "client %s refused: not in client_networks and not authenticated", _peer_ip(session)
            )
            return "550 5.7.1 Client host not permitted to send through this relay"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        try:
            return await self._rcpt(session, envelope, address, rcpt_options)
        except Exception as exc:
            log_error(log, "internal error at RCPT TO; answered 451", exc)
            return "451 4.3.0 Internal error; try this recipient again later"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        txid = f"{self._txid_prefix}{next(self._txids):06x}"
        started = time.perf_counter()
        try:
            reply = await self._data(txid, session, envelope)
        except Exception as exc:
            log_error(log, "message %s: internal error; answered 451", exc, txid)
            self.stats["internal_error"] += 1
            reply = _INTERNAL
        if self.observe is not None:
            self.observe(_outcome(reply), time.perf_counter() - started)
        return reply

    async def handle_exception(self, error: Exception) -> str:
        """aiosmtpd's last resort: 451, never its default 500."""
        log_error(log, "SMTP session error; answered 451", error)
        return _INTERNAL

    # -- RCPT TO -----------------------------------------------------------
    async def _rcpt(self, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        if not self.access.allows(session):
            return "550 5.7.1 Client host not permitted to send through this relay"
        if len(envelope.rcpt_tos) >= self.settings.max_recipients:
            return "452 4.5.3 Too many recipients; send the rest in another message"
        try:
            decision = await self.checker.check_recipient(address, _sender(envelope))
        except CheckFailed as exc:
            # the whole message is checked again at DATA, where a failure holds it
            log.warning("recipient check failed (%s); accepting, DATA decides", exc)
        else:
            if decision.action is Action.REJECT:
                codes = ", ".join(decision.codes) or "policy"
                self.stats["refused_recipient"] += 1
                log.info("recipient refused at RCPT: %s", codes)
                if "email.invalid" in decision.codes:
                    return f"550 5.1.3 Bad recipient address syntax ({codes})"
                return f"550 5.7.1 Recipient refused by sendguard ({codes})"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 OK"

    # -- DATA --------------------------------------------------------------
    async def _data(self, txid: str, session: Any, envelope: Any) -> str:
        started = time.perf_counter()
        raw: bytes = envelope.original_content
        sender = _sender(envelope)
        rcpts = list(envelope.rcpt_tos)
        msg_id = _message_id(raw)
        ref = f"{txid} {msg_id}" if msg_id else txid  # what log lines name the message by
        try:
            verdict = await self.checker.check_message(raw, rcpts, sender)
        except CheckFailed as exc:
            log.warning("message %s: not checked (%s); holding it", ref, exc)
            verdict = failsafe_verdict(str(exc))

        verdict = _hold_header_only_rejects(verdict, rcpts)
        if verdict.action is Action.REJECT:
            f = next(
                (x for x in verdict.findings if x.action is Action.REJECT and not x.monitor),
                None,
            )
            code = f.code if f else "policy"
            self.stats["rejected"] += 1
            log.info("message %s: reject (%s), %d recipient(s)", ref, code, len(rcpts))
            detail = f" ({smtp_text(f.message, 200)})" if f else ""
            return f"550 5.7.1 Message refused by sendguard: {code}{detail}"

        plan = self.review_policy.plan(verdict) if self.review_policy else ReviewPlan()
        held, clean = self._split(verdict, rcpts)
        release_at = None
        if not held and plan.delay_minutes:  # delay-and-recall: held, then sent unless recalled
            held, clean = self._split_delayed(plan, rcpts)
            release_at = datetime.now(UTC) + timedelta(minutes=plan.delay_minutes)
        if not held:
            reply = await self._forward(raw, sender, clean, envelope, verdict)
            ms = (time.perf_counter() - started) * 1000
            self.stats["forwarded" if reply.ok else f"forward_{reply.code // 100}xx"] += 1
            log.info(
                "message %s: %s, forward to %d recipient(s): %d in %.1f ms",
                ref,
                verdict.action.value,
                len(clean),
                reply.code,
                ms,
            )
            return _client_reply(reply, txid)

        mail_env = MailEnvelope(
            mail_from=sender,
            recipients=tuple(rcpts),
            mail_options=tuple(o for o in envelope.mail_options if o.upper() in _KEPT_MAIL_OPTIONS),
            peer=_peer_ip(session),
            helo=str(session.host_name or ""),
        )
        try:
            hold_id = await asyncio.to_thread(
                self.store.hold,
                raw,
                mail_env,
                verdict,
                held_recipients=held,
                message_id=msg_id,
                notify=self.settings.notify,
                release_at=release_at,
                expires_at=_expiry(self.settings.expire_after),
                requires_reviewer=plan.requires_reviewer,
                patients=_patients(raw),
                actor=self.settings.node,
            )
        except StoreError as exc:
            log.error("message %s: cannot be stored for review (%s); answered 451", ref, exc)
            self.stats["store_failed"] += 1
            return "451 4.3.0 The message cannot be stored for review now; try again later"
        codes = sorted(
            {
                f.code
                for f in verdict.findings
                if not f.monitor and ACTION_RANK[f.action] >= ACTION_RANK[Action.HOLD]
            }
        )
        if clean:
            reply = await self._forward(raw, sender, clean, envelope, verdict)
            if not reply.ok:
                await self._undo_hold(hold_id, ref, reply, clean)
                return _client_reply(reply, txid)
        self.stats["held"] += 1
        if self.notifier is not None:
            self.notifier.poke()
        ms = (time.perf_counter() - started) * 1000
        how = " reviewer-only" if plan.requires_reviewer else ""
        if release_at is not None:
            how += f" delay {plan.delay_minutes} min"
        log.info(
            "message %s: held%s as %s (%s), %d held, %d forwarded, in %.1f ms",
            ref,
            how,
            hold_id,
            ", ".join(codes or (f.code for f in verdict.findings if not f.monitor)),
            len(held),
            len(clean),
            ms,
        )
        extra = f"; forwarded to {len(clean)} other recipient(s)" if clean else ""
        if release_at is not None:
            return (
                f"250 2.0.0 Held for review as {hold_id}, sent in {plan.delay_minutes} min{extra}"
            )
        return f"250 2.0.0 Held for review as {hold_id}{extra}"

    async def _undo_hold(self, hold_id: str, ref: str, reply: Reply, clean: list[str]) -> None:
        """Split mode, the clean recipients' forward failed: the client is
        told so and sends the whole message again, so the hold goes. Unless
        someone decided it while the forward ran: the store then keeps it (a
        decision is never erased), and the client is still told, because the
        clean recipients' copy must come from its retry. The retry holds the
        message for the held recipients again: if that hold is released too,
        they get it twice (never none)."""
        details = {"reply": reply.line(), "recipients": clean}
        try:
            undone = await asyncio.to_thread(
                self.store.discard, hold_id, actor=self.settings.node, details=details
            )
        except StoreError as exc:  # a duplicate hold after the retry is safe
            log.error("hold %s: could not be undone (%s)", hold_id, exc)
            return
        if undone:
            log.info(
                "message %s: split; forward failed (%d), hold %s undone", ref, reply.code, hold_id
            )
        else:
            log.warning(
                "message %s: split; forward failed (%d); hold %s was decided meanwhile and is "
                "kept; the client sends the message again",
                ref,
                reply.code,
                hold_id,
            )

    def _split(self, verdict: Verdict, rcpts: list[str]) -> tuple[list[str], list[str]]:
        """(held, clean) envelope recipients under the mixed-message policy."""
        hold_rank = ACTION_RANK[Action.HOLD]
        if not self.settings.split_mixed:
            return (rcpts, []) if ACTION_RANK[verdict.action] >= hold_rank else ([], rcpts)
        keys = {_key(r) for r in rcpts}
        unattributed = any(
            f.recipient is not None
            and f.recipient not in keys
            and not f.monitor
            and ACTION_RANK[f.action] >= hold_rank
            for f in verdict.findings
        )
        if unattributed:  # e.g. a suspect To: address not in this envelope: hold it all
            return rcpts, []
        held = [r for r in rcpts if ACTION_RANK[verdict.action_for(_key(r))] >= hold_rank]
        return held, [r for r in rcpts if r not in held]

    def _split_delayed(self, plan: ReviewPlan, rcpts: list[str]) -> tuple[list[str], list[str]]:
        """(held, clean) for a delay-and-recall hold: all of it, or with
        `split` only the recipients the delaying findings are about."""
        if not self.settings.split_mixed or plan.whole_send:
            return rcpts, []
        keys = {_key(r) for r in rcpts}
        if not plan.delayed <= keys:  # about an address only in the headers
            return rcpts, []
        held = [r for r in rcpts if _key(r) in plan.delayed]
        return held, [r for r in rcpts if r not in held]

    async def _forward(
        self, raw: bytes, sender: str, rcpts: list[str], envelope: Any, verdict: Verdict
    ) -> Reply:
        return await self.next_hop.send(
            sender,
            rcpts,
            verdict_header(verdict, rcpts) + raw,
            mail_options=envelope.mail_options,
        )


def _hold_header_only_rejects(verdict: Verdict, rcpts: Sequence[str]) -> Verdict:
    """Turn rejects about addresses that are only in To/Cc (not envelope
    recipients, so nothing would be sent to them) into holds: the message
    looks wrong and a person should see it, but bouncing it helps nobody."""
    if verdict.action is not Action.REJECT:
        return verdict
    keys = {_key(r) for r in rcpts}
    changed = False
    findings: list[Finding] = []
    for f in verdict.findings:
        if f.action is Action.REJECT and f.recipient is not None and f.recipient not in keys:
            f = f.model_copy(update={"action": Action.HOLD})
            changed = True
        findings.append(f)
    if not changed:
        return verdict
    return decide(verdict.channel, findings, verdict.recipients.keys())


def _expiry(after: timedelta | None) -> datetime | None:
    return None if after is None else datetime.now(UTC) + after


def _patients(raw: bytes) -> list[str]:
    """The patients a practice system named in X-Sendguard-Patient headers
    (ids or NHS numbers), for the hold's audit entry; others found in the
    text are in the findings."""
    end = raw.find(b"\r\n\r\n")
    found: list[str] = []
    for m in _PATIENT.finditer(raw, 0, end if end >= 0 else min(len(raw), 65536)):
        for part in re.split(r"[,;]", m.group(1).decode("utf-8", "replace")):
            ref = part.strip()[:100]
            if ref and ref not in found:
                found.append(ref)
    return found[:50]


def _outcome(reply: str) -> str:
    """What the relay did with a message, from its reply to DATA."""
    if reply.startswith("250"):
        return "held" if " Held for review" in reply[:40] else "forwarded"
    return "rejected" if reply.startswith("5") else "deferred"


def _sender(envelope: Any) -> str:
    """The envelope sender; aiosmtpd gives the null sender as '<>'."""
    s = envelope.mail_from or ""
    return "" if s == "<>" else str(s)


def _peer_ip(session: Any) -> str:
    peer = session.peer
    return str(peer[0]) if isinstance(peer, tuple) and peer else str(peer or "")


def _client_reply(reply: Reply, txid: str) -> str:
    if reply.ok:
        return smtp_text(f"250 2.0.0 Forwarded as {txid}; next hop said: {reply.text}", 400)
    if reply.temporary:
        return smtp_text(f"451 {reply.text}", 400)
    return smtp_text(reply.line(), 400)
