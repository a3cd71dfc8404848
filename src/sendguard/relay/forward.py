"""Forwarding to the next hop over pooled, reused aiosmtplib connections.

One transaction per message: MAIL, every RCPT, then DATA only if the next
hop accepted every recipient (otherwise RSET, so that nothing is delivered
twice when the client retries). The envelope is passed on exactly as it
came (addresses are not re-parsed), with BODY=8BITMIME and SMTPUTF8 when
the client used them and SIZE when the next hop announces it.

The result is a `Reply`: the next hop's own 2xx/4xx/5xx, or 451 when it
cannot be reached or the connection breaks, so the sending MTA keeps the
message and retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass

import aiosmtplib

from sendguard.config import RelayConfig, parse_host_port

__all__ = ["NextHop", "Reply", "smtp_text"]

log = logging.getLogger("sendguard.relay.forward")
_IDLE_MAX = 30.0  # seconds an idle connection is reused; servers drop idle ones later
_ENHANCED = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}\s")
_UNSAFE = re.compile(r"[^\x20-\x7e]+")


def smtp_text(text: str, limit: int = 300) -> str:
    """Text safe for one SMTP reply line: printable ASCII, bounded length."""
    return _UNSAFE.sub(" ", text).strip()[:limit]


@dataclass(frozen=True, slots=True)
class Reply:
    """An SMTP reply: a code and the text after it (with its enhanced code)."""

    code: int
    text: str

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300

    @property
    def temporary(self) -> bool:
        return 400 <= self.code < 500

    @classmethod
    def from_next_hop(cls, code: int, message: str) -> Reply:
        """The next hop's reply, made safe to pass back, with an enhanced
        status code added if it gave none."""
        text = smtp_text(" ".join(message.splitlines()))
        if not _ENHANCED.match(text + " "):
            cls_digit = str(code)[0] if str(code)[0] in "245" else "4"
            text = f"{cls_digit}.0.0 {text}".strip()
        return cls(code, text)

    def line(self) -> str:
        return f"{self.code} {self.text}"


class _Conn:
    """One pooled connection and when it was last used."""

    __slots__ = ("last_used", "smtp")

    def __init__(self, smtp: aiosmtplib.SMTP) -> None:
        self.smtp = smtp
        self.last_used = time.monotonic()


class NextHop:
    """The SMTP server that allowed mail and notifications are handed to."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        local_hostname: str,
        connections: int = 20,
        timeout: float = 60.0,
        tls: str = "none",
        username: str | None = None,
        password: str | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host, self.port = host, port
        self._local_hostname = local_hostname
        self._timeout = timeout
        self._tls = tls
        self._username, self._password = username, password
        self._tls_context = tls_context
        self._slots = asyncio.Semaphore(connections)
        self._idle: list[_Conn] = []
        self._closed = False

    @classmethod
    def from_config(
        cls,
        rc: RelayConfig,
        *,
        local_hostname: str | None = None,
        connections: int | None = None,
    ) -> NextHop:
        """The next hop as `[relay]` configures it, for the relay and for
        anything else that sends released mail; `connections` defaults to
        `next_hop_connections`, `local_hostname` to `hostname` or the FQDN."""
        host, port = parse_host_port(rc.next_hop)
        return cls(
            host,
            port,
            local_hostname=local_hostname or rc.hostname or socket.getfqdn(),
            connections=rc.next_hop_connections if connections is None else connections,
            timeout=rc.next_hop_timeout,
            tls=rc.next_hop_tls,
            username=rc.next_hop_username,
            password=rc.next_hop_password.get_secret_value() if rc.next_hop_password else None,
        )

    @property
    def name(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    async def send(
        self,
        mail_from: str,
        recipients: Sequence[str],
        message: bytes,
        *,
        mail_options: Sequence[str] = (),
    ) -> Reply:
        """Hand one message over; the reply to give the client for it."""
        if self._closed:
            return Reply(451, "4.3.2 The relay is shutting down; try again later")
        async with self._slots:
            for attempt in (1, 2):
                conn, reused = await self._connection()
                if conn is None:
                    return Reply(451, f"4.4.1 Next hop {self.name} unavailable; try again later")
                try:
                    reply = await self._transaction(
                        conn.smtp, mail_from, recipients, message, mail_options
                    )
                except _Stale:
                    # a reused connection the server had closed: nothing was sent yet
                    conn.smtp.close()
                    if reused and attempt == 1:
                        continue
                    return Reply(451, f"4.4.2 Next hop {self.name} closed the connection")
                except (aiosmtplib.SMTPException, OSError) as exc:
                    conn.smtp.close()
                    log.warning(
                        "next hop %s: %s during the transaction", self.name, type(exc).__name__
                    )
                    return Reply(
                        451, f"4.4.2 Next hop {self.name} connection failed; try again later"
                    )
                self._release(conn)
                return reply
        raise AssertionError("unreachable")  # pragma: no cover

    async def _transaction(
        self,
        smtp: aiosmtplib.SMTP,
        mail_from: str,
        recipients: Sequence[str],
        message: bytes,
        mail_options: Sequence[str],
    ) -> Reply:
        options = [o for o in mail_options if o.upper() in ("BODY=8BITMIME", "SMTPUTF8")]
        utf8 = "SMTPUTF8" in (o.upper() for o in options)
        if utf8 and not smtp.supports_extension("smtputf8"):
            return Reply(550, "5.6.7 The next hop does not support SMTPUTF8")
        if not smtp.supports_extension("8bitmime"):
            options = [o for o in options if o.upper() != "BODY=8BITMIME"]
        if smtp.supports_extension("size"):
            options.append(f"SIZE={len(message)}")
        enc = "utf-8" if utf8 else "ascii"

        def addr(a: str) -> bytes:
            return b"<" + a.encode(enc, "surrogateescape") + b">"

        try:
            resp = await smtp.execute_command(
                b"MAIL", b"FROM:" + addr(mail_from), *(o.encode("ascii") for o in options)
            )
        except aiosmtplib.SMTPServerDisconnected as exc:
            raise _Stale from exc
        if resp.code == 421:  # the server is closing this (idle) connection
            raise _Stale
        if resp.code != 250:
            await self._rset(smtp)
            return Reply.from_next_hop(resp.code, resp.message)
        refused: list[Reply] = []
        for rcpt in recipients:
            resp = await smtp.execute_command(b"RCPT", b"TO:" + addr(rcpt))
            if resp.code not in (250, 251):
                refused.append(Reply.from_next_hop(resp.code, resp.message))
        if refused:
            # deliver to none rather than some: the client gets one answer for all
            await self._rset(smtp)
            temporary = [r for r in refused if r.temporary]
            return temporary[0] if temporary else refused[0]
        try:
            resp = await smtp.data(message)
        except aiosmtplib.SMTPResponseException as exc:
            return Reply.from_next_hop(exc.code, exc.message)
        return Reply.from_next_hop(resp.code, resp.message)

    async def _rset(self, smtp: aiosmtplib.SMTP) -> None:
        with contextlib.suppress(aiosmtplib.SMTPException, OSError):
            await smtp.execute_command(b"RSET")

    async def _connection(self) -> tuple[_Conn | None, bool]:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if conn.smtp.is_connected and now - conn.last_used < _IDLE_MAX:
                return conn, True
            conn.smtp.close()
        smtp = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            local_hostname=self._local_hostname,
            timeout=self._timeout,
            use_tls=self._tls == "tls",
            start_tls=self._tls == "starttls",
            username=self._username,
            password=self._password,
            tls_context=self._tls_context,
        )
        try:
            await smtp.connect()
            if smtp.is_ehlo_or_helo_needed:
                await smtp.ehlo()
        except (aiosmtplib.SMTPException, OSError) as exc:
            smtp.close()
            log.warning("next hop %s unavailable: %s", self.name, smtp_text(str(exc), 120))
            return None, False
        return _Conn(smtp), False

    def _release(self, conn: _Conn) -> None:
        if self._closed or not conn.smtp.is_connected:
            conn.smtp.close()
            return
        conn.last_used = time.monotonic()
        self._idle.append(conn)

    async def close(self) -> None:
        """Say QUIT on idle connections; later sends answer 451."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await asyncio.wait_for(conn.smtp.quit(), 2.0)
            conn.smtp.close()


class _Stale(Exception):
    """The connection was gone before the transaction began."""
