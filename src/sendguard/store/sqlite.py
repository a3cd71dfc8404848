"""The quarantine in one SQLite file: the default, embedded store.

Durability: WAL journal with `synchronous=FULL`, one transaction per hold,
committed (and so fsynced) before `hold()` returns. A crash at any moment
leaves either the whole hold or none of it. The file is created readable by
its owner only: it holds patient data.

Every write is a `BEGIN IMMEDIATE` transaction, which takes SQLite's write
lock at once: writers in other threads, other store objects and other
processes on the same file wait (up to the busy timeout) instead of
interleaving, so transitions and audit appends are serialised.

Schema changes are an ordered list of migrations; `schema_version` records
how many have run, and a database from a newer sendguard is refused rather
than misread.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sendguard.store.audit import GENESIS, ts_text
from sendguard.store.conn import Rows
from sendguard.store.models import StoreError
from sendguard.store.sql import SqlStore, utc_now

__all__ = ["MIGRATIONS", "SqliteStore"]

MIGRATIONS: tuple[str, ...] = (
    # 1: holds, message bytes last so that listing never reads them
    """
    CREATE TABLE holds (
        id TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        created_at TEXT NOT NULL,
        mail_from TEXT NOT NULL,
        recipients TEXT NOT NULL,
        held_recipients TEXT NOT NULL,
        mail_options TEXT NOT NULL,
        peer TEXT NOT NULL,
        helo TEXT NOT NULL,
        message_id TEXT NOT NULL,
        size INTEGER NOT NULL,
        action TEXT NOT NULL,
        codes TEXT NOT NULL,
        verdict TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        notify_status TEXT NOT NULL,
        notify_attempts INTEGER NOT NULL DEFAULT 0,
        notify_next_at TEXT,
        notify_error TEXT,
        notified_at TEXT,
        message BLOB NOT NULL
    );
    CREATE INDEX holds_by_status ON holds (status, created_at);
    CREATE INDEX holds_by_created ON holds (created_at);
    CREATE INDEX holds_to_notify ON holds (notify_status, notify_next_at);
    """,
    # 2: the review workflow: decisions, release claims, HTTP holds; audit
    # chain, single-use tokens, users and API tokens (dropped again by 3)
    f"""
    ALTER TABLE holds ADD COLUMN kind TEXT NOT NULL DEFAULT 'email';
    ALTER TABLE holds ADD COLUMN patients TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE holds ADD COLUMN payload TEXT;
    ALTER TABLE holds ADD COLUMN callback_url TEXT;
    ALTER TABLE holds ADD COLUMN meta TEXT NOT NULL DEFAULT '{{}}';
    ALTER TABLE holds ADD COLUMN requires_reviewer INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE holds ADD COLUMN release_at TEXT;
    ALTER TABLE holds ADD COLUMN expires_at TEXT;
    ALTER TABLE holds ADD COLUMN decided_by TEXT;
    ALTER TABLE holds ADD COLUMN decided_at TEXT;
    ALTER TABLE holds ADD COLUMN reason TEXT;
    ALTER TABLE holds ADD COLUMN lease_owner TEXT;
    ALTER TABLE holds ADD COLUMN lease_token TEXT;
    ALTER TABLE holds ADD COLUMN lease_until TEXT;
    ALTER TABLE holds ADD COLUMN release_attempts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE holds ADD COLUMN release_next_at TEXT;
    ALTER TABLE holds ADD COLUMN release_error TEXT;
    ALTER TABLE holds ADD COLUMN release_reply TEXT;
    ALTER TABLE holds ADD COLUMN released_at TEXT;
    ALTER TABLE holds ADD COLUMN purged_at TEXT;
    CREATE INDEX holds_due_release ON holds (status, release_at);
    CREATE INDEX holds_due_retry ON holds (status, release_next_at);
    CREATE INDEX holds_due_expiry ON holds (status, expires_at);
    CREATE INDEX holds_by_lease ON holds (status, lease_until);
    CREATE INDEX holds_by_decided ON holds (status, decided_at);
    CREATE TABLE audit_log (
        seq INTEGER PRIMARY KEY,
        ts TEXT NOT NULL,
        event TEXT NOT NULL,
        actor TEXT NOT NULL,
        hold_id TEXT,
        details TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE INDEX audit_by_hold ON audit_log (hold_id, seq);
    CREATE INDEX audit_by_ts ON audit_log (ts);
    CREATE TABLE audit_head (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        seq INTEGER NOT NULL,
        hash TEXT NOT NULL
    );
    INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '{GENESIS}');
    CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TABLE used_tokens (
        id TEXT PRIMARY KEY,
        expires_at TEXT NOT NULL,
        used_at TEXT NOT NULL
    );
    CREATE INDEX used_tokens_by_expiry ON used_tokens (expires_at);
    CREATE TABLE users (
        username TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        disabled INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE api_tokens (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        token_sha256 TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL,
        scopes TEXT NOT NULL,
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        last_used TEXT,
        revoked_at TEXT
    );
    """,
    # 3: API tokens live in the HTTP API's own file (api/tokens.py), so that
    # checks never depend on the database; the table was never used
    """
    DROP TABLE IF EXISTS api_tokens;
    """,
    # 4: claims on hold notices, so that of several nodes (or processes)
    # sweeping the outbox only one sends each notice
    """
    ALTER TABLE holds ADD COLUMN notify_owner TEXT;
    ALTER TABLE holds ADD COLUMN notify_token TEXT;
    """,
)


_BUSY_SECONDS = 10.0
"""How long a store waits for another connection's write lock."""


def _statements(script: str) -> Iterator[str]:
    """Split a script into statements; a trigger body's `;` does not end one."""
    buf = ""
    for piece in script.split(";"):
        buf += piece + ";"
        if sqlite3.complete_statement(buf):
            if buf.strip(" \n;"):
                yield buf
            buf = ""


def _param(value: Any) -> Any:
    return ts_text(value) if isinstance(value, datetime) else value


class _Conn:
    """`Conn` over sqlite3: datetimes are stored as sortable UTC text."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        cur = self._db.execute(sql, [_param(p) for p in params])
        if cur.description is None:
            return Rows([], cur.rowcount)
        names = [d[0] for d in cur.description]
        return Rows([dict(zip(names, r, strict=True)) for r in cur.fetchall()], cur.rowcount)


class SqliteStore(SqlStore):
    """A quarantine in a SQLite file (or `:memory:` for tests)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool = True,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        super().__init__(clock=clock)
        self.path = str(path)
        self.label = f"quarantine {self.path}"
        self._lock = threading.Lock()
        if not create and self.path != ":memory:" and not Path(self.path).exists():
            raise StoreError(f"there is no quarantine at {self.path} (has the relay run yet?)")
        try:
            if self.path != ":memory:":
                _create_private(Path(self.path))
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=_BUSY_SECONDS
            )
            mode = self._wal_mode()
            if self.path != ":memory:" and str(mode).lower() != "wal":
                raise StoreError(f"quarantine {self.path}: cannot use WAL journal (got {mode})")
            self._db.execute("PRAGMA synchronous=FULL")
            self._migrate()
        except sqlite3.Error as exc:
            raise StoreError(f"quarantine {self.path}: {exc}") from exc
        except OSError as exc:
            raise StoreError(f"quarantine {self.path}: {exc.strerror or exc}") from exc

    def _wal_mode(self) -> str:
        """Switch to WAL. SQLite answers "locked" at once, without waiting out
        the busy timeout, while another connection is creating the WAL of a
        new file (stores starting together), so wait for it here."""
        deadline = time.monotonic() + _BUSY_SECONDS
        while True:
            try:
                return str(self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0])
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    # -- schema ------------------------------------------------------------
    def _migrate(self) -> None:
        db = self._db

        def run(script: str) -> None:
            for statement in _statements(script):
                db.execute(statement)

        db.execute("BEGIN IMMEDIATE")
        try:
            self._apply_migrations(_Conn(db), MIGRATIONS, run)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    # -- connections -------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise StoreError(f"quarantine {self.path}: {exc}") from exc

    @contextmanager
    def _read(self) -> Iterator[_Conn]:
        with self._locked() as db:
            yield _Conn(db)

    @contextmanager
    def _write(self) -> Iterator[_Conn]:
        with self._locked() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield _Conn(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _create_private(path: Path) -> None:
    """Create the database file (and its folder) owner-only if it is new."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.close(fd)
