"""`sendguard serve`: run the HTTP check API (and optionally the relay).

    sendguard serve --config /etc/sendguard/sendguard.toml
    sendguard serve -c sendguard.toml --listen 127.0.0.1:8025 --with-relay

Runs in the foreground until SIGTERM or SIGINT (requests in flight finish
first); SIGHUP reloads the directory and rules. Logs are JSON lines on
standard error with ids, codes, counts and timings, never addresses, names,
NHS numbers, postal addresses or fax numbers.
"""

from __future__ import annotations

import argparse
import asyncio

from sendguard.cli._common import EX_DATAERR, EX_UNAVAILABLE, config_option, die, load_configured
from sendguard.config import parse_host_port

__all__ = ["register"]


def _listen(text: str) -> str:
    try:
        parse_host_port(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "serve",
        help="run the HTTP check API for practice systems (POST /v1/check/email|fax|letter)",
        description="Run the sendguard HTTP API in the foreground: token-authenticated checks, "
        "/healthz, /metrics and an admin reload. SIGHUP reloads the directory and rules; "
        "SIGTERM finishes requests in flight, then exits.",
    )
    config_option(p, "(TOML); SENDGUARD_API__KEY=value overrides a setting")
    p.add_argument(
        "--listen",
        type=_listen,
        metavar="HOST:PORT",
        help="address to listen on (default: [api] listen, 127.0.0.1:8025)",
    )
    p.add_argument(
        "--with-relay",
        action="store_true",
        default=None,
        help="also run the SMTP relay in this process, on the same directory ([api] relay)",
    )
    p.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="how much to log (default INFO)",
    )
    p.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    from sendguard.api.logs import setup_json_logging
    from sendguard.api.server import ApiServer, ServeError

    cfg = load_configured(args)
    setup_json_logging(args.log_level)
    try:
        asyncio.run(ApiServer(cfg, listen=args.listen, relay=args.with_relay).run())
    except ServeError as exc:
        die(str(exc), EX_UNAVAILABLE if exc.unavailable else EX_DATAERR)
    return 0
