"""The relay end to end in-process: a real client, the relay, a real sink.

Forward, hold, reject and every failure path, checked by what the client is
told, what reaches the sink and what is in the quarantine.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import aiosmtplib
import pytest
from support import MakeRelay, Sink, message, open_quarantine, smtp_send

from sendguard.store import HoldStatus, NotifyStatus

CLEAN = "jane.smith@gmail.com"  # patient 9434765919's own address
TYPO = "jane.smith@gmial.com"  # held: a domain typo of it
GP = "a.patel@nhs.net"


async def test_allowed_mail_arrives_byte_identical_but_for_the_verdict_header(
    make_relay: MakeRelay, sink: Sink, tmp_path: Path
) -> None:
    relay = await make_relay()
    raw = message(subject="[secure] Your results", marker="allowed")
    r = await smtp_send(relay.address[1], GP, [CLEAN], raw)
    assert r.code == 250, r
    assert "Forwarded" in r.text
    (got,) = await sink.arrived(1)
    assert got.mail_from == GP
    assert got.rcpt_tos == (CLEAN,)
    assert got.data == b"X-Sendguard-Verdict: allow\r\n" + raw
    with open_quarantine(tmp_path) as store:
        assert store.count() == 0


async def test_warned_mail_is_forwarded_with_the_codes_in_the_header(
    make_relay: MakeRelay, sink: Sink
) -> None:
    relay = await make_relay()
    raw = message()
    r = await smtp_send(relay.address[1], GP, [CLEAN], raw)
    assert r.code == 250
    (got,) = await sink.arrived(1)
    assert got.data == b"X-Sendguard-Verdict: warn (email.insecure_domain)\r\n" + raw


async def test_held_mail_is_stored_not_forwarded_and_the_sender_is_told(
    make_relay: MakeRelay, sink: Sink, tmp_path: Path
) -> None:
    relay = await make_relay()
    raw = message(
        to=f"Jane Smith <{TYPO}>",
        subject="Biopsy results for Jane",
        body="Attached.\r\n",
        extra="X-Note: held-test",
    )
    r = await smtp_send(relay.address[1], GP, [TYPO], raw)
    assert r.code == 250
    assert r.text.startswith("2.0.0 Held for review as ")
    hold_id = r.text.split()[-1]
    store = open_quarantine(tmp_path)
    held = store.get(hold_id)
    assert held is not None
    assert held.status is HoldStatus.HELD
    assert held.message == raw  # exactly as received: a release can send the same bytes
    assert held.envelope.mail_from == GP
    assert held.held_recipients == (TYPO,)
    assert "email.domain_typo" in held.codes
    # nothing went to the recipient; the one message at the sink is the notice to the sender
    (notice,) = await sink.arrived(1)
    assert notice.rcpt_tos == (GP,)
    assert notice.mail_from == "<>"  # the null sender: a notice never bounces back
    text = notice.data.decode()
    assert hold_id in text
    assert "email.domain_typo" in text
    assert "jane.smith@gmail.com" in text  # the suggestion
    assert "Biopsy" not in text
    assert "Attached" not in text
    await _until(lambda: store.get(hold_id).notify_status is NotifyStatus.SENT)  # type: ignore[union-attr]
    # the audit trail names the node that accepted it and told the sender
    trail = [(e.event, e.actor) for e in store.audit_entries(hold_id=hold_id)]
    assert trail == [("hold", "relay@relay.test"), ("notify", "relay@relay.test")]
    store.close()


async def test_without_a_hostname_the_audit_names_the_machine(
    make_relay: MakeRelay, tmp_path: Path
) -> None:
    relay = await make_relay(hostname="", notify=False)
    assert relay.node == f"relay@{socket.getfqdn()}"
    r = await smtp_send(relay.address[1], GP, [TYPO], message(to=TYPO))
    assert r.code == 250, r
    with open_quarantine(tmp_path) as store:
        [entry] = store.audit_entries(hold_id=r.text.split()[-1])
    assert (entry.event, entry.actor) == ("hold", relay.node)


async def test_no_notification_for_the_null_sender(
    make_relay: MakeRelay, sink: Sink, tmp_path: Path
) -> None:
    relay = await make_relay()
    r = await smtp_send(relay.address[1], "", [TYPO], message(to=TYPO))
    assert r.code == 250, r
    hold_id = r.text.split()[-1]
    with open_quarantine(tmp_path) as store:
        held = store.get(hold_id)
        assert held is not None
        assert held.envelope.mail_from == ""
        assert held.notify_status is NotifyStatus.NONE
    await asyncio.sleep(0.3)
    assert sink.messages == []


async def test_recipient_with_bad_syntax_is_refused_at_rcpt(
    make_relay: MakeRelay, sink: Sink
) -> None:
    relay = await make_relay()
    r = await smtp_send(relay.address[1], GP, ["jane.smith@gmail", CLEAN], message())
    code, text = r.rcpt["jane.smith@gmail"]
    assert code == 550
    assert text.startswith("5.1.3")
    assert "email.invalid" in text
    assert r.rcpt[CLEAN][0] == 250
    assert r.code == 250  # the good recipient still gets the message
    (got,) = await sink.arrived(1)
    assert got.rcpt_tos == (CLEAN,)


async def test_recipient_a_rule_rejects_is_refused_with_the_code(
    make_relay: MakeRelay, sink: Sink, tmp_path: Path
) -> None:
    local = tmp_path / "local.d"
    local.mkdir()
    (local / "strict.toml").write_text(
        '[[rule]]\nname = "email-domain-typo"\naction = "reject"\n', encoding="utf-8"
    )
    relay = await make_relay(rules_local=[str(local)])
    r = await smtp_send(relay.address[1], GP, [TYPO], message(to=TYPO))
    assert r.rcpt[TYPO][0] == 550
    assert r.rcpt[TYPO][1].startswith("5.7.1")
    assert "email.domain_typo" in r.rcpt[TYPO][1]
    assert r.data is None


async def test_message_a_rule_rejects_gets_550_naming_the_finding(
    make_relay: MakeRelay, sink: Sink, tmp_path: Path
) -> None:
    local = tmp_path / "local.d"
    local.mkdir()
    (local / "strict.toml").write_text(
        '[[rule]]\nname = "email-other-patient"\naction = "reject"\n', encoding="utf-8"
    )
    relay = await make_relay(rules_local=[str(local)])
    other = "david.brown@hotmail.co.uk"  # another patient than the one named
    r = await smtp_send(relay.address[1], GP, [other], message(to=other))
    assert r.rcpt[other][0] == 250  # alone, the address is fine
    assert r.code == 550
    assert r.text.startswith("5.7.1")
    assert "email.other_patient" in r.text
    await asyncio.sleep(0.1)
    assert sink.messages == []
    with open_quarantine(tmp_path) as store:
        assert store.count() == 0


async def test_next_hop_down_answers_451_and_stores_nothing(
    make_relay: MakeRelay, sink: Sink, tmp_path: Path
) -> None:
    relay = await make_relay()
    sink.stop()
    r = await smtp_send(relay.address[1], GP, [CLEAN], message())
    assert r.code == 451
    assert r.text.startswith("4.4.")
    with open_quarantine(tmp_path) as store:
        assert store.count() == 0


@pytest.mark.parametrize(
    ("refusal", "expected"),
    [
        ("450 4.2.1 Mailbox busy", 451),
        ("550 5.1.1 No such user here", 550),
    ],
)
async def test_next_hop_refusals_are_passed_back(
    make_relay: MakeRelay, sink: Sink, refusal: str, expected: int
) -> None:
    relay = await make_relay()
    sink.rcpt_replies[CLEAN] = refusal
    r = await smtp_send(relay.address[1], GP, [CLEAN], message())
    assert r.code == expected
    assert refusal.split(" ", 1)[1] in r.text


async def test_next_hop_refusing_data_is_passed_back(make_relay: MakeRelay, sink: Sink) -> None:
    relay = await make_relay()
    sink.data_reply = "554 5.6.0 Content refused"
    r = await smtp_send(relay.address[1], GP, [CLEAN], message())
    assert r.code == 554
    assert "5.6.0 Content refused" in r.text


async def test_client_outside_client_networks_is_refused(make_relay: MakeRelay, sink: Sink) -> None:
    relay = await make_relay(client_networks=["127.0.0.1/32"])
    r = await smtp_send(relay.address[1], GP, [CLEAN], message(), source="127.0.0.2")
    assert r.mail[0] == 550
    assert r.mail[1].startswith("5.7.1")
    ok = await smtp_send(relay.address[1], GP, [CLEAN], message(), source="127.0.0.1")
    assert ok.code == 250
    assert relay.stats()["refused_client"] == 1


async def test_too_many_recipients_get_452(make_relay: MakeRelay, sink: Sink) -> None:
    relay = await make_relay(max_recipients=2)
    rcpts = [f"clinician{i}@nhs.net" for i in range(3)]
    r = await smtp_send(relay.address[1], GP, rcpts, message(to=", ".join(rcpts)))
    assert [r.rcpt[a][0] for a in rcpts] == [250, 250, 452]
    assert r.rcpt[rcpts[2]][1].startswith("4.5.3")
    assert r.code == 250


async def test_size_limit_is_announced_and_enforced(make_relay: MakeRelay, sink: Sink) -> None:
    relay = await make_relay(max_message_size=4096)
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=relay.address[1], start_tls=False)
    await smtp.connect()
    await smtp.ehlo()
    assert smtp.esmtp_extensions["size"] == "4096"
    assert "8bitmime" in smtp.esmtp_extensions
    assert "smtputf8" in smtp.esmtp_extensions
    r = await smtp_send(0, GP, [CLEAN], message(body="x" * 70 + "\r\n") * 80, client=smtp)
    assert r.code == 552
    await smtp.quit()


async def test_connections_beyond_the_limit_get_421(make_relay: MakeRelay, sink: Sink) -> None:
    relay = await make_relay(max_connections=1)
    first = aiosmtplib.SMTP(hostname="127.0.0.1", port=relay.address[1], start_tls=False)
    await first.connect()
    second = aiosmtplib.SMTP(hostname="127.0.0.1", port=relay.address[1], start_tls=False)
    with pytest.raises(aiosmtplib.SMTPConnectResponseError) as exc:
        await second.connect()
    assert exc.value.code == 421
    await first.quit()


async def test_smtputf8_addresses_are_forwarded(make_relay: MakeRelay, sink: Sink) -> None:
    relay = await make_relay()
    rcpt = "jöhn.smïth@nhs.net"
    raw = message(to=rcpt, patient=None, subject="[secure] hello")
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=relay.address[1], start_tls=False)
    await smtp.connect()
    errors, _ = await smtp.sendmail(GP, [rcpt], raw, mail_options=["SMTPUTF8"])
    assert errors == {}
    await smtp.quit()
    (got,) = await sink.arrived(1)
    assert got.rcpt_tos == (rcpt,)
    assert got.data.endswith(raw)


async def test_mixed_message_is_held_whole_by_default(
    make_relay: MakeRelay, sink: Sink, tmp_path: Path
) -> None:
    relay = await make_relay()
    r = await smtp_send(relay.address[1], GP, [CLEAN, TYPO], message(to=f"{CLEAN}, {TYPO}"))
    assert r.code == 250
    assert "Held" in r.text
    hold_id = r.text.split()[-1]
    with open_quarantine(tmp_path) as store:
        held = store.get(hold_id)
        assert held is not None
        assert held.held_recipients == (CLEAN, TYPO)
    notices = await sink.arrived(1)
    assert [m.rcpt_tos for m in notices] == [(GP,)]


async def test_split_policy_forwards_to_clean_recipients_and_holds_the_rest(
    make_relay: MakeRelay, sink: Sink, tmp_path: Path
) -> None:
    relay = await make_relay(mixed_policy="split")
    colleague = "dr.jones@nhs.net"
    raw = message(to=f"{colleague}, {TYPO}", subject="[secure] results")
    r = await smtp_send(relay.address[1], GP, [colleague, TYPO], raw)
    assert r.code == 250
    assert "Held for review as" in r.text
    assert "forwarded to 1" in r.text
    hold_id = r.text.split()[5].rstrip(";")
    with open_quarantine(tmp_path) as store:
        held = store.get(hold_id)
        assert held is not None
        assert held.held_recipients == (TYPO,)
        assert held.envelope.recipients == (colleague, TYPO)
    got = await sink.arrived(2)
    forwarded = [m for m in got if m.rcpt_tos == (colleague,)]
    assert len(forwarded) == 1
    assert forwarded[0].data.endswith(raw)
    assert sink.to(TYPO) == []


async def test_split_policy_undoes_the_hold_when_forwarding_fails(
    make_relay: MakeRelay, sink: Sink, tmp_path: Path
) -> None:
    relay = await make_relay(mixed_policy="split")
    sink.stop()
    r = await smtp_send(
        relay.address[1], GP, ["dr.jones@nhs.net", TYPO], message(to=f"dr.jones@nhs.net, {TYPO}")
    )
    assert r.code == 451
    with open_quarantine(tmp_path) as store:
        assert store.count() == 0  # the client retries the whole message later
        trail = [(e.event, e.actor) for e in store.audit_entries()]
        assert trail == [("hold", "relay@relay.test"), ("discard", "relay@relay.test")]


async def _until(predicate: object, timeout: float = 10.0) -> None:
    assert callable(predicate)
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def test_an_invalid_address_only_in_the_headers_holds_instead_of_rejecting(
    make_relay: MakeRelay, sink: Sink, tmp_path: Path
) -> None:
    relay = await make_relay(notify=False)
    raw = message(to=f"{CLEAN}, jane.smith", subject="[secure] x")  # no mail goes to "jane.smith"
    r = await smtp_send(relay.address[1], GP, [CLEAN], raw)
    assert r.code == 250
    assert "Held" in r.text
    with open_quarantine(tmp_path) as store:
        held = store.get(r.text.split()[-1])
        assert held is not None
        assert held.verdict.action.value == "hold"
        assert "email.invalid" in held.codes


async def test_logs_carry_ids_and_codes_never_addresses_or_content(
    make_relay: MakeRelay, sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    relay = await make_relay()
    port = relay.address[1]
    subject = "Colposcopy results for Jane"
    await smtp_send(port, GP, [CLEAN], message(subject=subject))
    await smtp_send(port, GP, [TYPO], message(to=TYPO, subject=subject))
    await smtp_send(port, GP, ["jane.smith@gmail"], message(subject=subject))
    await sink.arrived(2)
    text = caplog.text
    assert "held as" in text
    assert "email.domain_typo" in text
    for secret in ("jane", "gmail", "gmial", "patel", "9434765919", "Colposcopy"):
        assert secret not in text.lower(), secret


async def test_a_notice_that_cannot_be_sent_is_retried_and_the_hold_is_unaffected(
    make_relay: MakeRelay, sink: Sink, tmp_path: Path
) -> None:
    relay = await make_relay()  # notify_retry 0.2 s in these tests
    port = sink.port
    sink.stop()
    r = await smtp_send(relay.address[1], GP, [TYPO], message(to=TYPO))
    assert r.code == 250
    hold_id = r.text.split()[-1]
    store = open_quarantine(tmp_path)

    def notice() -> tuple[NotifyStatus, int, str | None]:
        held = store.get(hold_id)
        assert held is not None
        return held.notify_status, held.notify_attempts, held.notify_error

    await _until(lambda: notice()[1] >= 1)
    status, _, error = notice()
    assert status is NotifyStatus.PENDING
    assert error is not None
    assert error.startswith("451 4.4.1")
    back = Sink(port=port).start()
    try:
        await _until(lambda: notice()[0] is NotifyStatus.SENT)
        (got,) = await back.arrived(1)
        assert got.rcpt_tos == (GP,)
    finally:
        back.stop()
        store.close()
