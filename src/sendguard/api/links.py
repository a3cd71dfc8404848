"""The pages behind the signed links in hold notices.

    GET  /decide/{action}/{token}   show, never act (action: confirm, cancel, recall)
    POST /decide/{action}/{token}   act (once)
    GET|POST /confirm/{token}  /cancel/{token}  /recall/{token}   the same, shorter

`ReviewService.links()` makes the `/decide/...` form (`review.service.LINK_PATH`).

A GET only verifies the link (`ReviewService.preview_token`) and shows the
hold's reasons with a button: mail scanners and link previews fetch links,
so fetching must never decide anything. The button POSTs a CSRF value bound
to the action and the token (the link's holder has no session); the POST
verifies, spends and acts (`act_on_token`). A forged, expired or already
used link gets a page that says so, with a 4xx status.

The token is in the path, so these pages are sent with `Referrer-Policy:
no-referrer` (as every UI page is) and the request log names only the
route template, never the path.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from sendguard.api.middleware import log_fields
from sendguard.api.webapp import ctx_of, render
from sendguard.review.tokens import TokenError, TokenExpired, TokenInvalid
from sendguard.store.models import AWAITING_DECISION, HoldNotFound

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
_VERBS = {
    "confirm": ("Send it", "Send the held message on to its recipients?"),
    "cancel": ("Cancel it", "Cancel the held message? It will not be sent."),
    "recall": ("Recall it", "Take the message back before it is sent?"),
}


def _token_status(exc: TokenError) -> int:
    if isinstance(exc, TokenExpired):
        return 410
    if isinstance(exc, TokenInvalid):
        return 400
    return 409  # genuine but used already, or no longer applicable


def _bad_link(request: Request, exc: Exception, status: int) -> Response:
    fields = log_fields.get()
    if fields is not None:
        fields.update(event="link_refused", reason=type(exc).__name__)
    return render(
        request,
        "link_error.html",
        status=status,
        title="This link cannot be used",
        message=_sentence(str(exc)) if isinstance(exc, TokenError) else "There is no such message.",
    )


def _sentence(text: str) -> str:
    text = text.strip() or "this link cannot be used"
    return text[0].upper() + text[1:] + ("" if text.endswith(".") else ".")


async def _show(request: Request, action: str, token: str) -> Response:
    ctx = ctx_of(request)
    try:
        hold = await ctx.io(ctx.review.preview_token, token, action)
    except TokenError as exc:
        return _bad_link(request, exc, _token_status(exc))
    except HoldNotFound as exc:
        return _bad_link(request, exc, 404)
    decided = hold.status not in AWAITING_DECISION
    button, question = _VERBS[action]
    return render(
        request,
        "link.html",
        status=409 if decided else 200,
        hold=hold,
        action=action,
        button=button,
        question=question,
        decided=decided,
        link_csrf=ctx.sessions.link_csrf(action, token),
        findings=[f for f in hold.verdict.findings if not f.monitor],
    )


async def _act(request: Request, action: str, token: str) -> Response:
    ctx = ctx_of(request)
    form = await request.form()
    value = form.get("csrf")
    if not isinstance(value, str) or not ctx.sessions.signer.check(
        "csrf-link", f"{action}|{token}", value
    ):
        return render(
            request,
            "link_error.html",
            status=403,
            title="This form cannot be used",
            message="The form was not sent from this site's page: open the link again.",
        )
    try:
        outcome = await ctx.review.act_on_token(token, action)
    except TokenError as exc:
        return _bad_link(request, exc, _token_status(exc))
    except HoldNotFound as exc:
        return _bad_link(request, exc, 404)
    fields = log_fields.get()
    if fields is not None:
        fields.update(event=f"link_{action}", done=bool(outcome.done))
    return render(
        request,
        "link_done.html",
        status=200 if outcome.done else 409,
        done=bool(outcome.done),
        message=str(outcome.message),
    )


def _short_routes(action: str) -> None:
    """GET and POST /{action}/{token}: the shorter form of /decide/{action}/{token}."""

    async def page(request: Request, token: str) -> Response:
        return await _show(request, action, token)

    async def act(request: Request, token: str) -> Response:
        return await _act(request, action, token)

    router.add_api_route(f"/{action}/{{token}}", page, methods=["GET"], name=f"{action}_page")
    router.add_api_route(f"/{action}/{{token}}", act, methods=["POST"], name=action)


for _action in _VERBS:
    _short_routes(_action)


@router.get("/decide/{action}/{token}")
async def decide_page(request: Request, action: str, token: str) -> Response:
    if action not in _VERBS:
        return _bad_link(request, TokenInvalid("this link is not valid"), 404)
    return await _show(request, action, token)


@router.post("/decide/{action}/{token}")
async def decide(request: Request, action: str, token: str) -> Response:
    if action not in _VERBS:
        return _bad_link(request, TokenInvalid("this link is not valid"), 404)
    return await _act(request, action, token)
