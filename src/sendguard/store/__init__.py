"""The quarantine: where held messages wait for a person to decide.

    from sendguard.store import open_store
    with open_store("sqlite:///var/sendguard.db") as store:
        hold_id = store.hold(raw, envelope, verdict)

`open_store(url)` picks the implementation from the URL scheme:
`sqlite:///PATH` (the default, one node) or `postgresql://...` (several nodes
sharing one quarantine and audit log; see docs/store.md). psycopg is imported
only when a PostgreSQL store is opened.
"""

from __future__ import annotations

from sendguard.store import models
from sendguard.store.base import Store
from sendguard.store.models import *  # noqa: F403  (the interface's models)
from sendguard.store.models import StoreError
from sendguard.store.sqlite import SqliteStore

__all__ = ["SqliteStore", "Store", "open_store"]
__all__ += models.__all__


def open_store(url: str, *, create: bool = True) -> Store:
    """The store a `[store] url` names (already resolved by the config).
    `create=False` refuses to start an empty one (for tools that only read)."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme == "sqlite" and rest.startswith("/") and len(rest) > 1:
        return SqliteStore(rest[1:], create=create)
    if scheme in ("postgresql", "postgres"):
        from sendguard.store.postgres import PostgresStore

        return PostgresStore(url, create=create)
    shown = url.split("@", 1)[-1] if "@" in url else url
    raise StoreError(f"unsupported store URL {shown!r}: use sqlite:///PATH or postgresql://...")
