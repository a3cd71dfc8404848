"""What a backend hands the shared SQL code: connections that run `?`
statements and return rows as dicts, and how stored values read back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

__all__ = ["Conn", "Rows", "parse_ts", "require_ts"]


@dataclass(slots=True)
class Rows:
    """A statement's result, fetched eagerly (results here are small)."""

    rows: list[dict[str, Any]]
    rowcount: int

    def one(self) -> dict[str, Any] | None:
        return self.rows[0] if self.rows else None

    def all(self) -> list[dict[str, Any]]:
        return self.rows


class Conn(Protocol):
    """One connection (inside a transaction for writes)."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows: ...


def parse_ts(value: object) -> datetime | None:
    """A stored timestamp: SQLite text or a PostgreSQL datetime, as UTC."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def require_ts(value: object) -> datetime:
    dt = parse_ts(value)
    if dt is None:
        raise ValueError("a required timestamp is missing")
    return dt
