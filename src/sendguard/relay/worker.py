"""A check worker process: `python -m sendguard.relay.worker FD`.

Started by the relay's `WorkerPool` with one end of a socket pair as FD. It
reads the directory and rules configuration, loads a `Guard`, says `ready`,
then answers one job at a time until the socket closes (frames: relay/frames.py).
The package's __init__ does not import this module, so `-m` runs it cleanly.

A job that runs longer than its time limit is interrupted by SIGALRM and
answered `failed`; the relay also kills a worker that stops answering. The
worker ignores SIGINT, SIGHUP and SIGTERM: its life is bound to the relay's
socket, so it exits when the relay closes it or dies.
"""

from __future__ import annotations

import logging
import signal
import socket
import sys
from types import FrameType
from typing import Any

from sendguard.relay.frames import recv_frame, send_frame
from sendguard.relay.logsafe import log_error

__all__ = ["main", "serve"]

log = logging.getLogger("sendguard.relay.worker")


class _Deadline(BaseException):
    """Raised by SIGALRM inside a check. A BaseException, so that the engine's
    per-check `except Exception` cannot absorb it."""


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise _Deadline


def serve(sock: socket.socket) -> int:
    """Load, say ready, answer jobs; the exit status of the process."""
    from sendguard.config import Config
    from sendguard.guard import Guard
    from sendguard.relay.checker import decide_recipient, describe_guard

    hello = recv_frame(sock)
    if not (isinstance(hello, tuple) and hello[0] == "config"):
        return 2
    _, config_data, timeout = hello
    try:
        guard = Guard.load(Config.model_validate(config_data))
    except Exception as exc:  # every load problem goes back to the relay to report
        send_frame(sock, ("error", str(exc) or type(exc).__name__))
        return 1
    send_frame(sock, ("ready", describe_guard(guard)))
    signal.signal(signal.SIGALRM, _alarm)
    while True:
        job = recv_frame(sock)
        if job is None or job[0] == "stop":
            return 0
        kind, job_id = job[0], job[1]
        try:
            signal.setitimer(signal.ITIMER_REAL, timeout)
            try:
                if kind == "rcpt":
                    d = decide_recipient(guard, job[2], job[3])
                    result: Any = (d.action.value, d.codes)
                else:
                    v = guard.check_message(job[2], envelope_recipients=job[3], sender=job[4])
                    result = v.model_dump_json()
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            reply: tuple[Any, ...] = ("ok", job_id, result)
        except _Deadline:
            reply = ("failed", job_id, f"no verdict within {timeout:g} s")
        except Exception as exc:
            log_error(log, "job %s failed", exc, job_id)
            reply = ("failed", job_id, f"the check failed ({type(exc).__name__})")
        send_frame(sock, reply)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s [worker] %(name)s: %(message)s"
    )
    sock = socket.socket(fileno=int(args[0]))
    try:
        return serve(sock)
    except (BrokenPipeError, ConnectionResetError):
        return 0
    finally:
        sock.close()


if __name__ == "__main__":
    sys.exit(main())
