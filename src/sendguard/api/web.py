"""Reviewer web UI: sign-in, the held list, one hold, release and cancel.

    GET  /                       -> /held
    GET  /login   POST /login    sign in (CSRF bound to a pre-session cookie)
    POST /logout                 sign out
    GET  /held                   list: status, kind, code, sender, since, until, page
    GET  /held.csv               the same list, every row, as CSV
    GET  /held/{id}              one hold: headers, text, attachments, findings, history
    POST /held/{id}/release      with a reason code (CSRF)
    POST /held/{id}/cancel       with a reason code (CSRF)
    GET  /static/sendguard.css

Senders see only their own holds (anyone else's is "not found"); they may
cancel them, and release those that do not need a reviewer.
"""

from __future__ import annotations

import logging
import secrets
from importlib.resources import files
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from sendguard.api.auth import LOGIN_COOKIE, SESSION_COOKIE, Principal
from sendguard.api.holdquery import HoldFilter, hold_view, page_holds, parse_filter, scan_holds
from sendguard.api.logs import log_event
from sendguard.api.middleware import log_fields
from sendguard.api.report import held_csv
from sendguard.api.webapp import (
    Forbidden,
    NotFound,
    WebContext,
    checked_form,
    clear_cookie,
    ctx_of,
    current_user,
    redirect,
    render,
    require_user,
    safe_next,
    set_cookie,
)
from sendguard.review import passwords
from sendguard.store.models import UNSENT, HeldMessage, HoldKind, HoldNotFound, HoldStatus

__all__ = ["router"]

log = logging.getLogger("sendguard.api")
router = APIRouter(include_in_schema=False)
User = Annotated[Principal, Depends(require_user)]
_CSS = files("sendguard.api").joinpath("templates", "sendguard.css")


def _note(**fields: Any) -> None:
    f = log_fields.get()
    if f is not None:
        f.update(fields)


@router.get("/")
async def home() -> Response:
    return redirect("/held")


@router.get("/static/sendguard.css")
async def stylesheet() -> Response:
    return Response(
        _CSS.read_text(encoding="utf-8"),
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600"},
    )


# -- sign in and out ---------------------------------------------------------
def _login_page(
    request: Request, nonce: str, nxt: str, *, error: str | None = None, status: int = 200
) -> HTMLResponse:
    ctx = ctx_of(request)
    return render(
        request,
        "login.html",
        status=status,
        login_csrf=ctx.sessions.login_csrf(nonce),
        next=nxt,
        error=error,
        proxy=ctx.config.web.trusted_user_header,
    )


@router.get("/login")
async def login_form(request: Request, next: str | None = None) -> Response:
    if await current_user(request) is not None:
        return redirect(safe_next(next))
    nonce = request.cookies.get(LOGIN_COOKIE)
    if not nonce or len(nonce) > 64:
        nonce = secrets.token_urlsafe(16)
        set_cookie(request, LOGIN_COOKIE, nonce)
    return _login_page(request, nonce, safe_next(next))


@router.post("/login")
async def login(request: Request) -> Response:
    ctx = ctx_of(request)
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    nonce = request.cookies.get(LOGIN_COOKIE)
    if not nonce or not ctx.sessions.signer.check("csrf-login", nonce, values.get("csrf") or None):
        raise Forbidden("The sign-in form was not sent from this site's page: reload it.")
    username = values.get("username", "").strip()[:200]
    password = values.get("password", "")
    nxt = safe_next(values.get("next"))
    client = request.client.host if request.client else None
    address = ctx.sessions.client_address(client, request.headers.get("x-forwarded-for"))
    _note(event="login")
    user = await ctx.io(ctx.store.get_user, username) if username else None
    if ctx.limiter.blocked(username, address):
        await _audit_login(ctx, user.username if user else None, address, ok=False, why="throttled")
        _note(outcome="throttled")
        return _login_page(
            request,
            nonce,
            nxt,
            error="Too many failed sign-ins: wait a few minutes and try again.",
            status=429,
        )
    stored = user.password_hash if user else None
    ok = await ctx.io(passwords.verify_password, stored, password)  # as slow for unknown users
    if user is None or not ok or user.disabled:
        why = "unknown-user" if user is None else "bad-password" if not ok else "disabled"
        ctx.limiter.failed(username, address)
        await _audit_login(ctx, user.username if user else None, address, ok=False, why=why)
        _note(outcome="failed")
        return _login_page(request, nonce, nxt, error="Wrong user name or password.", status=401)
    ctx.limiter.succeeded(username)
    if passwords.needs_rehash(user.password_hash):  # made with older parameters: renew it
        fresh = await ctx.io(passwords.hash_password, password)
        await ctx.io(ctx.store.set_password, user.username, fresh, actor=user.username)
        user = await ctx.io(ctx.store.get_user, user.username) or user
    await _audit_login(ctx, user.username, address, ok=True, why=None)
    _note(outcome="ok")
    set_cookie(request, SESSION_COOKIE, ctx.sessions.issue(user))
    clear_cookie(request, LOGIN_COOKIE)
    return redirect(nxt)


async def _audit_login(
    ctx: WebContext, username: str | None, address: str, *, ok: bool, why: str | None
) -> None:
    """Audit a sign-in. An unknown user name is not recorded: people type
    their password into the name field by mistake."""
    details: dict[str, Any] = {"outcome": "success" if ok else "failure", "address": address}
    if why:
        details["reason"] = why
    try:
        await ctx.io(
            ctx.store.append_audit, "login", actor=username or "(unknown user)", details=details
        )
    except Exception as exc:  # the sign-in itself must not fail for it
        log_event(log, "login_audit_failed", level=logging.ERROR, error=type(exc).__name__)


@router.post("/logout")
async def logout(request: Request, user: User) -> Response:
    ctx = ctx_of(request)
    await checked_form(request, user)
    ctx.sessions.revoke(request.cookies.get(SESSION_COOKIE))
    clear_cookie(request, SESSION_COOKIE)
    await ctx.io(ctx.store.append_audit, "logout", actor=user.username, details={})
    return redirect("/login")


# -- the held list -----------------------------------------------------------
def _filter(request: Request) -> tuple[HoldFilter, str | None]:
    try:
        return parse_filter(request.query_params), None
    except ValueError as exc:
        return HoldFilter(), str(exc)


@router.get("/held")
async def held_list(request: Request, user: User, page: int = 1) -> Response:
    ctx = ctx_of(request)
    f, error = _filter(request)
    size = ctx.config.web.page_size
    result = await ctx.io(page_holds, ctx.store, f, user.may_view, page, size)
    _note(rows=len(result.items), total=result.total)
    return render(
        request,
        "held_list.html",
        status=400 if error else 200,
        error=error,
        f=f,
        query=f.query(),
        result=result,
        statuses=[s.value for s in HoldStatus],
        kinds=[k.value for k in HoldKind],
    )


@router.get("/held.csv")
async def held_export(request: Request, user: User) -> Response:
    ctx = ctx_of(request)
    f, error = _filter(request)
    if error:
        return Response(error + "\n", status_code=400, media_type="text/plain")

    def rows() -> str:
        return held_csv(scan_holds(ctx.store, f, user.may_view))

    text = await ctx.io(rows)
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="sendguard-held.csv"'},
    )


# -- one hold ----------------------------------------------------------------
async def _visible_hold(ctx: WebContext, hold_id: str, user: Principal) -> HeldMessage:
    hold = await ctx.io(ctx.store.get, hold_id) if len(hold_id) <= 64 else None
    if hold is None or not user.may_view(hold):
        raise NotFound()
    return hold


async def _hold_page(
    request: Request,
    user: Principal,
    hold: HeldMessage,
    *,
    outcome: str | None = None,
    outcome_ok: bool = True,
    status: int = 200,
) -> HTMLResponse:
    ctx = ctx_of(request)
    history = await ctx.io(ctx.store.audit_entries, hold_id=hold.hold_id, limit=500)
    undecided = hold.status in UNSENT
    _note(hold_id=hold.hold_id, codes=list(hold.codes))
    return render(
        request,
        "hold.html",
        status=status,
        v=hold_view(hold),
        history=history,
        can_release=undecided and hold.status is not HoldStatus.PENDING and user.may_release(hold),
        can_cancel=undecided and user.may_cancel(hold),
        needs_reviewer=undecided and hold.requires_reviewer and not user.reviewer,
        release_reasons=ctx.config.web.release_reasons,
        cancel_reasons=ctx.config.web.cancel_reasons,
        outcome=outcome,
        outcome_ok=outcome_ok,
    )


@router.get("/held/{hold_id}")
async def hold_page(request: Request, hold_id: str, user: User) -> Response:
    hold = await _visible_hold(ctx_of(request), hold_id, user)
    return await _hold_page(request, user, hold)


async def _decide(request: Request, hold_id: str, user: Principal, action: str) -> Response:
    ctx = ctx_of(request)
    form = await checked_form(request, user)
    hold = await _visible_hold(ctx, hold_id, user)
    reasons = (
        ctx.config.web.release_reasons if action == "release" else ctx.config.web.cancel_reasons
    )
    reason = form.get("reason", "")
    if reason not in reasons:
        return await _hold_page(
            request,
            user,
            hold,
            outcome="Choose a reason from the list.",
            outcome_ok=False,
            status=400,
        )
    allowed = user.may_release(hold) if action == "release" else user.may_cancel(hold)
    if not allowed:
        raise Forbidden("This hold needs a reviewer to release it; you may cancel it.")
    _note(event=f"web_{action}", hold_id=hold_id, reason=reason)
    try:
        if action == "release":
            outcome = await ctx.review.release(
                hold_id, actor=user.username, reason=reason, reviewer=user.reviewer
            )
        else:
            outcome = await ctx.review.cancel(hold_id, actor=user.username, reason=reason)
    except HoldNotFound:
        raise NotFound() from None
    except PermissionError as exc:
        raise Forbidden(str(exc) or "You are not allowed to do this.") from None
    _note(done=bool(outcome.done), status_after=str(outcome.status))
    fresh = await ctx.io(ctx.store.get, hold_id) or hold
    return await _hold_page(
        request,
        user,
        fresh,
        outcome=str(outcome.message),
        outcome_ok=bool(outcome.done),
        status=200 if outcome.done else 409,
    )


@router.post("/held/{hold_id}/release")
async def release(request: Request, hold_id: str, user: User) -> Response:
    return await _decide(request, hold_id, user, "release")


@router.post("/held/{hold_id}/cancel")
async def cancel(request: Request, hold_id: str, user: User) -> Response:
    return await _decide(request, hold_id, user, "cancel")
