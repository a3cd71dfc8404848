"""Users of the review UI: the account half of the SQL store.

A mixin, so that `SqlStore` stays readable: it runs over the same
`_read()`/`_write()` connections and appends its audit entries (`user_add`,
`user_role`, ...) in the same transaction as the change. Password hashes
never go into the audit log. (API tokens are not here: the HTTP API keeps
them in a file, so that checks work while the database is down.)
"""

from __future__ import annotations

import abc
import builtins
from collections.abc import Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from sendguard.store.conn import Conn, require_ts
from sendguard.store.models import AuditEntry, Conflict, Role, User

__all__ = ["AccountMethods"]

_USER_FIELDS = frozenset({"password_hash", "role", "disabled"})


class AccountMethods(abc.ABC):
    """The Store's user methods over SQL."""

    @abc.abstractmethod
    def _read(self) -> AbstractContextManager[Conn]: ...

    @abc.abstractmethod
    def _write(self) -> AbstractContextManager[Conn]: ...

    @abc.abstractmethod
    def _now(self) -> datetime: ...

    @abc.abstractmethod
    def _append(
        self,
        db: Conn,
        event: str,
        actor: str,
        hold_id: str | None,
        details: Mapping[str, Any] | None,
    ) -> AuditEntry: ...

    # -- users -------------------------------------------------------------
    def add_user(
        self, username: str, role: Role | str, password_hash: str, *, actor: str = "system"
    ) -> User:
        if not username or username != username.strip():
            raise ValueError("a user name must be non-empty, without surrounding spaces")
        role = Role(role)
        now = self._now()
        with self._write() as db:
            cur = db.execute(
                "INSERT INTO users (username, role, password_hash, disabled, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (username) DO NOTHING",
                (username, role.value, password_hash, False, now, now),
            )
            if cur.rowcount != 1:
                raise Conflict(f"there is already a user {username!r}")
            self._append(db, "user_add", actor, None, {"username": username, "role": role.value})
        return User(
            username=username,
            role=role,
            password_hash=password_hash,
            disabled=False,
            created_at=now,
            updated_at=now,
        )

    def get_user(self, username: str) -> User | None:
        with self._read() as db:
            row = db.execute("SELECT * FROM users WHERE username = ?", (username,)).one()
        return None if row is None else _user(row)

    def list_users(self) -> builtins.list[User]:
        with self._read() as db:
            return [_user(r) for r in db.execute("SELECT * FROM users ORDER BY username").all()]

    def _change_user(self, username: str, sets: dict[str, Any], event: str, actor: str) -> bool:
        if set(sets) - _USER_FIELDS:
            raise ValueError(f"not a user field: {sorted(set(sets) - _USER_FIELDS)}")
        assignments = ", ".join(f"{k} = ?" for k in sets)
        with self._write() as db:
            cur = db.execute(
                f"UPDATE users SET {assignments}, updated_at = ? WHERE username = ?",
                (*sets.values(), self._now(), username),
            )
            if cur.rowcount != 1:
                return False
            info = {"username": username} | {k: v for k, v in sets.items() if k != "password_hash"}
            self._append(db, event, actor, None, info)
        return True

    def set_password(self, username: str, password_hash: str, *, actor: str = "system") -> bool:
        return self._change_user(username, {"password_hash": password_hash}, "user_password", actor)

    def set_role(self, username: str, role: Role | str, *, actor: str = "system") -> bool:
        return self._change_user(username, {"role": Role(role).value}, "user_role", actor)

    def disable_user(self, username: str, *, actor: str = "system", disabled: bool = True) -> bool:
        event = "user_disable" if disabled else "user_enable"
        return self._change_user(username, {"disabled": disabled}, event, actor)


def _user(r: Mapping[str, Any]) -> User:
    return User(
        username=r["username"],
        role=Role(r["role"]),
        password_hash=r["password_hash"],
        disabled=bool(r["disabled"]),
        created_at=require_ts(r["created_at"]),
        updated_at=require_ts(r["updated_at"]),
    )
