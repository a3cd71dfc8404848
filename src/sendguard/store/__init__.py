"""The quarantine: where held messages wait for a person to decide.

    from sendguard.store import open_store
    with open_store("sqlite:///var/sendguard.db") as store:
        hold_id = store.hold(raw, envelope, verdict)

`open_store(url)` picks the implementation from the URL scheme; only
`sqlite:///PATH` exists today (`postgresql://` is reserved for the
multi-node store).
"""

from __future__ import annotations

from sendguard.store.base import (
    HeldMessage,
    HoldNotFound,
    HoldStatus,
    HoldSummary,
    MailEnvelope,
    NotifyStatus,
    Store,
    StoreError,
)
from sendguard.store.sqlite import SqliteStore

__all__ = [
    "HeldMessage",
    "HoldNotFound",
    "HoldStatus",
    "HoldSummary",
    "MailEnvelope",
    "NotifyStatus",
    "SqliteStore",
    "Store",
    "StoreError",
    "open_store",
]


def open_store(url: str, *, create: bool = True) -> Store:
    """The store a `[store] url` names (already resolved by the config).
    `create=False` refuses to start an empty one (for tools that only read)."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme == "sqlite" and rest.startswith("/") and len(rest) > 1:
        return SqliteStore(rest[1:], create=create)
    if scheme in ("postgresql", "postgres"):
        raise StoreError("the PostgreSQL quarantine is not available in this version; use sqlite:")
    raise StoreError(f"unsupported store URL {url!r}: use sqlite:///PATH")
