#!/usr/bin/env python3
"""Check a fax number with sendguard's HTTP API before sending the fax.

    SENDGUARD_URL=http://127.0.0.1:8025 SENDGUARD_TOKEN=sgt_... \\
        python examples/fax_before_send.py "0113 496 0010" --intended B82005 \\
        --patient 9434765919 --document referral.pdf

What a practice system's "send fax" button would do: ask sendguard first,
send only when the verdict allows it (or only warns), and otherwise stop
and show the person why, with the number on file when sendguard knows it.

Exit status: 0 sent, 1 held or rejected (not sent), 2 sendguard could not
be asked (not sent either: fail safe). Uses only the standard library.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any


def check_fax(
    url: str, token: str, number: str, intended: str | None, patient: str | None
) -> dict[str, Any]:
    """POST /v1/check/fax and return the verdict (raises on any failure)."""
    body = {"number": number, "intended": intended, "patient": patient}
    request = urllib.request.Request(
        url.rstrip("/") + "/v1/check/fax",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.load(response))


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
    args = ap.parse_args(argv)
    token = os.environ.get("SENDGUARD_TOKEN", "")
    if not token:
        print("set SENDGUARD_TOKEN to an API token (sendguard api-token add NAME)", file=sys.stderr)
        return 2

    try:
        verdict = check_fax(args.url, token, args.number, args.intended, args.patient)
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
    return 1


if __name__ == "__main__":
    sys.exit(main())
