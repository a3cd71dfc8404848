"""Helpers shared by the CLI commands: loading a Guard, printing verdicts."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import NoReturn

from sendguard.config import Config, ConfigError, load_config
from sendguard.core.directory import DirectoryError
from sendguard.core.directory.snapshot import SnapshotError
from sendguard.core.models import Action, Verdict
from sendguard.core.rules import RulesError
from sendguard.guard import Guard
from sendguard.store import Store, StoreError, open_store

__all__ = [
    "EXIT",
    "add_source_options",
    "config_option",
    "die",
    "iso_datetime",
    "load_configured",
    "load_guard",
    "open_configured_store",
    "print_verdict",
]

EXIT = {Action.ALLOW: 0, Action.WARN: 1, Action.HOLD: 2, Action.REJECT: 3}
EX_USAGE, EX_DATAERR, EX_UNAVAILABLE, EX_SOFTWARE = 64, 65, 69, 70


def die(message: str, status: int = EX_DATAERR) -> NoReturn:
    print(f"sendguard: {message}", file=sys.stderr)
    sys.exit(status)


def config_option(p: argparse.ArgumentParser, what: str) -> None:
    """-c after the action too (`sendguard held list -c FILE`), as the README writes it."""
    p.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help=f"configuration file {what}",
    )


def iso_datetime(text: str, option: str) -> datetime:
    """An option's ISO date or time, UTC unless it says otherwise; exits 64 if unreadable."""
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        die(f"{option}: not an ISO date or time: {text!r}", EX_USAGE)
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def load_configured(args: argparse.Namespace) -> Config:
    """The configuration `-c` names (defaults without one); exits 65 saying why."""
    try:
        return load_config(getattr(args, "config", None))
    except ConfigError as exc:
        die(str(exc))


def open_configured_store(args: argparse.Namespace, *, create: bool = False) -> Store:
    """The quarantine the configuration names; exits 65 saying why if it cannot be opened.
    `create=False` for tools that only read or decide: they never start an empty one."""
    try:
        return open_store(load_configured(args).store.url, create=create)
    except StoreError as exc:
        die(str(exc))


def add_source_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-d",
        "--directory",
        action="append",
        metavar="PATH",
        help="directory file or folder (FHIR JSON/NDJSON, CSV); repeatable; "
        "default: the config file's",
    )
    p.add_argument(
        "--rules",
        action="append",
        metavar="PATH",
        help="default rules folder/file replacing the shipped rules; repeatable",
    )
    p.add_argument(
        "--local-rules",
        action="append",
        metavar="PATH",
        help="local rules merged over the defaults; repeatable",
    )


def load_guard(args: argparse.Namespace) -> Guard:
    """A Guard from --config and the source options; exits 65 on bad input."""
    try:
        guard = Guard.load(
            getattr(args, "config", None),
            directory=args.directory,
            rules=args.rules,
            local_rules=args.local_rules or (),
        )
    except (DirectoryError, RulesError, ConfigError, SnapshotError) as exc:
        die(str(exc))
    if not len(guard.directory):
        print("sendguard: warning: the directory is empty", file=sys.stderr)
    return guard


def print_verdict(v: Verdict, *, as_json: bool) -> int:
    if as_json:
        print(v.model_dump_json(indent=2))
        return EXIT[v.action]
    print(f"{v.action.value.upper()} ({v.channel.value})")
    if len(v.recipients) > 1:
        for r, a in v.recipients.items():
            print(f"  {r}: {a.value}")
    for f in v.findings:
        tag = " (monitor only)" if f.monitor else ""
        who = f" {f.recipient}:" if f.recipient else ""
        print(
            f"  - {f.code} [{f.severity.value}] {f.action.value}{tag},"
            f" rule {f.rule}:{who} {f.message}"
        )
        if f.suggestion:
            print(f"      suggestion: {f.suggestion}")
    if not v.findings:
        print("  no findings")
    return EXIT[v.action]
