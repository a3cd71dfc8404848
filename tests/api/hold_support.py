"""Helpers for the held fax and letter tests: a real HTTP callback receiver,
a `sendguard serve` config with quick review jobs, and a PostgreSQL schema
for one test. Everything is on 127.0.0.1 and every wait is bounded."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from api_support import write_config

PG_URL = os.environ.get("SENDGUARD_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
LOOPBACK = ("127.0.0.0/8",)  # where CallbackSink listens
POLL = 0.05  # seconds between looks while waiting for something
WAIT = 10.0  # the most any single wait here may take

# Review jobs every 0.1 s and a callback retried 0.5 s after a failure, so a
# whole decide-and-call-back round takes well under a second.
REVIEW = """
[review]
secret_file = "review.key"
poll_interval = 0.1
release_backoff = 0.5
callback_timeout = 2
"""


@dataclass(frozen=True)
class Call:
    """One POST the receiver got."""

    path: str
    body: dict[str, Any]
    content_type: str
    status: int
    host: str = ""  # the Host header


class CallbackSink:
    """A practice system's callback endpoint: a real HTTP server in a thread.
    It answers each POST with the next status in `statuses` (then 200) and
    records what it was sent."""

    def __init__(self, statuses: tuple[int, ...] = ()) -> None:
        self.statuses = list(statuses)
        self.calls: list[Call] = []
        self._cond = threading.Condition()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                with sink._cond:
                    status = sink.statuses.pop(0) if sink.statuses else 200
                    sink.calls.append(
                        Call(
                            self.path,
                            json.loads(raw or b"{}"),
                            self.headers.get("Content-Type", ""),
                            status,
                            self.headers.get("Host", ""),
                        )
                    )
                    sink._cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": POLL}, daemon=True
        )

    def __enter__(self) -> CallbackSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(WAIT)

    def url(self, path: str = "/callback") -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}{path}"

    def wait_for(self, n: int, timeout: float = WAIT) -> list[Call]:
        """The first `n` calls, once they have come."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.calls) >= n, timeout):
                raise AssertionError(f"{len(self.calls)} callback(s) within {timeout} s, not {n}")
            return list(self.calls[:n])


def wait_until(what: Callable[[], Any], timeout: float = WAIT) -> Any:
    """Poll `what` until it returns something true; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(POLL)


def serve_config(
    folder: Path,
    next_hop_port: int,
    *,
    store_url: str | None = None,
    local_rule: str = "",
    callback_networks: tuple[str, ...] = LOOPBACK,
) -> Path:
    """A `sendguard serve` config: demo directory, quick review jobs, the
    quarantine at `store_url` (default: SQLite in `folder`), and callbacks
    allowed to `callback_networks` (the receivers here are on loopback)."""
    path = write_config(folder, next_hop_port, REVIEW, callback_networks=list(callback_networks))
    if store_url is not None:
        text = path.read_text(encoding="utf-8")
        path.write_text(
            text.replace('url = "sqlite:///var/quarantine.db"', f"url = {json.dumps(store_url)}"),
            encoding="utf-8",
        )
    if local_rule:
        (folder / "local.d" / "local.toml").write_text(local_rule, encoding="utf-8")
    return path


def pg_unreachable() -> str | None:
    parts = urlsplit(PG_URL)
    host, port = parts.hostname or "127.0.0.1", parts.port or 5432
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as exc:
        return f"PostgreSQL is not reachable at {host}:{port} ({exc.strerror or exc})"
    return None


@contextlib.contextmanager
def pg_schema() -> Iterator[str]:
    """A store URL on a fresh schema of the test database, dropped afterwards."""
    import psycopg

    schema = f"sg_api_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        yield f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={schema}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
