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
(shown by `sendguard held list`). A notice sent is audited (`notify`).

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
from sendguard.store.base import HeldMessage, Store

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
    if held.release_at is not None:
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
    if held.release_at is not None:
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
    if held.requires_reviewer:
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


class Notifier:
    """Sends due hold notifications from the store's outbox."""

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
    ) -> None:
        self._store = store
        self._next_hop = next_hop
        self._sender = sender
        self._hostname = hostname
        self._attempts = attempts
        self._retry = retry
        self._clock = clock
        self._links = links
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
                due = await asyncio.to_thread(self._store.due_notifications, self._clock())
                for held in due:
                    if self._closed:
                        break
                    await self._send(held)
            except Exception as exc:
                log_error(log, "hold notifications: outbox sweep failed; will retry", exc)
            if self._closed:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), min(_SWEEP, self._retry))

    async def _send(self, held: HeldMessage) -> None:
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
            )
            return
        options = () if rcpt.isascii() else ("SMTPUTF8",)
        reply = await self._next_hop.send("", [rcpt], data, mail_options=options)
        attempt = held.notify_attempts + 1
        if reply.ok:
            await asyncio.to_thread(self._record_sent, held.hold_id, attempt, sorted(links))
            log.info("hold %s: sender notified", held.hold_id)
            return
        give_up = not reply.temporary or attempt >= self._attempts
        next_at = (
            None if give_up else self._clock() + timedelta(seconds=self._retry * 2 ** (attempt - 1))
        )
        await asyncio.to_thread(
            self._store.record_notification,
            held.hold_id,
            sent=False,
            error=reply.line(),
            next_attempt=next_at,
        )
        log.warning(
            "hold %s: notification attempt %d failed (%d)%s",
            held.hold_id,
            attempt,
            reply.code,
            "; giving up" if give_up else "; will retry",
        )

    def _record_sent(self, hold_id: str, attempt: int, links: list[str]) -> None:
        self._store.record_notification(hold_id, sent=True)
        self._store.append_audit(
            "notify", actor="relay", hold_id=hold_id, details={"attempt": attempt, "links": links}
        )

    def close(self) -> None:
        self._closed = True
        self._wake.set()
