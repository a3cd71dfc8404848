"""`sendguard users add|passwd|disable|enable|list`: who may sign in to review.

    sendguard users add rita --role reviewer -c sendguard.toml     # password asked twice
    sendguard users passwd rita -c sendguard.toml
    sendguard users disable rita -c sendguard.toml
    sendguard users list -c sendguard.toml [--json]

Users live in the quarantine's store (every node sees the same ones), with
argon2id password hashes (review/passwords.py, shared with the web UI).
Roles: `sender` (sees and decides their own holds, never a reviewer-only
one), `reviewer` (every hold), `admin` (also users). A password is read
from the terminal, or from the first line of standard input when it is not
a terminal (`--password-stdin` for scripts). Every change is audited.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from sendguard.cli._common import EX_USAGE, config_option, die, open_configured_store
from sendguard.review.passwords import PasswordPolicyError, check_policy, hash_password
from sendguard.store import StoreError
from sendguard.store.base import Conflict, Role

__all__ = ["register"]

EX_NOUSER = 1


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("users", help="add, change, disable and list review users")
    cmds = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = cmds.add_parser("add", help="add a user (password asked for)")
    add.add_argument("username")
    add.add_argument(
        "--role",
        choices=[r.value for r in Role],
        required=True,
        help="sender: own holds only; reviewer: every hold; admin: also users",
    )
    _common(add)
    add.set_defaults(func=_add)
    pw = cmds.add_parser("passwd", help="set a user's password")
    pw.add_argument("username")
    _common(pw)
    pw.set_defaults(func=_passwd)
    for name, helptext in (
        ("disable", "stop a user signing in or deciding"),
        ("enable", "let a disabled user back in"),
    ):
        d = cmds.add_parser(name, help=helptext)
        d.add_argument("username")
        _common(d, password=False)
        d.set_defaults(func=_disable, disabled=name == "disable")
    ls = cmds.add_parser("list", help="users, roles, disabled or not")
    _common(ls, password=False)
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=_list)


def _common(p: argparse.ArgumentParser, *, password: bool = True) -> None:
    config_option(p, "naming the store ([store] url)")
    if password:
        p.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from the first line of standard input",
        )


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin or not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            die("the passwords differ", EX_USAGE)
    try:
        check_policy(password)
    except PasswordPolicyError as exc:
        die(str(exc), EX_USAGE)
    return password


def _valid_name(name: str) -> str:
    if not name or len(name) > 100 or any(c.isspace() or c in ":/" for c in name):
        die(f"not a usable user name: {name!r} (no spaces, ':' or '/')", EX_USAGE)
    return name


def _add(args: argparse.Namespace) -> int:
    name = _valid_name(args.username)
    password = _password(args)
    with open_configured_store(args, create=True) as store:
        try:
            store.add_user(name, Role(args.role), hash_password(password), actor=_actor())
        except Conflict:
            die(f"there is already a user {name!r}")
        except StoreError as exc:
            die(str(exc))
    print(f"sendguard: added {name} ({args.role})", file=sys.stderr)
    return 0


def _passwd(args: argparse.Namespace) -> int:
    password = _password(args)
    with open_configured_store(args, create=True) as store:
        try:
            ok = store.set_password(args.username, hash_password(password), actor=_actor())
        except StoreError as exc:
            die(str(exc))
    if not ok:
        print(f"sendguard: no user {args.username!r}", file=sys.stderr)
        return EX_NOUSER
    print(f"sendguard: password changed for {args.username}", file=sys.stderr)
    return 0


def _disable(args: argparse.Namespace) -> int:
    with open_configured_store(args, create=True) as store:
        try:
            ok = store.disable_user(args.username, actor=_actor(), disabled=args.disabled)
        except StoreError as exc:
            die(str(exc))
    if not ok:
        print(f"sendguard: no user {args.username!r}", file=sys.stderr)
        return EX_NOUSER
    state = "disabled" if args.disabled else "enabled"
    print(f"sendguard: {args.username} {state}", file=sys.stderr)
    return 0


def _list(args: argparse.Namespace) -> int:
    with open_configured_store(args, create=True) as store:
        try:
            users = store.list_users()
        except StoreError as exc:
            die(str(exc))
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "username": u.username,
                        "role": u.role.value,
                        "disabled": u.disabled,
                        "created_at": u.created_at.isoformat(),
                        "updated_at": u.updated_at.isoformat(),
                    }
                    for u in users
                ],
                indent=2,
            )
        )
        return 0
    if not users:
        print("no users (sendguard users add NAME --role admin)")
        return 0
    print(f"{'USER':<24} {'ROLE':<9} {'STATE':<8} CREATED (UTC)")
    for u in users:
        state = "disabled" if u.disabled else "active"
        print(f"{u.username:<24} {u.role.value:<9} {state:<8} {u.created_at:%Y-%m-%d %H:%M}")
    return 0
