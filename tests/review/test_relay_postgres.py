"""Two `sendguard relay` processes sharing one PostgreSQL quarantine: a
message held by one is listed, released and delivered through the other,
and with hold notices on, each sender is told once.

Real parts only: two relay subprocesses (different ports, one store URL with
a fresh schema, the same next hop and demo directory), an aiosmtpd sink as
the next hop, smtplib as the sending client, and a release decided by a
node without a next hop (as the web UI node is), which only queues it
`pending`: a relay's background job must send it. Stopping relay A before
the release leaves relay B as the only one that can, so delivery proves the
shared store rather than luck. Skipped only when PostgreSQL does not answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import smtplib
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from reviewkit import make_service
from storekit import drop_schema, new_schema, pg_url
from support import DEMO, WAIT, Received, RelayProcess, Sink, message, write_config

from sendguard.review.service import Outcome, utcnow
from sendguard.store import HoldStatus, NotifyStatus
from sendguard.store.postgres import PostgresStore

GP = "a.patel@nhs.net"
TYPO = "jane.smith@gmial.com"  # one letter from the patient's own jane.smith@gmail.com
PATIENT = "9434765919"
POLL = 0.2  # [review] poll_interval of both relays: the test takes seconds


@pytest.fixture
def schema(pg_available: None) -> Iterator[str]:
    name = new_schema()
    yield name
    drop_schema(name)


def relay_config(folder: Path, name: str, schema: str, sink: Sink, *, notify: bool = False) -> Path:
    """One node's config: its own port and name; the shared store, next hop,
    directory and link-signing key (every node needs the same key file).
    With `notify`, each relay also looks at the shared outbox every POLL."""
    return write_config(
        folder / f"relay-{name}.toml",
        f"""
[directory]
sources = ["{DEMO}"]

[relay]
listen = "127.0.0.1:0"
hostname = "relay-{name}.test"
next_hop = "127.0.0.1:{sink.port}"
check_workers = 0
notify = {str(notify).lower()}
notify_retry = {POLL}

[store]
url = "{pg_url(schema)}"

[review]
secret_file = "review-secret.key"
poll_interval = {POLL}
""",
    )


@contextlib.contextmanager
def two_relays(
    folder: Path, schema: str, sink: Sink, *, notify: bool = False
) -> Iterator[tuple[RelayProcess, RelayProcess]]:
    started: list[RelayProcess] = []
    try:
        for name in ("a", "b"):
            config = relay_config(folder, name, schema, sink, notify=notify)
            started.append(RelayProcess(config))
        yield started[0], started[1]
    finally:
        for r in started:
            r.stop()


@pytest.fixture
def relays(tmp_path: Path, schema: str, sink: Sink) -> Iterator[tuple[RelayProcess, RelayProcess]]:
    with two_relays(tmp_path, schema, sink) as both:
        yield both


@pytest.fixture
def store_url(schema: str) -> str:
    return pg_url(schema)


@pytest.fixture
def store(schema: str) -> Iterator[PostgresStore]:
    """The test's own view of the shared quarantine (opened once a relay made it)."""
    s = PostgresStore(pg_url(schema), create=False, pool_min=1)
    yield s
    s.close()


def hold_on(relay: RelayProcess, marker: str) -> str:
    """Send the suspect mail through `relay` with smtplib; its hold id."""
    data = message(to=f"Jane Smith <{TYPO}>", patient=PATIENT, marker=marker)
    with smtplib.SMTP("127.0.0.1", relay.port, local_hostname="practice.test", timeout=WAIT) as s:
        s.ehlo()
        assert s.mail(GP)[0] == 250
        assert s.rcpt(TYPO)[0] == 250
        code, reply = s.data(data)
    text = reply.decode()
    assert code == 250, text
    m = re.search(r"Held for review as (\w+)", text)
    assert m is not None, text
    return m.group(1)


def release_without_next_hop(store: PostgresStore, hold_id: str) -> Outcome:
    """A reviewer releases on a node without SMTP, as the web UI node does."""

    async def decide() -> Outcome:
        web = make_service(store, None, utcnow, node="web@review.test")
        return await web.release(hold_id, actor="rita", reason="confirmed-correct", reviewer=True)

    return asyncio.run(decide())


def arrived(sink: Sink, *hold_ids: str, timeout: float = WAIT) -> dict[str, list[Received]]:
    """The released copies of each hold at the sink, once each has one; then
    a few more job passes, so that a second copy would have shown up too."""
    deadline = time.monotonic() + timeout
    while missing := [h for h in hold_ids if not _copies(sink, h)]:
        assert time.monotonic() < deadline, f"never reached the next hop: {missing}"
        time.sleep(0.05)
    time.sleep(POLL * 5)
    return {h: _copies(sink, h) for h in hold_ids}


def _copies(sink: Sink, hold_id: str) -> list[Received]:
    mark = f"X-Sendguard-Released: {hold_id} by ".encode()
    return [m for m in sink.to(TYPO) if m.data.startswith(mark)]


_CLI = "import sys; from sendguard.cli import main; sys.exit(main())"


def sendguard(*argv: str) -> subprocess.CompletedProcess[str]:
    """The `sendguard` command as a separate process, as an admin runs it."""
    return subprocess.run(
        [sys.executable, "-c", _CLI, *argv],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )


def test_a_hold_on_relay_a_is_listed_and_released_through_relay_b(
    relays: tuple[RelayProcess, RelayProcess], store: PostgresStore, sink: Sink
) -> None:
    relay_a, relay_b = relays
    hold_id = hold_on(relay_a, "pg-one")
    relay_a.wait_log(rf"held as {hold_id} ")
    assert sink.to(TYPO) == []  # held, not forwarded

    listed = sendguard("held", "list", "-c", str(relay_b.config), "--json")
    assert listed.returncode == 0, listed.stderr
    assert [(h["hold_id"], h["status"]) for h in json.loads(listed.stdout)] == [(hold_id, "held")]

    assert relay_a.stop() == 0  # only relay B is left to send it
    out = release_without_next_hop(store, hold_id)
    assert (out.done, out.status) == (True, HoldStatus.PENDING), out.message

    copies = arrived(sink, hold_id)[hold_id]
    assert len(copies) == 1
    assert copies[0].rcpt_tos == (TYPO,)
    assert copies[0].mail_from == GP
    assert copies[0].data.startswith(f"X-Sendguard-Released: {hold_id} by rita\r\n".encode())
    assert b"Message-ID: <pg-one@practice.test>" in copies[0].data

    held = store.get(hold_id)
    assert held is not None
    assert (held.status, held.decided_by, held.reason) == (
        HoldStatus.RELEASED,
        "rita",
        "confirmed-correct",
    )
    assert held.release_reply is not None
    assert held.release_reply.startswith("250")
    assert held.release_attempts == 1  # the hand-over from the web node spent none
    trail = store.audit_entries(hold_id=hold_id, limit=100)
    assert [(e.event, e.actor) for e in trail] == [
        ("hold", "relay@relay-a.test"),  # which node accepted it
        ("release", "rita"),  # the decision, queued by the node without a next hop
        ("release_retry", "relay@relay-b.test"),  # relay B's job claims it: attempt 1
        ("released", "relay@relay-b.test"),
    ]
    hold, decision, claimed, sent = trail
    assert hold.details["message_id"] == "<pg-one@practice.test>"
    assert decision.details == {"from": "held", "queued": True, "reason": "confirmed-correct"}
    assert claimed.details["attempt"] == 1
    assert sent.details == {"attempt": 1, "reply": held.release_reply}

    verified = sendguard("audit", "verify", "-c", str(relay_b.config), "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["ok"] is True
    assert store.verify_audit().ok
    relay_b.wait_log(rf"hold {hold_id}: released, next hop said 250")


def test_with_both_relays_running_each_release_is_sent_once(
    relays: tuple[RelayProcess, RelayProcess], store: PostgresStore, sink: Sink
) -> None:
    """Both relays' jobs see every pending release; each is sent by one."""
    relay_a, relay_b = relays
    holds = [hold_on(relay, f"pg-both-{i}") for i, relay in enumerate(relays * 3)]
    for hold_id in holds:
        assert release_without_next_hop(store, hold_id).status is HoldStatus.PENDING
    copies = arrived(sink, *holds)
    assert {h: len(c) for h, c in copies.items()} == dict.fromkeys(holds, 1)
    nodes = {"relay@relay-a.test", "relay@relay-b.test"}
    for i, hold_id in enumerate(holds):
        trail = store.audit_entries(hold_id=hold_id, limit=100)
        assert [e.event for e in trail] == ["hold", "release", "release_retry", "released"]
        assert trail[0].actor == ("relay@relay-a.test", "relay@relay-b.test")[i % 2]
        assert trail[1].actor == "rita"
        assert trail[2].actor == trail[3].actor
        assert trail[3].actor in nodes
    assert len(sink.to(TYPO)) == len(holds)
    assert store.verify_audit().ok
    assert relay_a.proc.poll() is None
    assert relay_b.proc.poll() is None


def _notices(sink: Sink) -> Counter[str]:
    """How many hold notices the next hop took, per hold id."""
    found: Counter[str] = Counter()
    for m in sink.to(GP):
        hold = re.search(rb"^X-Sendguard-Hold: (\w+)\r?$", m.data, re.MULTILINE)
        if m.mail_from in ("", "<>") and hold is not None:  # notices come from <>
            found[hold.group(1).decode()] += 1
    return found


def test_with_notices_on_both_relays_each_sender_is_told_once(
    tmp_path: Path, schema: str, sink: Sink, store_url: str
) -> None:
    """Both relays sweep the one outbox every POLL while the next hop takes
    its time over each notice: without a claim both would send most of them."""
    sink.delay = POLL * 2
    with two_relays(tmp_path, schema, sink, notify=True) as relays:
        holds = [hold_on(relay, f"pg-notice-{i}") for i, relay in enumerate(relays * 4)]
        deadline = time.monotonic() + WAIT
        while set(_notices(sink)) != set(holds):
            assert time.monotonic() < deadline, f"notices: {dict(_notices(sink))}"
            time.sleep(0.05)
        time.sleep(POLL * 5)  # more sweeps by both: a second copy would show now
        assert _notices(sink) == Counter(dict.fromkeys(holds, 1))
        store = PostgresStore(store_url, create=False, pool_min=1)
        try:
            nodes = {"relay@relay-a.test", "relay@relay-b.test"}
            for hold_id in holds:
                held = store.get(hold_id)
                assert held is not None
                assert (held.notify_status, held.notify_attempts) == (NotifyStatus.SENT, 1)
                [notice] = store.audit_entries(hold_id=hold_id, event="notify")
                assert notice.actor in nodes
                assert notice.details == {"attempt": 1, "links": []}
            assert store.verify_audit().ok
        finally:
            store.close()
        for relay in relays:
            assert relay.proc.poll() is None
