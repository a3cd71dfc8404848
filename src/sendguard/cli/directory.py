"""`sendguard directory import|stats|reload`: validate sources, show what
loaded, and ask a running `sendguard serve` to load them again."""

from __future__ import annotations

import argparse
import json
import os
import time
import urllib.error
import urllib.request
from datetime import date

from sendguard.cli._common import EX_UNAVAILABLE, EX_USAGE, config_option, die, load_configured
from sendguard.config import ConfigError, load_config
from sendguard.core.directory import Directory, DirectoryError
from sendguard.sources import fingerprint, load_directory, load_or_build, save_snapshot

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    d = sub.add_parser("directory", help="import and inspect the patient and contact directory")
    cmds = d.add_subparsers(dest="action", required=True, metavar="ACTION")
    imp = cmds.add_parser(
        "import",
        help="read and validate directory files (FHIR JSON/NDJSON, CSV); "
        "all or nothing, every problem reported",
    )
    imp.add_argument("paths", nargs="+", metavar="PATH")
    config_option(imp, "whose [directory] is used")
    imp.add_argument(
        "--as-of",
        type=date.fromisoformat,
        metavar="YYYY-MM-DD",
        help="date that decides which addresses and numbers have ended (default today)",
    )
    imp.add_argument("--warnings", action="store_true", help="list every warning")
    imp.add_argument(
        "--snapshot",
        metavar="FILE",
        help="write the compiled directory here (default: the config's "
        "[directory] snapshot); written only if every file is valid",
    )
    imp.set_defaults(func=_import)
    st = cmds.add_parser("stats", help="counts and sizes of the configured (or given) directory")
    st.add_argument("paths", nargs="*", metavar="PATH")
    config_option(st, "whose [directory] is used")
    st.set_defaults(func=_stats)
    rl = cmds.add_parser(
        "reload",
        help="make a running sendguard serve load the directory and rules again "
        "(POST /v1/admin/reload); for a relay alone, send it SIGHUP",
    )
    config_option(rl, "whose [directory] is used")
    rl.add_argument(
        "--url",
        help="the server's base URL (default: http:// and the config's [api] listen)",
    )
    rl.add_argument(
        "--token-env",
        default="SENDGUARD_ADMIN_TOKEN",
        metavar="NAME",
        help="environment variable holding an admin API token (default SENDGUARD_ADMIN_TOKEN)",
    )
    rl.add_argument("--timeout", type=float, default=600.0, help="seconds to wait (default 600)")
    rl.set_defaults(func=_reload)


def _load(
    paths: list[str], config: str | None, as_of: date | None = None
) -> tuple[Directory, float]:
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        die(str(exc))
    sources = paths or [str(p) for p in cfg.directory.sources]
    if not sources:
        die("no directory files: give paths or a --config with [directory] sources")
    t0 = time.perf_counter()
    try:
        d = load_directory(sources, as_of=as_of, region=cfg.directory.region)
    except DirectoryError as exc:
        die(str(exc))
    return d, time.perf_counter() - t0


def _print_stats(d: Directory, seconds: float) -> None:
    s = d.stats()
    kinds = ", ".join(f"{n} {k}" for k, n in s.by_kind.items() if n)
    print(f"entries:   {s.entries} ({kinds})")
    print(f"emails:    {s.emails} in {s.domains} domains")
    print(f"numbers:   {s.numbers}")
    print(f"addresses: {s.addresses}")
    print(
        f"memory:    {(s.index_bytes + s.record_bytes) / 1e6:.1f} MB "
        f"(records {s.record_bytes / 1e6:.1f} MB, indexes {s.index_bytes / 1e6:.1f} MB)"
    )
    print(f"loaded in: {seconds:.2f} s")
    print(f"warnings:  {s.warnings}")


def _import(args: argparse.Namespace) -> int:
    d, seconds = _load(args.paths, args.config, args.as_of)
    _print_stats(d, seconds)
    snapshot = args.snapshot or (
        load_config(args.config).directory.snapshot if args.config else None
    )
    if snapshot:
        region = load_config(args.config).directory.region
        try:
            save_snapshot(d, snapshot, {"source": fingerprint(args.paths, region)})
        except OSError as exc:
            die(f"{snapshot}: {exc.strerror or exc}", 73)
        print(f"snapshot:  {snapshot}")
    shown = d.warnings if args.warnings else d.warnings[:10]
    for w in shown:
        print(f"  warning: {w}")
    if len(d.warnings) > len(shown):
        print(f"  ... {len(d.warnings) - len(shown)} more (--warnings lists them all)")
    return 0


def _stats(args: argparse.Namespace) -> int:
    cfg = load_configured(args)
    snapshot = cfg.directory.snapshot
    if args.paths or snapshot is None:
        d, seconds = _load(args.paths, args.config)
    else:  # as the relay and `sendguard serve` load it: through the snapshot
        if not cfg.directory.sources:
            die("no directory files: give paths or a --config with [directory] sources")
        t0 = time.perf_counter()
        try:
            d = load_or_build(cfg.directory.sources, snapshot, region=cfg.directory.region)
        except (DirectoryError, OSError) as exc:
            die(str(exc))
        seconds = time.perf_counter() - t0
    _print_stats(d, seconds)
    return 0


def _reload(args: argparse.Namespace) -> int:
    """0 reloaded; 65 refused (the server keeps what it had, every problem
    printed); 77 the token is not an admin token; 69 no server answered."""
    token = os.environ.get(args.token_env, "")
    if not token:
        die(
            f"set {args.token_env} to an admin API token (sendguard api-token add NAME "
            "--role admin)",
            EX_USAGE,
        )
    url = args.url
    if not url:
        url = f"http://{load_configured(args).api.listen}"
    req = urllib.request.Request(
        url.rstrip("/") + "/v1/admin/reload",
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=args.timeout) as r:
            body = json.load(r)
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")
        if exc.code in (401, 403):
            die(f"the server refused the token ({exc.code}): an admin token is needed", 77)
        die(f"reload refused ({exc.code}); the server keeps what it had:\n{detail}")
    except (OSError, ValueError) as exc:
        die(f"no answer from {url}: {exc}", EX_UNAVAILABLE)
    print(
        f"reloaded: {body.get('entries')} directory entries, {body.get('rules')} rules "
        f"in {body.get('seconds', 0):.2f} s"
    )
    return 0
