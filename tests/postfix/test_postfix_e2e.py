"""End to end with a real Postfix: the relay as its after-queue content filter.

A private Postfix instance built from deploy/postfix/*.snippet, the relay
run as `sendguard relay --config deploy/sendguard.toml` (environment
overrides for ports and paths), swaks as the sending client and an SMTP
sink as the final destination. Clean mail is delivered, suspect mail is
held; with the relay stopped Postfix defers, and delivers once it is back.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench.relay_postfix import Ports, PostfixInstance, postfix_missing
from support import DEMO, ROOT, RelayProcess, Sink, free_port

from sendguard.store import SqliteStore

GP = "a.patel@nhs.net"
CLEAN = "jane.smith@gmail.com"
TYPO = "jane.smith@gmial.com"
WHY = postfix_missing()

if WHY is not None and (os.geteuid() != 0 or shutil.which("apt-get") is None):
    pytest.skip(f"real-Postfix test not run: {WHY}", allow_module_level=True)


@pytest.fixture
def ports() -> Ports:
    return Ports(smtpd=free_port(), relayhost=free_port(), filter=free_port(), reinject=free_port())


@pytest.fixture
def sink(ports: Ports) -> Iterator[Sink]:
    s = Sink(port=ports.relayhost).start()
    yield s
    s.stop()


@pytest.fixture
def postfix(ports: Ports, sink: Sink) -> Iterator[PostfixInstance]:
    assert WHY is None, f"{WHY}; `make setup` installs Postfix as root"
    assert shutil.which("swaks"), "swaks is not installed; `make setup` installs it as root"
    # a folder of its own that Postfix's daemons (user postfix) can reach
    folder = Path(tempfile.mkdtemp(prefix="sendguard-postfix-"))
    folder.chmod(0o755)
    pf = PostfixInstance(folder, ports, retry=5)
    try:
        pf.start()
        yield pf
    finally:
        pf.stop()
        shutil.rmtree(folder, ignore_errors=True)


def relay_env(tmp_path: Path, ports: Ports) -> dict[str, str]:
    return {
        "SENDGUARD_DIRECTORY__SOURCES": f'["{DEMO}"]',
        "SENDGUARD_RELAY__LISTEN": f"127.0.0.1:{ports.filter}",
        "SENDGUARD_RELAY__NEXT_HOP": f"127.0.0.1:{ports.reinject}",
        "SENDGUARD_RELAY__HOSTNAME": "relay.sendguard.test",
        "SENDGUARD_STORE__URL": f"sqlite:///{tmp_path / 'quarantine.db'}",
        # the sample's key files sit beside it; keep the test's own in tmp_path
        "SENDGUARD_REVIEW__SECRET_FILE": str(tmp_path / "review-secret.key"),
        "SENDGUARD_WEB__SESSION_SECRET_FILE": str(tmp_path / "web-session.key"),
    }


def swaks(port: int, to: str, *headers: str) -> str:
    args = [
        "swaks",
        "--server",
        f"127.0.0.1:{port}",
        "--from",
        GP,
        "--to",
        to,
        "--helo",
        "practice.test",
        "--timeout",
        "30",
    ]
    for h in headers:
        args += ["--header", h]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_postfix_delivers_clean_mail_holds_suspect_mail_and_defers_when_down(
    tmp_path: Path, ports: Ports, sink: Sink, postfix: PostfixInstance
) -> None:
    config = ROOT / "deploy" / "sendguard.toml"
    relay = RelayProcess(config, env=relay_env(tmp_path, ports))
    try:
        swaks(
            ports.smtpd,
            CLEAN,
            "Subject: [secure] results",
            "X-Sendguard-Patient: 9434765919",
            "X-Test: clean-1",
        )
        swaks(
            ports.smtpd,
            TYPO,
            "Subject: results",
            "X-Sendguard-Patient: 9434765919",
            "X-Test: suspect-1",
        )
        got = sink.wait_for(2)  # the clean message and the hold notice
        clean = [m for m in got if m.rcpt_tos == (CLEAN,)]
        assert len(clean) == 1
        assert b"X-Sendguard-Verdict: allow" in clean[0].data
        assert b"X-Test: clean-1" in clean[0].data
        notice = [m for m in got if m.rcpt_tos == (GP,)]
        assert len(notice) == 1
        assert b"Held for review" in notice[0].data
        assert sink.to(TYPO) == []
        log = postfix.wait_log("Held for review as")
        assert "status=sent (250 2.0.0 Held for review as" in log
        with SqliteStore(tmp_path / "quarantine.db", create=False) as store:
            (held,) = store.list()
            assert held.held_recipients == (TYPO,)
            assert "email.domain_typo" in held.codes
            full = store.get(held.hold_id)
            assert full is not None
            assert b"X-Test: suspect-1" in full.message

        # the relay is down: Postfix accepts, defers, and keeps the message
        assert relay.stop() == 0
        swaks(ports.smtpd, CLEAN, "Subject: [secure] later", "X-Test: clean-2")
        log = postfix.wait_log("status=deferred")
        assert "Connection refused" in log
        assert len(postfix.queue()) == 1
        assert sink.to(CLEAN) == clean

        # back up: Postfix delivers it
        relay = RelayProcess(config, env=relay_env(tmp_path, ports))
        postfix.flush()
        deadline = time.monotonic() + 60
        while len(sink.to(CLEAN)) < 2:
            assert time.monotonic() < deadline, postfix.log()[-3000:]
            time.sleep(0.1)
        assert b"X-Test: clean-2" in sink.to(CLEAN)[1].data
        while postfix.queue():
            assert time.monotonic() < deadline, postfix.log()[-3000:]
            time.sleep(0.1)
    finally:
        relay.stop()
