"""Test helpers for the relay: a real SMTP sink, a real client, free ports.

Imported by tests/relay and tests/postfix (which puts this folder on
sys.path). Everything is on loopback and every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiosmtplib
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from sendguard.store import SqliteStore

if TYPE_CHECKING:
    from sendguard.relay import Relay

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "demo" / "directory.json"
WAIT = 30.0  # upper bound for any wait in these tests
MakeRelay = Callable[..., Awaitable["Relay"]]


def corpus(*parts: str) -> Path:
    """tests/common.py's `corpus()`: one place knows where the shared corpora
    are and skips when they are absent."""
    from common import corpus as shared_corpus

    return shared_corpus(*parts)


def corpus_messages() -> list[Path]:
    """Every raw message of the shared MIME corpus, in a stable order."""
    root = corpus("mime")
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and p.suffix != ".csv" and not p.name.startswith("LICENSE")
    )


def open_quarantine(folder: Path) -> SqliteStore:
    """The quarantine a test relay in `folder` wrote to."""
    return SqliteStore(folder / "quarantine.db", create=False)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes


class _LenientSMTP(SMTP):
    line_length_limit = 1 << 20  # like Postfix, a next hop that takes long lines


class _SinkController(Controller):
    def factory(self) -> SMTP:
        return _LenientSMTP(self.handler, **self.SMTP_kwargs)


class _SinkHandler:
    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        reply = self.sink.rcpt_replies.get(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.sink.data_started.set()
        if self.sink.delay:
            await asyncio.sleep(self.sink.delay)
        if self.sink.data_reply:
            return self.sink.data_reply
        with self.sink.changed:
            self.sink.messages.append(
                Received(envelope.mail_from, tuple(envelope.rcpt_tos), envelope.original_content)
            )
            self.sink.changed.notify_all()
        return "250 2.0.0 OK queued"


@dataclass
class Sink:
    """A next hop that records what it accepts (aiosmtpd in its own thread).

    `rcpt_replies` maps addresses to a refusal; `data_reply` refuses every
    message; `delay` holds each DATA answer back that many seconds.
    """

    port: int = 0
    messages: list[Received] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_reply: str | None = None
    delay: float = 0.0
    changed: threading.Condition = field(default_factory=threading.Condition)
    data_started: threading.Event = field(default_factory=threading.Event)
    _controller: Controller | None = None

    def start(self) -> Sink:
        self.port = self.port or free_port()
        self._controller = _SinkController(
            _SinkHandler(self),
            hostname="127.0.0.1",
            port=self.port,
            server_hostname="sink.test",
            enable_SMTPUTF8=True,
            ready_timeout=WAIT,
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def wait_for(self, n: int, timeout: float = WAIT) -> list[Received]:
        """At least n messages, or fail after `timeout`."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while len(self.messages) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"sink got {len(self.messages)} messages, expected {n}")
                self.changed.wait(left)
            return list(self.messages)

    async def arrived(self, n: int, timeout: float = WAIT) -> list[Received]:
        """`wait_for` for async tests: never blocks the event loop."""
        return await asyncio.to_thread(self.wait_for, n, timeout)

    def to(self, address: str) -> list[Received]:
        with self.changed:
            return [m for m in self.messages if address in m.rcpt_tos]


@dataclass
class SendResult:
    """Replies a client got: per recipient, and to the end of DATA."""

    mail: tuple[int, str] = (0, "")
    rcpt: dict[str, tuple[int, str]] = field(default_factory=dict)
    data: tuple[int, str] | None = None

    @property
    def code(self) -> int:
        """The final answer: DATA's, or the refusal that stopped the transaction."""
        if self.data is not None:
            return self.data[0]
        if self.mail[0] != 250:
            return self.mail[0]
        return next(iter(self.rcpt.values()))[0] if self.rcpt else 0

    @property
    def text(self) -> str:
        return self.data[1] if self.data else ""


async def smtp_send(
    port: int,
    sender: str,
    recipients: Sequence[str],
    data: bytes,
    *,
    host: str = "127.0.0.1",
    source: str | None = None,
    mail_options: Iterable[str] = (),
    client: aiosmtplib.SMTP | None = None,
) -> SendResult:
    """One transaction with a real SMTP client, recording every reply."""
    own = client is None
    smtp = client or aiosmtplib.SMTP(
        hostname=host,
        port=port,
        local_hostname="client.test",
        source_address=(source, 0) if source else None,
        start_tls=False,
        timeout=WAIT,
    )
    result = SendResult()
    try:
        if own:
            await smtp.connect()
        try:
            r = await smtp.mail(sender, options=list(mail_options))
            result.mail = (r.code, r.message)
        except aiosmtplib.SMTPSenderRefused as exc:
            result.mail = (exc.code, exc.message)
            await _rset(smtp)
            return result
        accepted = 0
        for rcpt in recipients:
            try:
                r = await smtp.rcpt(rcpt)
                result.rcpt[rcpt] = (r.code, r.message)
                accepted += 1
            except aiosmtplib.SMTPRecipientRefused as exc:
                result.rcpt[rcpt] = (exc.code, exc.message)
        if not accepted:
            await _rset(smtp)
            return result
        try:
            r = await smtp.data(data)
            result.data = (r.code, r.message)
        except aiosmtplib.SMTPDataError as exc:
            result.data = (exc.code, exc.message)
        return result
    finally:
        if own and smtp.is_connected:
            try:
                await smtp.quit()
            except aiosmtplib.SMTPException:
                smtp.close()


async def _rset(smtp: aiosmtplib.SMTP) -> None:
    with contextlib.suppress(aiosmtplib.SMTPResponseException):
        await smtp.rset()


def message(
    *,
    to: str = "Jane Smith <jane.smith@gmail.com>",
    sender: str = "Dr A Patel <a.patel@nhs.net>",
    subject: str = "Your results",
    patient: str | None = "9434765919",
    body: str = "Dear Jane,\r\n\r\nYour results are normal.\r\n",
    extra: str = "",
    marker: str = "",
) -> bytes:
    """A plain CRLF message like a practice system sends."""
    lines = [f"From: {sender}", f"To: {to}", f"Subject: {subject}"]
    lines.append(f"Message-ID: <{marker or time.monotonic_ns()}@practice.test>")
    lines.append("Date: Sat, 21 Nov 2026 10:00:00 +0000")
    if patient:
        lines.append(f"X-Sendguard-Patient: {patient}")
    if extra:
        lines.append(extra)
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode("utf-8")


def write_config(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


_LISTENING = re.compile(r"listening on (\S+):(\d+),")


class CliProcess:
    """`sendguard ARGS` as a child process, its stderr lines collected in
    `lines` (under `_cond`, notified on each line)."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from sendguard.cli import main; sys.exit(main())",
                *args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def terminate(self) -> int:
        """SIGTERM (SIGKILL if it does not end in time), wait; the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(WAIT)
        self._reader.join(WAIT)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        return int(self.proc.returncode)


class RelayProcess(CliProcess):
    """`sendguard relay --config FILE` as a child process, logs collected."""

    def __init__(self, config: Path, *, env: dict[str, str] | None = None) -> None:
        self.config = config
        super().__init__("relay", "--config", str(config), env=env)
        line = self.wait_log(_LISTENING)
        m = _LISTENING.search(line)
        assert m is not None
        self.port = int(m.group(2))

    def wait_log(
        self, pattern: str | re.Pattern[str], *, after: int = 0, timeout: float = WAIT
    ) -> str:
        """The first log line from index `after` on that matches."""
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        with self._cond:
            i = after
            while True:
                while i < len(self.lines):
                    if rx.search(self.lines[i]):
                        return self.lines[i]
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and i >= len(self.lines)):
                    raise AssertionError(
                        f"no log line matching {rx.pattern!r}; log:\n" + "\n".join(self.lines)
                    )
                self._cond.wait(min(left, 0.2))

    def children(self) -> list[int]:
        try:
            text = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return []
        return [int(x) for x in text.split()]

    def stop(self) -> int:
        return self.terminate()


def wait_gone(pids: Iterable[int], timeout: float = WAIT) -> None:
    """Wait until these processes have exited (they are not our children)."""
    deadline = time.monotonic() + timeout
    for pid in pids:
        while Path(f"/proc/{pid}").exists():
            status = (
                Path(f"/proc/{pid}/stat").read_text().split()[2:3]
                if Path(f"/proc/{pid}/stat").exists()
                else ["X"]
            )
            if status == ["Z"]:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"process {pid} still running")
            time.sleep(0.05)
