"""Holds on both backends: durable, byte-exact, listed, notified, safe across
threads; email holds from the relay and fax/letter holds from the API."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from storekit import ENV, RAW, START, Backend, Clock, verdict

from sendguard.cli import main
from sendguard.core.models import Action, Channel
from sendguard.store import HoldKind, HoldStatus, MailEnvelope, NotifyStatus
from sendguard.store.sql import SqlStore


def test_a_hold_comes_back_exactly(store: SqlStore) -> None:
    v = verdict("email.domain_typo", "email.near_known")
    hold_id = store.hold(RAW, ENV, v, held_recipients=["j@gmial.com"], message_id="<m@x>")
    got = store.get(hold_id)
    assert got is not None
    assert got.message == RAW
    assert got.envelope == ENV
    assert got.held_recipients == ("j@gmial.com",)
    assert got.verdict == v
    assert got.status is HoldStatus.HELD
    assert got.kind is HoldKind.EMAIL
    assert got.codes == ("email.domain_typo", "email.near_known")
    assert got.message_id == "<m@x>"
    assert got.size == len(RAW)
    assert len(got.sha256) == 64
    assert got.notify_status is NotifyStatus.PENDING
    assert got.payload is None
    assert got.claim is None
    assert (got.requires_reviewer, got.release_at, got.expires_at, got.meta) == (
        False,
        None,
        None,
        {},
    )
    assert store.get("nosuchhold") is None


def test_holds_default_to_every_recipient_and_monitor_codes_are_not_reasons(
    store: SqlStore,
) -> None:
    mixed = verdict("a.code").findings + verdict("m.code", monitor=True).findings
    hold_id = store.hold(RAW, ENV, verdict().model_copy(update={"findings": mixed}))
    got = store.get(hold_id)
    assert got is not None
    assert got.held_recipients == ENV.recipients
    assert got.codes == ("a.code",)


def test_ids_are_short_unique_and_unambiguous(store: SqlStore) -> None:
    ids = {store.hold(RAW, ENV, verdict("x")) for _ in range(50)}
    assert len(ids) == 50
    for i in ids:
        assert len(i) == 12
        assert not set(i) & set("01ilo")


def test_list_newest_first_with_filters(store: SqlStore, clock: Clock) -> None:
    ids = []
    for i in range(5):
        clock.advance(hours=1)
        ids.append(store.hold(RAW, ENV, verdict(f"c{i}")))
    listed = store.list()
    assert [h.hold_id for h in listed] == ids[::-1]
    assert listed[0].codes == ("c4",)
    assert listed[0].size == len(RAW)
    assert listed[0].created_at == clock.now
    assert [h.hold_id for h in store.list(limit=2, offset=1)] == ids[3:1:-1]
    since = START + timedelta(hours=3)
    assert [h.hold_id for h in store.list(since=since)] == ids[:1:-1]
    assert store.list(status=HoldStatus.RELEASED) == []
    assert store.count() == 5
    assert store.count(status=HoldStatus.HELD) == 5
    assert store.count(kind=HoldKind.FAX) == 0


def test_discard_removes_a_hold_and_says_so_in_the_audit_log(store: SqlStore) -> None:
    hold_id = store.hold(RAW, ENV, verdict("x"))
    assert store.discard(hold_id, actor="relay@a", details={"reply": "451 4.4.1 down"})
    assert store.get(hold_id) is None
    assert store.count() == 0
    assert [e.event for e in store.audit_entries(hold_id=hold_id)] == ["hold", "discard"]
    (entry,) = store.audit_entries(event="discard")
    assert (entry.actor, entry.details) == ("relay@a", {"reply": "451 4.4.1 down"})
    assert not store.discard(hold_id)  # nothing left: no second entry
    assert len(store.audit_entries()) == 2


def test_discard_keeps_a_hold_someone_decided_meanwhile(store: SqlStore, clock: Clock) -> None:
    """The relay undoes a split hold when the clean recipients' forward
    fails; a person may have released or cancelled it while the forward
    ran. Their decision, and the row it is on, must not vanish."""
    releasing = store.hold(RAW, ENV, verdict("x"))
    claimed = store.claim_release(releasing, "rita", 60)
    assert claimed is not None
    assert claimed.claim is not None
    released = store.hold(RAW, ENV, verdict("x"))
    got = store.claim_release(released, "rita", 60)
    assert got is not None
    assert got.claim is not None
    assert store.mark_released(released, got.claim, "250 ok")
    queued = store.hold(RAW, ENV, verdict("x"))
    assert store.queue_release(queued, "rita")
    cancelled = store.hold(RAW, ENV, verdict("x"))
    assert store.cancel(cancelled, "sender:a@nhs.net", "cancelled_by_sender")
    kept = {releasing: "releasing", released: "released", queued: "pending", cancelled: "cancelled"}
    for hold_id, status in kept.items():
        before = store.get(hold_id)
        assert not store.discard(hold_id, actor="relay@a", details={"reply": "451 busy"})
        assert store.get(hold_id) == before
        [entry] = store.audit_entries(hold_id=hold_id, event="discard_refused")
        assert (entry.actor, entry.details) == ("relay@a", {"reply": "451 busy", "status": status})
        assert store.audit_entries(hold_id=hold_id, event="discard") == []
    assert store.mark_released(releasing, claimed.claim, "250 ok")  # its releaser finishes
    assert store.count() == 4
    assert store.verify_audit().ok


def test_notification_outbox(store: SqlStore, clock: Clock) -> None:
    now = clock.now
    a = store.hold(RAW, ENV, verdict("x"))
    b = store.hold(RAW, ENV, verdict("x"), notify=False)
    c = store.hold(RAW, MailEnvelope(mail_from="", recipients=("j@x.org",)), verdict("x"))
    assert [h.hold_id for h in store.due_notifications(now)] == [a]
    assert store.get(b).notify_status is NotifyStatus.NONE  # type: ignore[union-attr]
    assert store.get(c).notify_status is NotifyStatus.NONE  # type: ignore[union-attr]
    retry_at = now + timedelta(minutes=5)
    store.record_notification(a, sent=False, error="451 4.4.1 down", next_attempt=retry_at)
    assert store.due_notifications(now) == []
    (due,) = store.due_notifications(retry_at)
    assert due.notify_attempts == 1
    assert due.notify_error == "451 4.4.1 down"
    assert due.notify_next_at == retry_at
    store.record_notification(a, sent=True)
    got = store.get(a)
    assert got is not None
    assert got.notify_status is NotifyStatus.SENT
    assert got.notify_attempts == 2
    assert got.notified_at == now
    store.record_notification(a, sent=False, error="550 no")
    assert store.get(a).notify_status is NotifyStatus.FAILED  # type: ignore[union-attr]


def test_concurrent_holds_from_threads(store: SqlStore) -> None:
    ids: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(20):
            i = store.hold(RAW, ENV, verdict("x"))
            with lock:
                ids.append(i)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(set(ids)) == 80
    assert store.count() == 80
    report = store.verify_audit()
    assert report.ok, report
    assert report.head_seq == 80


def test_stores_starting_together_migrate_once(backend: Backend) -> None:
    """Processes (or nodes) starting at once on a new database: one
    migrates, the others wait and find the schema current."""
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def start() -> None:
        try:
            barrier.wait(10)
            backend.make()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(backend.opened) == 4
    assert backend.raw("SELECT COUNT(*), MIN(version) FROM schema_version") == [
        (1, backend.opened[0].schema_version)  # type: ignore[attr-defined]
    ]
    assert backend.raw("SELECT COUNT(*) FROM audit_head") == [(1,)]


_START_AND_HOLD = """
import sys, time
from sendguard.store import open_store, MailEnvelope
from sendguard.core.models import Action, Channel, Verdict
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
with open_store(sys.argv[1]) as store:
    v = Verdict(action=Action.HOLD, channel=Channel.EMAIL)
    print(store.hold(b"x", MailEnvelope(mail_from="a@x", recipients=("b@y",)), v))
"""


def test_processes_starting_together_migrate_once(backend: Backend) -> None:
    start_at = str(time.time() + 2.0)  # after every interpreter has started
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _START_AND_HOLD, backend.url, start_at],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err for _, err in outputs]
    store = backend.make()
    assert {h.hold_id for h in store.list()} == {out.strip() for out, _ in outputs}
    assert store.verify_audit().head_seq == 3
    assert backend.raw("SELECT COUNT(*) FROM schema_version") == [(1,)]


def test_a_hold_is_committed_when_hold_returns(backend: Backend) -> None:
    """Another store object (another process or node) sees it at once."""
    one, two = backend.make(), backend.make()
    hold_id = one.hold(RAW, ENV, verdict("x"))
    got = two.get(hold_id)
    assert got is not None
    assert got.message == RAW


def test_workflow_options_round_trip(store: SqlStore, clock: Clock) -> None:
    release_at = clock.now + timedelta(minutes=10)
    expires_at = clock.now + timedelta(days=2)
    hold_id = store.hold(
        RAW,
        ENV,
        verdict("x"),
        release_at=release_at,
        expires_at=expires_at,
        requires_reviewer=True,
        meta={"mode": "delay", "n": 3, "nested": {"a": [1, 2]}},
        patients=["9434765919"],
    )
    got = store.get(hold_id)
    assert got is not None
    assert got.release_at == release_at
    assert got.expires_at == expires_at
    assert got.requires_reviewer is True
    assert got.meta == {"mode": "delay", "n": 3, "nested": {"a": [1, 2]}}
    assert got.patients == ("9434765919",)
    (summary,) = store.list()
    assert (summary.release_at, summary.expires_at, summary.requires_reviewer) == (
        release_at,
        expires_at,
        True,
    )
    (entry,) = store.audit_entries(hold_id=hold_id)
    assert entry.details["patients"] == ["9434765919"]


def test_fax_and_letter_holds_from_http(store: SqlStore) -> None:
    fax_verdict = verdict("fax.near_known", channel=Channel.FAX).model_copy(
        update={"recipients": {"+441134960010": Action.HOLD, "+441134960099": Action.ALLOW}}
    )
    payload = {"number": "+441134960010", "intended": "B82005", "patient": "9434765919"}
    fax = store.hold_send(
        "fax",
        payload,
        fax_verdict,
        "gp@nhs.net",
        "https://practice.example/cb/1",
        patients=["9434765919"],
    )
    letter = store.hold_send(
        HoldKind.LETTER,
        {"addressee": "Mrs J Smith", "address": "3 Park Lane\nLeeds\nLS6 2AB"},
        verdict("letter.address", channel=Channel.LETTER),
        "admin@nhs.net",
    )
    got = store.get(fax)
    assert got is not None
    assert got.kind is HoldKind.FAX
    assert got.payload == payload
    assert got.message == b""
    assert got.callback_url == "https://practice.example/cb/1"
    assert got.envelope.mail_from == "gp@nhs.net"
    assert got.held_recipients == ("+441134960010",)
    assert got.envelope.recipients == ("+441134960010", "+441134960099")
    assert got.notify_status is NotifyStatus.NONE
    assert got.verdict == fax_verdict
    assert got.codes == ("fax.near_known",)
    got_letter = store.get(letter)
    assert got_letter is not None
    assert got_letter.kind is HoldKind.LETTER
    assert got_letter.callback_url is None
    assert [h.hold_id for h in store.list(kind=HoldKind.FAX)] == [fax]
    assert store.count(kind=HoldKind.LETTER) == 1
    (entry,) = store.audit_entries(hold_id=fax)
    assert entry.details["kind"] == "fax"
    assert entry.details["recipients"] == ["+441134960010"]
    assert entry.details["callback"] is True
    with pytest.raises(ValueError, match="use hold"):
        store.hold_send("email", {}, verdict("x"), "a@nhs.net")
    with pytest.raises(ValueError, match="pigeon"):
        store.hold_send("pigeon", {}, verdict("x"), "a@nhs.net")


def test_sendguard_held_reads_either_backend(
    backend: Backend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "sendguard.toml"
    config.write_text(f'[store]\nurl = "{backend.url}"\n')
    with pytest.raises(SystemExit):  # it never creates a quarantine
        main(["held", "list", "-c", str(config)])
    assert "no quarantine" in capsys.readouterr().err
    store = backend.make()
    email = store.hold(RAW, ENV, verdict("email.domain_typo"), message_id="<m1@x>")
    fax = store.hold_send("fax", {"number": "+441134960010"}, verdict("fax.near_known"), "gp@x")
    store.cancel(fax, "alice", "wrong_number")
    assert main(["held", "list", "-c", str(config), "--json"]) == 0
    listed = {h["hold_id"]: h["status"] for h in json.loads(capsys.readouterr().out)}
    assert listed == {email: "held", fax: "cancelled"}
    assert main(["held", "show", email, "-c", str(config)]) == 0
    assert f"hold:        {email} (held)" in capsys.readouterr().out
    assert main(["held", "show", fax, "-c", str(config)]) == 0
    assert "(cancelled)" in capsys.readouterr().out
