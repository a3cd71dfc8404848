"""Describing an error for the log without the data it may carry.

An exception's message can hold an address, a name or an NHS number (a
KeyError on an address, a parser error quoting a header). Relay logs carry
ids, codes and counts only, so errors are logged as their type and where
they were raised; `--log-level DEBUG` adds the full traceback.
"""

from __future__ import annotations

import logging
import traceback

__all__ = ["describe_error", "log_error"]


def describe_error(exc: BaseException) -> str:
    """`KeyError at handler.py:212 in _data`: the type and the innermost frame."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return type(exc).__name__
    last = frames[-1]
    name = last.filename.rsplit("/", 1)[-1]
    return f"{type(exc).__name__} at {name}:{last.lineno} in {last.name}"


def log_error(log: logging.Logger, message: str, exc: BaseException, *args: object) -> None:
    """`message` (with %s args) plus a data-free description of `exc`."""
    log.error(message + ": %s", *args, describe_error(exc))
    log.debug("traceback", exc_info=exc)
