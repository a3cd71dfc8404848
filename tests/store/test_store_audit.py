"""The audit log on both backends: one hash chain across threads and nodes,
written with each decision, and verification that finds an edited entry, a
deleted one, a cut-off tail and (with an anchor) a rewrite."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from storekit import ENV, RAW, Backend, Clock, verdict

from sendguard.store import StoreError
from sendguard.store.audit import GENESIS, entry_hash
from sendguard.store.sql import SqlStore


def five_entries(store: SqlStore, clock: Clock) -> list[str]:
    hold_id = store.hold(RAW, ENV, verdict("x"), patients=["9434765919"])
    clock.advance(seconds=1)
    store.append_audit("viewed", actor="alice", hold_id=hold_id, details={"via": "web"})
    clock.advance(seconds=1)
    got = store.claim_release(hold_id, "alice", 60)
    assert got is not None
    assert got.claim is not None
    clock.advance(seconds=1)
    store.mark_released(hold_id, got.claim, "250 ok")
    clock.advance(seconds=1)
    store.append_audit("export", actor="admin", details={"rows": 4})
    return [e.hash for e in store.audit_entries()]


def test_entries_form_a_chain_that_verifies(store: SqlStore, clock: Clock) -> None:
    hashes = five_entries(store, clock)
    entries = store.audit_entries()
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert [e.event for e in entries] == ["hold", "viewed", "release", "released", "export"]
    assert entries[0].prev_hash == GENESIS
    for before, after in itertools.pairwise(entries):
        assert after.prev_hash == before.hash
    for e in entries:
        assert e.hash == entry_hash(
            seq=e.seq,
            timestamp=e.timestamp,
            event=e.event,
            actor=e.actor,
            hold_id=e.hold_id,
            details=e.details,
            prev_hash=e.prev_hash,
        )
    assert entries[0].timestamp == clock.now - timedelta(seconds=4)
    report = store.verify_audit()
    assert report.ok, report
    assert (report.checked, report.head_seq, report.head_hash) == (5, 5, hashes[-1])
    assert store.verify_audit(anchor=(2, hashes[1])).ok


def test_queries(store: SqlStore, clock: Clock) -> None:
    five_entries(store, clock)
    hold_id = store.audit_entries()[0].hold_id
    assert [e.seq for e in store.audit_entries(hold_id=hold_id)] == [1, 2, 3, 4]
    assert [e.seq for e in store.audit_entries(event="export")] == [5]
    start = clock.now - timedelta(seconds=4)
    assert [e.seq for e in store.audit_entries(since=start + timedelta(seconds=1))] == [2, 3, 4, 5]
    assert [e.seq for e in store.audit_entries(until=start + timedelta(seconds=2))] == [1, 2]
    assert [e.seq for e in store.audit_entries(limit=2, offset=1)] == [2, 3]


def test_details_are_json_and_carry_no_message_body(store: SqlStore) -> None:
    marker = b"Dear Jane, your biopsy result ZZMARKERZZ"
    raw = RAW.replace(b"binary-safe", marker)
    hold_id = store.hold(raw, ENV, verdict("email.near_known"), message_id="<m1@x>")
    store.cancel(hold_id, "alice", "wrong_recipient")
    entries = store.audit_entries()
    text = b"".join(orjson.dumps(e.details) for e in entries)
    assert b"ZZMARKERZZ" not in text
    assert b"Subject" not in text
    hold = entries[0].details
    assert hold["sender"] == "a@nhs.net"
    assert hold["recipients"] == list(ENV.recipients)
    assert hold["codes"] == ["email.near_known"]
    assert hold["message_id"] == "<m1@x>"
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    e = store.append_audit("note", actor="bob", details={"at": when, "n": 1.5})
    assert e.details == {"at": "2026-01-02T03:04:05+00:00", "n": 1.5}
    assert store.audit_entries(event="note")[0].details == e.details
    with pytest.raises(StoreError, match="JSON"):
        store.append_audit("note", actor="bob", details={"x": object()})
    assert store.verify_audit().ok


def test_an_edited_entry_is_found(backend: Backend, clock: Clock) -> None:
    store = backend.make()
    five_entries(store, clock)
    backend.raw("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3")
    report = store.verify_audit()
    assert not report.ok
    assert report.first_bad_seq == 3
    assert "altered" in (report.problem or "")


def test_an_edited_detail_is_found(backend: Backend, clock: Clock) -> None:
    store = backend.make()
    five_entries(store, clock)
    backend.raw("UPDATE audit_log SET details = ? WHERE seq = 4", '{"reply": "550 no"}')
    assert store.verify_audit().first_bad_seq == 4
    backend.raw("UPDATE audit_log SET details = ? WHERE seq = 2", "not json")
    report = store.verify_audit()
    assert report.first_bad_seq == 2
    assert "altered" in (report.problem or "")


def test_a_deleted_entry_is_found(backend: Backend, clock: Clock) -> None:
    store = backend.make()
    five_entries(store, clock)
    backend.raw("DELETE FROM audit_log WHERE seq = 3")
    report = store.verify_audit()
    assert (report.ok, report.first_bad_seq, report.checked) == (False, 3, 2)
    assert "missing" in (report.problem or "")
    backend.raw("DELETE FROM audit_log WHERE seq = 1")
    assert store.verify_audit().first_bad_seq == 1


def test_a_cut_off_tail_is_found(backend: Backend, clock: Clock) -> None:
    store = backend.make()
    five_entries(store, clock)
    backend.raw("DELETE FROM audit_log WHERE seq >= 4")
    report = store.verify_audit()
    assert (report.ok, report.first_bad_seq, report.head_seq) == (False, 4, 5)
    assert "cut off" in (report.problem or "")
    backend.raw("DELETE FROM audit_head")
    report = store.verify_audit()
    assert not report.ok
    assert "head" in (report.problem or "")


def test_a_recomputed_hash_breaks_the_next_link(backend: Backend, clock: Clock) -> None:
    store = backend.make()
    five_entries(store, clock)
    e = store.audit_entries()[2]
    forged = entry_hash(
        seq=e.seq,
        timestamp=e.timestamp,
        event=e.event,
        actor="mallory",
        hold_id=e.hold_id,
        details=e.details,
        prev_hash=e.prev_hash,
    )
    backend.raw("UPDATE audit_log SET actor = 'mallory', hash = ? WHERE seq = 3", forged)
    report = store.verify_audit()
    assert report.first_bad_seq == 4
    assert "does not follow" in (report.problem or "")


def test_a_rewritten_tail_needs_the_anchor_to_show(backend: Backend, clock: Clock) -> None:
    store = backend.make()
    hashes = five_entries(store, clock)
    backend.raw("DELETE FROM audit_log WHERE seq >= 4")
    backend.raw("UPDATE audit_head SET seq = 3, hash = ?", hashes[2])
    assert store.verify_audit().ok  # consistent inside the database...
    report = store.verify_audit(anchor=(5, hashes[4]))
    assert not report.ok  # ...but not with the head kept outside
    assert "anchor" in (report.problem or "")
    store.append_audit("later", actor="x")  # seq 4 again, a different entry
    assert store.verify_audit(anchor=(4, hashes[3])).first_bad_seq == 4


def test_a_decision_and_its_entry_commit_together(backend: Backend, clock: Clock) -> None:
    store = backend.make()
    hold_id = store.hold(RAW, ENV, verdict("x"))
    backend.raw("DELETE FROM audit_head")  # appends now fail
    with pytest.raises(StoreError, match="head"):
        store.cancel(hold_id, "alice", "wrong_recipient")
    got = store.get(hold_id)
    assert got is not None
    assert got.status.value == "held"  # the cancel was rolled back with its entry
    with pytest.raises(StoreError):
        store.hold(RAW, ENV, verdict("x"))
    assert store.count() == 1


def test_appends_from_threads_and_nodes_form_one_chain(backend: Backend) -> None:
    stores = [backend.make(), backend.make()]
    barrier = threading.Barrier(4)

    def work(store: SqlStore, name: str) -> None:
        barrier.wait(10)
        for i in range(15):
            store.append_audit("tick", actor=name, details={"i": i})

    threads = [threading.Thread(target=work, args=(stores[i % 2], f"t{i}")) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    report = stores[0].verify_audit()
    assert report.ok, report
    assert report.head_seq == 60
    assert [e.seq for e in stores[1].audit_entries(limit=100)] == list(range(1, 61))
