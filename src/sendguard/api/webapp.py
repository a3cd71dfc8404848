"""The reviewer web UI and the `/v1/held` API, installed on the FastAPI app.

    install_web(app, WebContext.create(config, store, review, tokens))

`install_web` adds the routers (`web`, `webadmin`, `links`, `held`), the
error pages, and `WebHeaders`: security headers (CSP `default-src 'self'`,
no framing, no referrer, no caching) on every UI and `/v1/held` response,
and the cookies a request asked to set.

Pages are rendered server-side with Jinja2 (autoescaped); there is no
JavaScript. Store calls are blocking and run in threads.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sendguard.api.auth import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    LoginLimiter,
    Principal,
    Sessions,
    Signer,
    load_secret,
)
from sendguard.api.logs import log_event
from sendguard.api.middleware import log_fields
from sendguard.config import Config
from sendguard.relay.logsafe import describe_error
from sendguard.store.base import Store
from sendguard.store.models import HeldMessage, HoldStatus, StoreError

if TYPE_CHECKING:
    from sendguard.api.tokens import TokenTable

__all__ = [
    "LOGIN_COOKIE",
    "Forbidden",
    "LoginRequired",
    "NotFound",
    "Review",
    "Unavailable",
    "WebContext",
    "WebError",
    "checked_form",
    "clear_cookie",
    "ctx_of",
    "current_user",
    "install_web",
    "redirect",
    "render",
    "require_admin",
    "require_reviewer",
    "require_user",
    "safe_next",
    "set_cookie",
]

log = logging.getLogger("sendguard.api")
P = ParamSpec("P")
T = TypeVar("T")

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'none'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_OPEN_PREFIXES = ("/v1/check", "/v1/admin", "/healthz", "/metrics", "/docs", "/redoc")
_COOKIES = "sendguard.cookies"


class Outcome(Protocol):
    """What a decision did (`review.service.Outcome`)."""

    @property
    def status(self) -> Any: ...
    @property
    def done(self) -> bool: ...
    @property
    def message(self) -> str: ...
    @property
    def reply(self) -> str | None: ...


class Review(Protocol):
    """The part of `review.service.ReviewService` the UI and API use."""

    async def release(self, hold_id: str, *, actor: str, reason: str, reviewer: bool) -> Any: ...
    async def cancel(self, hold_id: str, *, actor: str, reason: str) -> Any: ...
    def preview_token(self, token: str, action: str) -> HeldMessage: ...
    async def act_on_token(self, token: str, action: str) -> Any: ...


class WebError(Exception):
    """An error page: its status, a title and a message for the person."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


class Forbidden(WebError):
    def __init__(self, message: str = "You are not allowed to do this.") -> None:
        super().__init__(403, "Not allowed", message)


class NotFound(WebError):
    def __init__(self, message: str = "There is no such hold, or it is not yours to see.") -> None:
        super().__init__(404, "Not found", message)


class LoginRequired(Exception):
    """No signed-in user: the page redirects to the sign-in form."""


class Unavailable(WebError):
    def __init__(self) -> None:
        super().__init__(
            503,
            "Unavailable",
            "The quarantine cannot be reached just now; try again in a minute.",
        )


class WebContext:
    """What the UI and the held API share. The store and the review service
    may be attached after start (`sendguard serve` keeps trying to open a
    quarantine that is down); until then pages answer 503."""

    def __init__(
        self,
        *,
        config: Config,
        sessions: Sessions,
        limiter: LoginLimiter,
        templates: Environment,
        tokens: TokenTable | None = None,
        store: Store | None = None,
        review: Review | None = None,
    ) -> None:
        self.config = config
        self.sessions = sessions
        self.limiter = limiter
        self.templates = templates
        self.tokens = tokens
        self._store = store
        self._review = review

    @classmethod
    def create(
        cls,
        config: Config,
        store: Store | None = None,
        review: Review | None = None,
        tokens: TokenTable | None = None,
        *,
        clock: Callable[[], float] | None = None,
    ) -> WebContext:
        """Reads (or creates) `[web] session_secret_file`; ValueError if unusable."""
        web = config.web
        signer = Signer(load_secret(web.session_secret_file))
        sessions = Sessions(web, signer) if clock is None else Sessions(web, signer, clock)
        limiter = LoginLimiter(
            web.login_max_failures,
            web.login_lockout,
            max_per_address=web.login_max_failures_per_address,
        )
        return cls(
            config=config,
            sessions=sessions,
            limiter=limiter,
            templates=_environment(),
            tokens=tokens,
            store=store,
            review=review,
        )

    def attach(self, store: Store, review: Review) -> None:
        self._store, self._review = store, review

    @property
    def ready(self) -> bool:
        return self._store is not None and self._review is not None

    @property
    def store(self) -> Store:
        if self._store is None:
            raise Unavailable()
        return self._store

    @property
    def review(self) -> Review:
        if self._review is None:
            raise Unavailable()
        return self._review

    async def io(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a blocking store call in a thread."""
        return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))


def _fmt_dt(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _url(path: str, query: Mapping[str, Any] | None = None, **more: Any) -> str:
    params = {k: v for k, v in {**(query or {}), **more}.items() if v not in (None, "")}
    return f"{path}?{urlencode(params)}" if params else path


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("sendguard.api", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["dt"] = _fmt_dt
    env.globals["url"] = _url
    env.globals["HoldStatus"] = HoldStatus
    return env


def ctx_of(request: Request) -> WebContext:
    ctx = request.app.state.web
    assert isinstance(ctx, WebContext)
    return ctx


def set_cookie(request: Request, name: str, value: str, *, max_age: int | None = None) -> None:
    """Send a cookie with this request's answer (HttpOnly, SameSite=Lax,
    Secure when `[web] secure_cookies`)."""
    parts = [f"{name}={value}", "Path=/", "HttpOnly", "SameSite=Lax"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if ctx_of(request).config.web.secure_cookies:
        parts.append("Secure")
    request.scope.setdefault(_COOKIES, []).append("; ".join(parts))


def clear_cookie(request: Request, name: str) -> None:
    set_cookie(request, name, "", max_age=0)


async def current_user(request: Request) -> Principal | None:
    """The signed-in user (trusted proxy header, else session cookie), or None."""
    ctx = ctx_of(request)
    cached = request.scope.get("sendguard.principal")
    if isinstance(cached, Principal):
        return cached
    sessions = ctx.sessions
    principal: Principal | None = None
    header = ctx.config.web.trusted_user_header
    client = request.client.host if request.client else None
    proxied = sessions.proxy_user(client, request.headers.get(header) if header else None)
    if proxied is not None:
        user = await ctx.io(ctx.store.get_user, proxied)
        if user is not None and not user.disabled:
            principal = sessions.principal(user, f"proxy|{user.username}", "proxy")
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            state = await ctx.io(sessions.verify, cookie, ctx.store.get_user)
            if state is not None:
                principal = sessions.principal(state.user, f"session|{state.sid}", "session")
                if state.refreshed is not None:
                    set_cookie(request, SESSION_COOKIE, state.refreshed)
    if principal is not None:
        request.scope["sendguard.principal"] = principal
        fields = log_fields.get()
        if fields is not None:
            fields["role"] = principal.role.value
    return principal


async def require_user(request: Request) -> Principal:
    """Dependency: a signed-in user, else a redirect to the sign-in form."""
    principal = await current_user(request)
    if principal is None:
        raise LoginRequired
    return principal


async def require_reviewer(request: Request) -> Principal:
    principal = await require_user(request)
    if not principal.reviewer:
        raise Forbidden("This page is for reviewers and admins.")
    return principal


async def require_admin(request: Request) -> Principal:
    principal = await require_user(request)
    if not principal.admin:
        raise Forbidden("This page is for admins.")
    return principal


async def checked_form(request: Request, principal: Principal) -> dict[str, str]:
    """The POSTed form, after its CSRF value was checked (403 if wrong)."""
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    if not ctx_of(request).sessions.check_csrf(principal, values.get("csrf")):
        raise Forbidden("The form was not sent from this site's page (or is too old): reload it.")
    return values


def render(
    request: Request,
    template: str,
    *,
    status: int = 200,
    principal: Principal | None = None,
    **context: Any,
) -> HTMLResponse:
    ctx = ctx_of(request)
    if principal is None:
        cached = request.scope.get("sendguard.principal")
        principal = cached if isinstance(cached, Principal) else None
    html = ctx.templates.get_template(template).render(
        request_path=request.url.path,
        user=principal,
        csrf=ctx.sessions.csrf(principal) if principal is not None else "",
        **context,
    )
    return HTMLResponse(html, status_code=status)


def redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def safe_next(target: str | None) -> str:
    """A local path to go to after signing in (never another site: browsers
    drop tabs and newlines from URLs and read a backslash as a slash)."""
    if not target or len(target) > 2000 or not target.startswith("/"):
        return "/held"
    if any(c <= " " or c == "\\" for c in target) or target.startswith("//"):
        return "/held"
    return target


class WebHeaders:
    """Security headers on the UI and `/v1/held` (not on the check API or
    the OpenAPI pages), plus the cookies routes asked for."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        guarded = not path.startswith(_OPEN_PREFIXES) and path != "/openapi.json"
        cookies: list[str] = []
        scope[_COOKIES] = cookies

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                if guarded:
                    for k, v in (
                        (b"content-security-policy", CSP.encode()),
                        (b"x-frame-options", b"DENY"),
                        (b"x-content-type-options", b"nosniff"),
                        (b"referrer-policy", b"no-referrer"),
                        (b"cache-control", b"no-store"),
                    ):
                        if k not in present:
                            headers.append((k, v))
                headers.extend((b"set-cookie", c.encode("latin-1")) for c in cookies)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install_web(app: FastAPI, ctx: WebContext, *, tokens: TokenTable | None = None) -> None:
    """Add the UI, the signed-link pages and `/v1/held` to `app`; `tokens`
    (the API's) authenticate `/v1/held` unless the context has its own."""
    from sendguard.api import held, links, web, webadmin

    if ctx.tokens is None:
        ctx.tokens = tokens
    app.state.web = ctx
    app.include_router(web.router)
    app.include_router(webadmin.router)
    app.include_router(links.router)
    app.include_router(held.router)

    async def on_login_required(request: Request, exc: Exception) -> Response:
        if request.method == "GET":
            nxt = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return redirect(_url("/login", next=nxt))
        return redirect("/login")

    async def on_web_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, WebError)
        if request.url.path.startswith("/v1/"):
            return JSONResponse({"detail": exc.message}, status_code=exc.status)
        return render(
            request, "error.html", status=exc.status, title=exc.title, message=exc.message
        )

    async def on_store_error(request: Request, exc: Exception) -> Response:
        log_event(log, "web_store_error", level=logging.ERROR, error=describe_error(exc))
        return await on_web_error(request, Unavailable())

    app.add_exception_handler(LoginRequired, on_login_required)
    app.add_exception_handler(WebError, on_web_error)
    app.add_exception_handler(StoreError, on_store_error)
    app.add_middleware(WebHeaders)
