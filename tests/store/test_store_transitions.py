"""Decisions on both backends: every transition, its compare-and-set (of two
racers exactly one wins), fenced release leases and their takeover, the
due-work queries and purging."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

import pytest
from storekit import ENV, RAW, Backend, Clock, verdict

from sendguard.store import (
    ExpiryOutcome,
    HoldNotFound,
    HoldStatus,
    ReleaseClaim,
    ReviewerRequired,
)
from sendguard.store.sql import SqlStore

T = TypeVar("T")
DAY = timedelta(days=1)


def claim(store: SqlStore, hold_id: str, actor: str = "alice", lease: float = 60) -> ReleaseClaim:
    got = store.claim_release(hold_id, actor, lease)
    assert got is not None
    assert got.claim is not None
    return got.claim


def status(store: SqlStore, hold_id: str) -> HoldStatus:
    got = store.get(hold_id)
    assert got is not None
    return got.status


def events(store: SqlStore, hold_id: str) -> list[str]:
    return [e.event for e in store.audit_entries(hold_id=hold_id)]


def race(calls: list[Callable[[], T]]) -> list[T]:
    """Run the calls at the same moment in threads; their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list[T | None] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(10)
            results[i] = calls[i]()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    return results  # type: ignore[return-value]


def test_release_held_to_released(store: SqlStore, clock: Clock) -> None:
    hold_id = store.hold(RAW, ENV, verdict("x"))
    got = store.claim_release(hold_id, "alice", 120, reason="checked by phone")
    assert got is not None
    assert got.status is HoldStatus.RELEASING
    assert got.message == RAW
    assert got.claim is not None
    assert got.claim.owner == "alice"
    assert got.claim.attempt == 1
    assert got.claim.lease_until == clock.now + timedelta(seconds=120)
    assert (got.decided_by, got.decided_at, got.reason) == ("alice", clock.now, "checked by phone")
    assert store.claim_release(hold_id, "bob", 120) is None  # someone is releasing it
    assert not store.cancel(hold_id, "bob", "wrong_recipient")  # too late to cancel
    clock.advance(seconds=5)
    assert store.mark_released(hold_id, got.claim, "250 2.0.0 Ok: queued as 4F2")
    done = store.get(hold_id)
    assert done is not None
    assert done.status is HoldStatus.RELEASED
    assert done.release_reply == "250 2.0.0 Ok: queued as 4F2"
    assert done.released_at == clock.now
    assert done.claim is None
    assert done.decided_by == "alice"
    assert store.claim_release(hold_id, "bob", 120) is None
    assert not store.cancel(hold_id, "bob", "x")
    assert not store.recall(hold_id, "a@nhs.net")
    assert not store.mark_released(hold_id, got.claim, "250 again")  # only once
    assert events(store, hold_id) == ["hold", "release", "released"]
    release = store.audit_entries(event="release")[0]
    assert release.actor == "alice"
    assert release.details["reason"] == "checked by phone"


def test_next_hop_down_then_retried(store: SqlStore, clock: Clock) -> None:
    hold_id = store.hold(RAW, ENV, verdict("x"))
    first = claim(store, hold_id, "node-a")
    retry_at = clock.now + timedelta(minutes=5)
    assert store.mark_release_failed(hold_id, first, "451 4.4.1 next hop down", retry_at)
    pending = store.get(hold_id)
    assert pending is not None
    assert pending.status is HoldStatus.PENDING
    assert pending.release_error == "451 4.4.1 next hop down"
    assert pending.release_attempts == 1
    assert pending.release_next_at == retry_at
    assert pending.claim is None
    assert store.due_releases(clock.now) == []
    clock.advance(minutes=5)
    (due,) = store.due_releases(clock.now)
    assert due.hold_id == hold_id
    assert due.status is HoldStatus.PENDING
    second = claim(store, hold_id, "node-b")
    assert second.attempt == 2
    assert store.due_releases(clock.now) == []
    assert not store.mark_release_failed(hold_id, first, "stale", None)  # the old claim is spent
    assert store.mark_released(hold_id, second, "250 ok")
    got = store.get(hold_id)
    assert got is not None
    assert (got.status, got.release_error, got.release_next_at, got.decided_by) == (
        HoldStatus.RELEASED,
        None,
        None,
        "node-a",
    )
    assert events(store, hold_id) == [
        "hold",
        "release",
        "release_failed",
        "release_retry",
        "released",
    ]


def test_a_refused_release_fails_for_a_person_to_decide(store: SqlStore, clock: Clock) -> None:
    hold_id = store.hold(RAW, ENV, verdict("x"))
    c = claim(store, hold_id)
    assert store.mark_release_failed(hold_id, c, "550 5.1.1 no such user", None)
    assert status(store, hold_id) is HoldStatus.FAILED
    assert store.due_releases(clock.now + timedelta(days=1)) == []
    again = claim(store, hold_id, "bob")  # a person releases again: a new decision
    assert store.get(hold_id).decided_by == "bob"  # type: ignore[union-attr]
    assert store.mark_release_failed(hold_id, again, "550 5.1.1 no such user", None)
    assert store.cancel(hold_id, "bob", "undeliverable")
    assert status(store, hold_id) is HoldStatus.CANCELLED


def test_a_new_release_decision_gets_every_attempt_again(store: SqlStore, clock: Clock) -> None:
    """After a failed series, the next person's release has the full series
    of attempts, not what was left of the earlier one; the audit keeps them."""
    hold_id = store.hold(RAW, ENV, verdict("x"))
    first = claim(store, hold_id, "alice")
    store.mark_release_failed(hold_id, first, "451 busy", clock.now + timedelta(minutes=1))
    clock.advance(minutes=1)
    retry = claim(store, hold_id, "node-a")
    assert retry.attempt == 2
    assert store.mark_release_failed(hold_id, retry, "451 busy", None)  # out of attempts
    assert store.get(hold_id).release_attempts == 2  # type: ignore[union-attr]
    again = claim(store, hold_id, "bob")
    assert again.attempt == 1
    assert store.get(hold_id).release_attempts == 1  # type: ignore[union-attr]
    assert store.mark_release_failed(hold_id, again, "550 5.1.1 no such user", None)
    assert store.queue_release(hold_id, "rita")  # from a node without a next hop
    assert store.get(hold_id).release_attempts == 0  # type: ignore[union-attr]
    assert claim(store, hold_id, "relay@b").attempt == 1
    releases = store.audit_entries(hold_id=hold_id, event="release")
    assert [(e.actor, e.details.get("earlier_attempts")) for e in releases] == [
        ("alice", None),
        ("bob", 2),
        ("rita", 1),
    ]
    failures = store.audit_entries(hold_id=hold_id, event="release_failed")
    assert [(e.actor, e.details["attempt"], e.details["final"]) for e in failures] == [
        ("alice", 1, False),
        ("node-a", 2, True),
        ("bob", 1, True),
    ]


def test_a_release_failing_for_good_gets_a_new_expiry(store: SqlStore, clock: Clock) -> None:
    """Retries may run past the hold's expiry; the failed release is then
    not expired on the next pass, but waits a full window for a person."""
    hold_id = store.hold(RAW, ENV, verdict("x"), expires_at=clock.now + timedelta(hours=1))
    no_expiry = store.hold(RAW, ENV, verdict("x"))
    first = claim(store, hold_id)
    store.mark_release_failed(hold_id, first, "451 busy", clock.now + timedelta(hours=2))
    clock.advance(hours=2)
    assert store.due_expiries(clock.now) == []  # pending: a release in progress
    retry = claim(store, hold_id, "node-a")
    week = clock.now + timedelta(days=7)
    assert store.mark_release_failed(hold_id, retry, "451 busy", None, expires_at=week)
    got = store.get(hold_id)
    assert got is not None
    assert (got.status, got.expires_at) == (HoldStatus.FAILED, week)
    assert store.due_expiries(clock.now) == []
    assert not store.expire(hold_id, ExpiryOutcome.CANCEL)
    [*_, last] = store.audit_entries(hold_id=hold_id, event="release_failed")
    assert last.details == {
        "error": "451 busy",
        "status": "failed",
        "final": True,
        "expires_at": "2026-11-27T11:00:00.000000Z",
        "attempt": 2,
    }
    c = claim(store, no_expiry)
    assert store.mark_release_failed(no_expiry, c, "550 no", None, expires_at=week)
    got = store.get(no_expiry)
    assert got is not None
    assert got.expires_at is None  # a hold that never expired still does not
    assert "expires_at" not in store.audit_entries(event="release_failed")[-1].details
    clock.advance(days=7)
    assert [h.hold_id for h in store.due_expiries(clock.now)] == [hold_id]


def test_a_crashed_releasers_lease_is_taken_over(backend: Backend, clock: Clock) -> None:
    node_a, node_b = backend.make(), backend.make()
    hold_id = node_a.hold(RAW, ENV, verdict("x"))
    a = claim(node_a, hold_id, "node-a", lease=30)
    assert node_b.claim_release(hold_id, "node-b", 30) is None  # lease still live
    assert node_b.due_releases(clock.now) == []
    clock.advance(seconds=31)  # node-a died mid-delivery
    (due,) = node_b.due_releases(clock.now)
    assert due.status is HoldStatus.RELEASING
    assert due.lease_owner == "node-a"
    b = claim(node_b, hold_id, "node-b", lease=30)
    assert b.attempt == 2
    assert b.token != a.token
    assert not node_a.mark_released(hold_id, a, "250 late")  # fenced off
    assert node_b.mark_released(hold_id, b, "250 ok")
    got = node_a.get(hold_id)
    assert got is not None
    assert (got.status, got.release_reply) == (HoldStatus.RELEASED, "250 ok")
    takeover = node_a.audit_entries(event="release_takeover")
    assert [(e.actor, e.details["previous_owner"]) for e in takeover] == [("node-b", "node-a")]
    with pytest.raises(ValueError, match="claim is for hold"):
        node_b.mark_released("otherhold", b, "250")


def test_a_release_queued_by_a_node_that_cannot_send(store: SqlStore, clock: Clock) -> None:
    """The decision is recorded and left `pending` for a releaser's job: no
    attempt is spent, so the releaser gets every one of them."""
    hold_id = store.hold(RAW, ENV, verdict("x"))
    clock.advance(minutes=1)
    assert store.queue_release(hold_id, "rita", reason="checked-by-phone")
    got = store.get(hold_id)
    assert got is not None
    assert (got.status, got.decided_by, got.decided_at, got.reason) == (
        HoldStatus.PENDING,
        "rita",
        clock.now,
        "checked-by-phone",
    )
    assert (got.release_attempts, got.release_next_at, got.claim) == (0, clock.now, None)
    (entry,) = store.audit_entries(event="release")
    assert (entry.actor, entry.details) == (
        "rita",
        {"from": "held", "queued": True, "reason": "checked-by-phone"},
    )
    assert not store.queue_release(hold_id, "sam")  # decided already
    assert [h.hold_id for h in store.due_releases(clock.now)] == [hold_id]
    c = claim(store, hold_id, "relay@b")
    assert c.attempt == 1
    assert not store.queue_release(hold_id, "sam")  # being sent
    assert store.mark_released(hold_id, c, "250 ok")
    done = store.get(hold_id)
    assert done is not None
    assert (done.status, done.decided_by, done.reason) == (
        HoldStatus.RELEASED,
        "rita",
        "checked-by-phone",
    )
    assert not store.queue_release(hold_id, "sam")
    assert events(store, hold_id) == ["hold", "release", "release_retry", "released"]
    assert "release_failed" not in events(store, hold_id)
    with pytest.raises(HoldNotFound):
        store.queue_release("nosuchhold", "rita")


def test_a_queued_release_from_failed_or_escalated_and_its_cancel(
    store: SqlStore, clock: Clock
) -> None:
    failed = store.hold(RAW, ENV, verdict("x"))
    store.mark_release_failed(failed, claim(store, failed), "550 no such user", None)
    assert store.queue_release(failed, "rita")
    (entry,) = [e for e in store.audit_entries(hold_id=failed) if e.details.get("queued")]
    assert entry.details == {"from": "failed", "queued": True, "earlier_attempts": 1}
    escalated = store.hold(RAW, ENV, verdict("x"), expires_at=clock.now)
    assert store.expire(escalated, ExpiryOutcome.ESCALATE, next_expires_at=clock.now)
    assert store.queue_release(escalated, "carol", reason="ok", reviewer=True)
    assert status(store, escalated) is HoldStatus.PENDING
    assert store.cancel(escalated, "carol", "changed_mind")  # not sent yet: still cancellable
    assert [h.hold_id for h in store.due_releases(clock.now)] == [failed]
    cancelled = store.hold(RAW, ENV, verdict("x"))
    store.cancel(cancelled, "alice", "x")
    assert not store.queue_release(cancelled, "rita")


def test_releases_queued_on_two_nodes_at_once_decide_once(backend: Backend) -> None:
    node_a, node_b = backend.make(), backend.make()
    for _ in range(5):
        hold_id = node_a.hold(RAW, ENV, verdict("x"))
        results = race(
            [
                lambda h=hold_id, n=n, who=who: n.queue_release(h, who)
                for n, who in ((node_a, "rita"), (node_b, "sam"), (node_a, "tom"), (node_b, "uma"))
            ]
        )
        assert results.count(True) == 1
        assert events(node_b, hold_id) == ["hold", "release"]
    assert node_b.verify_audit().ok


def test_cancel(store: SqlStore, clock: Clock) -> None:
    hold_id = store.hold(RAW, ENV, verdict("x"))
    clock.advance(minutes=1)
    assert store.cancel(hold_id, "alice", "wrong_recipient")
    got = store.get(hold_id)
    assert got is not None
    assert (got.status, got.decided_by, got.decided_at, got.reason) == (
        HoldStatus.CANCELLED,
        "alice",
        clock.now,
        "wrong_recipient",
    )
    assert not store.cancel(hold_id, "bob", "again")
    assert store.claim_release(hold_id, "bob") is None
    (entry,) = store.audit_entries(event="cancel")
    assert (entry.actor, entry.hold_id, entry.details) == (
        "alice",
        hold_id,
        {"reason": "wrong_recipient", "from": "held"},
    )
    with pytest.raises(HoldNotFound):
        store.cancel("nosuchhold", "alice", "x")
    with pytest.raises(HoldNotFound):
        store.claim_release("nosuchhold", "alice")


def test_a_pending_retry_can_be_cancelled(store: SqlStore, clock: Clock) -> None:
    hold_id = store.hold(RAW, ENV, verdict("x"))
    c = claim(store, hold_id)
    store.mark_release_failed(hold_id, c, "421 busy", clock.now + timedelta(minutes=1))
    assert store.cancel(hold_id, "alice", "sent_by_fax_instead")
    assert store.due_releases(clock.now + timedelta(hours=1)) == []


def test_delay_and_recall(store: SqlStore, clock: Clock) -> None:
    later = clock.now + timedelta(minutes=10)
    kept = store.hold(RAW, ENV, verdict("x"), release_at=later)
    recalled = store.hold(RAW, ENV, verdict("x"), release_at=later)
    reviewed = store.hold(RAW, ENV, verdict("x"), release_at=later, requires_reviewer=True)
    assert store.due_releases(clock.now) == []
    assert store.recall(recalled, "a@nhs.net", "sent_to_wrong_patient")
    assert status(store, recalled) is HoldStatus.RECALLED
    assert not store.recall(recalled, "a@nhs.net")
    clock.advance(minutes=10)
    assert [h.hold_id for h in store.due_releases(clock.now)] == [kept]  # not the reviewed one
    c = claim(store, kept, "system")
    assert store.mark_released(kept, c, "250 ok")
    assert not store.recall(kept, "a@nhs.net")  # too late: it has gone
    assert status(store, reviewed) is HoldStatus.HELD
    (entry,) = store.audit_entries(event="recall")
    assert (entry.hold_id, entry.actor, entry.details["reason"]) == (
        recalled,
        "a@nhs.net",
        "sent_to_wrong_patient",
    )


def test_expiry_cancels_or_escalates(store: SqlStore, clock: Clock) -> None:
    day = timedelta(days=1)
    to_cancel = store.hold(RAW, ENV, verdict("x"), expires_at=clock.now + day)
    to_escalate = store.hold(RAW, ENV, verdict("x"), expires_at=clock.now + day)
    never = store.hold(RAW, ENV, verdict("x"))
    assert store.due_expiries(clock.now) == []
    assert not store.expire(to_cancel, ExpiryOutcome.CANCEL)  # not due yet
    assert not store.expire(never, ExpiryOutcome.CANCEL)  # never expires
    clock.advance(days=1)
    assert {h.hold_id for h in store.due_expiries(clock.now)} == {to_cancel, to_escalate}
    assert store.expire(to_cancel, ExpiryOutcome.CANCEL)
    assert status(store, to_cancel) is HoldStatus.EXPIRED
    assert not store.expire(to_cancel, ExpiryOutcome.CANCEL)
    next_expiry = clock.now + day
    assert store.expire(
        to_escalate, ExpiryOutcome.ESCALATE, reason="no_decision", next_expires_at=next_expiry
    )
    esc = store.get(to_escalate)
    assert esc is not None
    assert (esc.status, esc.requires_reviewer, esc.expires_at, esc.reason) == (
        HoldStatus.ESCALATED,
        True,
        next_expiry,
        "no_decision",
    )
    assert esc.decided_by is None  # escalation is not a decision
    assert store.due_expiries(clock.now) == []
    assert not store.expire(to_escalate, ExpiryOutcome.CANCEL)  # its new expiry is not due
    # an escalated hold is still decided by a person: a reviewer
    got = store.claim_release(to_escalate, "carol", 60, reviewer=True)
    assert got is not None
    assert got.claim is not None
    c = got.claim
    assert store.mark_released(to_escalate, c, "250 ok")
    assert [e.event for e in store.audit_entries(hold_id=to_escalate)] == [
        "hold",
        "escalate",
        "release",
        "released",
    ]
    assert events(store, to_cancel) == ["hold", "expire"]


def test_a_reviewer_only_release_is_refused_inside_the_compare_and_set(
    store: SqlStore, clock: Clock
) -> None:
    """The reviewer check is part of the claim: a hold that became
    reviewer-only (escalated by another node) after a caller read it is not
    released by a sender's link, a non-reviewer or a check token."""
    strict = store.hold(RAW, ENV, verdict("x"), requires_reviewer=True)
    escalated = store.hold(RAW, ENV, verdict("x"), expires_at=clock.now)
    assert store.expire(escalated, ExpiryOutcome.ESCALATE, next_expires_at=clock.now + DAY)
    for hold_id in (strict, escalated):
        before = store.get(hold_id)
        with pytest.raises(ReviewerRequired):
            store.claim_release(hold_id, "sender:a@nhs.net", 60)
        with pytest.raises(ReviewerRequired):
            store.queue_release(hold_id, "sam", reason="ok")
        assert store.get(hold_id) == before  # nothing changed
        assert "release" not in events(store, hold_id)
    got = store.claim_release(strict, "rita", 60, reviewer=True)
    assert got is not None
    assert got.claim is not None
    assert store.queue_release(escalated, "rita", reviewer=True)
    # a retry or a takeover is no decision: whoever runs the jobs carries it on
    assert store.mark_release_failed(strict, got.claim, "451 busy", clock.now)
    assert claim(store, strict, "relay@a").attempt == 2
    assert claim(store, escalated, "relay@a").attempt == 1
    clock.advance(seconds=61)
    assert claim(store, escalated, "relay@b").attempt == 2  # taken over
    assert events(store, strict) == ["hold", "release", "release_failed", "release_retry"]


def test_two_releasers_on_one_store_exactly_one_wins(store: SqlStore) -> None:
    for _ in range(5):
        hold_id = store.hold(RAW, ENV, verdict("x"))
        results = race([lambda a=a, h=hold_id: store.claim_release(h, a, 60) for a in "abcd"])
        assert sum(r is not None for r in results) == 1
        assert events(store, hold_id) == ["hold", "release"]


def test_two_nodes_racing_exactly_one_wins(backend: Backend) -> None:
    node_a, node_b = backend.make(), backend.make()
    for _ in range(5):
        hold_id = node_a.hold(RAW, ENV, verdict("x"))
        results = race(
            [
                lambda h=hold_id: node_a.claim_release(h, "node-a", 60),
                lambda h=hold_id: node_b.claim_release(h, "node-b", 60),
            ]
        )
        assert sum(r is not None for r in results) == 1
    for _ in range(5):  # a release and a cancel racing: one of them happens
        hold_id = node_a.hold(RAW, ENV, verdict("x"))
        claimed, cancelled = race(
            [
                lambda h=hold_id: node_a.claim_release(h, "alice", 60),
                lambda h=hold_id: node_b.cancel(h, "bob", "wrong_recipient"),
            ]
        )
        assert (claimed is not None) != cancelled
        final = status(node_a, hold_id)
        assert final is (HoldStatus.CANCELLED if cancelled else HoldStatus.RELEASING)
        assert len(events(node_b, hold_id)) == 2
    report = node_b.verify_audit()
    assert report.ok, report


def test_one_node_holds_another_releases(backend: Backend) -> None:
    relay, reviewer = backend.make(), backend.make()
    hold_id = relay.hold(RAW, ENV, verdict("email.domain_typo"), held_recipients=["j@gmial.com"])
    got = reviewer.claim_release(hold_id, "alice", 60)
    assert got is not None
    assert got.claim is not None
    assert got.message == RAW
    assert reviewer.mark_released(hold_id, got.claim, "250 ok")
    seen = relay.get(hold_id)
    assert seen is not None
    assert seen.status is HoldStatus.RELEASED
    assert [e.event for e in relay.audit_entries(hold_id=hold_id)] == [
        "hold",
        "release",
        "released",
    ]


def test_purge_keeps_the_row_and_drops_the_content(store: SqlStore, clock: Clock) -> None:
    cancelled = store.hold(RAW, ENV, verdict("x"))
    expired = store.hold(RAW, ENV, verdict("x"), expires_at=clock.now)
    recalled = store.hold(RAW, ENV, verdict("x"))
    fax = store.hold_send("fax", {"number": "+441134960010"}, verdict("x"), "gp@nhs.net")
    held = store.hold(RAW, ENV, verdict("x"))
    released = store.hold(RAW, ENV, verdict("x"))
    store.cancel(cancelled, "alice", "wrong_recipient")
    store.expire(expired, ExpiryOutcome.CANCEL)
    store.recall(recalled, "a@nhs.net")
    store.cancel(fax, "alice", "wrong_number")
    store.mark_released(released, claim(store, released), "250 ok")
    assert store.purge_cancelled(clock.now) == 0  # decided at, not before, the cutoff
    clock.advance(days=30)
    late = store.hold(RAW, ENV, verdict("x"))
    store.cancel(late, "alice", "x")  # decided after the cutoff: kept
    assert store.purge_cancelled(clock.now - timedelta(days=1)) == 4
    for hold_id in (cancelled, expired, recalled, fax):
        got = store.get(hold_id)
        assert got is not None
        assert got.message == b""
        assert got.payload is None
        assert got.purged_at == clock.now
        assert len(got.sha256) == 64  # what was held stays provable
        assert got.envelope.mail_from in ("a@nhs.net", "gp@nhs.net")
        assert events(store, hold_id)[-1] == "purge"
    for hold_id in (held, released, late):
        got = store.get(hold_id)
        assert got is not None
        assert got.message == RAW
        assert got.purged_at is None
    assert store.purge_cancelled(clock.now + timedelta(seconds=1)) == 1  # the others only once
    assert store.verify_audit().ok
