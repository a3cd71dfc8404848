"""`sendguard relay --config FILE` as a real process: signals and crashes.

SIGHUP reloads without dropping connections, SIGTERM lets the message in
flight finish, and SIGKILL at any moment loses no message the client was
told 250 for: each is at the next hop or in the quarantine.
"""

from __future__ import annotations

import contextlib
import signal
import smtplib
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from support import DEMO, WAIT, RelayProcess, Sink, message, wait_gone, write_config

from sendguard.store import SqliteStore

GP = "a.patel@nhs.net"
CLEAN = "jane.smith@gmail.com"
TYPO = "jane.smith@gmial.com"


def config(tmp_path: Path, sink: Sink, extra: str = "") -> Path:
    return write_config(
        tmp_path / "sendguard.toml",
        f"""
[directory]
sources = ["{DEMO}"]

[rules]
local = ["local.d"]

[relay]
listen = "127.0.0.1:0"
hostname = "relay.test"
next_hop = "127.0.0.1:{sink.port}"
notify = false
{extra}

[store]
url = "sqlite:///var/quarantine.db"
""",
    )


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink().start()
    yield s
    s.stop()


@pytest.fixture
def relay_proc(tmp_path: Path, sink: Sink) -> Iterator[RelayProcess]:
    (tmp_path / "local.d").mkdir()
    proc = RelayProcess(config(tmp_path, sink))
    yield proc
    proc.stop()


def send(port: int, rcpt: str, raw: bytes, client: smtplib.SMTP | None = None) -> tuple[int, str]:
    """(code, text) of the end of DATA, with smtplib (a second client library on
    purpose; it keeps no text for a 250, so that is returned empty)."""
    smtp = client or smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=WAIT)
    try:
        smtp.sendmail(GP, [rcpt], raw)
        code, text = 250, ""
    except smtplib.SMTPDataError as exc:
        code, text = exc.smtp_code, exc.smtp_error.decode()
    except smtplib.SMTPRecipientsRefused as exc:
        code, text = exc.recipients[rcpt][0], exc.recipients[rcpt][1].decode()
    finally:
        if client is None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                smtp.quit()
            smtp.close()
    return code, text


def test_sighup_reloads_rules_without_dropping_connections(
    relay_proc: RelayProcess, sink: Sink, tmp_path: Path
) -> None:
    port = relay_proc.port
    kept = smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=WAIT)
    kept.ehlo()
    assert send(port, CLEAN, message())[0] == 250
    assert len(sink.wait_for(1)) == 1

    (tmp_path / "local.d" / "hold.toml").write_text(
        '[[rule]]\nname = "email-insecure-domain"\naction = "hold"\n', encoding="utf-8"
    )
    mark = len(relay_proc.lines)
    relay_proc.signal(signal.SIGHUP)
    relay_proc.wait_log("reloaded:", after=mark)
    assert send(port, CLEAN, message(), client=kept)[0] == 250  # same connection, new rules
    assert len(sink.messages) == 1  # held, not forwarded

    (tmp_path / "local.d" / "broken.toml").write_text("[[rule]\n", encoding="utf-8")
    mark = len(relay_proc.lines)
    relay_proc.signal(signal.SIGHUP)
    line = relay_proc.wait_log("reload failed", after=mark)
    assert "keeping the directory and rules in use" in line
    assert "broken.toml" in line
    assert send(port, CLEAN, message(), client=kept)[0] == 250
    kept.quit()
    assert len(sink.messages) == 1  # still the reloaded rules: held
    with SqliteStore(tmp_path / "var" / "quarantine.db", create=False) as store:
        assert store.count() == 2


def test_sigterm_finishes_the_message_in_flight_then_exits(
    relay_proc: RelayProcess, sink: Sink
) -> None:
    sink.delay = 1.5
    result: list[tuple[int, str]] = []
    t = threading.Thread(
        target=lambda: result.append(send(relay_proc.port, CLEAN, message(marker="inflight")))
    )
    t.start()
    assert sink.data_started.wait(WAIT)
    relay_proc.signal(signal.SIGTERM)
    t.join(WAIT)
    assert result == [(250, "")]
    assert relay_proc.proc.wait(WAIT) == 0
    assert b"inflight" in sink.messages[0].data
    relay_proc.wait_log("stopped")
    with pytest.raises(ConnectionRefusedError), smtplib.SMTP("127.0.0.1", relay_proc.port):
        pass


def test_sigkill_loses_no_accepted_message(tmp_path: Path, sink: Sink) -> None:
    (tmp_path / "local.d").mkdir()
    relay = RelayProcess(config(tmp_path, sink))
    workers = relay.children()
    sink.delay = 0.02  # keep messages in flight at the next hop too
    accepted: list[str] = []
    lock = threading.Lock()
    enough = threading.Event()
    killed = threading.Event()

    def client(n: int) -> None:
        for i in range(40):
            if killed.is_set():
                return
            marker = f"m{n}-{i}"
            rcpt = TYPO if i % 3 == 0 else CLEAN  # a third are held
            try:
                code, _ = send(relay.port, rcpt, message(to=rcpt, marker=marker))
            except (OSError, smtplib.SMTPException):
                return  # the relay is gone: this message was never accepted
            if code == 250:
                with lock:
                    accepted.append(marker)
                    if len(accepted) >= 40:
                        enough.set()

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(client, n) for n in range(8)]
        assert enough.wait(WAIT * 2)
        relay.proc.kill()  # SIGKILL while messages are in flight
        killed.set()
        for f in futures:
            f.result(WAIT)
    relay.proc.wait(WAIT)
    wait_gone(workers)  # the check worker sees the socket close and exits

    forwarded = {
        m.data.split(b"Message-ID: <", 1)[1].split(b"@", 1)[0].decode() for m in sink.messages
    }
    with SqliteStore(tmp_path / "var" / "quarantine.db", create=False) as store:
        held = set()
        for h in store.list(limit=10_000):
            full = store.get(h.hold_id)
            assert full is not None
            held.add(full.message_id[1:].split("@", 1)[0])
    missing = [m for m in accepted if m not in forwarded and m not in held]
    assert accepted
    assert missing == []
    relay.stop()
