"""ASGI middleware: a request body limit, and one data-free log line per request.

Both are plain ASGI (no framework types), so they see every request,
including the ones the framework answers itself (404, 405, 422).
"""

from __future__ import annotations

import logging
import secrets
import time
from contextvars import ContextVar
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sendguard.api.logs import log_event
from sendguard.api.metrics import Metrics
from sendguard.relay.logsafe import describe_error

__all__ = ["BodyLimit", "BodyTooLarge", "RequestLog", "log_fields", "request_id"]

log = logging.getLogger("sendguard.api")
_QUIET_ROUTES = frozenset({"/healthz", "/metrics"})  # probed every few seconds: DEBUG when fine

request_id: ContextVar[str] = ContextVar("sendguard_request_id", default="")
log_fields: ContextVar[dict[str, Any] | None] = ContextVar("sendguard_log_fields", default=None)
"""Fields an endpoint adds to its request's log line (channel, action, codes, counts)."""


class BodyTooLarge(HTTPException):
    """Raised from `receive` once a body passes the limit. An HTTPException,
    so that frameworks which wrap errors while reading the body (FastAPI
    turns other exceptions into 400) pass it on as the 413 it is."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


def _too_large(limit: int) -> tuple[Message, Message]:
    body = orjson.dumps({"detail": f"request body larger than {limit} bytes"})
    start: Message = {
        "type": "http.response.start",
        "status": 413,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ],
    }
    return start, {"type": "http.response.body", "body": body}


class BodyLimit:
    """413 for bodies above `limit` bytes, before anything parses them.

    A declared Content-Length above the limit is answered at once, unparsed.
    A body without one (chunked) is counted as it arrives; the chunk that
    passes the limit raises BodyTooLarge in the reader, and the 413 is sent
    here if the application has not started a response.

    Before answering, up to `drain` more bytes of the body are read and
    thrown away: a client that sends its whole body before reading the reply
    (most do, unless they sent Expect: 100-continue) would otherwise get a
    connection reset instead of the 413. Beyond `drain`, it gets the reset.
    """

    def __init__(self, app: ASGIApp, limit: int, drain: int | None = None) -> None:
        self.app = app
        self.limit = limit
        self.drain = 4 * limit if drain is None else drain

    async def _discard(self, receive: Receive, headers: dict[bytes, bytes]) -> None:
        if headers.get(b"expect", b"").lower() == b"100-continue":
            return  # the client waits for a go-ahead before sending the body: none comes
        left = self.drain
        while left > 0:
            message = await receive()
            if message["type"] != "http.request":
                return
            left -= len(message.get("body", b""))
            if not message.get("more_body", False):
                return

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit
        headers = dict(scope["headers"])
        if b"content-length" in headers:
            try:
                declared = int(headers[b"content-length"])
            except ValueError:
                declared = limit + 1
            if declared > limit:
                await self._discard(receive, headers)
                for message in _too_large(limit):
                    await send(message)
                return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    if message.get("more_body", False):
                        await self._discard(receive, headers)
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            for message in _too_large(limit):
                await send(message)


class RequestLog:
    """A request id for every request (returned as X-Request-ID), and one
    log line when it is answered: method, route template (never the raw
    path or query, which a caller could fill with data), status, latency,
    and whatever the endpoint put in `log_fields`."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        rid = secrets.token_hex(8)
        rid_token = request_id.set(rid)
        fields: dict[str, Any] = {}
        fields_token = log_fields.set(fields)
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            fields["error"] = exc
            raise
        finally:
            route = scope.get("route")
            template = str(getattr(route, "path", "")) or "unmatched"
            self.metrics.requests.labels(template, str(status)).inc()
            error = fields.pop("error", None)
            log_event(
                log,
                fields.pop("event", "request"),
                level=logging.ERROR
                if status >= 500 and status != 503
                else logging.DEBUG
                if template in _QUIET_ROUTES and status < 400
                else logging.INFO,
                request_id=rid,
                method=scope.get("method", ""),
                route=template,
                status=status,
                latency_ms=round((time.perf_counter() - t0) * 1000, 3),
                **fields,
                **({"error": describe_error(error)} if isinstance(error, BaseException) else {}),
            )
            request_id.reset(rid_token)
            log_fields.reset(fields_token)
