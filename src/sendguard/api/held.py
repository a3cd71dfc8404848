"""`/v1/held`: the quarantine over HTTP, for review tools and practice systems.

    GET  /v1/held                 list (reviewer, admin): status, kind, code,
                                  sender, since, until, limit, offset
    GET  /v1/held/{id}            one hold: status, findings, decision
    POST /v1/held/{id}/release    {"reason": code}; a check token only for
                                  holds that need no reviewer
    POST /v1/held/{id}/cancel     {"reason": code}

Tokens are the API's own (`sendguard api-token add NAME --role ...`):
`check` tokens are what practice systems hold: each sees only the faxes
and letters its own checks held (the check API records the token's name
with the hold), to poll, cancel, or release when no reviewer is needed;
any other hold is "not found" to it (404, not 403, so that a guessed or
leaked id is not confirmed). `reviewer` and `admin` tokens list and decide
every hold. The decision is audited with the token's name as `api:NAME`.
The detail never includes the message or payload itself.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from sendguard.api.holdquery import parse_filter, scan_holds
from sendguard.api.middleware import log_fields
from sendguard.api.models import ErrorBody
from sendguard.api.tokens import ApiToken, Role
from sendguard.api.webapp import ctx_of
from sendguard.core.models import Finding
from sendguard.store.models import HeldMessage, HoldKind, HoldNotFound, HoldSummary

__all__ = ["router"]

_bearer = HTTPBearer(auto_error=False, description="an API token from `sendguard api-token add`")
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "no token, or not a valid one"},
    403: {"model": ErrorBody, "description": "the token's role may not do this"},
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {
        "model": ErrorBody,
        "description": "no hold has this id, or none that this token may see",
    },
}
MAX_LIMIT = 500


def _token(request: Request, creds: HTTPAuthorizationCredentials | None) -> ApiToken:
    tokens = ctx_of(request).tokens
    if creds is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "an API token is needed: Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    token = tokens.lookup(creds.credentials) if tokens is not None else None
    if token is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "the API token is not valid (unknown or revoked)",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    fields = log_fields.get()
    if fields is not None:
        fields["token"] = token.name
    return token


def _needs(*roles: Role) -> Callable[..., ApiToken]:
    def dependency(
        request: Request,
        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> ApiToken:
        token = _token(request, creds)
        if roles and token.role not in roles:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"this needs a {' or '.join(roles)} token"
            )
        return token

    return dependency


AnyToken = Annotated[ApiToken, Depends(_needs())]
ReviewerToken = Annotated[ApiToken, Depends(_needs(Role.REVIEWER, Role.ADMIN))]


class HeldItem(BaseModel):
    """One hold in a list: no message, no payload."""

    hold_id: str
    kind: str
    status: str
    created_at: datetime
    sender: str
    held_recipients: list[str]
    codes: list[str]
    action: str
    requires_reviewer: bool
    decided_by: str | None = None
    decided_at: datetime | None = None
    reason: str | None = None

    @classmethod
    def of(cls, s: HoldSummary | HeldMessage) -> HeldItem:
        sender = s.mail_from if isinstance(s, HoldSummary) else s.envelope.mail_from
        return cls(
            hold_id=s.hold_id,
            kind=s.kind.value,
            status=s.status.value,
            created_at=s.created_at,
            sender=sender,
            held_recipients=list(s.held_recipients),
            codes=list(s.codes),
            action=s.verdict.action.value if isinstance(s, HeldMessage) else s.action,
            requires_reviewer=s.requires_reviewer,
            decided_by=s.decided_by,
            decided_at=s.decided_at,
            reason=s.reason,
        )


class HeldList(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[HeldItem]


class HeldDetail(HeldItem):
    """A hold's state and why it was held; what a practice system polls."""

    findings: list[Finding]
    release_at: datetime | None = None
    expires_at: datetime | None = None
    released_at: datetime | None = None
    release_attempts: int = 0
    release_error: str | None = None
    message_id: str = ""
    purged: bool = False

    @classmethod
    def of_hold(cls, h: HeldMessage) -> HeldDetail:
        base = HeldItem.of(h).model_dump()
        return cls(
            **base,
            findings=list(h.verdict.findings),
            release_at=h.release_at,
            expires_at=h.expires_at,
            released_at=h.released_at,
            release_attempts=h.release_attempts,
            release_error=h.release_error,
            message_id=h.message_id,
            purged=h.purged_at is not None,
        )


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, Field(min_length=1, max_length=40)] = Field(
        description="a reason code from [web] release_reasons or cancel_reasons"
    )


class DecisionResult(BaseModel):
    hold_id: str
    done: bool
    status: str
    message: str
    hold: HeldDetail


router = APIRouter(prefix="/v1/held", tags=["held"])


@router.get("", response_model=HeldList, responses=_ERRORS)
async def list_held(
    request: Request,
    token: ReviewerToken,
    status_: Annotated[str | None, Query(alias="status")] = None,
    kind: str | None = None,
    code: str | None = None,
    sender: str | None = None,
    since: str | None = Query(default=None, description="YYYY-MM-DD"),
    until: str | None = Query(default=None, description="YYYY-MM-DD, inclusive"),
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> HeldList:
    """Holds, newest first, filtered; `total` counts every match."""
    ctx = ctx_of(request)
    params = {"status": status_, "kind": kind, "code": code, "sender": sender}
    try:
        f = parse_filter(params | {"since": since, "until": until})
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None

    def run() -> HeldList:
        items: list[HeldItem] = []
        total = 0
        for s in scan_holds(ctx.store, f):
            if offset <= total < offset + limit:
                items.append(HeldItem.of(s))
            total += 1
        return HeldList(total=total, limit=limit, offset=offset, items=items)

    return await ctx.io(run)


def may_see(token: ApiToken, hold: HeldMessage) -> bool:
    """Reviewer and admin tokens see every hold; a check token (a practice
    system) only the faxes and letters its own checks held."""
    if token.role in (Role.REVIEWER, Role.ADMIN):
        return True
    return hold.kind is not HoldKind.EMAIL and hold.meta.get("token") == token.name


async def _get(request: Request, hold_id: str, token: ApiToken) -> HeldMessage:
    """The hold, or 404 when there is none or the token may not see it: the
    same answer for both, so a check token cannot probe for other ids."""
    ctx = ctx_of(request)
    hold = await ctx.io(ctx.store.get, hold_id) if len(hold_id) <= 64 else None
    if hold is None or not may_see(token, hold):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no hold has this id")
    fields = log_fields.get()
    if fields is not None:
        fields["hold_id"] = hold_id
    return hold


@router.get("/{hold_id}", response_model=HeldDetail, responses=_ERRORS | _NOT_FOUND)
async def get_held(request: Request, hold_id: str, token: AnyToken) -> HeldDetail:
    """One hold: status, findings and the decision (who, when, why). A check
    token sees only the faxes and letters its own checks held."""
    return HeldDetail.of_hold(await _get(request, hold_id, token))


_DECISION_ERRORS: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    **_NOT_FOUND,
    409: {"model": DecisionResult, "description": "the decision did not take effect"},
    422: {"description": "the reason is not one of the configured codes"},
}


async def _decide(
    request: Request,
    hold_id: str,
    token: ApiToken,
    action: Literal["release", "cancel"],
    reason: str,
) -> Any:
    ctx = ctx_of(request)
    web = ctx.config.web
    allowed = web.release_reasons if action == "release" else web.cancel_reasons
    if reason not in allowed:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"reason: one of {', '.join(allowed)}"
        )
    hold = await _get(request, hold_id, token)
    reviewer = token.role in (Role.REVIEWER, Role.ADMIN)
    if action == "release" and hold.requires_reviewer and not reviewer:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "this hold needs a reviewer: use a reviewer or admin token"
        )
    actor = f"api:{token.name}"
    fields = log_fields.get()
    if fields is not None:
        fields.update(event=f"api_{action}", reason=reason)
    try:
        if action == "release":
            outcome = await ctx.review.release(
                hold_id, actor=actor, reason=reason, reviewer=reviewer
            )
        else:
            outcome = await ctx.review.cancel(hold_id, actor=actor, reason=reason)
    except HoldNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no hold has this id") from None
    except PermissionError as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc) or "not allowed") from None
    fresh = await ctx.io(ctx.store.get, hold_id) or hold
    result = DecisionResult(
        hold_id=hold_id,
        done=bool(outcome.done),
        status=str(getattr(outcome.status, "value", outcome.status)),
        message=str(outcome.message),
        hold=HeldDetail.of_hold(fresh),
    )
    if not result.done:
        return JSONResponse(result.model_dump(mode="json"), status_code=status.HTTP_409_CONFLICT)
    return result


@router.post("/{hold_id}/release", response_model=DecisionResult, responses=_DECISION_ERRORS)
async def release_held(request: Request, hold_id: str, body: DecisionBody, token: AnyToken) -> Any:
    """Release a hold: it is sent on to the held recipients (a check token:
    its own fax or letter, when no reviewer is needed)."""
    return await _decide(request, hold_id, token, "release", body.reason)


@router.post("/{hold_id}/cancel", response_model=DecisionResult, responses=_DECISION_ERRORS)
async def cancel_held(request: Request, hold_id: str, body: DecisionBody, token: AnyToken) -> Any:
    """Cancel a hold: it is never sent (a check token: its own fax or letter)."""
    return await _decide(request, hold_id, token, "cancel", body.reason)
