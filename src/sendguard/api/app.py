"""The FastAPI application: check endpoints, health, metrics, admin reload.

    POST /v1/check/email                  (check or admin token) -> Verdict JSON
    POST /v1/check/fax | letter           (check or admin token) -> Verdict JSON + hold_id
    POST /v1/admin/reload                 (admin token)          -> what was loaded
    GET  /healthz                         (open, no data)        -> 200 / 503
    GET  /metrics                         (open, no data)        -> Prometheus text
    /v1/held..., the reviewer UI          (with `web`: api.webapp, docs/web.md)

A check answers with exactly the JSON the library's `Verdict` gives
(`model_dump(mode="json")`), so the HTTP API and the Python API cannot
disagree. Checks run on the event loop: they take tens of microseconds to a
millisecond (the directory is indexed), less than a hop to a thread costs.

A fax or letter the verdict holds is kept in the quarantine (unless the
request says `"hold": false`) and the answer adds its `hold_id` (and a
`Location: /v1/held/{id}`); if the quarantine cannot take it the answer is
503, never a hold without an id. Email checks are advice only: the relay
holds real mail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sendguard.api.logs import log_event
from sendguard.api.metrics import CONTENT_TYPE
from sendguard.api.middleware import BodyLimit, RequestLog, log_fields, request_id
from sendguard.api.models import (
    EmailCheck,
    ErrorBody,
    FaxCheck,
    HealthBody,
    HealthPart,
    HeldVerdict,
    LetterCheck,
    ReloadBody,
)
from sendguard.api.service import ApiService, HoldFailed, ReloadFailed
from sendguard.api.tokens import ApiToken, Role
from sendguard.api.webapp import WebContext, install_web
from sendguard.core.models import Action, Channel, Verdict
from sendguard.relay.logsafe import describe_error
from sendguard.review.callbacknet import CallbackRefused, check_callback_url
from sendguard.store import HoldKind

__all__ = ["create_app"]

log = logging.getLogger("sendguard.api")
_bearer = HTTPBearer(auto_error=False, description="an API token from `sendguard api-token add`")
_UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "no token, or not a valid one"},
}
_CHECK_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "the body could not be read (not UTF-8)"},
    **_UNAUTHORIZED,
    413: {"model": ErrorBody, "description": "the request body is larger than [api] max_body"},
}
_HOLD_RESPONSES: dict[int | str, dict[str, Any]] = {
    **_CHECK_RESPONSES,
    200: {
        "description": "the verdict; when the send is held, its `hold_id` and where to poll it",
        "headers": {
            "Location": {
                "description": "/v1/held/{hold_id}, when the send is held",
                "schema": {"type": "string"},
            }
        },
    },
    503: {
        "model": ErrorBody,
        "description": "the verdict holds the send but the quarantine cannot keep it now: "
        "nothing is held; do not send, try again",
    },
}
HOLD_UNAVAILABLE = (
    "the send must be held but the quarantine cannot keep it now; nothing is held: "
    "do not send it, and try again later"
)


def _authenticate(service: ApiService, need: Role) -> Callable[..., Awaitable[ApiToken]]:
    # async although it awaits nothing: FastAPI runs a plain `def` dependency in a
    # worker thread, a hop that cost more than the whole check.
    async def dependency(
        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> ApiToken:
        if creds is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "an API token is needed: Authorization: Bearer <token>",
                headers={"WWW-Authenticate": "Bearer"},
            )
        token = service.tokens.lookup(creds.credentials)
        if token is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "the API token is not valid (unknown or revoked)",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        if need is Role.ADMIN and token.role is not Role.ADMIN:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "this needs an admin token")
        fields = log_fields.get()
        if fields is not None:
            fields["token"] = token.name
        return token

    return dependency


_TOKEN_ROUTES = frozenset(
    {"/v1/check/email", "/v1/check/fax", "/v1/check/letter", "/v1/admin/reload"}
)


def _has_valid_token(service: ApiService, request: Request) -> bool:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and service.tokens.lookup(token.strip()) is not None


def create_app(
    service: ApiService, *, watch: bool | None = None, web: WebContext | None = None
) -> FastAPI:
    """The ASGI application over `service`. `watch` (default `[api] watch`)
    reloads directory and rules when their files change, while it runs.
    `web` adds the reviewer UI and `/v1/held` (`api.webapp`)."""
    cfg = service.config.api
    watching = cfg.watch if watch is None else watch

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = None
        if watching:
            since = await asyncio.to_thread(service.files_stamp)  # before any request
            task = asyncio.create_task(service.watch(cfg.watch_interval, since), name="sg-watch")
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = FastAPI(
        title="sendguard",
        summary="Checks emails, faxes and letters against the patient and contact directory "
        "before they are sent.",
        version=_version(),
        lifespan=lifespan,
    )
    app.state.service = service

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        """FastAPI reads and validates the body before it asks for the token;
        a caller without a valid token gets 401 here too, never the details."""
        route = getattr(request.scope.get("route"), "path", "")
        if route in _TOKEN_ROUTES and not _has_valid_token(service, request):
            return JSONResponse(
                {"detail": "an API token is needed: Authorization: Bearer <token>"},
                status_code=status.HTTP_401_UNAUTHORIZED,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return await request_validation_exception_handler(request, exc)

    checker = Depends(_authenticate(service, Role.CHECK))
    admin = Depends(_authenticate(service, Role.ADMIN))

    def run_check(channel: Channel, check: Callable[[], Verdict]) -> Verdict:
        t0 = time.perf_counter()
        verdict = check()
        seconds = time.perf_counter() - t0
        service.metrics.observe_check(channel, verdict, seconds)
        fields = log_fields.get()
        if fields is not None:
            fields.update(
                event="check",
                channel=channel.value,
                action=verdict.action.value,
                codes=sorted({f.code for f in verdict.findings}),
                findings=len(verdict.findings),
                recipients=len(verdict.recipients),
                check_ms=round(seconds * 1000, 3),
            )
        return verdict

    def answer(channel: Channel, check: Callable[[], Verdict]) -> Response:
        verdict = run_check(channel, check)
        return Response(verdict.model_dump_json(), media_type="application/json")

    async def refuse_callback(url: str) -> None:
        """422 (as for any invalid field) unless `url` may be called back: its
        host resolves only inside `[api] callback_networks` (review.callbacknet).
        Checked whenever one is given, so that a practice system learns of a
        refused URL on its first call, not on its first hold."""
        try:
            await check_callback_url(url, cfg.callback_networks)
        except CallbackRefused as exc:
            fields = log_fields.get()
            if fields is not None:
                fields["callback"] = "refused"
            raise RequestValidationError(
                [{"type": "value_error", "loc": ("body", "callback_url"), "msg": str(exc)}]
            ) from None

    async def answer_hold(
        kind: HoldKind, req: FaxCheck | LetterCheck, token: ApiToken, check: Callable[[], Verdict]
    ) -> Response:
        """The verdict plus `hold_id`: a held send is kept in the quarantine first."""
        channel = Channel(kind.value)
        if req.callback_url is not None:
            await refuse_callback(req.callback_url)
        verdict = run_check(channel, check)
        hold_id: str | None = None
        headers: dict[str, str] = {}
        if verdict.action is Action.HOLD and req.hold:
            fields = log_fields.get()
            if fields is None:
                fields = {}
            try:
                hold_id = await service.hold_send(
                    kind,
                    req.model_dump(mode="json", exclude={"hold", "callback_url"}),
                    verdict,
                    sender=req.sender or f"api:{token.name}",
                    patients=service.patient_ids(req.patient),
                    callback_url=req.callback_url,
                    actor=f"api:{token.name}",
                    meta={"via": "http", "token": token.name, "request_id": request_id.get()},
                )
            except HoldFailed as exc:
                service.metrics.observe_hold(channel, stored=False)
                cause = exc.__cause__ or exc
                log_event(
                    log,
                    "hold_failed",
                    level=logging.WARNING,
                    channel=channel.value,
                    request_id=request_id.get(),
                    error=describe_error(cause),
                )
                fields["hold"] = "failed"
                return JSONResponse(
                    {"detail": HOLD_UNAVAILABLE},
                    status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
                    headers={"Retry-After": "5"},
                )
            service.metrics.observe_hold(channel, stored=True)
            fields.update(hold="stored", hold_id=hold_id)
            headers["Location"] = f"/v1/held/{hold_id}"
        body = verdict.model_dump_json().encode()
        body = body[:-1] + b',"hold_id":' + orjson.dumps(hold_id) + b"}"
        return Response(body, media_type="application/json", headers=headers)

    @app.post(
        "/v1/check/email",
        response_model=Verdict,
        responses=_CHECK_RESPONSES,
        tags=["check"],
        dependencies=[checker],
    )
    async def check_email(req: EmailCheck) -> Response:
        """Check an email's recipients (and content) before it is sent. Advice
        only: nothing is held here (the relay holds the real message)."""

        def run() -> Verdict:
            return service.guard.check_email(
                [r if isinstance(r, str) else r.spec() for r in req.recipients],
                sender=req.sender,
                patient=req.patient,
                subject=req.subject,
                body=req.body,
                attachments=req.attachments,
                history=req.history,
                secure=req.secure,
            )

        return answer(Channel.EMAIL, run)

    @app.post(
        "/v1/check/fax",
        response_model=HeldVerdict,
        responses=_HOLD_RESPONSES,
        tags=["check"],
    )
    async def check_fax(req: FaxCheck, token: ApiToken = checker) -> Response:
        """Check a fax number before dialling it. A held fax is kept for a
        person to decide: poll `/v1/held/{hold_id}` or give a `callback_url`."""
        return await answer_hold(
            HoldKind.FAX,
            req,
            token,
            lambda: service.guard.check_fax(
                req.number, intended=req.intended, patient=req.patient, sender=req.sender
            ),
        )

    @app.post(
        "/v1/check/letter",
        response_model=HeldVerdict,
        responses=_HOLD_RESPONSES,
        tags=["check"],
    )
    async def check_letter(req: LetterCheck, token: ApiToken = checker) -> Response:
        """Check a letter's addressee and postal address before printing. A
        held letter is kept for a person to decide, as a fax is."""
        return await answer_hold(
            HoldKind.LETTER,
            req,
            token,
            lambda: service.guard.check_letter(
                addressee=req.addressee,
                address=req.address,
                patient=req.patient,
                intended=req.intended,
                sender=req.sender,
            ),
        )

    @app.post(
        "/v1/admin/reload",
        response_model=ReloadBody,
        responses={
            **_UNAUTHORIZED,
            403: {"model": ErrorBody, "description": "the token is not an admin token"},
            409: {
                "model": ErrorBody,
                "description": "the new directory or rules were refused (every problem "
                "listed) and the ones in use stay; or a reload is already running",
            },
        },
        tags=["admin"],
        dependencies=[admin],
    )
    async def reload() -> ReloadBody | JSONResponse:
        """Re-read the directory and rules; all or nothing."""
        try:
            r = await service.reload("admin request")
        except ReloadFailed as exc:
            fields = log_fields.get()
            if fields is not None:
                fields["event"] = "reload_refused"
            return JSONResponse(
                {"detail": str(exc), "kept": "the directory and rules in use"},
                status_code=status.HTTP_409_CONFLICT,
            )
        return ReloadBody(entries=r.entries, rules=r.rules, seconds=round(r.seconds, 3))

    @app.get(
        "/healthz",
        response_model=HealthBody,
        responses={503: {"model": HealthBody, "description": "at least one part is failing"}},
        tags=["operations"],
    )
    async def healthz() -> JSONResponse:
        """Directory loaded, quarantine reachable, next hop reachable."""
        h = await service.health()
        ok_dir, entries, dir_error = h.directory
        body = HealthBody(
            status="ok" if h.ok else "failing",
            checks={
                "directory": HealthPart(ok=ok_dir, entries=entries, error=dir_error),
                "store": HealthPart(ok=h.store[0], error=h.store[1]),
                "next_hop": HealthPart(ok=h.next_hop[0], error=h.next_hop[1]),
            },
        )
        return JSONResponse(
            body.model_dump(mode="json", exclude_none=True),
            status_code=status.HTTP_200_OK if h.ok else status.HTTP_503_SERVICE_UNAVAILABLE,
        )

    @app.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE.split(";")[0]: {}}}},
        tags=["operations"],
    )
    async def metrics() -> Response:
        """Prometheus metrics: counts, codes and timings; no patient data."""
        await service.refresh_hold_metrics()
        return Response(service.metrics.render(), media_type=CONTENT_TYPE)

    if web is not None:
        install_web(app, web, tokens=service.tokens)
    app.add_middleware(BodyLimit, limit=cfg.max_body)
    app.add_middleware(RequestLog, metrics=service.metrics)
    return app


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sendguard")
    except PackageNotFoundError:
        return "0"
