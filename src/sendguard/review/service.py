"""The review workflow: the one service every way of deciding goes through.

The CLI (`sendguard held release|cancel`), the web UI, the `/v1/held` API
and the sender's signed links all call a `ReviewService`, so that a
decision means the same wherever it is made:

- `release` sends the stored bytes on to the next hop (the held recipients
  only, with the stored MAIL FROM options and one added header line,
  `X-Sendguard-Released: <hold id> by <actor>`), and marks the hold
  released only once the next hop said 250. A 4xx (or the next hop down)
  leaves it `pending`, retried with doubling delays; a 5xx, or the last
  attempt failing, leaves it `failed` for a person to decide again.
  Idempotent: the store's release claim (a compare-and-set with a lease)
  lets exactly one releaser through, in one process or across nodes. A
  node without a next hop (the web UI's) records the decision and queues
  the hold `pending` (`Store.queue_release`) for a relay's jobs to send,
  with every delivery attempt still to come.
- `cancel` ends a hold that was not sent; the message is kept for
  `retention`, then purged.
- `act_on_token` carries out a sender's confirm / cancel / recall link:
  verified, spent once (`Store.use_token`), then acted on.
- `run_due` is one pass of the background jobs: retries, delay-and-recall
  releases, takeovers of crashed releasers' claims, expiry, purging, and
  decision callbacks for fax and letter holds. `run` loops it.

Roles are the caller's business (the web layer authenticates), with one
rule enforced here: a hold that `requires_reviewer` is released only with
`reviewer=True`; anyone else (a sender's confirm link included) is refused,
and the refusal is audited. The store checks it again inside the release's
compare-and-set, so a hold escalated by another node's expiry job between
the look and the claim is refused too.

Errors: an unknown hold id raises `HoldNotFound`; a bad link raises a
`TokenError` (`TokenInvalid`, `TokenExpired`, `TokenUsed`) whose message is
safe to show. Everything else is an `Outcome`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from sendguard.config import Config
from sendguard.relay.forward import NextHop, Reply, smtp_text
from sendguard.relay.logsafe import log_error
from sendguard.review.callbacknet import CallbackTransport
from sendguard.review.callbacks import CallbackOutbox
from sendguard.review.secret import load_or_create_secrets
from sendguard.review.settings import ReviewSettings
from sendguard.review.tokens import TokenInvalid, TokenSigner, TokenUsed
from sendguard.store.base import (
    ExpiryOutcome,
    HeldMessage,
    HoldKind,
    HoldNotFound,
    HoldStatus,
    ReviewerRequired,
    Store,
    StoreError,
)

__all__ = [
    "LINK_PATH",
    "RELEASED_HEADER",
    "DueCounts",
    "Outcome",
    "ReviewService",
    "released_header",
    "utcnow",
]

log = logging.getLogger("sendguard.review")

RELEASED_HEADER = "X-Sendguard-Released"
LINK_PATH = "/decide/{action}/{token}"
"""Where a sender's link points, under `[review] base_url`: GET shows the
hold (`preview_token`), POST decides (`act_on_token`)."""
REVIEWER_REQUIRED = "A reviewer must decide on this message; it has not been sent."
_BATCH = 100


def utcnow() -> datetime:
    return datetime.now(UTC)


def released_header(hold_id: str, actor: str) -> bytes:
    """The header line a released copy carries: which hold, whose decision.
    Printable ASCII only, so that no actor name can inject header lines."""
    who = smtp_text(actor, 200) or "unknown"
    return f"{RELEASED_HEADER}: {hold_id} by {who}\r\n".encode("ascii")


@dataclass(frozen=True, kw_only=True, slots=True)
class Outcome:
    """What came of one decision.

    `done`: this call's decision took effect (released, or accepted and being
    retried while the next hop is unavailable; cancelled; recalled). False
    when it was refused, came too late, lost a race, or the next hop refused
    the message for good. `message` is safe to show to the person who asked;
    `reply` is the next hop's answer when there was one.
    """

    hold_id: str
    status: HoldStatus
    done: bool
    message: str
    reply: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (CLI `--json`, the HTTP API)."""
        return {
            "hold_id": self.hold_id,
            "status": self.status.value,
            "done": self.done,
            "message": self.message,
            "reply": self.reply,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class DueCounts:
    """What one pass of the background jobs did."""

    released: int = 0
    pending: int = 0
    failed: int = 0
    expired: int = 0
    escalated: int = 0
    purged: int = 0
    callbacks: int = 0
    callbacks_failed: int = 0

    @property
    def total(self) -> int:
        return sum(getattr(self, f) for f in self.__dataclass_fields__)


_TOO_LATE = {
    HoldStatus.RELEASED: "It has already been released.",
    HoldStatus.RELEASING: "It is being released right now.",
    HoldStatus.PENDING: "It has been released and is waiting to be delivered.",
    HoldStatus.CANCELLED: "It has been cancelled.",
    HoldStatus.EXPIRED: "It expired without a decision and was not sent.",
    HoldStatus.RECALLED: "The sender recalled it.",
}


class ReviewService:
    """Decisions on holds, and the jobs that carry them out (module docstring)."""

    def __init__(
        self,
        store: Store,
        next_hop: NextHop | None,
        signer: TokenSigner,
        settings: ReviewSettings,
        *,
        clock: Callable[[], datetime] = utcnow,
        callback_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.store = store
        self.next_hop = next_hop
        self.signer = signer
        self.settings = settings
        self._clock = clock
        self.callbacks = CallbackOutbox(store, settings, clock, transport=callback_transport)
        self._wake = asyncio.Event()

    @classmethod
    def from_config(
        cls,
        config: Config,
        store: Store,
        next_hop: NextHop | None,
        *,
        node: str = "system",
        clock: Callable[[], datetime] = utcnow,
    ) -> ReviewService:
        """The service as `[review]` configures it; creates the link-signing
        key file on first use. Raises SecretError if the key is unusable."""
        settings = ReviewSettings.from_config(config.review, node=node)
        keys = load_or_create_secrets(config.review.secret_file)
        return cls(
            store,
            next_hop,
            TokenSigner(keys, ttl=settings.token_ttl),
            settings,
            clock=clock,
            # every process that calls back checks the target again at send time
            callback_transport=CallbackTransport(config.api.callback_networks),
        )

    # -- decisions ---------------------------------------------------------
    async def release(self, hold_id: str, *, actor: str, reason: str, reviewer: bool) -> Outcome:
        """Release a hold: send it on (email) or record it (fax, letter)."""
        held = await self._get(hold_id)
        if held.requires_reviewer and not reviewer:
            return await self._refuse(held, actor, "release", via="direct")
        return await self._release(held, actor, reason, reviewer=reviewer, via="direct")

    async def cancel(self, hold_id: str, *, actor: str, reason: str) -> Outcome:
        """Cancel a hold that has not been sent; its content is purged after `retention`."""
        ok = await asyncio.to_thread(self.store.cancel, hold_id, actor, reason)
        held = await self._get(hold_id)
        if not ok:
            return self._too_late(held, "cancelled")
        log.info("hold %s: cancelled (%s)", hold_id, reason)
        await self._queue_callback(held)
        days = self.settings.retention.days
        return Outcome(
            hold_id=hold_id,
            status=held.status,
            done=True,
            message=f"Cancelled: it will not be sent, and it is deleted after {days} days.",
        )

    async def recall(self, hold_id: str, *, actor: str, reason: str = "recalled") -> Outcome:
        """The sender takes a hold back (typically a delay-and-recall hold)."""
        ok = await asyncio.to_thread(self.store.recall, hold_id, actor, reason)
        held = await self._get(hold_id)
        if not ok:
            return self._too_late(held, "recalled")
        log.info("hold %s: recalled", hold_id)
        await self._queue_callback(held)
        return Outcome(
            hold_id=hold_id, status=held.status, done=True, message="Recalled: it will not be sent."
        )

    # -- signed links ------------------------------------------------------
    def links(
        self, hold_id: str, actions: Iterable[str] = ("confirm", "cancel", "recall")
    ) -> dict[str, str]:
        """Signed links for a sender, action -> absolute URL; {} without `base_url`."""
        base = (self.settings.base_url or "").rstrip("/")
        if not base:
            return {}
        now = self._clock()
        return {
            a: base + LINK_PATH.format(action=a, token=self.signer.issue(hold_id, a, now))
            for a in actions
        }

    @staticmethod
    def notice_actions(held: HeldMessage) -> tuple[str, ...]:
        """The links a hold notice offers: a reviewer-only hold can only be
        cancelled by its sender; a delay-and-recall hold is sent early or
        recalled. A release the next hop refused is cancelled, or left to a
        reviewer to try again (the sender cannot make the next hop take it)."""
        if held.requires_reviewer or held.status is HoldStatus.FAILED:
            return ("cancel",)
        if held.release_at is not None:
            return ("confirm", "recall")
        return ("confirm", "cancel")

    def notice_links(self, held: HeldMessage) -> dict[str, str]:
        return self.links(held.hold_id, self.notice_actions(held))

    def preview_token(self, token: str, action: str) -> HeldMessage:
        """The hold a link is about, for the page a GET shows. Verifies the
        link; never spends it and never acts (mail scanners follow links)."""
        claims = self.signer.verify(token, action, self._clock())
        held = self.store.get(claims.hold_id)
        if held is None:
            raise TokenInvalid("this link is not valid")
        return held

    async def act_on_token(self, token: str, action: str) -> Outcome:
        """Carry out a sender's link (a POST): verify, spend once, act."""
        claims = self.signer.verify(token, action, self._clock())
        held = await asyncio.to_thread(self.store.get, claims.hold_id)
        if held is None:
            raise TokenInvalid("this link is not valid")
        actor = f"sender:{held.envelope.mail_from}" if held.envelope.mail_from else "sender"
        if action == "confirm" and held.requires_reviewer:
            return await self._refuse(held, actor, "release", via="link")
        if not await asyncio.to_thread(self.store.use_token, claims.token_id, claims.expires_at):
            raise TokenUsed("this link has already been used")
        await asyncio.to_thread(
            self.store.append_audit,
            "token_use",
            actor=actor,
            hold_id=held.hold_id,
            details={"action": action, "token": claims.token_id[:16]},
        )
        if action == "confirm":
            return await self._release(
                held, actor, "confirmed_by_sender", reviewer=False, via="link"
            )
        if action == "cancel":
            return await self.cancel(held.hold_id, actor=actor, reason="cancelled_by_sender")
        return await self.recall(held.hold_id, actor=actor, reason="recalled_by_sender")

    # -- background jobs ---------------------------------------------------
    async def run_due(self) -> DueCounts:
        """One pass: retries, delay-and-recall releases, takeovers of crashed
        releasers, expiry, purging and callbacks. Safe on several nodes at
        once: every step is a claim or compare-and-set in the store. Without
        a next hop, email releases are left for a relay's pass to send."""
        now = self._clock()
        n: dict[str, int] = dict.fromkeys(DueCounts.__dataclass_fields__, 0)
        for s in await asyncio.to_thread(self.store.due_releases, now, _BATCH):
            if self.next_hop is None and s.kind is HoldKind.EMAIL:
                continue  # a relay sends it; claiming it only to hand it back spends an attempt
            reason = "delay_elapsed" if s.status is HoldStatus.HELD else None
            try:
                claimed = await asyncio.to_thread(
                    self.store.claim_release,
                    s.hold_id,
                    self.settings.node,
                    self.settings.release_lease.total_seconds(),
                    reason=reason,
                    reviewer=False,  # a timer: never a reviewer's decision
                )
                if claimed is None:
                    continue  # another node or reviewer got there first
                out = await self._deliver(claimed)
            except ReviewerRequired:
                continue  # escalated since it was listed: it waits for a reviewer now
            except StoreError as exc:
                log_error(log, "hold %s: release job failed; will retry", exc, s.hold_id)
                continue
            key = out.status.value
            if key in n:
                n[key] += 1
        for s in await asyncio.to_thread(self.store.due_expiries, now, _BATCH):
            try:
                became = await self._expire(s.hold_id, s.status, now)
            except StoreError as exc:
                log_error(log, "hold %s: expiry failed; will retry", exc, s.hold_id)
                continue
            if became:
                n[became] += 1
        n["purged"] = await asyncio.to_thread(
            self.store.purge_cancelled, now - self.settings.retention, actor=self.settings.node
        )
        await asyncio.to_thread(self.store.purge_tokens, now)
        n["callbacks"], n["callbacks_failed"] = await self.callbacks.run_due()
        counts = DueCounts(**n)
        if counts.total:
            log.info(
                "review jobs: %s",
                ", ".join(f"{k} {v}" for k, v in n.items() if v),
            )
        return counts

    async def run(self, stop: asyncio.Event) -> None:
        """Run `run_due` every `poll_interval` seconds (sooner when a decision
        queued work) until `stop` is set; never raises."""
        while not stop.is_set():
            self._wake.clear()
            try:
                await self.run_due()
            except Exception as exc:
                log_error(log, "review jobs: pass failed; will retry", exc)
            waits = [
                asyncio.ensure_future(stop.wait()),
                asyncio.ensure_future(self._wake.wait()),
            ]
            try:
                await asyncio.wait(
                    waits, timeout=self.settings.poll_interval, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                for w in waits:
                    w.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await w

    async def deliver_callbacks(self) -> tuple[int, int]:
        """Deliver decision callbacks due now (for a process without `run`)."""
        return await self.callbacks.run_due()

    # -- internals ---------------------------------------------------------
    async def _get(self, hold_id: str) -> HeldMessage:
        held = await asyncio.to_thread(self.store.get, hold_id)
        if held is None:
            raise HoldNotFound(f"no hold with id {hold_id!r}")
        return held

    async def _refuse(self, held: HeldMessage, actor: str, action: str, *, via: str) -> Outcome:
        log.info("hold %s: %s refused, a reviewer must decide", held.hold_id, action)
        await asyncio.to_thread(
            self.store.append_audit,
            "refused",
            actor=actor,
            hold_id=held.hold_id,
            details={"action": action, "reason": "reviewer_required", "via": via},
        )
        return Outcome(
            hold_id=held.hold_id, status=held.status, done=False, message=REVIEWER_REQUIRED
        )

    def _too_late(self, held: HeldMessage, verb: str) -> Outcome:
        text = _TOO_LATE.get(held.status, f"It is {held.status.value}.")
        return Outcome(
            hold_id=held.hold_id,
            status=held.status,
            done=False,
            message=f"Not {verb}: {text}",
        )

    async def _release(
        self, held: HeldMessage, actor: str, reason: str, *, reviewer: bool, via: str
    ) -> Outcome:
        """The release decision. `reviewer` goes into the store's
        compare-and-set: a hold escalated (made reviewer-only) on another
        node since `held` was read is refused there, not released."""
        if self.next_hop is None and held.kind is HoldKind.EMAIL:
            return await self._queue_release(held, actor, reason, reviewer=reviewer, via=via)
        try:
            claimed = await asyncio.to_thread(
                self.store.claim_release,
                held.hold_id,
                actor,
                self.settings.release_lease.total_seconds(),
                reason=reason,
                reviewer=reviewer,
            )
        except ReviewerRequired:
            return await self._refuse(await self._get(held.hold_id), actor, "release", via=via)
        if claimed is None:
            return self._too_late(await self._get(held.hold_id), "released")
        return await self._deliver(claimed)

    async def _queue_release(
        self, held: HeldMessage, actor: str, reason: str, *, reviewer: bool, via: str
    ) -> Outcome:
        """The decision on a node that cannot send: recorded `pending`, due at
        once, for a relay's jobs to send with every delivery attempt left."""
        try:
            queued = await asyncio.to_thread(
                self.store.queue_release, held.hold_id, actor, reason=reason, reviewer=reviewer
            )
        except ReviewerRequired:
            return await self._refuse(await self._get(held.hold_id), actor, "release", via=via)
        if not queued:
            return self._too_late(await self._get(held.hold_id), "released")
        log.info("hold %s: release queued for a relay to send", held.hold_id)
        return Outcome(
            hold_id=held.hold_id,
            status=HoldStatus.PENDING,
            done=True,
            message="Release accepted: it is sent within moments.",
        )

    async def _deliver(self, held: HeldMessage) -> Outcome:
        """Carry out a claimed release: the hold is `releasing` and ours."""
        claim = held.claim
        assert claim is not None, "a claimed hold carries its claim"
        hold_id = held.hold_id
        if held.kind is not HoldKind.EMAIL:
            note = f"decision recorded; the {held.kind.value} is sent by the practice system"
            await asyncio.to_thread(self.store.mark_released, hold_id, claim, note)
            await self._queue_callback(await self._get(hold_id))
            return Outcome(
                hold_id=hold_id,
                status=HoldStatus.RELEASED,
                done=True,
                message=f"Released: the practice system is told to send the {held.kind.value}.",
            )
        if self.next_hop is None:  # unreachable: such a node queues email releases, never claims
            raise RuntimeError("an email release was claimed by a node without a next hop")
        decider = held.decided_by or claim.owner
        try:
            reply = await self.next_hop.send(
                held.envelope.mail_from,
                held.held_recipients,
                released_header(hold_id, decider) + held.message,
                mail_options=held.envelope.mail_options,
            )
        except Exception as exc:  # the next hop's client never should; fail safe anyway
            log_error(log, "hold %s: release send failed", exc, hold_id)
            reply = Reply(451, "4.3.0 the release could not be sent")
        return await self._settle(held, reply)

    async def _settle(self, held: HeldMessage, reply: Reply) -> Outcome:
        claim = held.claim
        assert claim is not None
        hold_id, line = held.hold_id, reply.line()
        if reply.ok:
            if not await asyncio.to_thread(self.store.mark_released, hold_id, claim, line):
                log.error("hold %s: delivered, but the claim was taken over meanwhile", hold_id)
            else:
                log.info("hold %s: released, next hop said %d", hold_id, reply.code)
            return Outcome(
                hold_id=hold_id,
                status=HoldStatus.RELEASED,
                done=True,
                message="Released: the message has been sent on.",
                reply=line,
            )
        retry = reply.temporary and claim.attempt < self.settings.release_attempts
        now = self._clock()
        next_at = now + self.settings.backoff(claim.attempt) if retry else None
        kept = await asyncio.to_thread(
            self.store.mark_release_failed,
            hold_id,
            claim,
            line,
            next_at,
            expires_at=None if retry else now + self.settings.expire_after,
        )
        log.warning(
            "hold %s: release attempt %d failed (%d)%s",
            hold_id,
            claim.attempt,
            reply.code,
            "; will retry" if retry else "; a person must decide again",
        )
        if not kept:
            return self._too_late(await self._get(hold_id), "released")
        if retry:
            return Outcome(
                hold_id=hold_id,
                status=HoldStatus.PENDING,
                done=True,
                message="Release accepted: the next hop cannot take it now; "
                "it is retried automatically.",
                reply=line,
            )
        return Outcome(
            hold_id=hold_id,
            status=HoldStatus.FAILED,
            done=False,
            message="Not sent: the next hop refused it. Release it again or cancel it.",
            reply=line,
        )

    async def _expire(self, hold_id: str, status: HoldStatus, now: datetime) -> str:
        """Expire one due hold: cancel it, or escalate it once to a reviewer
        (an escalated hold that expires again is cancelled). Never a release."""
        if self.settings.expire_to is ExpiryOutcome.ESCALATE and status is not HoldStatus.ESCALATED:
            ok = await asyncio.to_thread(
                self.store.expire,
                hold_id,
                ExpiryOutcome.ESCALATE,
                actor=self.settings.node,
                next_expires_at=now + self.settings.expire_after,
            )
            return "escalated" if ok else ""
        ok = await asyncio.to_thread(
            self.store.expire, hold_id, ExpiryOutcome.CANCEL, actor=self.settings.node
        )
        if ok:
            await self._queue_callback(await self._get(hold_id))
        return "expired" if ok else ""

    async def _queue_callback(self, held: HeldMessage) -> None:
        if not self.callbacks.wanted(held):
            return
        try:
            await self.callbacks.queue(held)
        except StoreError as exc:  # the decision stands; the audit shows no callback
            log_error(log, "hold %s: decision callback not queued", exc, held.hold_id)
        self._wake.set()
