"""`sendguard api-token add|list|revoke`: tokens for the HTTP API.

    sendguard api-token add emis-web -c sendguard.toml          # role check
    sendguard api-token add ops --role admin -c sendguard.toml
    sendguard api-token list -c sendguard.toml
    sendguard api-token revoke emis-web -c sendguard.toml

The file (`[api] tokens_file`, or --file) keeps each token's SHA-256 only;
`add` prints the token once, on standard output, and it cannot be shown
again. A running `sendguard serve` sees additions and revocations at once.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sendguard.api.tokens import Role, TokenFileError, add_token, read_tokens, revoke_token
from sendguard.cli._common import config_option, die, load_configured

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    # -c and --file work before or after the action (`api-token add NAME -c FILE`)
    common = argparse.ArgumentParser(add_help=False)
    config_option(common, "whose [api] tokens_file is used")
    common.add_argument(
        "--file",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="the tokens file (default: [api] tokens_file)",
    )
    p = sub.add_parser(
        "api-token",
        parents=[common],
        help="add, list and revoke the HTTP API's tokens (stored hashed)",
        description="Manage the tokens practice systems use with `sendguard serve`.",
    )
    cmds = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = cmds.add_parser("add", parents=[common], help="add a token and print it (once)")
    add.add_argument("name", help="who uses it, e.g. the practice system: emis-web")
    add.add_argument(
        "--role",
        choices=[r.value for r in Role],
        default=Role.CHECK.value,
        help="check: the check endpoints; reviewer: also list and decide holds (/v1/held); "
        "admin: also reload (default check)",
    )
    add.set_defaults(func=_add)
    ls = cmds.add_parser(
        "list", parents=[common], help="list tokens: name, role, created, hash prefix"
    )
    ls.set_defaults(func=_list)
    rv = cmds.add_parser(
        "revoke", parents=[common], help="remove a token; it stops working at once"
    )
    rv.add_argument("name")
    rv.set_defaults(func=_revoke)


def _path(args: argparse.Namespace) -> Path:
    if getattr(args, "file", None):
        return Path(args.file)
    return load_configured(args).api.tokens_file


def _add(args: argparse.Namespace) -> int:
    path = _path(args)
    try:
        token = add_token(path, args.name, Role(args.role))
    except (TokenFileError, OSError) as exc:
        die(str(exc))
    print(token)
    print(
        f"sendguard: token {args.name!r} ({args.role}) added to {path}; this is the only time "
        "it is shown: give it to the system that uses it (Authorization: Bearer <token>)",
        file=sys.stderr,
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    path = _path(args)
    try:
        tokens = read_tokens(path)
    except TokenFileError as exc:
        die(str(exc))
    if not tokens:
        print(f"no tokens in {path}", file=sys.stderr)
        return 0
    width = max(len(t.name) for t in tokens)
    print(f"{'name':{width}}  role   created               sha256")
    for t in tokens:
        print(f"{t.name:{width}}  {t.role.value:5}  {t.created:20}  {t.sha256[:12]}…")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    path = _path(args)
    try:
        found = revoke_token(path, args.name)
    except (TokenFileError, OSError) as exc:
        die(str(exc))
    if not found:
        die(f"no token named {args.name!r} in {path}", 1)
    print(f"sendguard: token {args.name!r} revoked", file=sys.stderr)
    return 0
