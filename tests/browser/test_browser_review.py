"""End to end in a real browser: a suspect mail is held by a real relay, a
reviewer releases it in headless Chromium, it arrives at the next hop, and
the release is on the audit page.

    sendguard relay  (subprocess)  --SMTP-->  aiosmtpd sink (next hop)
          |  holds into                        ^
          v                                    | released copy
    quarantine.db  <--  sendguard serve (subprocess, uvicorn)  <--  Chromium

Chromium is Debian's (`/usr/bin/chromium`, installed by `make test` as root
through SENDGUARD_APT_PACKAGES), driven by Playwright without `playwright
install`. Screenshots of each step go to test-artifacts/browser/.
"""

from __future__ import annotations

import smtplib
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

HERE = Path(__file__).resolve().parent
if str(HERE.parent / "relay") not in sys.path:
    sys.path.insert(0, str(HERE.parent / "relay"))

from support import DEMO, WAIT, CliProcess, RelayProcess, Sink, free_port, message  # noqa: E402

from sendguard.store.models import HoldStatus  # noqa: E402
from sendguard.store.sqlite import SqliteStore  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = HERE.parents[1] / "test-artifacts" / "browser"
PASSWORD = "browser test password"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Chromium is not installed at /usr/bin/chromium: `make test` as root installs it "
    "(SENDGUARD_APT_PACKAGES), or apt-get install chromium",
)


def _config(folder: Path, sink_port: int) -> Path:
    text = f"""
[directory]
sources = ["{DEMO}"]

[relay]
listen = "127.0.0.1:0"
hostname = "relay.test"
next_hop = "127.0.0.1:{sink_port}"
check_workers = 0
notify = false

[store]
url = "sqlite:///quarantine.db"

[api]
tokens_file = "api-tokens.toml"

[review]
secret_file = "review.key"

[web]
session_secret_file = "web-session.key"
"""
    path = folder / "sendguard.toml"
    path.write_text(text, encoding="utf-8")
    return path


class ServeProcess(CliProcess):
    """`sendguard serve --config FILE --listen 127.0.0.1:PORT`, until it answers."""

    def __init__(self, config: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__("serve", "--config", str(config), "--listen", f"127.0.0.1:{self.port}")
        deadline = time.monotonic() + WAIT
        while True:
            try:
                httpx.get(f"{self.url}/login", timeout=1).raise_for_status()
                return
            except httpx.HTTPError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    log = "\n".join(self.lines)
                    raise AssertionError(f"sendguard serve did not start:\n{log}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        self.terminate()


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink().start()
    yield s
    s.stop()


def test_a_reviewer_releases_a_held_mail_in_the_browser(tmp_path: Path, sink: Sink) -> None:
    from playwright.sync_api import expect, sync_playwright

    from sendguard.review.passwords import hash_password

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    config = _config(tmp_path, sink.port)
    store = SqliteStore(tmp_path / "quarantine.db")
    digest = hash_password(PASSWORD)
    store.add_user("rita", "reviewer", digest)
    store.add_user("adam", "admin", digest)

    relay = RelayProcess(config)
    serve = ServeProcess(config)
    try:
        # a practice system sends a letter to a mistyped address: the relay holds it
        with smtplib.SMTP("127.0.0.1", relay.port, timeout=WAIT) as smtp:
            smtp.sendmail(
                "a.patel@nhs.net",
                ["jane.smith@gmial.com"],
                message(to="Jane Smith <jane.smith@gmial.com>", subject="Your results"),
            )
        (held,) = store.list()
        assert held.status is HoldStatus.HELD
        assert "email.domain_typo" in held.codes
        assert sink.messages == []

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.set_default_timeout(10_000)

                page.goto(f"{serve.url}/held")  # not signed in: the sign-in form
                expect(page).to_have_url(f"{serve.url}/login?next=%2Fheld")
                page.screenshot(path=str(ARTIFACTS / "01-sign-in.png"))
                page.fill("#username", "rita")
                page.fill("#password", PASSWORD)
                page.click("button[type=submit]")
                expect(page.locator(".user")).to_have_text("rita (reviewer)")
                expect(page.locator(f'a[href="/held/{held.hold_id}"]')).to_be_visible()
                page.screenshot(path=str(ARTIFACTS / "02-held-list.png"), full_page=True)

                page.click(f'a[href="/held/{held.hold_id}"]')
                findings = page.locator("table.findings")
                expect(findings).to_contain_text("email.domain_typo")
                expect(findings).to_contain_text("jane.smith@gmail.com")  # the suggestion
                expect(page.locator("figure.text pre")).to_contain_text("Your results are normal")
                page.screenshot(path=str(ARTIFACTS / "03-hold.png"), full_page=True)

                page.select_option("#release-reason", "confirmed-correct")
                page.click("form.release button[type=submit]")
                expect(page.locator("#outcome")).to_contain_text("Released")
                expect(page.locator("#status")).to_have_text("released")
                page.screenshot(path=str(ARTIFACTS / "04-released.png"), full_page=True)

                (arrived,) = sink.wait_for(1)
                assert arrived.rcpt_tos == ("jane.smith@gmial.com",)
                assert f"X-Sendguard-Released: {held.hold_id} by rita".encode() in arrived.data

                page.click("text=Sign out")
                page.fill("#username", "adam")
                page.fill("#password", PASSWORD)
                page.click("button[type=submit]")
                page.goto(f"{serve.url}/audit?hold={held.hold_id}")
                rows = page.locator("table.audit tbody tr")
                release = page.locator("tr.event-release")
                expect(release).to_contain_text("rita")
                expect(release).to_contain_text("confirmed-correct")
                expect(page.locator("tr.event-released")).to_contain_text("250")
                assert rows.count() >= 3  # hold, release, released
                page.screenshot(path=str(ARTIFACTS / "05-audit.png"), full_page=True)

                page.goto(f"{serve.url}/report")
                expect(page.locator("figure.chart svg")).to_be_visible()
                expect(page.locator("#total")).to_contain_text("1 released")
                page.screenshot(path=str(ARTIFACTS / "06-report.png"), full_page=True)
            finally:
                browser.close()
        after = store.get(held.hold_id)
        assert after is not None
        assert after.status is HoldStatus.RELEASED
        assert after.decided_by == "rita"
    finally:
        serve.stop()
        relay.stop()
        store.close()
