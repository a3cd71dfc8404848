"""The reviewer UI's moving parts inside `sendguard serve`.

`WebRuntime` builds the `WebContext` (session key from `[web]`), opens the
quarantine (or shares the relay's), builds the `ReviewService` (link key
from `[review]`) with a next hop to send released mail to (the relay's
connection pool when the relay runs in the same process, else its own to
`[relay] next_hop`), and runs the review background jobs (retries,
delay-and-recall releases, expiry, purging, callbacks; safe beside other
nodes doing the same). Callbacks go through `CallbackTransport`, so they
reach only `[api] callback_networks`, checked again as each is made.

A quarantine that cannot be opened at start (PostgreSQL down) does not stop
the check API: the UI answers 503 and the quarantine is tried again every
few seconds until it opens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

from sendguard.api.logs import log_event
from sendguard.api.webapp import WebContext
from sendguard.config import Config
from sendguard.relay.forward import NextHop
from sendguard.relay.logsafe import describe_error
from sendguard.review.callbacknet import CallbackTransport
from sendguard.review.secret import load_or_create_secrets
from sendguard.review.service import ReviewService
from sendguard.review.settings import ReviewSettings
from sendguard.review.tokens import TokenSigner
from sendguard.store import Store, open_store

__all__ = ["WebRuntime"]

log = logging.getLogger("sendguard.api")
RETRY = 5.0  # seconds between attempts to open an unreachable quarantine


class WebRuntime:
    """Start with `await WebRuntime.start(config, store=..., next_hop=...)`;
    `context` goes to `create_app(..., web=)`; `await stop()` at shutdown.

    `store` and `next_hop` are shared (the relay's) and not closed here;
    without them, this opens its own and closes them.
    """

    def __init__(self, config: Config, context: WebContext, signer: TokenSigner) -> None:
        self.config = config
        self.context = context
        self._signer = signer
        self.review: ReviewService | None = None
        self._store: Store | None = None
        self._next_hop: NextHop | None = None
        self._own_store = False
        self._own_hop = False
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def start(
        cls,
        config: Config,
        *,
        store: Store | None = None,
        next_hop: NextHop | None = None,
    ) -> WebRuntime:
        """Raises ValueError when a key file is unusable (the message says which)."""
        context = WebContext.create(config)
        keys = load_or_create_secrets(config.review.secret_file)
        rt = cls(config, context, TokenSigner(keys, ttl=config.review.token_ttl))
        if next_hop is not None:
            rt._next_hop, rt._own_hop = next_hop, False
        else:  # a web node's own small pool: releases are rare
            hop = NextHop.from_config(
                config.relay, connections=min(config.relay.next_hop_connections, 4)
            )
            rt._next_hop, rt._own_hop = hop, True
        if store is not None:
            rt._attach(store, owned=False)
        elif not await rt._try_open():
            rt._tasks.append(asyncio.create_task(rt._keep_trying(), name="sendguard-web-store"))
        return rt

    async def _try_open(self) -> bool:
        try:
            store = await asyncio.to_thread(open_store, self.config.store.url)
        except Exception as exc:
            log_event(
                log,
                "web_store_unavailable",
                level=logging.WARNING,
                error=describe_error(exc),
                retry_s=RETRY,
            )
            return False
        self._attach(store, owned=True)
        return True

    async def _keep_trying(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), RETRY)
            if self._stop.is_set() or await self._try_open():
                return

    def _attach(self, store: Store, *, owned: bool) -> None:
        self._store, self._own_store = store, owned
        settings = ReviewSettings.from_config(self.config.review, node=socket.gethostname())
        self.review = ReviewService(
            store,
            self._next_hop,
            self._signer,
            settings,
            callback_transport=CallbackTransport(self.config.api.callback_networks),
        )
        self.context.attach(store, self.review)
        self._tasks.append(
            asyncio.create_task(self.review.run(self._stop), name="sendguard-review-jobs")
        )
        log_event(log, "web_ready")

    async def stop(self) -> None:
        self._stop.set()
        for t in self._tasks:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(t, 10.0)
        if self._own_hop and self._next_hop is not None:
            await self._next_hop.close()
        if self._own_store and self._store is not None:
            await asyncio.to_thread(self._store.close)
