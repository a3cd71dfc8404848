"""`sendguard rules lint|test|checks`: validate rule files and explain verdicts."""

from __future__ import annotations

import argparse
from pathlib import Path

from sendguard.cli._common import EXIT, add_source_options, die, load_guard, print_verdict
from sendguard.config import ConfigError, load_config
from sendguard.core.checks import CHECKS
from sendguard.core.engine import Trace
from sendguard.core.models import FaxSend, LetterSend, Send
from sendguard.core.rules import RulesError
from sendguard.sources import load_rules

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    r = sub.add_parser("rules", help="validate rules and explain which fired")
    cmds = r.add_subparsers(dest="action", required=True, metavar="ACTION")

    lint = cmds.add_parser("lint", help="validate the merged rule set without applying it")
    lint.add_argument("--rules", action="append", metavar="PATH")
    lint.add_argument("--local-rules", action="append", metavar="PATH")
    lint.set_defaults(func=_lint)

    checks = cmds.add_parser("checks", help="list the checks rules can use, with codes and params")
    checks.set_defaults(func=_checks)

    test = cmds.add_parser("test", help="run the rules on one send and say which fired and why")
    what = test.add_mutually_exclusive_group(required=True)
    what.add_argument("--eml", type=Path, metavar="FILE", help="an RFC 5322 message")
    what.add_argument("--fax", metavar="NUMBER")
    what.add_argument("--letter", metavar="ADDRESS", help="postal address (use with --addressee)")
    test.add_argument("--addressee", default="")
    test.add_argument("--intended", metavar="REF")
    test.add_argument("--patient", action="append", default=[], metavar="REF")
    test.add_argument("--from", dest="sender", default="")
    test.add_argument("--json", action="store_true")
    add_source_options(test)
    test.set_defaults(func=_test)


def _lint(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        die(str(exc))
    defaults = args.rules or cfg.rules.defaults
    local = args.local_rules or cfg.rules.local
    if not local:
        from sendguard.guard import _default_local_rules

        local = list(_default_local_rules())
    try:
        rs = load_rules(defaults, local)
    except RulesError as exc:
        die(str(exc))
    print(f"{len(rs.rules)} rules OK from {len(rs.files)} file(s)")
    for cr in rs.rules:
        r = cr.rule
        state = "disabled" if not r.enabled else "monitor only" if r.monitor else r.action.value
        extra = (
            " (" + ", ".join(f"{k}: {a.value}" for k, a in r.actions.items()) + ")"
            if r.actions
            else ""
        )
        print(f"  {r.name:28} {r.check:26} {state}{extra}")
    return 0


def _checks(args: argparse.Namespace) -> int:
    for name, spec in sorted(CHECKS.items()):
        channel = spec.channel.value if spec.channel else "any"
        print(f"{name} ({channel}): {spec.description}")
        print(f"    codes:  {', '.join(spec.codes)}")
        fields = spec.params.model_fields
        if fields:
            print("    params: " + ", ".join(f"{k}={_show(v.default)}" for k, v in fields.items()))
    return 0


def _show(value: object) -> str:
    if isinstance(value, tuple) and len(value) > 3:
        return f"({len(value)} built-in values)"
    return repr(value)


def _test(args: argparse.Namespace) -> int:
    guard = load_guard(args)
    send: Send
    if args.eml:
        try:
            raw = args.eml.read_bytes()
        except OSError as exc:
            die(f"{args.eml}: {exc.strerror or exc}")
        send, _ = guard.email_send(raw, sender=args.sender)
        if args.patient:
            from dataclasses import replace

            send = replace(send, patients=(*send.patients, *args.patient))
    elif args.fax:
        send = FaxSend(
            number=args.fax,
            intended=args.intended,
            patients=tuple(args.patient),
            sender=args.sender,
        )
    else:
        send = LetterSend(
            addressee=args.addressee,
            address=args.letter.replace("\\n", "\n"),
            intended=args.intended,
            patients=tuple(args.patient),
            sender=args.sender,
        )
    trace = Trace()
    verdict = guard.check(send, trace)
    if args.json:
        return print_verdict(verdict, as_json=True)
    for o in trace.outcomes:
        print(f"{o.status:12} {o.rule} ({o.check})")
        for f in o.findings:
            tag = " [monitor only]" if f.monitor else ""
            print(f"{'':12}   {f.code} -> {f.action.value}{tag}: {f.message}")
    print()
    print_verdict(verdict, as_json=False)
    return EXIT[verdict.action]
