"""Releasing and cancelling through the ReviewService, with a real aiosmtpd
sink as the next hop and a real SQLite store: what is sent, exactly once,
and what happens when the next hop is down or refuses."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from reviewkit import ENV, RAW, events, hold_email, make_service, status_of
from storekit import Clock
from support import Sink

from sendguard.relay.forward import NextHop
from sendguard.review.service import REVIEWER_REQUIRED, ReviewService, released_header
from sendguard.store import ExpiryOutcome, HoldNotFound, HoldStatus
from sendguard.store.sql import SqlStore


async def test_release_sends_the_stored_bytes_to_the_held_recipients(
    store: SqlStore, service: ReviewService, sink: Sink
) -> None:
    hold_id = hold_email(store)
    out = await service.release(hold_id, actor="rita", reason="checked-by-phone", reviewer=True)
    assert out.done
    assert out.status is HoldStatus.RELEASED
    assert out.reply is not None
    assert out.reply.startswith("250")
    [got] = await sink.arrived(1)
    assert got.mail_from == ENV.mail_from
    assert got.rcpt_tos == ("jane.smith@gmial.com",)  # the forwarded one is not sent again
    assert got.data == f"X-Sendguard-Released: {hold_id} by rita\r\n".encode() + RAW
    held = store.get(hold_id)
    assert held is not None
    assert held.status is HoldStatus.RELEASED
    assert held.release_reply == out.reply
    assert (held.decided_by, held.reason) == ("rita", "checked-by-phone")
    assert held.message == RAW  # the quarantine keeps what it received
    assert events(store, hold_id) == ["hold", "release", "released"]


def test_released_header_cannot_inject_lines() -> None:
    line = released_header("abc", "eve\r\nBcc: x@evil.test")
    assert line.count(b"\r\n") == 1
    assert line.startswith(b"X-Sendguard-Released: abc by eve")


async def test_double_click_releases_once(
    store: SqlStore, service: ReviewService, sink: Sink
) -> None:
    hold_id = hold_email(store)
    first = await service.release(hold_id, actor="rita", reason="ok", reviewer=True)
    second = await service.release(hold_id, actor="rita", reason="ok", reviewer=True)
    assert first.done
    assert not second.done
    assert second.status is HoldStatus.RELEASED
    assert "already been released" in second.message
    await asyncio.sleep(0.2)
    assert len(sink.messages) == 1


async def test_concurrent_releases_deliver_exactly_once(
    store: SqlStore, service: ReviewService, sink: Sink, clock: Clock, next_hop: NextHop
) -> None:
    other = make_service(store, next_hop, clock, node="node-b")
    hold_id = hold_email(store)
    outs = await asyncio.gather(
        *(
            svc.release(hold_id, actor=f"reviewer{i}", reason="ok", reviewer=True)
            for i, svc in enumerate([service, other] * 4)
        )
    )
    assert sum(o.done for o in outs) == 1
    await asyncio.sleep(0.3)
    assert len(sink.messages) == 1
    assert events(store, hold_id).count("released") == 1


async def test_next_hop_down_is_pending_then_delivered_once_when_back(
    store: SqlStore, clock: Clock, down_hop: tuple[NextHop, int]
) -> None:
    hop, port = down_hop
    service = make_service(store, hop, clock, release_backoff=timedelta(seconds=60))
    hold_id = hold_email(store)
    out = await service.release(hold_id, actor="rita", reason="ok", reviewer=True)
    assert out.done
    assert out.status is HoldStatus.PENDING
    assert out.reply is not None
    assert out.reply.startswith("451")
    held = store.get(hold_id)
    assert held is not None
    assert held.release_next_at == clock.now + timedelta(seconds=60)
    assert (await service.run_due()).total == 0  # not due yet
    sink = Sink(port=port).start()
    try:
        clock.advance(seconds=61)
        counts = await service.run_due()
        assert counts.released == 1
        [got] = await sink.arrived(1)
        assert got.data.startswith(f"X-Sendguard-Released: {hold_id} by rita\r\n".encode())
        clock.advance(seconds=600)
        assert (await service.run_due()).released == 0
        await asyncio.sleep(0.2)
        assert len(sink.messages) == 1
    finally:
        sink.stop()
    assert status_of(store, hold_id) == "released"
    assert events(store, hold_id) == [
        "hold",
        "release",
        "release_failed",
        "release_retry",
        "released",
    ]


async def test_retries_back_off_then_fail_for_a_person(
    store: SqlStore, clock: Clock, down_hop: tuple[NextHop, int]
) -> None:
    hop, _ = down_hop
    service = make_service(store, hop, clock, release_attempts=3)
    hold_id = hold_email(store)
    await service.release(hold_id, actor="rita", reason="ok", reviewer=True)
    clock.advance(seconds=59)
    assert (await service.run_due()).pending == 0
    clock.advance(seconds=2)  # 60 s after attempt 1
    assert (await service.run_due()).pending == 1
    held = store.get(hold_id)
    assert held is not None
    assert held.release_next_at == clock.now + timedelta(seconds=120)  # doubled
    clock.advance(seconds=121)
    counts = await service.run_due()
    assert counts.failed == 1
    assert status_of(store, hold_id) == "failed"
    clock.advance(days=1)
    assert (await service.run_due()).total == 0  # a person must decide again


async def test_refused_by_next_hop_fails_then_a_person_releases_again(
    store: SqlStore, service: ReviewService, sink: Sink
) -> None:
    hold_id = hold_email(store)
    sink.data_reply = "554 5.7.1 no thanks"
    out = await service.release(hold_id, actor="rita", reason="ok", reviewer=True)
    assert not out.done
    assert out.status is HoldStatus.FAILED
    assert out.reply is not None
    assert out.reply.startswith("554")
    sink.data_reply = None
    again = await service.release(hold_id, actor="rita", reason="ok", reviewer=True)
    assert again.done
    assert again.status is HoldStatus.RELEASED
    assert len(await sink.arrived(1)) == 1


async def test_cancel_then_release_is_refused(
    store: SqlStore, service: ReviewService, sink: Sink
) -> None:
    hold_id = hold_email(store)
    out = await service.cancel(hold_id, actor="rita", reason="wrong-recipient")
    assert out.done
    assert out.status is HoldStatus.CANCELLED
    assert "30 days" in out.message
    again = await service.cancel(hold_id, actor="rita", reason="wrong-recipient")
    assert not again.done
    rel = await service.release(hold_id, actor="rita", reason="ok", reviewer=True)
    assert not rel.done
    assert rel.status is HoldStatus.CANCELLED
    await asyncio.sleep(0.1)
    assert sink.messages == []


async def test_cancel_is_purged_after_retention(
    store: SqlStore, service: ReviewService, clock: Clock
) -> None:
    hold_id = hold_email(store)
    kept = hold_email(store)
    await service.cancel(hold_id, actor="rita", reason="wrong-recipient")
    clock.advance(days=29)
    assert (await service.run_due()).purged == 0
    clock.advance(days=1, seconds=1)
    assert (await service.run_due()).purged == 1
    held = store.get(hold_id)
    assert held is not None
    assert held.message == b""
    assert held.purged_at == clock.now
    assert held.status is HoldStatus.CANCELLED
    other = store.get(kept)
    assert other is not None
    assert other.message == RAW  # an undecided hold is never purged
    assert "purge" in events(store, hold_id)


async def test_unknown_hold(service: ReviewService) -> None:
    with pytest.raises(HoldNotFound):
        await service.release("nosuchhold", actor="rita", reason="ok", reviewer=True)
    with pytest.raises(HoldNotFound):
        await service.cancel("nosuchhold", actor="rita", reason="ok")


async def test_reviewer_only_hold_refuses_a_non_reviewer(
    store: SqlStore, service: ReviewService, sink: Sink
) -> None:
    hold_id = hold_email(store, requires_reviewer=True)
    out = await service.release(hold_id, actor="sam", reason="ok", reviewer=False)
    assert not out.done
    assert out.status is HoldStatus.HELD
    assert "reviewer" in out.message
    [refused] = store.audit_entries(hold_id=hold_id, event="refused")
    assert refused.actor == "sam"
    assert refused.details == {"action": "release", "reason": "reviewer_required", "via": "direct"}
    assert status_of(store, hold_id) == "held"
    ok = await service.release(hold_id, actor="rita", reason="ok", reviewer=True)
    assert ok.done
    assert len(await sink.arrived(1)) == 1


async def test_crashed_releaser_is_taken_over_by_run_due(
    store: SqlStore, service: ReviewService, sink: Sink, clock: Clock
) -> None:
    hold_id = hold_email(store)
    crashed = store.claim_release(hold_id, "node-x", 600, reason="ok")  # then it died
    assert crashed is not None
    assert (await service.run_due()).released == 0  # its lease is still live
    clock.advance(seconds=601)
    assert (await service.run_due()).released == 1
    [got] = await sink.arrived(1)
    assert got.data.startswith(f"X-Sendguard-Released: {hold_id} by node-x\r\n".encode())
    assert "release_takeover" in events(store, hold_id)


async def test_without_a_next_hop_the_relay_job_sends_it(
    store: SqlStore, clock: Clock, next_hop: NextHop, sink: Sink
) -> None:
    """The decision is rita's and the delivery the relay's; the hand-over in
    between is no failed attempt."""
    web = make_service(store, None, clock, node="web")  # e.g. the web UI's process
    relay = make_service(store, next_hop, clock, node="relay@b")
    hold_id = hold_email(store, actor="relay@a")
    out = await web.release(hold_id, actor="rita", reason="ok", reviewer=True)
    assert out.done
    assert out.status is HoldStatus.PENDING
    queued = store.get(hold_id)
    assert queued is not None
    assert (queued.release_attempts, queued.release_next_at) == (0, clock.now)
    assert (await relay.run_due()).released == 1
    [got] = await sink.arrived(1)
    assert got.data.startswith(f"X-Sendguard-Released: {hold_id} by rita\r\n".encode())
    trail = store.audit_entries(hold_id=hold_id)
    assert [(e.event, e.actor) for e in trail] == [
        ("hold", "relay@a"),
        ("release", "rita"),
        ("release_retry", "relay@b"),
        ("released", "relay@b"),
    ]
    assert trail[1].details == {"from": "held", "queued": True, "reason": "ok"}
    assert trail[2].details["attempt"] == 1


async def test_a_release_queued_without_a_next_hop_gets_every_attempt(
    store: SqlStore, clock: Clock, down_hop: tuple[NextHop, int]
) -> None:
    hop, _ = down_hop
    web = make_service(store, None, clock, node="web")
    relay = make_service(store, hop, clock, node="relay", release_attempts=3)
    hold_id = hold_email(store)
    await web.release(hold_id, actor="rita", reason="ok", reviewer=True)
    assert (await relay.run_due()).pending == 1  # attempt 1 of 3
    clock.advance(seconds=61)
    assert (await relay.run_due()).pending == 1  # attempt 2
    clock.advance(seconds=121)
    assert (await relay.run_due()).failed == 1  # attempt 3: a person decides again
    failures = store.audit_entries(hold_id=hold_id, event="release_failed")
    assert [(e.actor, e.details["attempt"]) for e in failures] == [
        ("relay", 1),
        ("relay", 2),
        ("relay", 3),
    ]
    assert status_of(store, hold_id) == "failed"


async def test_a_node_without_a_next_hop_cannot_queue_a_decided_hold(
    store: SqlStore, clock: Clock, service: ReviewService
) -> None:
    web = make_service(store, None, clock, node="web")
    hold_id = hold_email(store)
    assert (await web.release(hold_id, actor="rita", reason="ok", reviewer=True)).done
    again = await web.release(hold_id, actor="sam", reason="ok", reviewer=True)
    assert (again.done, again.status) == (False, HoldStatus.PENDING)
    assert "waiting to be delivered" in again.message
    cancelled = hold_email(store)
    await service.cancel(cancelled, actor="rita", reason="wrong-recipient")
    late = await web.release(cancelled, actor="sam", reason="ok", reviewer=True)
    assert (late.done, late.status) == (False, HoldStatus.CANCELLED)
    reviewer_only = hold_email(store, requires_reviewer=True)
    refused = await web.release(reviewer_only, actor="sam", reason="ok", reviewer=False)
    assert (refused.done, refused.status) == (False, HoldStatus.HELD)
    assert events(store, reviewer_only) == ["hold", "refused"]


async def test_a_node_without_a_next_hop_leaves_due_releases_to_a_relay(
    store: SqlStore, clock: Clock, next_hop: NextHop, sink: Sink
) -> None:
    """Its own jobs cannot send mail: claiming a pending release only to hand
    it back would spend a delivery attempt and two audit entries per pass."""
    web = make_service(store, None, clock, node="web")
    relay = make_service(store, next_hop, clock, node="relay", release_attempts=2)
    hold_id = hold_email(store)
    await web.release(hold_id, actor="rita", reason="ok", reviewer=True)
    trail = events(store, hold_id)
    for _ in range(3):
        assert (await web.run_due()).total == 0
    assert events(store, hold_id) == trail
    assert status_of(store, hold_id) == "pending"
    assert (await relay.run_due()).released == 1
    [got] = await sink.arrived(1)
    assert got.data.startswith(f"X-Sendguard-Released: {hold_id} by rita\r\n".encode())


async def test_a_new_release_after_a_failed_series_gets_every_attempt(
    store: SqlStore, clock: Clock, sink: Sink, next_hop: NextHop
) -> None:
    """One 451 on the next person's release is a retry, not a final failure."""
    service = make_service(store, next_hop, clock, release_attempts=2)
    hold_id = hold_email(store)
    sink.data_reply = "451 4.3.0 busy"
    await service.release(hold_id, actor="rita", reason="ok", reviewer=True)
    clock.advance(seconds=61)
    assert (await service.run_due()).failed == 1  # attempt 2 of 2
    again = await service.release(hold_id, actor="sam", reason="ok", reviewer=True)
    assert (again.done, again.status) == (True, HoldStatus.PENDING)  # attempt 1 of 2
    sink.data_reply = None
    clock.advance(seconds=61)
    assert (await service.run_due()).released == 1
    [got] = await sink.arrived(1)
    assert got.data.startswith(f"X-Sendguard-Released: {hold_id} by sam\r\n".encode())


async def test_a_release_failing_after_the_expiry_time_is_not_expired(
    store: SqlStore, clock: Clock, sink: Sink, next_hop: NextHop
) -> None:
    """Approved mail whose retries ran past the hold's expiry waits a full
    `expire_after` for a person once it has failed, instead of being
    expired, unsent, on the next pass."""
    service = make_service(store, next_hop, clock, expire_after=timedelta(days=7))
    hold_id = hold_email(store, expires_at=clock.now + timedelta(minutes=1))
    sink.data_reply = "451 4.3.0 busy"
    await service.release(hold_id, actor="rita", reason="ok", reviewer=True)
    clock.advance(seconds=61)
    assert (await service.run_due()).pending == 1
    sink.data_reply = "554 5.7.1 no thanks"
    clock.advance(seconds=121)
    assert (await service.run_due()).failed == 1
    failed_at = clock.now
    clock.advance(seconds=5)
    assert (await service.run_due()).expired == 0
    held = store.get(hold_id)
    assert held is not None
    assert (held.status, held.expires_at) == (HoldStatus.FAILED, failed_at + timedelta(days=7))
    [*_, last] = store.audit_entries(hold_id=hold_id, event="release_failed")
    assert (last.details["final"], last.details["error"]) == (True, "554 5.7.1 no thanks")
    clock.advance(days=7)
    assert (await service.run_due()).expired == 1  # nobody decided in the new window


def escalate_first(store: SqlStore, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another node's expiry job escalates the hold between the service's
    look at it and its claim (or queueing) of the release."""
    for name in ("claim_release", "queue_release"):
        real = getattr(store, name)

        def escalating(hold_id: str, *args: Any, _real: Any = real, **kwargs: Any) -> Any:
            if status_of(store, hold_id) == "held":
                assert store.expire(
                    hold_id, ExpiryOutcome.ESCALATE, next_expires_at=clock.now + timedelta(days=7)
                )
            return _real(hold_id, *args, **kwargs)

        monkeypatch.setattr(store, name, escalating)


@pytest.mark.parametrize("path", ["direct", "link", "queued"])
async def test_a_hold_escalated_after_the_reviewer_check_is_not_released(
    store: SqlStore,
    clock: Clock,
    next_hop: NextHop,
    sink: Sink,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
) -> None:
    hold_id = hold_email(store, expires_at=clock.now)
    escalate_first(store, clock, monkeypatch)
    service = make_service(store, None if path == "queued" else next_hop, clock)
    if path == "link":
        token = service.signer.issue(hold_id, "confirm", clock.now)
        out = await service.act_on_token(token, "confirm")
    else:
        out = await service.release(hold_id, actor="sam", reason="ok", reviewer=False)
    assert (out.done, out.status, out.message) == (False, HoldStatus.ESCALATED, REVIEWER_REQUIRED)
    held = store.get(hold_id)
    assert held is not None
    assert (held.status, held.decided_by, held.release_attempts) == (HoldStatus.ESCALATED, None, 0)
    [refused] = store.audit_entries(hold_id=hold_id, event="refused")
    assert refused.details["via"] == ("link" if path == "link" else "direct")
    assert "release" not in events(store, hold_id)
    assert (await make_service(store, next_hop, clock).run_due()).total == 0
    await asyncio.sleep(0.1)
    assert sink.messages == []


async def test_a_delayed_hold_escalated_after_it_was_listed_waits_for_a_reviewer(
    store: SqlStore,
    clock: Clock,
    service: ReviewService,
    sink: Sink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The delay-and-recall timer is no reviewer either."""
    hold_id = hold_email(store, release_at=clock.now, expires_at=clock.now)
    escalate_first(store, clock, monkeypatch)
    assert (await service.run_due()).released == 0
    assert status_of(store, hold_id) == "escalated"
    await asyncio.sleep(0.1)
    assert sink.messages == []
    assert events(store, hold_id) == ["hold", "escalate"]
