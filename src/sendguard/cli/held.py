"""`sendguard held list|show|release|cancel`: what is held, why, and deciding.

    sendguard held list -c sendguard.toml [--status pending] [--kind fax] [--since DATE] [--json]
    sendguard held show HOLD_ID -c sendguard.toml [--json | --raw]
    sendguard held release HOLD_ID --as rita --reason confirmed-correct -c sendguard.toml
    sendguard held cancel HOLD_ID --as rita --reason wrong-recipient -c sendguard.toml

Reads the quarantine named by `[store] url` (it never creates one). `show
--raw` writes the held message's bytes exactly as they were received.

`release` and `cancel` decide through the same `ReviewService` as the web
UI and the sender's links: `--as` names a review user (`sendguard users`),
whose role says whether they may release a reviewer-only hold, and who is
named in the audit log; `--reason` is one of the `[web]` reason codes. A
release is sent to `[relay] next_hop` at once; if the next hop cannot take
it now, the hold is `pending` and the relay's background job retries it.
Exit status: 0 done, 1 no such hold, 3 not done (refused, too late, or
refused by the next hop: the message says why), 77 unknown or disabled user.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime
from email import policy
from email.parser import BytesHeaderParser
from typing import Any

from sendguard.cli._common import (
    EX_USAGE,
    config_option,
    die,
    iso_datetime,
    load_configured,
    open_configured_store,
)
from sendguard.config import Config
from sendguard.relay.forward import NextHop
from sendguard.review.secret import SecretError
from sendguard.review.service import Outcome, ReviewService
from sendguard.store import HeldMessage, HoldStatus, HoldSummary, Store, StoreError, open_store
from sendguard.store.base import HoldKind, HoldNotFound, Role

__all__ = ["register"]

EX_NOTFOUND = 1
EX_NOTDONE = 3
EX_NOPERM = 77
_SHOWN_HEADERS = ("From", "To", "Cc", "Date", "Message-ID")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    h = sub.add_parser("held", help="list and show messages held by the relay")
    cmds = h.add_subparsers(dest="action", required=True, metavar="ACTION")

    ls = cmds.add_parser("list", help="held messages, newest first")
    config_option(ls, "naming the quarantine ([store] url)")
    ls.add_argument(
        "--status",
        choices=[s.value for s in HoldStatus],
        help="only holds in this state (default: all): held, pending (released, "
        "delivery retried), releasing, released, failed (the next hop refused), "
        "cancelled, recalled, expired, escalated",
    )
    ls.add_argument(
        "--kind", choices=[k.value for k in HoldKind], help="only emails, faxes or letters"
    )
    ls.add_argument("--since", metavar="DATE", help="only holds since this ISO date or time (UTC)")
    ls.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=_list)

    show = cmds.add_parser("show", help="one held message: envelope, findings, headers")
    show.add_argument("hold_id", metavar="HOLD_ID")
    config_option(show, "naming the quarantine ([store] url)")
    out = show.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON (without the message)")
    out.add_argument("--raw", action="store_true", help="write the message bytes as received")
    show.set_defaults(func=_show)

    for name, verb, func in (
        ("release", "send a held message on (email) or record the release (fax, letter)", _release),
        ("cancel", "cancel a hold: it is never sent, and purged after [review] retention", _cancel),
    ):
        p = cmds.add_parser(name, help=verb)
        p.add_argument("hold_id", metavar="HOLD_ID")
        config_option(p, "naming the quarantine ([store] url)")
        p.add_argument(
            "--as",
            dest="user",
            metavar="USER",
            required=True,
            help="the review user deciding (sendguard users list); named in the audit log",
        )
        p.add_argument(
            "--reason",
            metavar="CODE",
            required=True,
            help="why, as one of the [web] release_reasons / cancel_reasons codes",
        )
        p.add_argument("--json", action="store_true", help="print the outcome as JSON")
        p.set_defaults(func=func)


def _release(args: argparse.Namespace) -> int:
    cfg = load_configured(args)
    _check_reason(args.reason, cfg.web.release_reasons, "release")
    return _decide(args, cfg, "release")


def _cancel(args: argparse.Namespace) -> int:
    cfg = load_configured(args)
    _check_reason(args.reason, cfg.web.cancel_reasons, "cancel")
    return _decide(args, cfg, "cancel")


def _check_reason(code: str, allowed: list[str], what: str) -> None:
    if code not in allowed:
        die(
            f"--reason: {code!r} is not a {what} reason; use one of {', '.join(allowed)} "
            f"([web] {what}_reasons)",
            EX_USAGE,
        )


def _decide(args: argparse.Namespace, cfg: Config, action: str) -> int:
    try:
        store = open_store(cfg.store.url, create=False)
    except StoreError as exc:
        die(str(exc))
    with store:
        try:
            user = store.get_user(args.user)
        except StoreError as exc:
            die(str(exc))
        if user is None or user.disabled:
            why = (
                "is disabled" if user is not None else "is not a review user (sendguard users add)"
            )
            print(f"sendguard: {args.user!r} {why}", file=sys.stderr)
            return EX_NOPERM
        reviewer = user.role in (Role.REVIEWER, Role.ADMIN)
        try:
            out = asyncio.run(_run_decision(cfg, store, action, args, reviewer))
        except HoldNotFound:
            print(f"sendguard: no hold with id {args.hold_id!r}", file=sys.stderr)
            return EX_NOTFOUND
        except (StoreError, SecretError) as exc:
            die(str(exc))
    if args.json:
        print(json.dumps(out.as_dict(), indent=2))
    else:
        print(f"{out.hold_id}: {out.status.value}: {out.message}")
        if out.reply:
            print(f"  next hop: {out.reply}")
    return 0 if out.done else EX_NOTDONE


async def _run_decision(
    cfg: Config, store: Store, action: str, args: argparse.Namespace, reviewer: bool
) -> Outcome:
    hop = NextHop.from_config(cfg.relay, connections=1)
    try:
        service = ReviewService.from_config(cfg, store, hop, node=f"cli:{args.user}")
        if action == "release":
            out = await service.release(
                args.hold_id, actor=args.user, reason=args.reason, reviewer=reviewer
            )
        else:
            out = await service.cancel(args.hold_id, actor=args.user, reason=args.reason)
        await service.deliver_callbacks()  # at once if it can; the relay's jobs retry
        return out
    finally:
        await hop.close()


def _list(args: argparse.Namespace) -> int:
    since = iso_datetime(args.since, "--since") if args.since else None
    with open_configured_store(args) as store:
        try:
            status = HoldStatus(args.status) if args.status else None
            kind = HoldKind(args.kind) if args.kind else None
            holds = store.list(status=status, since=since, limit=args.limit, kind=kind)
            total = store.count(status=status, kind=kind)
        except StoreError as exc:
            die(str(exc))
    if args.json:
        print(json.dumps([_summary_json(h) for h in holds], indent=2))
        return 0
    if not holds:
        print("nothing held")
        return 0
    print(
        f"{'HOLD ID':<13} {'RECEIVED (UTC)':<19} {'KIND':<6} {'STATUS':<9} {'RCPT':>4}  "
        f"{'NOTIFIED':<8}  {'REVIEW':<9} WHY"
    )
    for h in holds:
        print(
            f"{h.hold_id:<13} {h.created_at:%Y-%m-%d %H:%M:%S} {h.kind.value:<6} "
            f"{h.status.value:<9} {len(h.held_recipients):>4}  {h.notify_status.value:<8}  "
            f"{_review_flag(h):<9} {', '.join(h.codes)}"
        )
    if total > len(holds):
        print(f"({len(holds)} of {total} shown; --limit shows more)")
    return 0


def _review_flag(h: HoldSummary | HeldMessage) -> str:
    """`reviewer` (a reviewer must decide), `delayed` (delay-and-recall), or `-`."""
    if h.requires_reviewer:
        return "reviewer"
    return "delayed" if h.release_at is not None else "-"


def _show(args: argparse.Namespace) -> int:
    with open_configured_store(args) as store:
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
    if held.kind is not HoldKind.EMAIL:
        print(f"kind:        {held.kind.value} (held over HTTP)")
    for line in _review_lines(held):
        print(line)
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


def _when(dt: datetime | None) -> str:
    return f"{dt:%Y-%m-%d %H:%M:%S} UTC" if dt else "-"


def _review_lines(held: HeldMessage) -> list[str]:
    lines = []
    if held.requires_reviewer:
        lines.append("review:      a reviewer must decide")
    if held.release_at is not None:
        lines.append(f"review:      delay-and-recall, sent at {_when(held.release_at)}")
    if held.expires_at is not None:
        lines.append(f"expires:     {_when(held.expires_at)}")
    if held.decided_by:
        reason = f" ({held.reason})" if held.reason else ""
        lines.append(f"decided:     {_when(held.decided_at)} by {held.decided_by}{reason}")
    if held.release_attempts:
        lines.append(f"release:     {held.release_attempts} attempt(s)")
        if held.release_reply:
            lines.append(f"             next hop said: {held.release_reply}")
        if held.release_error and held.status is not HoldStatus.RELEASED:
            lines.append(f"             last error: {held.release_error}")
        if held.release_next_at:
            lines.append(f"             next attempt: {_when(held.release_next_at)}")
    if held.purged_at is not None:
        lines.append(f"purged:      {_when(held.purged_at)} (content deleted)")
    return lines


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def _review_json(h: HoldSummary | HeldMessage) -> dict[str, Any]:
    return {
        "kind": h.kind.value,
        "patients": list(h.patients),
        "requires_reviewer": h.requires_reviewer,
        "release_at": _iso(h.release_at),
        "expires_at": _iso(h.expires_at),
        "decided_by": h.decided_by,
        "decided_at": _iso(h.decided_at),
        "reason": h.reason,
        "release_attempts": h.release_attempts,
        "release_next_at": _iso(h.release_next_at),
    }


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
        **_review_json(h),
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
        **_review_json(h),
        "release_reply": h.release_reply,
        "release_error": h.release_error,
        "released_at": _iso(h.released_at),
        "purged_at": _iso(h.purged_at),
    }
