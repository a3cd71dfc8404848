"""`sendguard held list|show`: what the relay is holding, and why.

    sendguard held list -c sendguard.toml [--status held] [--since 2026-11-01] [--json]
    sendguard held show HOLD_ID -c sendguard.toml [--json | --raw]

Reads the quarantine named by `[store] url` (it never creates one). `show
--raw` writes the held message's bytes exactly as they were received.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from email import policy
from email.parser import BytesHeaderParser
from typing import Any

from sendguard.cli._common import EX_USAGE, die
from sendguard.config import ConfigError, load_config
from sendguard.store import HeldMessage, HoldStatus, HoldSummary, Store, StoreError, open_store

__all__ = ["register"]

EX_NOTFOUND = 1
_SHOWN_HEADERS = ("From", "To", "Cc", "Date", "Message-ID")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    h = sub.add_parser("held", help="list and show messages held by the relay")
    cmds = h.add_subparsers(dest="action", required=True, metavar="ACTION")

    ls = cmds.add_parser("list", help="held messages, newest first")
    _config_option(ls)
    ls.add_argument(
        "--status",
        choices=[s.value for s in HoldStatus],
        help="only holds in this state (default: all)",
    )
    ls.add_argument("--since", metavar="DATE", help="only holds since this ISO date or time (UTC)")
    ls.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=_list)

    show = cmds.add_parser("show", help="one held message: envelope, findings, headers")
    show.add_argument("hold_id", metavar="HOLD_ID")
    _config_option(show)
    out = show.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON (without the message)")
    out.add_argument("--raw", action="store_true", help="write the message bytes as received")
    show.set_defaults(func=_show)


def _config_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="configuration file naming the quarantine ([store] url)",
    )


def _open(args: argparse.Namespace) -> Store:
    try:
        cfg = load_config(getattr(args, "config", None))
        return open_store(cfg.store.url, create=False)
    except (ConfigError, StoreError) as exc:
        die(str(exc))


def _list(args: argparse.Namespace) -> int:
    since = None
    if args.since:
        try:
            since = datetime.fromisoformat(args.since)
        except ValueError:
            die(f"--since: not an ISO date or time: {args.since!r}", EX_USAGE)
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
    with _open(args) as store:
        try:
            holds = store.list(
                status=HoldStatus(args.status) if args.status else None,
                since=since,
                limit=args.limit,
            )
            total = store.count(status=HoldStatus(args.status) if args.status else None)
        except StoreError as exc:
            die(str(exc))
    if args.json:
        print(json.dumps([_summary_json(h) for h in holds], indent=2))
        return 0
    if not holds:
        print("nothing held")
        return 0
    print(f"{'HOLD ID':<13} {'RECEIVED (UTC)':<19} {'STATUS':<9} {'RCPT':>4}  {'NOTIFIED':<8}  WHY")
    for h in holds:
        print(
            f"{h.hold_id:<13} {h.created_at:%Y-%m-%d %H:%M:%S} {h.status.value:<9} "
            f"{len(h.held_recipients):>4}  {h.notify_status.value:<8}  {', '.join(h.codes)}"
        )
    if total > len(holds):
        print(f"({len(holds)} of {total} shown; --limit shows more)")
    return 0


def _show(args: argparse.Namespace) -> int:
    with _open(args) as store:
        try:
            held = store.get(args.hold_id)
        except StoreError as exc:
            die(str(exc))
    if held is None:
        print(f"sendguard: no hold with id {args.hold_id!r}", file=sys.stderr)
        return EX_NOTFOUND
    if args.raw:
        sys.stdout.buffer.write(held.message)
        sys.stdout.buffer.flush()
        return 0
    if args.json:
        print(json.dumps(_held_json(held), indent=2))
        return 0
    env = held.envelope
    print(f"hold:        {held.hold_id} ({held.status.value})")
    print(f"received:    {held.created_at:%Y-%m-%d %H:%M:%S} UTC from {env.peer or '?'}")
    print(f"sender:      {env.mail_from or '<>'}")
    held_set = set(held.held_recipients)
    for i, r in enumerate(env.recipients):
        label = "recipients:" if i == 0 else ""
        print(f"{label:<12} {r} ({'held' if r in held_set else 'forwarded'})")
    print(f"size:        {held.size} bytes, sha256 {held.sha256[:16]}...")
    note = f" ({held.notify_error})" if held.notify_error else ""
    print(f"notified:    {held.notify_status.value}, {held.notify_attempts} attempt(s){note}")
    print(f"verdict:     {held.verdict.action.value}")
    for f in held.verdict.findings:
        tag = " (monitor only)" if f.monitor else ""
        who = f" {f.recipient}:" if f.recipient else ""
        print(f"  - {f.code} [{f.severity.value}] {f.action.value}{tag}, rule {f.rule}:{who}")
        print(f"      {f.message}")
        if f.suggestion:
            print(f"      suggestion: {f.suggestion}")
    headers = BytesHeaderParser(policy=policy.default).parsebytes(held.message)
    print("headers:")
    for name in _SHOWN_HEADERS:
        for value in headers.get_all(name) or []:
            print(f"  {name}: {value}")
    return 0


def _summary_json(h: HoldSummary) -> dict[str, Any]:
    return {
        "hold_id": h.hold_id,
        "status": h.status.value,
        "created_at": h.created_at.isoformat(),
        "mail_from": h.mail_from,
        "held_recipients": list(h.held_recipients),
        "message_id": h.message_id,
        "size": h.size,
        "action": h.action,
        "codes": list(h.codes),
        "notify_status": h.notify_status.value,
    }


def _held_json(h: HeldMessage) -> dict[str, Any]:
    return {
        "hold_id": h.hold_id,
        "status": h.status.value,
        "created_at": h.created_at.isoformat(),
        "envelope": {
            "mail_from": h.envelope.mail_from,
            "recipients": list(h.envelope.recipients),
            "mail_options": list(h.envelope.mail_options),
            "peer": h.envelope.peer,
            "helo": h.envelope.helo,
        },
        "held_recipients": list(h.held_recipients),
        "message_id": h.message_id,
        "size": h.size,
        "sha256": h.sha256,
        "verdict": json.loads(h.verdict.model_dump_json()),
        "notification": {
            "status": h.notify_status.value,
            "attempts": h.notify_attempts,
            "next_at": h.notify_next_at.isoformat() if h.notify_next_at else None,
            "error": h.notify_error,
            "sent_at": h.notified_at.isoformat() if h.notified_at else None,
        },
    }
