"""Reviewer web UI for reviewers and admins: the report, the audit view, users.

    GET  /report  /report.csv              near-miss report (reviewer, admin)
    GET  /audit                            audit log: hold, event, since, until, page (admin)
    GET  /admin/users                      users (admin)
    POST /admin/users                      add a user
    POST /admin/users/{name}/disable       disable (or `enable`)
    POST /admin/users/{name}/password      set a new password

Every user change is audited by the store with the admin as actor.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from sendguard.api.auth import Principal
from sendguard.api.holdquery import HoldFilter, parse_filter, scan_holds
from sendguard.api.report import build_report, report_csv, week_chart
from sendguard.api.webapp import (
    Forbidden,
    WebError,
    checked_form,
    ctx_of,
    render,
    require_admin,
    require_reviewer,
)
from sendguard.review import passwords
from sendguard.store.models import Conflict, HoldKind, Role

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
Reviewer = Annotated[Principal, Depends(require_reviewer)]
Admin = Annotated[Principal, Depends(require_admin)]
REPORT_WEEKS = 12  # the default span of the report
MIN_PASSWORD = passwords.MIN_PASSWORD_LENGTH
_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,99}")


# -- near-miss report --------------------------------------------------------
def _report_filter(request: Request) -> tuple[HoldFilter, str | None]:
    """since/until/kind; without `since`, the last REPORT_WEEKS weeks."""
    params = dict(request.query_params)
    try:
        f = parse_filter({k: params.get(k) for k in ("since", "until", "kind", "code", "sender")})
    except ValueError as exc:
        return HoldFilter(), str(exc)
    if f.since is None:
        today = datetime.now(UTC).date()
        monday = today - timedelta(days=today.weekday() + 7 * (REPORT_WEEKS - 1))
        f = HoldFilter(kind=f.kind, code=f.code, sender=f.sender, since=monday, until=f.until)
    return f, None


@router.get("/report")
async def report_page(request: Request, user: Reviewer) -> Response:
    ctx = ctx_of(request)
    f, error = _report_filter(request)
    report = await ctx.io(lambda: build_report(scan_holds(ctx.store, f)))
    return render(
        request,
        "report.html",
        status=400 if error else 200,
        error=error,
        f=f,
        query=f.query(),
        report=report,
        chart=week_chart(report.by_week),
        kinds=[k.value for k in HoldKind],
    )


@router.get("/report.csv")
async def report_export(request: Request, user: Reviewer) -> Response:
    ctx = ctx_of(request)
    f, error = _report_filter(request)
    if error:
        return Response(error + "\n", status_code=400, media_type="text/plain")
    text = await ctx.io(lambda: report_csv(build_report(scan_holds(ctx.store, f))))
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="sendguard-near-misses.csv"'},
    )


# -- audit view --------------------------------------------------------------
def _day(name: str, text: str | None, *, end: bool = False) -> datetime | None:
    if not text:
        return None
    try:
        d = date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{name}: expected a date as YYYY-MM-DD") from None
    return datetime.combine(d + timedelta(days=1) if end else d, time.min, UTC)


@router.get("/audit")
async def audit_page(
    request: Request,
    user: Admin,
    hold: str = "",
    event: str = "",
    since: str = "",
    until: str = "",
    page: int = 1,
) -> Response:
    ctx = ctx_of(request)
    size = ctx.config.web.page_size
    page = max(1, page)
    error = None
    hold, event = hold.strip()[:64], event.strip()[:64]
    try:
        start, end = _day("since", since), _day("until", until, end=True)
    except ValueError as exc:
        error, start, end = str(exc), None, None
    entries = await ctx.io(
        ctx.store.audit_entries,
        since=start,
        until=end,
        hold_id=hold or None,
        event=event or None,
        limit=size + 1,
        offset=(page - 1) * size,
    )
    query = {"hold": hold, "event": event, "since": since, "until": until}
    return render(
        request,
        "audit.html",
        status=400 if error else 200,
        error=error,
        entries=entries[:size],
        more=len(entries) > size,
        page=page,
        query={k: v for k, v in query.items() if v},
        events=AUDIT_EVENTS,
    )


AUDIT_EVENTS = (
    "hold",
    "release",
    "released",
    "release_failed",
    "release_retry",
    "release_takeover",
    "refused",
    "cancel",
    "recall",
    "expire",
    "escalate",
    "token_use",
    "callback_queued",
    "callback",
    "purge",
    "discard",
    "discard_refused",
    "notify",
    "rules_reload",
    "login",
    "logout",
    "user_add",
    "user_disable",
    "user_enable",
    "user_password",
    "user_role",
)
"""The events the store, the review workflow, the relay and the UI write (the
filter's choices; an older log may also hold `token_add`/`token_revoke`)."""


# -- users -------------------------------------------------------------------
async def _users_page(
    request: Request, *, message: str | None = None, ok: bool = True, status: int = 200
) -> Response:
    ctx = ctx_of(request)
    users = await ctx.io(ctx.store.list_users)
    return render(
        request,
        "users.html",
        status=status,
        users=users,
        roles=[r.value for r in Role],
        message=message,
        ok=ok,
        min_password=MIN_PASSWORD,
    )


@router.get("/admin/users")
async def users_page(request: Request, user: Admin) -> Response:
    return await _users_page(request)


def _password_problem(password: str) -> str | None:
    try:
        passwords.check_policy(password)
    except passwords.PasswordPolicyError as exc:
        text = str(exc)
        return text[:1].upper() + text[1:] + "."
    return None


@router.post("/admin/users")
async def add_user(request: Request, user: Admin) -> Response:
    ctx = ctx_of(request)
    form = await checked_form(request, user)
    name = form.get("username", "").strip()
    role = form.get("role", "")
    password = form.get("password", "")
    if not _USER_NAME.fullmatch(name):
        return await _users_page(
            request,
            message="A user name is 1-100 letters, digits, '.', '_', '-' or '@'.",
            ok=False,
            status=400,
        )
    if role not in {r.value for r in Role}:
        return await _users_page(request, message="Choose a role.", ok=False, status=400)
    problem = _password_problem(password)
    if problem:
        return await _users_page(request, message=problem, ok=False, status=400)
    digest = await ctx.io(passwords.hash_password, password)
    try:
        await ctx.io(ctx.store.add_user, name, Role(role), digest, actor=user.username)
    except Conflict:
        return await _users_page(
            request, message=f"There is already a user {name}.", ok=False, status=409
        )
    return await _users_page(request, message=f"Added {name} ({role}).")


@router.post("/admin/users/{name}/{change}")
async def change_user(request: Request, name: str, change: str, user: Admin) -> Response:
    ctx = ctx_of(request)
    form = await checked_form(request, user)
    if change in ("disable", "enable"):
        if name == user.username and change == "disable":
            raise Forbidden("You cannot disable yourself; ask another admin.")
        found = await ctx.io(
            ctx.store.disable_user, name, actor=user.username, disabled=change == "disable"
        )
        message = f"{name} is {change}d."
    elif change == "password":
        password = form.get("password", "")
        problem = _password_problem(password)
        if problem:
            return await _users_page(request, message=problem, ok=False, status=400)
        digest = await ctx.io(passwords.hash_password, password)
        found = await ctx.io(ctx.store.set_password, name, digest, actor=user.username)
        message = f"{name} has a new password; their sessions have ended."
    else:
        raise WebError(404, "Not found", "There is no such page.")
    if not found:
        raise WebError(404, "Not found", f"There is no user {name}.")
    return await _users_page(request, message=message)
