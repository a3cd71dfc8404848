"""Helpers for the store tests: sample holds, a settable clock, and the two
backends behind one `Backend` handle (see conftest.py)."""

from __future__ import annotations

import os
import secrets
import socket
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sendguard.core.models import Action, Channel, Finding, Verdict
from sendguard.store import MailEnvelope
from sendguard.store.sql import SqlStore

PG_URL = os.environ.get("SENDGUARD_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)

RAW = b"From: a@nhs.net\r\nTo: j@gmial.com\r\nSubject: x\r\n\r\n\xe9\x00 binary-safe\r\n"
ENV = MailEnvelope(
    mail_from="a@nhs.net",
    recipients=("j@gmial.com", "b@nhs.net"),
    mail_options=("BODY=8BITMIME",),
    peer="127.0.0.1",
    helo="mx.test",
)


def verdict(*codes: str, monitor: bool = False, channel: Channel = Channel.EMAIL) -> Verdict:
    return Verdict(
        action=Action.HOLD,
        channel=channel,
        findings=[
            Finding(code=c, message=f"{c} happened", action=Action.HOLD, monitor=monitor)
            for c in codes
        ],
        recipients={"j@gmial.com": Action.HOLD},
    )


class Clock:
    """A clock the test moves by hand; shared by every store of a test."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def pg_unreachable() -> str | None:
    """Why the PostgreSQL tests cannot run here, or None if they can."""
    parts = urlsplit(PG_URL)
    host, port = parts.hostname or "127.0.0.1", parts.port or 5432
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as exc:
        return (
            f"PostgreSQL is not reachable at {host}:{port} ({exc.strerror or exc}); "
            "the PostgreSQL store tests need a server there (or SENDGUARD_TEST_PG_URL)"
        )
    return None


def new_schema() -> str:
    return f"sg_test_{os.getpid()}_{secrets.token_hex(4)}"


def pg_url(schema: str) -> str:
    return f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={schema}"


@dataclass
class Backend:
    """One database of one backend; `make()` opens another store object on
    it (another thread pool, another "node"); `raw()` runs SQL as an
    attacker with database access would, append-only triggers disabled."""

    name: str
    url: str
    clock: Clock
    opener: Callable[[Clock], SqlStore]
    raw_runner: Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]
    opened: list[SqlStore] = field(default_factory=list)

    def make(self, clock: Clock | None = None) -> SqlStore:
        store = self.opener(clock or self.clock)
        self.opened.append(store)
        return store

    def raw(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return self.raw_runner(sql, params)

    def close_all(self) -> None:
        for s in self.opened:
            s.close()


def sqlite_raw(path: Path) -> Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]:
    def run(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        db = sqlite3.connect(path, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
            db.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
            db.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
            rows = db.execute(sql, params).fetchall()
            db.execute("COMMIT")
            return rows
        finally:
            db.close()

    return run


def pg_raw(schema: str) -> Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]:
    import psycopg

    def run(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        with psycopg.connect(PG_URL, options=f"-c search_path={schema}") as conn:
            conn.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
            cur = conn.execute(sql.replace("?", "%s"), params)
            rows = cur.fetchall() if cur.description else []
            conn.execute("ALTER TABLE audit_log ENABLE TRIGGER USER")
            return rows

    return run


def drop_stale_schemas() -> None:
    """Drop test schemas left by test runs that died (their pid is gone)."""
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        names = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'sg\\_test\\_%'"
        ).fetchall()
        for (name,) in names:
            pid = name.split("_")[2]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
