"""Telling the sender that a message was held, through the next hop.

The notification says which message (hold id, date received, Message-ID),
to whom, and why (each finding's code, message and suggestion) — never the
subject, the text or attachment names, so that it carries as little patient
data as possible. It goes from the null sender (`<>`, so it can never cause
a bounce loop) with `From:` the configured address.

Delivery is an outbox in the store: a hold is committed with its
notification pending, and `Notifier.run()` sends whatever is due, records
each attempt and retries with growing delays. A notification that cannot be
sent never puts the hold at risk; after the last attempt it is marked failed
(shown by `sendguard held list`). A notice sent is audited (`notify`, by
the node that sent it).

A release that the next hop refused for good (`failed`) queues the notice
again (`Store.mark_release_failed`): the sender, who may think the message
went, is told that it did not, with the next hop's reply.

Several relays may share one outbox (a PostgreSQL quarantine), so each
notice is first claimed under a lease (`Store.claim_notifications`): only
the claimant sends it. A node that dies mid-send leaves its claims to run
out; another node then sends them, so a notice is never lost, and is sent
twice only if the node died after the next hop took it but before the store
recorded that.

With `[review] base_url` set, the notice carries signed single-use links
(review/service.py): confirm and cancel; cancel only when a reviewer must
decide; confirm ("send now") and recall for a delay-and-recall hold. The
links open a page that shows the reasons; nothing happens until the sender
presses the button there, so a mail scanner following links decides nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import textwrap
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from email.utils import format_datetime, make_msgid

from sendguard.relay.forward import NextHop
from sendguard.relay.logsafe import log_error
from sendguard.store.base import HeldMessage, HoldStatus, Store, StoreError

__all__ = ["Notifier", "compose_notification"]

log = logging.getLogger("sendguard.relay.notify")
_SWEEP = 30.0  # seconds between looks at the outbox when nothing wakes the notifier


_LINK_TEXT = {
    "confirm": "Send it as it is (you have checked the recipients):",
    "cancel": "Cancel it (it will not be sent):",
    "recall": "Recall it (it will not be sent):",
}


def compose_notification(
    held: HeldMessage,
    *,
    sender: str,
    hostname: str,
    links: Mapping[str, str] | None = None,
) -> bytes:
    """The notification message for one hold, as bytes ready to send.
    `links`: action -> signed URL, listed for the sender to decide."""
    utf8 = not (held.envelope.mail_from.isascii() and sender.isascii())
    msg = EmailMessage(policy=SMTPUTF8 if utf8 else SMTP)
    msg["From"] = f"sendguard <{sender}>"
    msg["To"] = held.envelope.mail_from
    if held.status is HoldStatus.FAILED:
        msg["Subject"] = f"Not delivered: your released message [{held.hold_id}]"
    elif held.release_at is not None:
        msg["Subject"] = f"Sending shortly: recall your message if it is wrong [{held.hold_id}]"
    else:
        msg["Subject"] = f"Held for review: your message was not sent [{held.hold_id}]"
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(idstring=held.hold_id, domain=hostname or "sendguard")
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Sendguard-Hold"] = held.hold_id
    if held.message_id:
        msg["In-Reply-To"] = held.message_id
        msg["References"] = held.message_id
    held_set = set(held.held_recipients)
    if held.status is HoldStatus.FAILED:
        lines = [
            "A message you sent was held by sendguard and then released, but the next",
            "mail server refused it: it has not been sent to the recipients marked",
            "'held' below. A reviewer can release it again or cancel it.",
            "",
            "The mail server said:",
            *textwrap.wrap(
                held.release_error or "(nothing)",
                width=76,
                initial_indent="  ",
                subsequent_indent="  ",
                break_long_words=False,
            ),
            "",
        ]
    elif held.release_at is not None:
        lines = [
            "A message you sent is being held back by sendguard for a few minutes,",
            "because something about its recipients may need a second look.",
            "It will be sent to the recipients marked 'held' below at "
            f"{held.release_at.astimezone(UTC):%H:%M} UTC",
            "unless you recall it before then.",
            "",
        ]
    else:
        lines = [
            "A message you sent was held by sendguard before it left the organisation,",
            "because something about its recipients needs a person to check it.",
            "It has not been sent to the recipients marked 'held' below.",
            "",
        ]
    lines += [
        f"Hold id:     {held.hold_id}",
        f"Received:    {held.created_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC",
        f"Message-ID:  {held.message_id or '(none)'}",
        "",
        "Recipients:",
    ]
    for r in held.envelope.recipients:
        lines.append(f"  {r}  ({'held' if r in held_set else 'sent'})")
    lines += ["", "Why:"]
    findings = [f for f in held.verdict.findings if not f.monitor]
    for f in findings:
        lines += textwrap.wrap(
            f"- {f.code} ({f.action.value}): {f.message}",
            width=76,
            initial_indent="  ",
            subsequent_indent="    ",
            break_long_words=False,
            break_on_hyphens=False,
        )
        if f.suggestion:
            lines.append(f"    suggestion: {f.suggestion}")
    if not findings:
        lines.append("  (no details)")
    lines.append("")
    if held.status is HoldStatus.FAILED:
        pass  # said above
    elif held.requires_reviewer:
        lines.append("A reviewer must decide on this one: what was found is high risk.")
    elif held.release_at is None:
        lines.append("A reviewer will release or cancel it.")
    for action, url in (links or {}).items():
        lines += ["", _LINK_TEXT.get(action, f"{action}:"), f"  {url}"]
    if links:
        lines += ["", "Each link works once, and only until it expires."]
    lines += [
        "",
        "If you spotted a mistake, send a corrected message; quote the hold id",
        "if you ask about this one.",
    ]
    msg.set_content("\n".join(lines) + "\n", charset="utf-8")
    return msg.as_bytes()


def _notice_details(held: HeldMessage, links: Mapping[str, str]) -> dict[str, object]:
    """The `notify` audit entry's details: which links, and what it said."""
    details: dict[str, object] = {"links": sorted(links)}
    if held.status is HoldStatus.FAILED:
        details["about"] = "release_failed"
    return details


class Notifier:
    """Sends due hold notifications from the store's outbox.

    `node` names this relay in the claims and the audit log
    (`relay@<hostname>`); `lease` is how long a claimed notice is this
    node's to send (keep it above what sending a batch of `batch` can take).
    """

    def __init__(
        self,
        store: Store,
        next_hop: NextHop,
        *,
        sender: str,
        hostname: str,
        attempts: int = 5,
        retry: float = 300.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        links: Callable[[HeldMessage], Mapping[str, str]] | None = None,
        node: str | None = None,
        lease: float = 600.0,
        batch: int = 10,
    ) -> None:
        self._store = store
        self._next_hop = next_hop
        self._sender = sender
        self._hostname = hostname
        self._attempts = attempts
        self._retry = retry
        self._clock = clock
        self._links = links
        self.node = node or f"relay@{hostname or 'localhost'}"
        self._lease = lease
        self._batch = batch
        self._wake = asyncio.Event()
        self._closed = False

    def poke(self) -> None:
        """A hold was just committed: look at the outbox now."""
        self._wake.set()

    async def run(self) -> None:
        """Send what is due until closed; never raises."""
        while not self._closed:
            self._wake.clear()
            try:
                await self._sweep()
            except Exception as exc:
                log_error(log, "hold notifications: outbox sweep failed; will retry", exc)
            if self._closed:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), min(_SWEEP, self._retry))

    async def _sweep(self) -> None:
        """Claim and send due notices, a batch at a time, until none is due.
        Claims left unsent (closing, a lease run out) are retried once their
        lease ends, by this node or another."""
        while not self._closed:
            claimed = await asyncio.to_thread(
                self._store.claim_notifications, self._clock(), self.node, self._lease, self._batch
            )
            for held in claimed:
                claim = held.notify_claim
                if self._closed or claim is None or self._clock() >= claim.lease_until:
                    continue  # no longer ours to send
                try:
                    await self._send(held)
                except StoreError as exc:  # the claim runs out and the notice is retried
                    log_error(log, "hold %s: notification not recorded", exc, held.hold_id)
            if len(claimed) < self._batch:
                return

    async def _send(self, held: HeldMessage) -> None:
        claim = held.notify_claim
        assert claim is not None, "only a claimed notice is sent"
        rcpt = held.envelope.mail_from
        try:
            links = self._links(held) if self._links is not None else {}
            data = compose_notification(
                held, sender=self._sender, hostname=self._hostname, links=links
            )
        except Exception as exc:  # an address the email package cannot write
            log.error(
                "hold %s: notification cannot be written (%s)", held.hold_id, type(exc).__name__
            )
            await asyncio.to_thread(
                self._store.record_notification,
                held.hold_id,
                sent=False,
                error=f"cannot be written: {type(exc).__name__}",
                claim=claim,
            )
            return
        options = () if rcpt.isascii() else ("SMTPUTF8",)
        reply = await self._next_hop.send("", [rcpt], data, mail_options=options)
        attempt = claim.attempt
        if reply.ok:
            await asyncio.to_thread(
                self._store.record_notification,
                held.hold_id,
                sent=True,
                claim=claim,
                details=_notice_details(held, links),
            )
            log.info("hold %s: sender notified", held.hold_id)
            return
        give_up = not reply.temporary or attempt >= self._attempts
        next_at = (
            None if give_up else self._clock() + timedelta(seconds=self._retry * 2 ** (attempt - 1))
        )
        kept = await asyncio.to_thread(
            self._store.record_notification,
            held.hold_id,
            sent=False,
            error=reply.line(),
            next_attempt=next_at,
            claim=claim,
        )
        then = "will retry"
        if not kept:
            then = "another node has taken it over"
        elif give_up:
            then = "giving up"
        log.warning(
            "hold %s: notification attempt %d failed (%d); %s",
            held.hold_id,
            attempt,
            reply.code,
            then,
        )

    def close(self) -> None:
        self._closed = True
        self._wake.set()
