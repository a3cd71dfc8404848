"""What only the SQLite store does: durability settings, a private file,
migrations (an old database upgrades in place), clear errors, URLs."""

from __future__ import annotations

import json
import sqlite3
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from storekit import ENV, RAW, verdict

from sendguard.store import HoldStatus, SqliteStore, StoreError, open_store
from sendguard.store.sqlite import MIGRATIONS, _statements


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


def _version_1_database(path: Path) -> None:
    """A quarantine exactly as the first release wrote it, with one hold."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    db.execute("INSERT INTO schema_version (version) VALUES (1)")
    for statement in _statements(MIGRATIONS[0]):
        db.execute(statement)
    v = verdict("email.domain_typo")
    db.execute(
        "INSERT INTO holds (id, status, created_at, mail_from, recipients, held_recipients, "
        "mail_options, peer, helo, message_id, size, action, codes, verdict, sha256, "
        "notify_status, notify_attempts, notify_next_at, notify_error, notified_at, message) "
        "VALUES (?, 'held', '2026-11-01T10:00:00.000000Z', 'a@nhs.net', ?, ?, '[]', "
        "'127.0.0.1', 'mx', '<old@x>', ?, 'hold', ?, ?, 'abc', 'sent', 1, NULL, NULL, "
        "'2026-11-01T10:00:01.000000Z', ?)",
        (
            "oldhold23456",
            json.dumps(list(ENV.recipients)),
            json.dumps(["j@gmial.com"]),
            len(RAW),
            json.dumps(["email.domain_typo"]),
            v.model_dump_json(),
            RAW,
        ),
    )
    db.commit()
    db.close()


def test_a_version_1_database_upgrades_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _version_1_database(path)
    s = SqliteStore(path)
    assert s.schema_version == len(MIGRATIONS)
    old = s.get("oldhold23456")
    assert old is not None
    assert old.message == RAW
    assert old.status is HoldStatus.HELD
    assert old.kind.value == "email"
    assert (old.patients, old.meta, old.requires_reviewer, old.release_attempts) == (
        (),
        {},
        False,
        0,
    )
    assert old.notified_at is not None
    # the new workflow works on the old hold, and the audit chain starts empty
    assert s.verify_audit().ok
    claimed = s.claim_release("oldhold23456", "alice", 60)
    assert claimed is not None
    assert claimed.claim is not None
    assert s.mark_released("oldhold23456", claimed.claim, "250 2.0.0 Ok")
    new_id = s.hold(RAW, ENV, verdict("x"))
    assert {h.hold_id for h in s.list()} == {"oldhold23456", new_id}
    assert [e.event for e in s.audit_entries()] == ["release", "released", "hold"]
    assert s.verify_audit().ok
    s.close()
    SqliteStore(path).close()  # and opens again without migrating twice


def test_a_version_2_database_loses_its_api_tokens_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """API tokens live in the HTTP API's file; the store's unused table goes."""
    path = tmp_path / "v2.db"
    with monkeypatch.context() as m:
        m.setattr("sendguard.store.sqlite.MIGRATIONS", MIGRATIONS[:2])
        with SqliteStore(path) as s:
            assert s.schema_version == 2
            hold_id = s.hold(RAW, ENV, verdict("x"))
            s.add_user("alice", "reviewer", "$argon2id$x")
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(
        "INSERT INTO api_tokens VALUES ('t1', 'emis', ?, 'sender', '[]', "
        "'2026-11-01T10:00:00.000000Z', 'system', NULL, NULL)",
        ("ab" * 32,),
    )
    db.close()
    s = SqliteStore(path)
    assert s.schema_version == len(MIGRATIONS) == 4
    tables = {r[0] for r in s._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "api_tokens" not in tables
    assert {"holds", "audit_log", "users", "used_tokens"} <= tables
    assert s.get(hold_id) is not None
    assert s.get_user("alice") is not None
    assert s.verify_audit().ok
    assert not hasattr(s, "add_api_token")
    s.close()


def test_a_version_3_database_gains_notice_claims(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A quarantine from before notice claims, with a notice still to send,
    upgrades in place; the notice is then claimed and sent once."""
    path = tmp_path / "v3.db"
    with monkeypatch.context() as m:
        m.setattr("sendguard.store.sqlite.MIGRATIONS", MIGRATIONS[:3])
        with SqliteStore(path) as old:
            assert old.schema_version == 3
            hold_id = old.hold(RAW, ENV, verdict("x"))
    s = SqliteStore(path)
    try:
        assert s.schema_version == 4
        held = s.get(hold_id)
        assert held is not None
        assert held.notify_claim is None
        now = datetime.now(UTC)
        (claimed,) = s.claim_notifications(now, "relay@a", 60)
        assert claimed.notify_claim is not None
        assert s.claim_notifications(now, "relay@b", 60) == []
        assert s.record_notification(hold_id, sent=True, claim=claimed.notify_claim)
        assert [e.event for e in s.audit_entries(hold_id=hold_id)] == ["hold", "notify"]
        assert s.verify_audit().ok
    finally:
        s.close()


def test_the_audit_log_refuses_updates_and_deletes(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    with SqliteStore(path) as s:
        s.append_audit("note", actor="alice", details={"x": 1})
    db = sqlite3.connect(path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE audit_log SET actor = 'mallory'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM audit_log")
    db.close()


def test_trigger_bodies_are_one_statement() -> None:
    script = "CREATE TABLE t (a);\nCREATE TRIGGER x BEFORE DELETE ON t BEGIN SELECT 1; END;\n"
    assert [s.strip() for s in _statements(script)] == [
        "CREATE TABLE t (a);",
        "CREATE TRIGGER x BEFORE DELETE ON t BEGIN SELECT 1; END;",
    ]


def test_open_store_urls(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path / 'a.db'}") as s:
        assert isinstance(s, SqliteStore)
    with pytest.raises(StoreError, match="no quarantine"):
        open_store(f"sqlite:///{tmp_path / 'missing.db'}", create=False)
    with pytest.raises(StoreError, match="unsupported") as err:
        open_store("mysql://user:secret@x/db")
    assert "secret" not in str(err.value)


def test_unwritable_location_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="quarantine"):
        SqliteStore(blocker / "holds.db")
