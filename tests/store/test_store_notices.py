"""The hold-notice outbox with several senders, on both backends: a claim
under a lease lets one notifier send each notice; a crashed notifier's
notices go out from another node once its lease has run out; a notice that
went is recorded (and audited) whoever holds the claim by then."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from storekit import ENV, RAW, Backend, Clock, verdict

from sendguard.store import HeldMessage, NotifyClaim, NotifyStatus
from sendguard.store.sql import SqlStore


def claim_of(held: HeldMessage) -> NotifyClaim:
    assert held.notify_claim is not None
    return held.notify_claim


def notified(store: SqlStore, hold_id: str) -> HeldMessage:
    got = store.get(hold_id)
    assert got is not None
    return got


def test_claims_split_the_due_notices_between_nodes(
    backend_stores: tuple[SqlStore, SqlStore], clock: Clock
) -> None:
    a, b = backend_stores
    holds = [a.hold(RAW, ENV, verdict("x")) for _ in range(3)]
    a.hold(RAW, ENV, verdict("x"), notify=False)  # nothing to send
    first = a.claim_notifications(clock.now, "relay@a", 60, limit=2)
    assert len(first) == 2
    mine = {h.hold_id for h in first}
    assert mine < set(holds)
    for held in first:
        c = claim_of(held)
        assert (c.hold_id, c.owner, c.lease_until, c.attempt) == (
            held.hold_id,
            "relay@a",
            clock.now + timedelta(seconds=60),
            1,
        )
        assert held.notify_status is NotifyStatus.PENDING
    (rest,) = b.claim_notifications(clock.now, "relay@b", 60)
    assert {rest.hold_id} == set(holds) - mine
    assert claim_of(rest).owner == "relay@b"
    assert a.claim_notifications(clock.now, "relay@a", 60) == []
    assert b.due_notifications(clock.now) == []  # claimed is not due
    assert claim_of(notified(b, first[0].hold_id)).owner == "relay@a"  # what `held show` sees


def test_a_sent_notice_is_recorded_and_audited_by_its_sender(store: SqlStore, clock: Clock) -> None:
    hold_id = store.hold(RAW, ENV, verdict("x"))
    (held,) = store.claim_notifications(clock.now, "relay@a", 60)
    clock.advance(seconds=2)
    assert store.record_notification(
        hold_id, sent=True, claim=claim_of(held), details={"links": ["cancel", "confirm"]}
    )
    got = notified(store, hold_id)
    assert (got.notify_status, got.notify_attempts, got.notified_at, got.notify_claim) == (
        NotifyStatus.SENT,
        1,
        clock.now,
        None,
    )
    (entry,) = store.audit_entries(event="notify")
    assert (entry.actor, entry.hold_id, entry.details) == (
        "relay@a",
        hold_id,
        {"attempt": 1, "links": ["cancel", "confirm"]},
    )
    clock.advance(days=1)
    assert store.claim_notifications(clock.now, "relay@a", 60) == []
    with pytest.raises(ValueError, match="claim is for hold"):
        store.record_notification("otherhold", sent=True, claim=claim_of(held))


def test_a_failed_attempt_is_retried_under_a_new_claim(store: SqlStore, clock: Clock) -> None:
    hold_id = store.hold(RAW, ENV, verdict("x"))
    (first,) = store.claim_notifications(clock.now, "relay@a", 60)
    retry_at = clock.now + timedelta(minutes=5)
    assert store.record_notification(
        hold_id, sent=False, error="451 4.4.1 down", next_attempt=retry_at, claim=claim_of(first)
    )
    got = notified(store, hold_id)
    assert (got.notify_status, got.notify_attempts, got.notify_next_at, got.notify_claim) == (
        NotifyStatus.PENDING,
        1,
        retry_at,
        None,
    )
    assert got.notify_error == "451 4.4.1 down"
    assert store.claim_notifications(clock.now, "relay@a", 60) == []
    clock.advance(minutes=5)
    (second,) = store.claim_notifications(clock.now, "relay@b", 60)
    assert claim_of(second).attempt == 2
    assert store.record_notification(hold_id, sent=False, error="550 no", claim=claim_of(second))
    assert notified(store, hold_id).notify_status is NotifyStatus.FAILED
    assert store.audit_entries(event="notify") == []  # nothing went


def test_a_crashed_notifiers_notice_is_sent_by_another_node(
    backend_stores: tuple[SqlStore, SqlStore], clock: Clock
) -> None:
    a, b = backend_stores
    hold_id = a.hold(RAW, ENV, verdict("x"))
    (mine,) = a.claim_notifications(clock.now, "relay@a", 30)  # then relay a dies
    assert b.claim_notifications(clock.now + timedelta(seconds=29), "relay@b", 30) == []
    clock.advance(seconds=30)
    (theirs,) = b.claim_notifications(clock.now, "relay@b", 30)
    assert claim_of(theirs).attempt == 1  # the crash recorded no attempt
    assert claim_of(theirs).token != claim_of(mine).token
    # relay a's stale failure cannot undo relay b's claim
    assert not a.record_notification(
        hold_id, sent=False, error="451 late", next_attempt=clock.now, claim=claim_of(mine)
    )
    assert claim_of(notified(a, hold_id)).owner == "relay@b"
    assert b.record_notification(hold_id, sent=True, claim=claim_of(theirs))
    assert [e.actor for e in a.audit_entries(event="notify")] == ["relay@b"]
    assert notified(a, hold_id).notify_status is NotifyStatus.SENT


def test_a_notice_that_went_is_recorded_even_after_a_takeover(
    backend_stores: tuple[SqlStore, SqlStore], clock: Clock
) -> None:
    """A slow notifier outlived its lease but the next hop took its notice:
    the store says sent (so nobody tries again), and the other node's failure
    no longer counts."""
    a, b = backend_stores
    hold_id = a.hold(RAW, ENV, verdict("x"))
    (slow,) = a.claim_notifications(clock.now, "relay@a", 30)
    clock.advance(seconds=31)
    (other,) = b.claim_notifications(clock.now, "relay@b", 30)
    assert a.record_notification(hold_id, sent=True, claim=claim_of(slow))
    assert not b.record_notification(
        hold_id, sent=False, error="451 busy", next_attempt=clock.now, claim=claim_of(other)
    )
    got = notified(b, hold_id)
    assert (got.notify_status, got.notify_claim) == (NotifyStatus.SENT, None)
    assert [e.actor for e in b.audit_entries(event="notify")] == ["relay@a"]
    clock.advance(days=1)
    assert b.claim_notifications(clock.now, "relay@b", 30) == []


def test_nodes_sweeping_the_outbox_at_once_claim_each_notice_once(
    backend: Backend, clock: Clock
) -> None:
    nodes = [backend.make(), backend.make()]
    holds = [nodes[0].hold(RAW, ENV, verdict("x")) for _ in range(24)]
    barrier = threading.Barrier(4)
    claimed: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def sweep(store: SqlStore, owner: str) -> None:
        try:
            barrier.wait(10)
            while got := store.claim_notifications(clock.now, owner, 60, limit=3):
                with lock:
                    claimed.extend(h.hold_id for h in got)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=sweep, args=(nodes[i % 2], f"relay@{i}")) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert sorted(claimed) == sorted(holds)


def test_a_release_failing_for_good_tells_the_sender_again(store: SqlStore, clock: Clock) -> None:
    """The sender may think the released message went: a notice already sent
    (or given up on) is due again; without one (null sender, notices off)
    nothing is queued, and one not yet sent stays as it is."""
    told = store.hold(RAW, ENV, verdict("x"))
    (held,) = store.claim_notifications(clock.now, "relay@a", 60)
    assert store.record_notification(told, sent=True, claim=claim_of(held))
    silent = store.hold(RAW, ENV, verdict("x"), notify=False)
    waiting = store.hold(RAW, ENV, verdict("x"))
    clock.advance(minutes=5)
    for hold_id in (told, silent, waiting):
        got = store.claim_release(hold_id, "rita", 60)
        assert got is not None
        assert got.claim is not None
        assert store.mark_release_failed(hold_id, got.claim, "550 5.1.1 no such user", None)
    again = notified(store, told)
    assert (again.notify_status, again.notify_next_at, again.notify_attempts) == (
        NotifyStatus.PENDING,
        clock.now,
        0,
    )
    assert again.notified_at == clock.now - timedelta(minutes=5)  # when it was first told
    assert notified(store, silent).notify_status is NotifyStatus.NONE
    assert notified(store, waiting).notify_attempts == 0
    assert {h.hold_id for h in store.due_notifications(clock.now)} == {told, waiting}
    [entry] = store.audit_entries(hold_id=told, event="release_failed")
    assert entry.details["notify"] is True
    [entry] = store.audit_entries(hold_id=silent, event="release_failed")
    assert "notify" not in entry.details
    (held,) = [h for h in store.claim_notifications(clock.now, "relay@b", 60) if h.hold_id == told]
    assert claim_of(held).attempt == 1
    assert store.record_notification(told, sent=True, claim=claim_of(held))
    assert [e.actor for e in store.audit_entries(hold_id=told, event="notify")] == [
        "relay@a",
        "relay@b",
    ]
