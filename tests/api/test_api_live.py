"""A real uvicorn server on 127.0.0.1 and a real HTTP client (httpx).

Every endpoint over the wire, body limits with and without Content-Length,
the verdict JSON byte for byte against the library, and the example
integration script run against the live server (waiting for a reviewer too).
"""

from __future__ import annotations

import contextlib
import json
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_support import JANE_NHS, PRACTICE_ODS, ROOT, WAIT, LiveServer, auth

from sendguard.api.tokens import Role, add_token
from sendguard.config import Config

FAX_TYPO = {"number": "0113 496 0010", "intended": PRACTICE_ODS}


@pytest.fixture
def live(config: Config, tokens: dict[str, str]) -> Iterator[LiveServer]:
    with LiveServer(config) as server:
        yield server


@pytest.fixture
def http(live: LiveServer, tokens: dict[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, headers=auth(tokens["check"]), timeout=WAIT) as c:
        yield c


def test_each_endpoint_over_the_wire(
    live: LiveServer, http: httpx.Client, tokens: dict[str, str]
) -> None:
    guard = live.server.guard
    assert guard is not None
    cases = [
        ("/v1/check/email", {"recipients": ["jane.smith@gmial.com"], "patient": JANE_NHS}),
        ("/v1/check/fax", {**FAX_TYPO, "hold": False}),  # advice only: hold_id null
        (
            "/v1/check/letter",
            {"addressee": "Mrs J Smith", "address": "3 Park Lane, Leeds LS6 2AB", "hold": False},
        ),
    ]
    library = [
        guard.check_email(["jane.smith@gmial.com"], patient=JANE_NHS),
        guard.check_fax("0113 496 0010", intended=PRACTICE_ODS),
        guard.check_letter(addressee="Mrs J Smith", address="3 Park Lane, Leeds LS6 2AB"),
    ]
    for (path, body), v in zip(cases, library, strict=True):
        r = http.post(path, json=body)
        assert r.status_code == 200, r.text
        extra = {} if path.endswith("email") else {"hold_id": None}
        assert r.json() == v.model_dump(mode="json") | extra
        assert json.loads(r.content) == json.loads(v.model_dump_json()) | extra
    assert http.get("/healthz").json()["status"] == "ok"
    assert "sendguard_checks_total" in http.get("/metrics").text
    r = http.post("/v1/admin/reload", headers=auth(tokens["admin"]))
    assert r.status_code == 200
    assert r.json()["entries"] == 14
    assert (
        http.post("/v1/check/fax", json=FAX_TYPO, headers={"Authorization": ""}).status_code == 401
    )
    assert http.get("/openapi.json").json()["info"]["title"] == "sendguard"


def test_a_declared_oversized_body_is_refused_unread(live: LiveServer, http: httpx.Client) -> None:
    limit = live.server.config.api.max_body
    for size in (limit, 3 * limit):  # read and dropped, so the client sees the 413
        big = {"recipients": ["a@b.org"], "body": "x" * size}
        r = http.post("/v1/check/email", json=big)
        assert r.status_code == 413
        assert str(limit) in r.json()["detail"]
    # just under the limit is fine
    ok = {"recipients": ["a@b.org"], "body": "x" * (limit - 200)}
    assert len(json.dumps(ok)) <= limit
    assert http.post("/v1/check/email", json=ok).status_code == 200


def test_a_chunked_oversized_body_is_refused_while_it_arrives(
    live: LiveServer, http: httpx.Client
) -> None:
    limit = live.server.config.api.max_body
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        yield b'{"recipients": ["a@b.org"], "body": "'
        for _ in range(limit // 8192 + 8):
            sent += 8192
            yield b"x" * 8192
        yield b'"}'

    r = http.post("/v1/check/email", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert "content-length" not in r.request.headers
    assert r.request.headers["transfer-encoding"] == "chunked"

    def small() -> Iterator[bytes]:
        yield b'{"number": "0113 496 0010",'
        yield b' "intended": "B82005"}'

    r = http.post("/v1/check/fax", content=small(), headers={"Content-Type": "application/json"})
    assert r.status_code == 200
    assert r.json()["action"] == "hold"


def test_a_lying_content_length_gets_no_further(live: LiveServer) -> None:
    """A client that declares a small body and keeps sending: the parser sees
    only what was declared, so nothing past the limit is ever read."""
    host, port = live.server.address
    with socket.create_connection((host, port), timeout=WAIT) as s:
        s.sendall(
            b"POST /v1/check/fax HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: not-a-number\r\n\r\n{}"
        )
        reply = s.recv(4096)
    assert reply.startswith(b"HTTP/1.1 4")


def test_the_example_script_checks_before_sending(live: LiveServer, tokens: dict[str, str]) -> None:
    script = ROOT / "examples" / "fax_before_send.py"

    def run(*args: str, token: str = tokens["check"]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(script), *args],
            capture_output=True,
            text=True,
            timeout=WAIT,
            check=False,
            env={"SENDGUARD_URL": live.url, "SENDGUARD_TOKEN": token, "PATH": "/usr/bin:/bin"},
        )

    held = run("0113 496 0010", "--intended", PRACTICE_ODS, "--document", "referral.pdf")
    assert held.returncode == 1, held.stdout + held.stderr
    assert "NOT SENT (hold)" in held.stdout
    assert "+44 113 496 0000" in held.stdout  # the number on file
    assert "SENT referral.pdf" not in held.stdout
    assert re.search(r"^HELD as [a-z0-9]{12}:", held.stdout, re.M)

    undecided = run("0113 496 0010", "--wait", "0.3", "--interval", "0.1")
    assert undecided.returncode == 3, undecided.stdout + undecided.stderr
    assert "still held" in undecided.stdout
    assert "SENT document.pdf" not in undecided.stdout

    sent = run("0113 496 0000", "--intended", PRACTICE_ODS, "--document", "referral.pdf")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "SENT referral.pdf to 0113 496 0000" in sent.stdout

    rejected = run("0909 123 4567")
    assert rejected.returncode == 1
    assert "NOT SENT (reject)" in rejected.stdout

    refused = run("0113 496 0000", token="sgt_wrong")
    assert refused.returncode == 2
    assert "401" in refused.stdout


class ScriptRun:
    """The example script running with --wait; its output read as it comes."""

    def __init__(self, url: str, token: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-u", str(ROOT / "examples" / "fax_before_send.py"), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={"SENDGUARD_URL": url, "SENDGUARD_TOKEN": token, "PATH": "/usr/bin:/bin"},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.out: list[str] = []

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def hold_id(self) -> str:
        """The hold id the script printed (waiting at most WAIT seconds)."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                self.out.append(self.lines.get(timeout=0.1))
                m = re.match(r"HELD as (\w+):", self.out[-1])
                if m:
                    return m.group(1)
        self.proc.kill()
        self.finish()
        raise AssertionError("no hold id printed:\n" + "".join(self.out))

    def finish(self) -> tuple[int, str]:
        """Its exit status and whole output, once it has ended."""
        try:
            code = self.proc.wait(WAIT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(WAIT)
            self._reader.join(WAIT)
            assert self.proc.stdout is not None
            self.proc.stdout.close()
        while not self.lines.empty():
            self.out.append(self.lines.get())
        return code, "".join(self.out)


def test_the_example_script_waits_for_a_reviewer(
    live: LiveServer, http: httpx.Client, config: Config, tokens: dict[str, str]
) -> None:
    reviewer = add_token(config.api.tokens_file, "review-tool", Role.REVIEWER)
    fax = ("0113 496 0010", "--intended", PRACTICE_ODS, "--document", "referral.pdf")
    wait = ("--wait", str(WAIT), "--interval", "0.05")
    for action, reason, code, said in [
        ("release", "confirmed-correct", 0, "RELEASED by api:review-tool (confirmed-correct)"),
        ("cancel", "wrong-recipient", 1, "NOT SENT: cancelled by api:review-tool"),
    ]:
        script = ScriptRun(live.url, tokens["check"], *fax, *wait)
        hold_id = script.hold_id()
        r = http.post(
            f"/v1/held/{hold_id}/{action}", json={"reason": reason}, headers=auth(reviewer)
        )
        assert r.status_code == 200, r.text
        returncode, out = script.finish()
        assert returncode == code, out
        assert said in out
        assert ("SENT referral.pdf to 0113 496 0010" in out) is (action == "release")


def test_the_example_script_does_not_send_when_sendguard_is_down(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "fax_before_send.py"), "0113 496 0000"],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
        env={"SENDGUARD_URL": f"http://127.0.0.1:{port}", "SENDGUARD_TOKEN": "sgt_x"},
    )
    assert r.returncode == 2
    assert "NOT SENT" in r.stdout
