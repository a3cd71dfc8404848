"""The SMTP protocol side: aiosmtpd's server with the relay's limits.

`RelaySMTP` adds to aiosmtpd's `SMTP`: a cap on simultaneous connections
(421 beyond it), a configurable line length limit, and what graceful
shutdown needs: the set of live sessions and whether each is inside DATA
(from the DATA command until its final reply has been written).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP

__all__ = ["RelaySMTP", "Sessions", "server_tls_context"]


class Sessions:
    """The relay's live client connections."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.live: set[RelaySMTP] = set()
        self.closing = False
        self._changed = asyncio.Event()

    def changed(self) -> None:
        self._changed.set()

    async def drain(self, timeout: float) -> int:
        """Close idle sessions now, busy ones as soon as their message is
        answered, and the rest when `timeout` runs out; how many were cut."""
        self.closing = True
        for s in list(self.live):
            if not s.in_data:
                s.goodbye()
        deadline = time.monotonic() + timeout
        while any(s.in_data for s in self.live):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(left, 0.5))
            except TimeoutError:
                continue
        cut = sum(1 for s in self.live if s.in_data)
        for s in list(self.live):
            s.goodbye()
        return cut


class RelaySMTP(SMTP):
    """aiosmtpd's SMTP server protocol with connection and line limits."""

    def __init__(
        self, handler: Any, *, sessions: Sessions, line_length_limit: int, **kwargs: Any
    ) -> None:
        # read by SMTP.__init__ to size its stream reader, so set it first
        self.line_length_limit = line_length_limit
        self._sessions = sessions
        self._refused = False
        self._said_goodbye = False
        self.in_data = False
        super().__init__(handler, **kwargs)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        starttls = self._original_transport is not None
        if not starttls:
            if self._sessions.closing or len(self._sessions.live) >= self._sessions.limit:
                self._refused = True
                why = "shutting down" if self._sessions.closing else "too many connections"
                assert isinstance(transport, asyncio.WriteTransport)
                transport.write(f"421 4.7.0 sendguard {why}; try again later\r\n".encode())
                transport.close()
                return
            self._sessions.live.add(self)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._refused:
            return
        self._sessions.live.discard(self)
        self._sessions.changed()
        super().connection_lost(error)

    async def smtp_DATA(self, arg: str) -> None:
        self.in_data = True
        try:
            await super().smtp_DATA(arg)
        finally:
            self.in_data = False
            self._sessions.changed()
            if self._sessions.closing:
                self.goodbye()

    def goodbye(self) -> None:
        """Tell the client the relay is stopping (421) and close."""
        transport: Any = self.transport
        if self._said_goodbye or transport is None:
            return
        self._said_goodbye = True
        with contextlib.suppress(OSError, RuntimeError):
            transport.write(b"421 4.3.2 sendguard shutting down; try again later\r\n")
        transport.close()


def server_tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server context for STARTTLS; raises ValueError naming the files."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot load TLS certificate {cert} / key {key}: {exc}") from None
    return ctx
