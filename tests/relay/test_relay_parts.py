"""The relay's parts on their own: header, split policy, notice, next hop."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest
from support import Sink

from sendguard.core.models import Action, Channel, Finding, Verdict
from sendguard.relay import NextHop, Reply, failsafe_verdict, verdict_header
from sendguard.relay.handler import HandlerSettings, RelayHandler, _message_id
from sendguard.relay.notify import compose_notification
from sendguard.store import HeldMessage, HoldStatus, MailEnvelope, NotifyStatus


def finding(
    code: str, action: Action, recipient: str | None = None, monitor: bool = False
) -> Finding:
    return Finding(
        code=code,
        message=f"{code} for {recipient}",
        recipient=recipient,
        action=action,
        monitor=monitor,
        suggestion="try again",
    )


def verdict(*findings: Finding, recipients: dict[str, Action] | None = None) -> Verdict:
    from sendguard.core.models import strictest

    return Verdict(
        action=strictest(f.action for f in findings if not f.monitor),
        channel=Channel.EMAIL,
        findings=list(findings),
        recipients=recipients or {},
    )


def test_verdict_header_carries_codes_for_these_recipients_only() -> None:
    v = verdict(
        finding("email.insecure_domain", Action.WARN, "a@gmail.com"),
        finding("email.domain_typo", Action.HOLD, "b@gmial.com"),
        finding("email.near_known", Action.WARN, "a@gmail.com", monitor=True),
        finding("send.unknown_patient", Action.WARN),
    )
    assert verdict_header(v, ["A@Gmail.com"]) == (
        b"X-Sendguard-Verdict: warn (email.insecure_domain, send.unknown_patient)\r\n"
    )
    assert verdict_header(verdict(), ["x@nhs.net"]) == b"X-Sendguard-Verdict: allow\r\n"


def test_failsafe_verdict_holds() -> None:
    v = failsafe_verdict("no verdict within 10 s")
    assert v.action is Action.HOLD
    assert v.findings[0].code == "relay.not_checked"
    assert "no verdict within 10 s" in v.findings[0].message


def handler(split: bool) -> RelayHandler:
    return RelayHandler(
        checker=None,  # type: ignore[arg-type]
        store=None,  # type: ignore[arg-type]
        next_hop=None,  # type: ignore[arg-type]
        access=None,  # type: ignore[arg-type]
        settings=HandlerSettings(split_mixed=split),
    )


def test_split_policy() -> None:
    v = verdict(
        finding("email.domain_typo", Action.HOLD, "b@gmial.com"),
        finding("email.insecure_domain", Action.WARN, "a@gmail.com"),
        recipients={"a@gmail.com": Action.WARN, "b@gmial.com": Action.HOLD},
    )
    rcpts = ["A@gmail.com", "b@gmial.com"]
    assert handler(split=False)._split(v, rcpts) == (rcpts, [])
    assert handler(split=True)._split(v, rcpts) == (["b@gmial.com"], ["A@gmail.com"])
    allowed = verdict(recipients={"a@gmail.com": Action.ALLOW})
    assert handler(split=True)._split(allowed, ["a@gmail.com"]) == ([], ["a@gmail.com"])
    # a suspect address only in To:, not in this envelope: cannot be split off
    header_only = verdict(
        finding("email.domain_typo", Action.HOLD, "c@gmial.com"),
        recipients={"a@gmail.com": Action.ALLOW, "c@gmial.com": Action.HOLD},
    )
    assert handler(split=True)._split(header_only, ["a@gmail.com"]) == (["a@gmail.com"], [])
    # not checked: no per-recipient actions, hold all
    assert handler(split=True)._split(failsafe_verdict("x"), rcpts) == (rcpts, [])


def test_message_id_is_read_from_the_header_block_only() -> None:
    raw = b"Subject: x\r\nMessage-ID: <abc@x>\r\n\r\nMessage-ID: <body@x>\r\n"
    assert _message_id(raw) == "<abc@x>"
    assert _message_id(b"Subject: x\r\n\r\nMessage-ID: <body@x>\r\n") == ""
    assert _message_id(b"message-id:   <lower@x>\r\n\r\n") == "<lower@x>"


def held_message() -> HeldMessage:
    v = verdict(
        finding("email.domain_typo", Action.HOLD, "jane@gmial.com"),
        finding("email.near_known", Action.WARN, "jane@gmial.com", monitor=True),
        recipients={"jane@gmial.com": Action.HOLD},
    )
    raw = (
        b"From: gp@nhs.net\r\nTo: jane@gmial.com\r\nSubject: Biopsy result 943 476 5919"
        b"\r\nMessage-ID: <m1@practice>\r\n\r\nSECRET BODY\r\n"
    )
    return HeldMessage(
        hold_id="abcdefghjkmn",
        status=HoldStatus.HELD,
        created_at=datetime(2026, 11, 21, 9, 30, tzinfo=UTC),
        envelope=MailEnvelope(mail_from="gp@nhs.net", recipients=("jane@gmial.com", "dr@nhs.net")),
        held_recipients=("jane@gmial.com",),
        message_id="<m1@practice>",
        message=raw,
        sha256="0" * 64,
        verdict=v,
        notify_status=NotifyStatus.PENDING,
    )


def test_notification_says_what_and_why_without_content() -> None:
    data = compose_notification(held_message(), sender="sendguard@org.nhs.uk", hostname="relay.org")
    msg = message_from_bytes(data, policy=policy.default)
    assert msg["To"] == "gp@nhs.net"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["In-Reply-To"] == "<m1@practice>"
    assert "abcdefghjkmn" in msg["Subject"]
    text = msg.get_content()
    assert "Hold id:     abcdefghjkmn" in text
    assert "2026-11-21 09:30:00 UTC" in text
    assert "jane@gmial.com  (held)" in text
    assert "dr@nhs.net  (sent)" in text
    assert "email.domain_typo (hold)" in text
    assert "suggestion: try again" in text
    assert "email.near_known" not in text  # monitor-only findings are not reasons
    for secret in ("Biopsy", "SECRET", "943 476 5919"):
        assert secret not in data.decode()


def test_a_failed_release_notice_says_it_was_not_delivered_and_why() -> None:
    failed = replace(
        held_message(),
        status=HoldStatus.FAILED,
        release_error="550 5.1.1 <jane@gmial.com>: Recipient address rejected",
    )
    links = {"cancel": "https://review.test/decide/cancel/t"}
    data = compose_notification(failed, sender="s@org.nhs.uk", hostname="relay.org", links=links)
    msg = message_from_bytes(data, policy=policy.default)
    assert msg["Subject"] == "Not delivered: your released message [abcdefghjkmn]"
    text = msg.get_content()
    assert "released, but the next" in text
    assert "550 5.1.1 <jane@gmial.com>: Recipient address rejected" in text
    assert "jane@gmial.com  (held)" in text
    assert "A reviewer will release or cancel it." not in text
    assert "https://review.test/decide/cancel/t" in text
    for secret in ("Biopsy", "SECRET", "943 476 5919"):
        assert secret not in data.decode()


async def test_next_hop_reuses_connections_and_survives_a_closed_one() -> None:
    sink = Sink().start()
    try:
        hop = NextHop("127.0.0.1", sink.port, local_hostname="relay.test", connections=2)
        msg = b"Subject: t\r\n\r\nbody\r\n"
        assert (await hop.send("a@x.org", ["b@nhs.net"], msg)).ok
        (conn,) = hop._idle
        assert (await hop.send("a@x.org", ["b@nhs.net"], msg)).ok
        assert hop._idle == [conn]  # the same connection again
        conn.smtp.transport.close()  # the server side would do this after a timeout
        await asyncio.sleep(0.05)
        assert (await hop.send("", ["b@nhs.net"], msg)).ok
        got = await sink.arrived(3)
        assert [m.mail_from for m in got] == ["a@x.org", "a@x.org", "<>"]
        await hop.close()
        assert (await hop.send("a@x.org", ["b@nhs.net"], msg)).code == 451
    finally:
        sink.stop()


async def test_next_hop_refusing_one_recipient_delivers_to_none() -> None:
    sink = Sink().start()
    sink.rcpt_replies["gone@nhs.net"] = "550 5.1.1 gone"
    try:
        hop = NextHop("127.0.0.1", sink.port, local_hostname="relay.test")
        reply = await hop.send("a@x.org", ["b@nhs.net", "gone@nhs.net"], b"\r\nx\r\n")
        assert reply == Reply(550, "5.1.1 gone")
        sink.rcpt_replies["later@nhs.net"] = "452 4.2.2 full"
        reply = await hop.send("a@x.org", ["later@nhs.net", "gone@nhs.net"], b"\r\nx\r\n")
        assert reply.temporary
        await asyncio.sleep(0.05)
        assert sink.messages == []
        await hop.close()
    finally:
        sink.stop()


@pytest.mark.parametrize(
    ("code", "text", "line"),
    [
        (250, "2.0.0 Ok: queued as X", "250 2.0.0 Ok: queued as X"),
        (550, "No such user", "550 5.0.0 No such user"),
        (451, "try\nlater \x07 now", "451 4.0.0 try later   now"),
    ],
)
def test_next_hop_replies_are_made_safe(code: int, text: str, line: str) -> None:
    assert Reply.from_next_hop(code, text).line() == line
