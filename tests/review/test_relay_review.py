"""The review workflow inside a running relay: rule options become
reviewer-only and delay-and-recall holds, the hold notice carries signed
links that work, the relay runs the background jobs, reloads are audited."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from reviewkit import make_service, token_of
from storekit import Clock
from support import DEMO, Sink, message, smtp_send

from sendguard.config import Config
from sendguard.relay import NextHop, Relay
from sendguard.store import HoldStatus, SqliteStore

GP = "a.patel@nhs.net"
OTHER_PATIENT = "david.brown@hotmail.co.uk"  # another patient than the one named
OWN_ADDRESS = "jane.smith@gmail.com"  # the patient's own address, not a secure domain
MakeRelay = Callable[..., Awaitable[Relay]]


@pytest.fixture
async def make_relay(tmp_path: Path, sink: Sink) -> AsyncIterator[MakeRelay]:
    relays: list[Relay] = []

    async def make(
        local_rules: str | None = None, relay: dict[str, Any] | None = None, **review: Any
    ) -> Relay:
        data: dict[str, Any] = {
            "directory": {"sources": [str(DEMO)]},
            "relay": {
                "listen": "127.0.0.1:0",
                "hostname": "relay.test",
                "next_hop": f"127.0.0.1:{sink.port}",
                "check_workers": 0,
                "notify_from": "sendguard@relay.test",
                "notify_retry": 0.2,
                **(relay or {}),
            },
            "store": {"url": "sqlite:///quarantine.db"},
            "review": {"base_url": "https://review.test/", "poll_interval": 0.1, **review},
        }
        if local_rules is not None:
            local = tmp_path / "local.d"
            local.mkdir(exist_ok=True)
            (local / "review.toml").write_text(local_rules, encoding="utf-8")
            data["rules"] = {"local": [str(local)]}
        started = Relay(Config.model_validate(data, context={"base_dir": tmp_path}))
        await started.start()
        relays.append(started)
        return started

    yield make
    for r in relays:
        await r.stop(timeout=5)


def hold_id_of(reply: str) -> str:
    m = re.search(r"Held for review as (\w+)", reply)
    assert m is not None, reply
    return m.group(1)


async def notice_links(sink: Sink, hold_id: str) -> dict[str, str]:
    """The links in the hold notice the sink received for `hold_id`."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for m in list(sink.messages):
            msg = message_from_bytes(m.data, policy=policy.default)
            if msg["X-Sendguard-Hold"] == hold_id:
                text = msg.get_body().get_content()  # type: ignore[union-attr]
                found = re.findall(r"https://review\.test/decide/(\w+)/(\S+)", text)
                return {action: f"https://review.test/decide/{action}/{t}" for action, t in found}
        await asyncio.sleep(0.05)
    raise AssertionError(f"no notice for {hold_id}")


async def test_high_risk_finding_makes_a_reviewer_only_hold(
    make_relay: MakeRelay, sink: Sink
) -> None:
    relay = await make_relay()
    r = await smtp_send(relay.address[1], GP, [OTHER_PATIENT], message(to=OTHER_PATIENT))
    assert r.code == 250
    hold_id = hold_id_of(r.text)
    assert relay.store is not None
    held = relay.store.get(hold_id)
    assert held is not None
    assert "email.other_patient" in held.codes
    assert held.requires_reviewer
    assert held.patients == ("9434765919",)  # named in X-Sendguard-Patient
    assert held.expires_at is not None
    assert abs(held.expires_at - held.created_at - timedelta(days=7)) < timedelta(seconds=5)
    links = await notice_links(sink, hold_id)
    assert set(links) == {"cancel"}  # a sender cannot confirm it
    assert relay.review is not None
    forged = relay.review.signer.issue(hold_id, "confirm", datetime.now(UTC))
    out = await relay.review.act_on_token(forged, "confirm")
    assert not out.done
    assert out.status is HoldStatus.HELD


async def test_local_rule_can_lift_the_reviewer_requirement(
    make_relay: MakeRelay, sink: Sink
) -> None:
    relay = await make_relay('[[rule]]\nname = "email-other-patient"\nrequire_reviewer = false\n')
    r = await smtp_send(relay.address[1], GP, [OTHER_PATIENT], message(to=OTHER_PATIENT))
    hold_id = hold_id_of(r.text)
    assert relay.store is not None
    held = relay.store.get(hold_id)
    assert held is not None
    assert not held.requires_reviewer
    assert set(await notice_links(sink, hold_id)) == {"confirm", "cancel"}


async def test_sender_confirms_from_the_notice_and_the_message_goes(
    make_relay: MakeRelay, sink: Sink
) -> None:
    relay = await make_relay()
    typo = "jane.smith@gmial.com"
    r = await smtp_send(relay.address[1], GP, [typo], message(to=typo))
    hold_id = hold_id_of(r.text)
    links = await notice_links(sink, hold_id)
    assert set(links) == {"confirm", "cancel"}
    assert relay.review is not None
    held = relay.review.preview_token(token_of(links["confirm"]), "confirm")
    assert held.hold_id == hold_id
    out = await relay.review.act_on_token(token_of(links["confirm"]), "confirm")
    assert out.done
    assert out.status is HoldStatus.RELEASED
    released = [m for m in await sink.arrived(2) if typo in m.rcpt_tos]
    assert len(released) == 1
    assert released[0].data.startswith(
        f"X-Sendguard-Released: {hold_id} by sender:{GP}\r\n".encode()
    )
    assert relay.store is not None
    assert [e.event for e in relay.store.audit_entries(hold_id=hold_id)] == [
        "hold",
        "notify",
        "token_use",
        "release",
        "released",
    ]


async def test_delay_and_recall_rule_holds_then_releases(
    make_relay: MakeRelay, sink: Sink, tmp_path: Path
) -> None:
    relay = await make_relay('[[rule]]\nname = "email-insecure-domain"\ndelay_minutes = 10\n')
    r = await smtp_send(relay.address[1], GP, [OWN_ADDRESS], message(to=OWN_ADDRESS))
    assert r.code == 250
    assert "sent in 10 min" in r.text
    hold_id = hold_id_of(r.text)
    assert relay.store is not None
    held = relay.store.get(hold_id)
    assert held is not None
    assert held.release_at is not None
    assert abs(held.release_at - held.created_at - timedelta(minutes=10)) < timedelta(seconds=5)
    assert not held.requires_reviewer
    assert set(await notice_links(sink, hold_id)) == {"confirm", "recall"}
    # ten minutes later, as any node's jobs see it
    clock = Clock(datetime.now(UTC) + timedelta(minutes=11))
    later = SqliteStore(tmp_path / "quarantine.db", clock=clock)
    hop = NextHop("127.0.0.1", sink.port, local_hostname="relay.test", timeout=5)
    try:
        assert (await make_service(later, hop, clock).run_due()).released == 1
    finally:
        await hop.close()
        later.close()
    released = [m for m in await sink.arrived(2) if OWN_ADDRESS in m.rcpt_tos]
    assert len(released) == 1
    assert released[0].data.startswith(f"X-Sendguard-Released: {hold_id} by ".encode())


async def test_delay_is_refused_on_a_rule_that_holds(make_relay: MakeRelay) -> None:
    from sendguard.relay import RelayStartError

    with pytest.raises(RelayStartError, match="delay_minutes"):
        await make_relay('[[rule]]\nname = "email-domain-typo"\ndelay_minutes = 10\n')


async def test_relay_runs_the_review_jobs(make_relay: MakeRelay) -> None:
    relay = await make_relay()
    assert relay.store is not None
    store = relay.store
    raw = message(to=OWN_ADDRESS)
    from reviewkit import ENV, verdict

    hold_id = store.hold(raw, ENV, verdict("x"), expires_at=datetime.now(UTC), notify=False)
    deadline = time.monotonic() + 10
    while store.get(hold_id).status is not HoldStatus.EXPIRED:  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "the relay did not expire the hold"
        await asyncio.sleep(0.05)


async def test_reload_is_audited(make_relay: MakeRelay, tmp_path: Path) -> None:
    relay = await make_relay('[[rule]]\nname = "email-insecure-domain"\ndelay_minutes = 5\n')
    assert await relay.reload()
    (tmp_path / "local.d" / "review.toml").write_text(
        '[[rule]]\nname = "email-domain-typo"\ndelay_minutes = 5\n', encoding="utf-8"
    )
    assert not await relay.reload()
    assert relay.store is not None
    entries = relay.store.audit_entries(event="rules_reload")
    assert [e.details["ok"] for e in entries] == [True, False]
    assert entries[0].actor == "relay@relay.test"


async def notices_for(sink: Sink, hold_id: str, n: int) -> list[Any]:
    """The first `n` notices the sink received about `hold_id`, parsed."""
    deadline = time.monotonic() + 10
    while True:
        found = [
            msg
            for msg in (message_from_bytes(m.data, policy=policy.default) for m in sink.messages)
            if msg["X-Sendguard-Hold"] == hold_id
        ]
        if len(found) >= n:
            return found[:n]
        assert time.monotonic() < deadline, f"{len(found)} notice(s) for {hold_id}, expected {n}"
        await asyncio.sleep(0.05)


async def test_the_sender_is_told_when_a_release_fails_for_good(
    make_relay: MakeRelay, sink: Sink
) -> None:
    relay = await make_relay()
    typo = "jane.smith@gmial.com"
    r = await smtp_send(relay.address[1], GP, [typo], message(to=typo))
    hold_id = hold_id_of(r.text)
    await notices_for(sink, hold_id, 1)
    sink.rcpt_replies[typo] = "550 5.1.1 no such user here"
    assert relay.review is not None
    out = await relay.review.release(hold_id, actor="rita", reason="ok", reviewer=True)
    assert (out.done, out.status) == (False, HoldStatus.FAILED)
    first, second = await notices_for(sink, hold_id, 2)
    assert first["Subject"].startswith("Held for review")
    assert second["Subject"] == f"Not delivered: your released message [{hold_id}]"
    assert second["To"] == GP
    text = second.get_body().get_content()
    assert "550 5.1.1 no such user here" in text
    found = re.findall(r"https://review\.test/decide/(\w+)/(\S+)", text)
    assert [action for action, _ in found] == ["cancel"]
    assert relay.store is not None
    trail = relay.store.audit_entries(hold_id=hold_id)
    assert [e.event for e in trail] == [
        "hold",
        "notify",
        "release",
        "release_failed",
        "notify",
    ]
    assert trail[3].details["final"] is True
    assert trail[4].details["about"] == "release_failed"
    [listed] = relay.store.list(status=HoldStatus.FAILED)
    assert listed.hold_id == hold_id
    cancelled = await relay.review.act_on_token(found[0][1], "cancel")
    assert (cancelled.done, cancelled.status) == (True, HoldStatus.CANCELLED)


async def test_a_split_hold_released_while_the_clean_forward_fails_is_kept(
    make_relay: MakeRelay, sink: Sink
) -> None:
    """Split mode: the hold is stored, then the clean recipient's forward
    runs (slowly) and fails with 451. A reviewer releases the hold in that
    time. The relay must not delete the released hold; the client is still
    told 451, so the clean recipient gets the message from its retry. The
    retry holds the message again for the held recipient: the documented
    possible duplicate, for a person to decide."""
    relay = await make_relay(relay={"mixed_policy": "split", "notify": False}, release_backoff="1s")
    colleague, typo = "dr.jones@nhs.net", "jane.smith@gmial.com"
    raw = message(to=f"{colleague}, {typo}", subject="[secure] results")
    sink.delay, sink.data_reply = 1.0, "451 4.3.0 try again later"
    sending = asyncio.create_task(smtp_send(relay.address[1], GP, [colleague, typo], raw))
    assert await asyncio.to_thread(sink.data_started.wait, 10)  # the forward is under way
    assert relay.store is not None
    assert relay.review is not None
    [held] = relay.store.list(status=HoldStatus.HELD)
    await relay.review.release(held.hold_id, actor="rita", reason="ok", reviewer=True)
    r = await sending
    assert r.code == 451  # the clean recipient has nothing yet: the client must retry
    kept = relay.store.get(held.hold_id)
    assert kept is not None
    assert (kept.status, kept.decided_by) == (HoldStatus.PENDING, "rita")  # the release was 451 too
    [refused] = relay.store.audit_entries(hold_id=held.hold_id, event="discard_refused")
    assert refused.actor == "relay@relay.test"
    assert refused.details["reply"] == "451 4.3.0 try again later"
    assert refused.details["recipients"] == [colleague]
    assert refused.details["status"] in ("releasing", "pending")
    sink.delay, sink.data_reply = 0.0, None
    retry = await smtp_send(relay.address[1], GP, [colleague, typo], raw)  # the client's retry
    assert retry.code == 250
    assert "forwarded to 1" in retry.text
    await sink.arrived(2)  # the retry's clean copy, and the first hold's release
    await asyncio.sleep(0.3)
    assert len(sink.to(colleague)) == 1  # nothing lost, nothing twice
    assert len(sink.to(typo)) == 1
    [again] = relay.store.list(status=HoldStatus.HELD)
    assert again.hold_id != held.hold_id  # waits for a person, who can see the first went
    assert relay.store.get(held.hold_id).status is HoldStatus.RELEASED  # type: ignore[union-attr]
