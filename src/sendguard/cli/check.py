"""`sendguard check email|fax|letter`: one verdict, for people and scripts."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sendguard.cli._common import EX_USAGE, add_source_options, die, load_guard, print_verdict

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = sub.add_parser("check", help="check one email, fax or letter")
    kinds = check.add_subparsers(dest="kind", required=True, metavar="KIND")

    email = kinds.add_parser("email", help="check email recipients, or a whole .eml message")
    email.add_argument(
        "--to",
        action="append",
        default=[],
        metavar="ADDR",
        help='recipient, e.g. "Jane Smith <jane@example.org>"; repeatable',
    )
    email.add_argument("--cc", action="append", default=[], metavar="ADDR")
    email.add_argument("--bcc", action="append", default=[], metavar="ADDR")
    email.add_argument("--from", dest="sender", default="", metavar="ADDR")
    email.add_argument(
        "--patient",
        action="append",
        metavar="REF",
        help="NHS number or directory id of the patient it concerns; repeatable",
    )
    email.add_argument("--subject", default="")
    email.add_argument("--body", default="", help="message text ('-' reads standard input)")
    email.add_argument(
        "--attachment",
        action="append",
        default=[],
        metavar="NAME",
        help="attachment file name; repeatable",
    )
    email.add_argument(
        "--eml",
        type=Path,
        metavar="FILE",
        help="check a whole RFC 5322 message instead (recipients from its headers)",
    )
    _common(email)
    email.set_defaults(func=_email)

    fax = kinds.add_parser("fax", help="check a fax number before dialling")
    fax.add_argument("number")
    fax.add_argument(
        "--intended", metavar="REF", help="directory id or ODS code of the intended contact"
    )
    fax.add_argument("--patient", action="append", metavar="REF")
    _common(fax)
    fax.set_defaults(func=_fax)

    letter = kinds.add_parser("letter", help="check a letter's addressee and address")
    letter.add_argument("--addressee", required=True)
    letter.add_argument(
        "--address", required=True, help="the postal address; lines separated by newlines or commas"
    )
    letter.add_argument("--patient", action="append", metavar="REF")
    letter.add_argument("--intended", metavar="REF")
    _common(letter)
    letter.set_defaults(func=_letter)


def _common(p: argparse.ArgumentParser) -> None:
    add_source_options(p)
    p.add_argument("--json", action="store_true", help="print the verdict JSON")


def _email(args: argparse.Namespace) -> int:
    guard = load_guard(args)
    if args.eml:
        try:
            raw = args.eml.read_bytes()
        except OSError as exc:
            die(f"{args.eml}: {exc.strerror or exc}")
        return print_verdict(guard.check_message(raw, sender=args.sender), as_json=args.json)
    recipients = (
        [f"To: {a}" for a in args.to]
        + [f"Cc: {a}" for a in args.cc]
        + [f"Bcc: {a}" for a in args.bcc]
    )
    if not recipients:
        die("give at least one of --to, --cc, --bcc (or --eml)", EX_USAGE)
    body = sys.stdin.read() if args.body == "-" else args.body
    v = guard.check_email(
        recipients,
        sender=args.sender,
        patient=args.patient,
        subject=args.subject,
        body=body,
        attachments=args.attachment,
    )
    return print_verdict(v, as_json=args.json)


def _fax(args: argparse.Namespace) -> int:
    guard = load_guard(args)
    v = guard.check_fax(args.number, intended=args.intended, patient=args.patient)
    return print_verdict(v, as_json=args.json)


def _letter(args: argparse.Namespace) -> int:
    guard = load_guard(args)
    address = args.address.replace("\\n", "\n")
    v = guard.check_letter(
        addressee=args.addressee, address=address, patient=args.patient, intended=args.intended
    )
    return print_verdict(v, as_json=args.json)
