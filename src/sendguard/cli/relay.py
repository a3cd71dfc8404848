"""`sendguard relay`: run the SMTP relay (see docs/relay.md).

    sendguard relay --config /etc/sendguard/sendguard.toml
    sendguard relay --config sendguard.toml --check-config
    sendguard relay --hash-password alice < password.txt  >> users.txt

Runs in the foreground until SIGTERM or SIGINT (messages in flight finish
first); SIGHUP reloads the directory, rules and AUTH users. Logs go to
standard error and carry ids, codes and counts, never addresses or names.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys

from sendguard.cli._common import EX_DATAERR, EX_UNAVAILABLE, die
from sendguard.config import Config, ConfigError, load_config
from sendguard.relay.access import hash_password
from sendguard.relay.server import Relay, RelayStartError

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "relay",
        help="run the SMTP relay that checks outbound mail (forward, hold or reject)",
        description="Run the sendguard SMTP relay in the foreground. SIGHUP reloads the "
        "directory and rules; SIGTERM finishes messages in flight, then exits.",
    )
    p.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="configuration file (TOML); SENDGUARD_RELAY__KEY=value overrides a setting",
    )
    p.add_argument(
        "--check-config",
        action="store_true",
        help="validate the configuration, directory, rules and certificates, then exit",
    )
    p.add_argument(
        "--hash-password",
        metavar="USER",
        help="print a users-file line for USER (password read from standard input) and exit",
    )
    p.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="how much to log (default INFO)",
    )
    p.set_defaults(func=_relay)


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # aiosmtpd logs every SMTP command line (addresses included) at INFO
    logging.getLogger("mail.log").setLevel(logging.ERROR)


def _relay(args: argparse.Namespace) -> int:
    if args.hash_password:
        return _hash(args.hash_password)
    try:
        cfg = load_config(getattr(args, "config", None))
    except ConfigError as exc:
        die(str(exc))
    setup_logging(args.log_level)
    if args.check_config:
        return _check(cfg)
    try:
        asyncio.run(Relay(cfg).run())
    except RelayStartError as exc:
        die(str(exc), EX_UNAVAILABLE if "cannot listen" in str(exc) else EX_DATAERR)
    return 0


def _check(cfg: Config) -> int:
    """Start everything but the listener, then stop: proves the config loads."""

    async def probe() -> None:
        relay = Relay(cfg)
        cfg.relay.listen = "127.0.0.1:0"  # never take the real port from a running relay
        await relay.start()
        await relay.stop(timeout=0)

    try:
        asyncio.run(probe())
    except RelayStartError as exc:
        die(str(exc))
    print("sendguard: configuration OK")
    return 0


def _hash(user: str) -> int:
    if ":" in user or not user.strip():
        die("a user name cannot be empty or contain ':'")
    if sys.stdin.isatty():
        password = getpass.getpass(f"password for {user}: ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        die("empty password")
    print(f"{user}:{hash_password(password)}")
    return 0
