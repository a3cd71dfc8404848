"""Robustness: every message of the public MIME corpus goes through the relay.

Real-world, malformed and huge messages (../shared/corpora/mime): none may
crash the relay or its check worker, each is forwarded or held (a message
that cannot be checked is held, never passed or dropped), and the relay
still answers afterwards.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import aiosmtplib
from support import MakeRelay, Sink, corpus_messages, message, open_quarantine, smtp_send

GP = "a.patel@nhs.net"
RCPT = "dr.jones@nhs.net"


async def test_every_corpus_message_is_forwarded_or_held(
    make_relay: MakeRelay, sink: Sink, tmp_path: Path
) -> None:
    files = corpus_messages()
    relay = await make_relay(check_workers=1, notify=False)
    smtp = aiosmtplib.SMTP(
        hostname="127.0.0.1", port=relay.address[1], start_tls=False, timeout=120
    )
    await smtp.connect()
    outcomes: Counter[str] = Counter()
    unexpected: list[str] = []
    for path in files:
        raw = path.read_bytes()
        r = await smtp_send(0, GP, [RCPT], raw, client=smtp, mail_options=["BODY=8BITMIME"])
        if r.code == 250 and "Forwarded" in r.text:
            outcomes["forwarded"] += 1
        elif r.code == 250 and "Held" in r.text:
            outcomes["held"] += 1
        else:
            unexpected.append(f"{path.name}: {r.code} {r.text}")
    await smtp.quit()
    assert unexpected == [], "\n".join(unexpected)
    assert outcomes["forwarded"] + outcomes["held"] == len(files)
    assert len(sink.messages) == outcomes["forwarded"]
    with open_quarantine(tmp_path) as store:
        assert store.count() == outcomes["held"]
    # and it still answers, checks and forwards
    after = await smtp_send(
        relay.address[1], GP, ["jane.smith@gmail.com"], message(subject="[secure] after the corpus")
    )
    assert after.code == 250
    assert "Forwarded" in after.text
