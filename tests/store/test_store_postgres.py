"""What only the PostgreSQL store does: URLs with a schema, migrations that
do not race when processes start together, clear connection errors, the
database's own guard on the audit log, durable commits."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest
from storekit import ENV, PG_URL, RAW, Backend, drop_schema, new_schema, pg_url, verdict

from sendguard.store import StoreError, open_store
from sendguard.store.postgres import MIGRATIONS, PostgresStore, parse_url


def test_url_parameters() -> None:
    conninfo, schema, pool_max, label = parse_url(
        "postgresql://sg:pw@db.example:6432/quarantine?schema=sg_a&sslmode=require&pool_max=3"
    )
    assert (schema, pool_max) == ("sg_a", 3)
    assert conninfo.startswith("postgresql://sg:pw@db.example:6432/quarantine?")
    assert "sslmode=require" in conninfo
    assert "options=-c%20search_path%3Dsg_a" in conninfo
    assert "connect_timeout=10" in conninfo
    assert "schema=" not in conninfo
    assert "pool_max" not in conninfo
    assert label == "quarantine postgresql://db.example:6432/quarantine (schema sg_a)"
    assert "pw" not in label
    conninfo, schema, _, _ = parse_url(
        "postgresql://h/d?options=-c%20statement_timeout%3D5000&connect_timeout=3"
    )
    assert schema is None
    assert conninfo == "postgresql://h/d?connect_timeout=3&options=-c%20statement_timeout%3D5000"
    for bad in ("schema=Public", "schema=a;drop", "schema=", "pool_max=0", "pool_max=x"):
        with pytest.raises(StoreError, match="store URL"):
            parse_url(f"postgresql://h/d?{bad}")


def test_open_store_picks_postgresql(pg_backend: Backend) -> None:
    schema = new_schema()
    try:
        with pytest.raises(StoreError, match="no quarantine"):
            open_store(pg_url(schema), create=False)
        with open_store(pg_url(schema)) as store:
            assert isinstance(store, PostgresStore)
            assert store.schema == schema
            hold_id = store.hold(RAW, ENV, verdict("x"))
        with open_store(pg_url(schema), create=False) as store:
            assert store.get(hold_id) is not None
    finally:
        drop_schema(schema)


def test_tables_live_in_their_schema(pg_backend: Backend) -> None:
    store = pg_backend.make()
    assert store.schema_version == len(MIGRATIONS)  # type: ignore[attr-defined]
    schema = store.schema  # type: ignore[attr-defined]
    tables = {
        r[0] for r in pg_backend.raw("SELECT tablename FROM pg_tables WHERE schemaname = ?", schema)
    }
    assert {"holds", "audit_log", "audit_head", "used_tokens", "users"} <= tables
    assert "api_tokens" not in tables  # API tokens live in the HTTP API's file
    with store._read() as db:  # type: ignore[attr-defined]
        row = db.execute("SHOW synchronous_commit").one()
    assert row is not None
    assert row["synchronous_commit"] != "off"


def test_a_version_1_schema_loses_its_api_tokens_table(pg_available: None) -> None:
    """A quarantine made before the store's unused API-token table was
    dropped upgrades in place: the table goes, holds and users stay."""
    schema = new_schema()
    try:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
            conn.execute(f"SET search_path TO {schema}")
            with conn.transaction():
                conn.execute(MIGRATIONS[0].encode())
                conn.execute("CREATE TABLE schema_version (version integer NOT NULL)")
                conn.execute("INSERT INTO schema_version (version) VALUES (1)")
                conn.execute(
                    "INSERT INTO api_tokens VALUES ('t1', 'emis', %s, 'sender', '[]', now(), "
                    "'system', NULL, NULL)",
                    ("ab" * 32,),
                )
                conn.execute(
                    "INSERT INTO users VALUES ('alice', 'reviewer', '$argon2id$x', false, "
                    "now(), now())"
                )
        store = PostgresStore(pg_url(schema))
        try:
            assert store.schema_version == len(MIGRATIONS) == 3
            with store._read() as db:
                rows = db.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = ?", (schema,)
                ).all()
            tables = {r["tablename"] for r in rows}
            assert "api_tokens" not in tables
            assert {"holds", "audit_log", "users", "used_tokens"} <= tables
            assert store.get_user("alice") is not None
            hold_id = store.hold(RAW, ENV, verdict("x"))
            assert store.get(hold_id) is not None
            assert store.verify_audit().ok
        finally:
            store.close()
        again = PostgresStore(pg_url(schema))  # opens again without migrating twice
        assert again.schema_version == 3
        again.close()
    finally:
        drop_schema(schema)


def test_a_version_2_schema_gains_notice_claims(
    pg_available: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A quarantine from before notice claims, with a notice still to send,
    upgrades in place; the notice is then claimed by one node only."""
    schema = new_schema()
    try:
        with monkeypatch.context() as m:
            m.setattr("sendguard.store.postgres.MIGRATIONS", MIGRATIONS[:2])
            with PostgresStore(pg_url(schema)) as old:
                assert old.schema_version == 2
                hold_id = old.hold(RAW, ENV, verdict("x"))
        a, b = PostgresStore(pg_url(schema)), PostgresStore(pg_url(schema))
        try:
            assert a.schema_version == 3
            now = datetime.now(UTC)
            (claimed,) = a.claim_notifications(now, "relay@a", 60)
            assert claimed.hold_id == hold_id
            assert claimed.notify_claim is not None
            assert b.claim_notifications(now, "relay@b", 60) == []
            assert a.record_notification(hold_id, sent=True, claim=claimed.notify_claim)
            assert [e.event for e in b.audit_entries(hold_id=hold_id)] == ["hold", "notify"]
            assert b.verify_audit().ok
        finally:
            a.close()
            b.close()
    finally:
        drop_schema(schema)


def test_a_newer_schema_is_refused(pg_backend: Backend) -> None:
    pg_backend.make()
    pg_backend.raw("UPDATE schema_version SET version = ?", len(MIGRATIONS) + 1)
    with pytest.raises(StoreError, match="newer than this sendguard"):
        pg_backend.make()


def test_connection_errors_are_clear_and_keep_the_password(pg_available: None) -> None:
    with pytest.raises(StoreError) as err:
        PostgresStore("postgresql://postgres:topsecret@127.0.0.1:5432/sg_no_such_database")
    text = str(err.value)
    assert "sg_no_such_database" in text
    assert "topsecret" not in text


def test_the_database_refuses_audit_edits(pg_backend: Backend) -> None:
    store = pg_backend.make()
    store.append_audit("note", actor="alice")
    schema = store.schema  # type: ignore[attr-defined]
    for statement in (
        "UPDATE audit_log SET actor = 'mallory'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ):
        with (
            psycopg.connect(PG_URL, options=f"-c search_path={schema}") as conn,
            pytest.raises(psycopg.errors.RaiseException, match="append-only"),
        ):
            conn.execute(statement)
    assert store.verify_audit().ok
