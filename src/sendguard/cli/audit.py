"""`sendguard audit verify|export`: the audit log's integrity, and a breach report.

    sendguard audit verify -c sendguard.toml [--anchor SEQ:HASH] [--json]
    sendguard audit export --since 2026-11-01 [--until 2026-11-08] [--format csv|json] \\
        [--output FILE] -c sendguard.toml

`verify` recomputes the whole hash chain: exit 0 when intact, 65 when an
entry was altered, removed or reordered (naming the first bad seq). Keep
the head it prints somewhere else and pass it back as `--anchor`: that also
catches someone who rewrote the chain and recomputed every hash.

`export` gives, for every hold with an audit entry in the window, what a
report to the regulator needs (within 72 hours): who sent what (Message-ID,
size, SHA-256, finding codes; never the subject or text) about which
patients to whom, what was decided, by whom, when and why, and the audit
trail (review/export.py). It contains addresses and patient ids: keep it
as carefully as the quarantine itself (written owner-only with --output).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime

from sendguard.cli._common import (
    EX_DATAERR,
    EX_USAGE,
    config_option,
    die,
    iso_datetime,
    open_configured_store,
)
from sendguard.review.export import breach_report, report_csv
from sendguard.store import StoreError

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("audit", help="verify the audit log; export a breach report")
    cmds = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    v = cmds.add_parser("verify", help="recompute the audit log's hash chain (exit 65 if broken)")
    config_option(v, "naming the quarantine ([store] url)")
    v.add_argument(
        "--anchor",
        metavar="SEQ:HASH",
        help="a head printed by an earlier verify, kept elsewhere: it must still be in the chain",
    )
    v.add_argument("--json", action="store_true", help="print the report as JSON")
    v.set_defaults(func=_verify)
    e = cmds.add_parser(
        "export", help="per hold: sender, recipients, patients, codes, decisions, audit trail"
    )
    config_option(e, "naming the quarantine ([store] url)")
    e.add_argument("--since", metavar="DATE", required=True, help="ISO date or time (UTC)")
    e.add_argument("--until", metavar="DATE", help="ISO date or time (UTC), exclusive")
    e.add_argument("--format", choices=["csv", "json"], default="json", help="default json")
    e.add_argument("--output", metavar="FILE", help="write here (owner-only) instead of stdout")
    e.set_defaults(func=_export)


def _verify(args: argparse.Namespace) -> int:
    anchor = None
    if args.anchor:
        seq, sep, digest = args.anchor.partition(":")
        if not sep or not seq.isdigit() or len(digest) != 64:
            die("--anchor: expected SEQ:HASH as printed by an earlier verify", EX_USAGE)
        anchor = (int(seq), digest.lower())
    with open_configured_store(args) as store:
        try:
            report = store.verify_audit(anchor=anchor)
        except StoreError as exc:
            die(str(exc))
    if args.json:
        print(
            json.dumps(
                {
                    "ok": report.ok,
                    "checked": report.checked,
                    "head_seq": report.head_seq,
                    "head_hash": report.head_hash,
                    "first_bad_seq": report.first_bad_seq,
                    "problem": report.problem,
                },
                indent=2,
            )
        )
    elif report.ok:
        print(f"audit log OK: {report.checked} entries, head {report.head_seq}:{report.head_hash}")
    else:
        print(
            f"audit log BROKEN at seq {report.first_bad_seq}: {report.problem}",
            file=sys.stderr,
        )
    return 0 if report.ok else EX_DATAERR


def _export(args: argparse.Namespace) -> int:
    since = iso_datetime(args.since, "--since")
    until = iso_datetime(args.until, "--until") if args.until else None
    if until is not None and until <= since:
        die("--until must be after --since", EX_USAGE)
    with open_configured_store(args) as store:
        try:
            report = breach_report(store, since, until, now=datetime.now(UTC))
        except StoreError as exc:
            die(str(exc))
    text = report_csv(report) if args.format == "csv" else json.dumps(report, indent=2) + "\n"
    if args.output:
        try:
            fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.fchmod(fd, 0o600)  # an existing file keeps its mode otherwise: patient data
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
                f.write(text)
        except OSError as exc:
            die(f"{args.output}: {exc.strerror or exc}")
        print(
            f"sendguard: {len(report['holds'])} hold(s) written to {args.output}", file=sys.stderr
        )
    else:
        sys.stdout.write(text)
    if not report["audit_chain"]["ok"]:
        print(
            "sendguard: warning: the audit log does not verify "
            f"(first bad seq {report['audit_chain']['first_bad_seq']})",
            file=sys.stderr,
        )
    return 0
