"""The `sendguard` command.

Each command group lives in its own module with a `register(subparsers)`
function; `COMMANDS` lists them. Exit status: 0 allow, 1 warn, 2 hold,
3 reject for checks; 64 bad usage, 65 bad data (directory, rules, config),
69 a service unavailable, 70 an internal error.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["COMMANDS", "main"]

COMMANDS = (
    "sendguard.cli.check",
    "sendguard.cli.directory",
    "sendguard.cli.rules",
    "sendguard.cli.relay",
    "sendguard.cli.held",
    "sendguard.cli.serve",
    "sendguard.cli.apitoken",
    "sendguard.cli.audit",
    "sendguard.cli.users",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sendguard",
        description="Stop patient data going to the wrong recipient.",
    )
    parser.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help="configuration file (TOML); default: none, use the options given",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
