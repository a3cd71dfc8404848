"""Structured logs for `sendguard serve`: one JSON object a line on stderr.

What may go in a line is decided here, not at each call: the fields are
values the server chose (event names, request ids, channels, actions,
finding codes, counts, timings, file names of the configuration). An
exception is logged as its type and where it was raised
(`relay.logsafe.describe_error`), never its message or traceback, because
a message can quote the address, name or number that caused it. Finding
messages and suggestions (which name people) never reach a log.

    {"time": "2026-11-21T09:14:03.120Z", "level": "info", "event": "check",
     "request_id": "9f2c01a4b6d7e8f0", "channel": "fax", "action": "hold",
     "codes": ["fax.near_known"], "findings": 1, "status": 200, "latency_ms": 0.41}
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Mapping
from typing import Any

import orjson

from sendguard.relay.logsafe import describe_error

__all__ = ["JsonFormatter", "log_event", "setup_json_logging"]


def _iso(ts: float) -> str:
    ms = int(ts * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{ms:03d}Z"


class JsonFormatter(logging.Formatter):
    """`time`, `level`, `logger`, `event`, then the record's `fields`.

    Other libraries' records (uvicorn, the relay) keep their message as the
    event; sendguard's and uvicorn's messages are data-free. Exceptions are
    reduced to `describe_error`.
    """

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": _iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            out.update(fields)
        if record.exc_info and record.exc_info[1] is not None:
            out["error"] = describe_error(record.exc_info[1])
        return orjson.dumps(out, default=str).decode()


def setup_json_logging(level: str = "INFO") -> None:
    """JSON lines on stderr for every logger of the process."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level))
    # aiosmtpd logs every SMTP command line (addresses included) at INFO
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # we log requests ourselves


def log_event(
    logger: logging.Logger, event: str, *, level: int = logging.INFO, **fields: Any
) -> None:
    """Log `event` with structured `fields` (values the server chose, never input)."""
    if logger.isEnabledFor(level):
        logger.log(level, event, extra={"fields": fields})
