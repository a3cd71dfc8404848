#!/usr/bin/env python3
"""Check a fax number with sendguard's HTTP API before sending the fax.

    SENDGUARD_URL=http://127.0.0.1:8025 SENDGUARD_TOKEN=sgt_... \\
        python examples/fax_before_send.py "0113 496 0010" --intended B82005 \\
        --patient 9434765919 --document referral.pdf [--wait 900]

What a practice system's "send fax" button would do: ask sendguard first,
send only when the verdict allows it (or only warns), and otherwise stop
and show the person why, with the number on file when sendguard knows it.

A held fax waits in sendguard's quarantine for a person to decide; the
answer carries its hold id. With --wait the script polls /v1/held/{id}
(every --interval seconds, for at most --wait seconds) and sends the fax
if a reviewer releases it. A practice system can instead give
--callback-url and be told of the decision by a POST.

Exit status: 0 sent; 1 not sent (held, rejected, or cancelled by a
reviewer); 2 sendguard could not be asked; 3 still held when the wait ran
out (not sent). Never sent unless sendguard said so: fail safe. Uses only
the standard library.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from typing import Any

RELEASED = "released"
STOPPED = {"cancelled", "recalled", "expired"}  # decided: never to be sent


def _call(request: urllib.request.Request) -> dict[str, Any]:
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.load(response))


def check_fax(
    url: str,
    token: str,
    number: str,
    intended: str | None,
    patient: str | None,
    callback_url: str | None = None,
) -> dict[str, Any]:
    """POST /v1/check/fax and return the verdict, with `hold_id` (raises on any failure)."""
    body: dict[str, Any] = {"number": number, "intended": intended, "patient": patient}
    if callback_url:
        body["callback_url"] = callback_url
    return _call(
        urllib.request.Request(
            url.rstrip("/") + "/v1/check/fax",
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            method="POST",
        )
    )


def get_hold(url: str, token: str, hold_id: str) -> dict[str, Any]:
    """GET /v1/held/{id}: the hold's status and, once decided, who decided, when and why."""
    return _call(
        urllib.request.Request(
            f"{url.rstrip('/')}/v1/held/{hold_id}",
            headers={"Authorization": f"Bearer {token}"},
        )
    )


def wait_for_decision(
    url: str, token: str, hold_id: str, seconds: float, interval: float
) -> dict[str, Any]:
    """Poll the hold until a person has decided or `seconds` have passed; its last state."""
    deadline = time.monotonic() + seconds
    while True:
        hold = get_hold(url, token, hold_id)
        left = deadline - time.monotonic()
        if hold["status"] == RELEASED or hold["status"] in STOPPED or left <= 0:
            return hold
        time.sleep(min(interval, left))


def send_fax(number: str, document: str) -> None:
    """Stands in for the fax gateway: a real system would dial here."""
    print(f"SENT {document} to {number}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("number", help="the fax number to be dialled")
    ap.add_argument("--intended", help="whom it is for: directory id or ODS code")
    ap.add_argument("--patient", help="the patient it concerns: NHS number or directory id")
    ap.add_argument("--document", default="document.pdf", help="what is being faxed")
    ap.add_argument("--url", default=os.environ.get("SENDGUARD_URL", "http://127.0.0.1:8025"))
    ap.add_argument(
        "--wait",
        type=float,
        nargs="?",
        const=900.0,
        metavar="SECONDS",
        help="if held, wait this long (default 900) for a reviewer's decision",
    )
    ap.add_argument("--interval", type=float, default=5.0, help="seconds between polls")
    ap.add_argument("--callback-url", help="where sendguard POSTs the decision on a hold")
    args = ap.parse_args(argv)
    token = os.environ.get("SENDGUARD_TOKEN", "")
    if not token:
        print("set SENDGUARD_TOKEN to an API token (sendguard api-token add NAME)", file=sys.stderr)
        return 2

    try:
        verdict = check_fax(
            args.url, token, args.number, args.intended, args.patient, args.callback_url
        )
    except urllib.error.HTTPError as exc:
        print(f"NOT SENT: sendguard answered {exc.code}: {exc.read().decode()[:300]}")
        return 2
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"NOT SENT: sendguard could not be asked ({exc})")
        return 2

    action = verdict["action"]
    if action in ("allow", "warn"):
        for f in verdict["findings"]:
            print(f"note: {f['message']}")
        send_fax(args.number, args.document)
        return 0
    print(f"NOT SENT ({action}): check the number before sending")
    for f in verdict["findings"]:
        if f["monitor"]:
            continue
        print(f"  - {f['message']}")
        if f.get("suggestion"):
            print(f"    number on file: {f['suggestion']}")
    hold_id = verdict.get("hold_id")
    if not hold_id:
        return 1
    print(f"HELD as {hold_id}: a reviewer decides whether it may be sent", flush=True)
    if args.wait is None:
        return 1

    try:
        hold = wait_for_decision(args.url, token, hold_id, args.wait, args.interval)
    except urllib.error.HTTPError as exc:
        print(f"NOT SENT: sendguard answered {exc.code} about {hold_id}")
        return 2
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"NOT SENT: sendguard could not be asked about {hold_id} ({exc})")
        return 2
    status = hold["status"]
    who = f"by {hold.get('decided_by')} ({hold.get('reason')})"
    if status == RELEASED:
        print(f"RELEASED {who}")
        send_fax(args.number, args.document)
        return 0
    if status in STOPPED:
        print(f"NOT SENT: {status} {who}" if status != "expired" else "NOT SENT: expired")
        return 1
    print(f"NOT SENT: still {status} after {args.wait:g} s; {hold_id} waits for a reviewer")
    return 3


if __name__ == "__main__":
    sys.exit(main())
