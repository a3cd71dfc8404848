"""The SQLite quarantine: durable, byte-exact, migrated, safe across threads."""

from __future__ import annotations

import sqlite3
import stat
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sendguard.core.models import Action, Channel, Finding, Verdict
from sendguard.store import (
    HoldStatus,
    MailEnvelope,
    NotifyStatus,
    SqliteStore,
    StoreError,
    open_store,
)
from sendguard.store.sqlite import MIGRATIONS

RAW = b"From: a@nhs.net\r\nTo: j@gmial.com\r\nSubject: x\r\n\r\n\xe9\x00 binary-safe\r\n"
ENV = MailEnvelope(
    mail_from="a@nhs.net",
    recipients=("j@gmial.com", "b@nhs.net"),
    mail_options=("BODY=8BITMIME",),
    peer="127.0.0.1",
    helo="mx.test",
)


def verdict(*codes: str, monitor: bool = False) -> Verdict:
    return Verdict(
        action=Action.HOLD,
        channel=Channel.EMAIL,
        findings=[
            Finding(code=c, message=f"{c} happened", action=Action.HOLD, monitor=monitor)
            for c in codes
        ],
        recipients={"j@gmial.com": Action.HOLD},
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "q" / "holds.db")
    yield s
    s.close()


def test_a_hold_comes_back_exactly(store: SqliteStore) -> None:
    v = verdict("email.domain_typo", "email.near_known")
    hold_id = store.hold(RAW, ENV, v, held_recipients=["j@gmial.com"], message_id="<m@x>")
    got = store.get(hold_id)
    assert got is not None
    assert got.message == RAW
    assert got.envelope == ENV
    assert got.held_recipients == ("j@gmial.com",)
    assert got.verdict == v
    assert got.status is HoldStatus.HELD
    assert got.codes == ("email.domain_typo", "email.near_known")
    assert got.message_id == "<m@x>"
    assert got.size == len(RAW)
    assert len(got.sha256) == 64
    assert got.notify_status is NotifyStatus.PENDING
    assert store.get("nosuchhold") is None


def test_holds_default_to_every_recipient_and_monitor_codes_are_not_reasons(
    store: SqliteStore,
) -> None:
    mixed = verdict("a.code").findings + verdict("m.code", monitor=True).findings
    hold_id = store.hold(RAW, ENV, verdict().model_copy(update={"findings": mixed}))
    got = store.get(hold_id)
    assert got is not None
    assert got.held_recipients == ENV.recipients
    assert got.codes == ("a.code",)


def test_ids_are_short_unique_and_unambiguous(store: SqliteStore) -> None:
    ids = {store.hold(RAW, ENV, verdict("x")) for _ in range(50)}
    assert len(ids) == 50
    for i in ids:
        assert len(i) == 12
        assert not set(i) & set("01ilo")


def test_list_newest_first_with_filters(tmp_path: Path) -> None:
    now = [datetime(2026, 11, 20, 9, 0, tzinfo=UTC)]
    s = SqliteStore(tmp_path / "h.db", clock=lambda: now[0])
    ids = []
    for i in range(5):
        now[0] += timedelta(hours=1)
        ids.append(s.hold(RAW, ENV, verdict(f"c{i}")))
    listed = s.list()
    assert [h.hold_id for h in listed] == ids[::-1]
    assert listed[0].codes == ("c4",)
    assert listed[0].size == len(RAW)
    assert [h.hold_id for h in s.list(limit=2, offset=1)] == ids[3:1:-1]
    since = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    assert [h.hold_id for h in s.list(since=since)] == ids[:1:-1]
    assert s.list(status=HoldStatus.RELEASED) == []
    assert s.count() == 5
    assert s.count(status=HoldStatus.HELD) == 5
    s.close()


def test_discard_removes_a_hold(store: SqliteStore) -> None:
    hold_id = store.hold(RAW, ENV, verdict("x"))
    store.discard(hold_id)
    assert store.get(hold_id) is None
    assert store.count() == 0


def test_notification_outbox(tmp_path: Path) -> None:
    now = [datetime(2026, 11, 20, 9, 0, tzinfo=UTC)]
    s = SqliteStore(tmp_path / "h.db", clock=lambda: now[0])
    a = s.hold(RAW, ENV, verdict("x"))
    b = s.hold(RAW, ENV, verdict("x"), notify=False)
    c = s.hold(RAW, MailEnvelope(mail_from="", recipients=("j@x.org",)), verdict("x"))
    assert [h.hold_id for h in s.due_notifications(now[0])] == [a]
    assert s.get(b).notify_status is NotifyStatus.NONE  # type: ignore[union-attr]
    assert s.get(c).notify_status is NotifyStatus.NONE  # type: ignore[union-attr]
    retry_at = now[0] + timedelta(minutes=5)
    s.record_notification(a, sent=False, error="451 4.4.1 down", next_attempt=retry_at)
    assert s.due_notifications(now[0]) == []
    (due,) = s.due_notifications(retry_at)
    assert due.notify_attempts == 1
    assert due.notify_error == "451 4.4.1 down"
    s.record_notification(a, sent=True)
    got = s.get(a)
    assert got is not None
    assert got.notify_status is NotifyStatus.SENT
    assert got.notify_attempts == 2
    assert got.notified_at == now[0]
    s.record_notification(a, sent=False, error="550 no")
    assert s.get(a).notify_status is NotifyStatus.FAILED  # type: ignore[union-attr]
    s.close()


def test_durability_settings_and_private_file(tmp_path: Path) -> None:
    path = tmp_path / "q" / "holds.db"
    s = SqliteStore(path)
    s.hold(RAW, ENV, verdict("x"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    db = s._db
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    s.close()
    # committed: another connection (another process, after a crash) sees it
    other = sqlite3.connect(path)
    assert other.execute("SELECT COUNT(*) FROM holds").fetchone()[0] == 1
    other.close()


def test_schema_version_and_migrations(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    s = SqliteStore(path)
    assert s.schema_version == len(MIGRATIONS)
    s.close()
    SqliteStore(path).close()  # reopening runs nothing twice
    db = sqlite3.connect(path)
    db.execute("UPDATE schema_version SET version = ?", (len(MIGRATIONS) + 1,))
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="newer than this sendguard"):
        SqliteStore(path)


def test_concurrent_holds_from_threads(store: SqliteStore) -> None:
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


def test_open_store_urls(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path / 'a.db'}") as s:
        assert isinstance(s, SqliteStore)
    with pytest.raises(StoreError, match="no quarantine"):
        open_store(f"sqlite:///{tmp_path / 'missing.db'}", create=False)
    with pytest.raises(StoreError, match="PostgreSQL"):
        open_store("postgresql://localhost/sendguard")
    with pytest.raises(StoreError, match="unsupported"):
        open_store("mysql://x")


def test_unwritable_location_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="quarantine"):
        SqliteStore(blocker / "holds.db")
