"""The quarantine in one SQLite file: the default, embedded store.

Durability: WAL journal with `synchronous=FULL`, one transaction per hold,
committed (and so fsynced) before `hold()` returns. A crash at any moment
leaves either the whole hold or none of it. The file is created readable by
its owner only: it holds patient data.

Schema changes are an ordered list of migrations; `schema_version` records
how many have run, and a database from a newer sendguard is refused rather
than misread.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sendguard.core.models import Action, Verdict
from sendguard.store.base import (
    HeldMessage,
    HoldStatus,
    HoldSummary,
    MailEnvelope,
    NotifyStatus,
    Store,
    StoreError,
)

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
)

_ID_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
_SUMMARY_COLUMNS = (
    "id, status, created_at, mail_from, held_recipients, message_id, size, action, codes, "
    "notify_status"
)


def _now() -> datetime:
    return datetime.now(UTC)


def _ts(dt: datetime) -> str:
    """Sortable UTC text: the same instant always gives the same string."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _dt(text: str | None) -> datetime | None:
    if text is None:
        return None
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def new_hold_id() -> str:
    """12 characters, ~59 random bits, no look-alike characters (0/o, 1/l/i).
    One read of the system's randomness (each read is a system call)."""
    n = int.from_bytes(secrets.token_bytes(8), "big")
    out = []
    for _ in range(12):
        n, digit = divmod(n, len(_ID_ALPHABET))
        out.append(_ID_ALPHABET[digit])
    return "".join(out)


class SqliteStore(Store):
    """A quarantine in a SQLite file (or `:memory:` for tests)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool = True,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.path = str(path)
        self._clock = clock
        self._lock = threading.Lock()
        if not create and self.path != ":memory:" and not Path(self.path).exists():
            raise StoreError(f"there is no quarantine at {self.path} (has the relay run yet?)")
        try:
            if self.path != ":memory:":
                _create_private(Path(self.path))
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=10.0
            )
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if self.path != ":memory:" and str(mode).lower() != "wal":
                raise StoreError(f"quarantine {self.path}: cannot use WAL journal (got {mode})")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=10000")
            self._migrate()
        except sqlite3.Error as exc:
            raise StoreError(f"quarantine {self.path}: {exc}") from exc
        except OSError as exc:
            raise StoreError(f"quarantine {self.path}: {exc.strerror or exc}") from exc

    # -- schema ------------------------------------------------------------
    def _migrate(self) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = db.execute("SELECT version FROM schema_version").fetchone()
            version = 0 if row is None else int(row[0])
            if row is None:
                db.execute("INSERT INTO schema_version (version) VALUES (0)")
            if version > len(MIGRATIONS):
                raise StoreError(
                    f"quarantine {self.path}: schema version {version} is newer than this "
                    f"sendguard understands ({len(MIGRATIONS)}); upgrade sendguard"
                )
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute("UPDATE schema_version SET version = ?", (number,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    @property
    def schema_version(self) -> int:
        with self._locked() as db:
            return int(db.execute("SELECT version FROM schema_version").fetchone()[0])

    @contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise StoreError(f"quarantine {self.path}: {exc}") from exc

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._locked() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # -- holds -------------------------------------------------------------
    def hold(
        self,
        message: bytes,
        envelope: MailEnvelope,
        verdict: Verdict,
        *,
        held_recipients: Sequence[str] | None = None,
        message_id: str = "",
        notify: bool = True,
    ) -> str:
        held = tuple(envelope.recipients if held_recipients is None else held_recipients)
        applied = [f for f in verdict.findings if not f.monitor]
        reasons = [f for f in applied if f.action in (Action.HOLD, Action.REJECT)]
        codes = sorted({f.code for f in reasons or applied})
        notify_status = NotifyStatus.PENDING if notify and envelope.mail_from else NotifyStatus.NONE
        now = _ts(self._clock())
        row: dict[str, Any] = {
            "status": HoldStatus.HELD.value,
            "created_at": now,
            "mail_from": envelope.mail_from,
            "recipients": json.dumps(list(envelope.recipients)),
            "held_recipients": json.dumps(list(held)),
            "mail_options": json.dumps(list(envelope.mail_options)),
            "peer": envelope.peer,
            "helo": envelope.helo,
            "message_id": message_id,
            "size": len(message),
            "action": verdict.action.value,
            "codes": json.dumps(codes),
            "verdict": verdict.model_dump_json(),
            "sha256": hashlib.sha256(message).hexdigest(),
            "notify_status": notify_status.value,
            "notify_next_at": now if notify_status is NotifyStatus.PENDING else None,
            "message": sqlite3.Binary(message),
        }
        columns = ", ".join(["id", *row])
        marks = ", ".join(["?"] * (len(row) + 1))
        with self._transaction() as db:
            for _ in range(5):  # an id collision is astronomically rare; retry anyway
                hold_id = new_hold_id()
                try:
                    db.execute(
                        f"INSERT INTO holds ({columns}) VALUES ({marks})",
                        (hold_id, *row.values()),
                    )
                except sqlite3.IntegrityError:
                    continue
                return hold_id
        raise StoreError(f"quarantine {self.path}: could not find a free hold id")

    def discard(self, hold_id: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM holds WHERE id = ?", (hold_id,))

    def get(self, hold_id: str) -> HeldMessage | None:
        with self._locked() as db:
            cur = db.execute("SELECT * FROM holds WHERE id = ?", (hold_id,))
            row = cur.fetchone()
            names = [d[0] for d in cur.description]
        return None if row is None else _held(dict(zip(names, row, strict=True)))

    def list(
        self,
        *,
        status: HoldStatus | None = None,
        since: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> builtins.list[HoldSummary]:
        where, args = _filters(status, since)
        sql = (
            f"SELECT {_SUMMARY_COLUMNS} FROM holds{where} "
            "ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
        )
        with self._locked() as db:
            rows = db.execute(sql, (*args, limit, offset)).fetchall()
        return [
            HoldSummary(
                hold_id=r[0],
                status=HoldStatus(r[1]),
                created_at=_dt(r[2]) or _now(),
                mail_from=r[3],
                held_recipients=tuple(json.loads(r[4])),
                message_id=r[5],
                size=int(r[6]),
                action=r[7],
                codes=tuple(json.loads(r[8])),
                notify_status=NotifyStatus(r[9]),
            )
            for r in rows
        ]

    def count(self, *, status: HoldStatus | None = None) -> int:
        where, args = _filters(status, None)
        with self._locked() as db:
            return int(db.execute(f"SELECT COUNT(*) FROM holds{where}", args).fetchone()[0])

    # -- notifications -----------------------------------------------------
    def due_notifications(self, now: datetime, limit: int = 50) -> builtins.list[HeldMessage]:
        with self._locked() as db:
            cur = db.execute(
                "SELECT * FROM holds WHERE notify_status = ? AND notify_next_at <= ? "
                "ORDER BY notify_next_at LIMIT ?",
                (NotifyStatus.PENDING.value, _ts(now), limit),
            )
            names = [d[0] for d in cur.description]
            rows = cur.fetchall()
        return [_held(dict(zip(names, r, strict=True))) for r in rows]

    def record_notification(
        self,
        hold_id: str,
        *,
        sent: bool,
        error: str | None = None,
        next_attempt: datetime | None = None,
    ) -> None:
        now = _ts(self._clock())
        if sent:
            status, next_at, notified = NotifyStatus.SENT, None, now
        elif next_attempt is not None:
            status, next_at, notified = NotifyStatus.PENDING, _ts(next_attempt), None
        else:
            status, next_at, notified = NotifyStatus.FAILED, None, None
        with self._transaction() as db:
            db.execute(
                "UPDATE holds SET notify_status = ?, notify_attempts = notify_attempts + 1, "
                "notify_next_at = ?, notify_error = ?, notified_at = ? WHERE id = ?",
                (status.value, next_at, error, notified, hold_id),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _filters(status: HoldStatus | None, since: datetime | None) -> tuple[str, tuple[str, ...]]:
    clauses: builtins.list[str] = []
    args: builtins.list[str] = []
    if status is not None:
        clauses.append("status = ?")
        args.append(status.value)
    if since is not None:
        clauses.append("created_at >= ?")
        args.append(_ts(since))
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), tuple(args)


def _held(r: dict[str, Any]) -> HeldMessage:
    return HeldMessage(
        hold_id=r["id"],
        status=HoldStatus(r["status"]),
        created_at=_dt(r["created_at"]) or _now(),
        envelope=MailEnvelope(
            mail_from=r["mail_from"],
            recipients=tuple(json.loads(r["recipients"])),
            mail_options=tuple(json.loads(r["mail_options"])),
            peer=r["peer"],
            helo=r["helo"],
        ),
        held_recipients=tuple(json.loads(r["held_recipients"])),
        message_id=r["message_id"],
        message=bytes(r["message"]),
        sha256=r["sha256"],
        verdict=Verdict.model_validate_json(r["verdict"]),
        notify_status=NotifyStatus(r["notify_status"]),
        notify_attempts=int(r["notify_attempts"]),
        notify_next_at=_dt(r["notify_next_at"]),
        notify_error=r["notify_error"],
        notified_at=_dt(r["notified_at"]),
        codes=tuple(json.loads(r["codes"])),
    )


def _create_private(path: Path) -> None:
    """Create the database file (and its folder) owner-only if it is new."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.close(fd)
