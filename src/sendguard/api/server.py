"""`sendguard serve`: the HTTP API under uvicorn, optionally beside the relay.

`ApiServer` loads one `Guard`, builds the app, binds the listening socket
itself (so a bad address fails loudly, and port 0 works for tests), and
runs uvicorn on the current event loop. With `relay=True` the SMTP relay
(`relay.server.Relay`, started as `sendguard relay` starts it) runs in the
same process on the same Guard: one directory in memory, one reload.

Signals (installed by `run()`): SIGHUP reloads directory and rules (and
the relay's AUTH users); SIGTERM/SIGINT stop accepting, let requests and
messages in flight finish, then exit. uvicorn's own signal handling is
switched off so that these are the only ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
from collections.abc import Generator

import uvicorn

from sendguard.api.app import create_app
from sendguard.api.logs import log_event
from sendguard.api.metrics import Metrics
from sendguard.api.service import ApiService, ReloadFailed
from sendguard.api.tokens import TokenTable
from sendguard.api.webserve import WebRuntime
from sendguard.config import Config, parse_host_port
from sendguard.guard import Guard
from sendguard.relay.logsafe import describe_error
from sendguard.relay.server import Relay, RelayStartError

__all__ = ["ApiServer", "ServeError"]

log = logging.getLogger("sendguard.api")
GRACE = 10.0  # seconds requests in flight may take to finish at shutdown


class ServeError(Exception):
    """The server cannot start; the message says what to fix."""

    def __init__(self, message: str, *, unavailable: bool = False) -> None:
        super().__init__(message)
        self.unavailable = unavailable


class _Uvicorn(uvicorn.Server):
    """uvicorn without its signal handlers: ApiServer.run() owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _bind(listen: str) -> socket.socket:
    host, port = parse_host_port(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they
    # are TCP; without it each response waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(512)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class ApiServer:
    """One `sendguard serve`: build with a Config, `await start()`, `await stop()`.

    `listen` overrides `[api] listen`; `relay` (default `[api] relay`) runs
    the SMTP relay too; `guard` uses an already loaded Guard.
    """

    def __init__(
        self,
        config: Config,
        *,
        listen: str | None = None,
        relay: bool | None = None,
        guard: Guard | None = None,
    ) -> None:
        self.config = config
        self.listen = listen or config.api.listen
        self.with_relay = config.api.relay if relay is None else relay
        self.guard = guard
        self.relay: Relay | None = None
        self.service: ApiService | None = None
        self.web: WebRuntime | None = None
        self.metrics = Metrics()
        self._sock: socket.socket | None = None
        self._server: _Uvicorn | None = None
        self._task: asyncio.Task[None] | None = None
        self._reloads: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> tuple[str, int]:
        """The address actually listened on (useful with port 0)."""
        assert self._sock is not None
        host, port = self._sock.getsockname()[:2]
        return str(host), int(port)

    async def start(self) -> None:
        t0 = time.perf_counter()
        try:
            tokens = TokenTable(self.config.api.tokens_file)
        except ValueError as exc:
            raise ServeError(str(exc)) from None
        if self.guard is None:
            try:
                self.guard = await asyncio.to_thread(Guard.load, self.config)
            except Exception as exc:
                raise ServeError(f"cannot load directory and rules: {exc}") from exc
        load_s = time.perf_counter() - t0
        try:
            self._sock = _bind(self.listen)
        except OSError as exc:
            raise ServeError(
                f"cannot listen on {self.listen}: {exc.strerror or exc}", unavailable=True
            ) from exc
        store = None
        extra_reload = None
        if self.with_relay:
            self.relay = Relay(self.config, guard=self.guard)
            try:
                await self.relay.start()
            except RelayStartError as exc:
                self._sock.close()
                raise ServeError(f"relay: {exc}", unavailable="cannot listen" in str(exc)) from exc
            assert self.relay.handler is not None
            self.relay.handler.observe = self.metrics.observe_relay_message
            store = self.relay.store
            users = self.relay.users
            extra_reload = users.load if users is not None else None
        self.service = ApiService(
            self.config,
            self.guard,
            tokens=tokens,
            metrics=self.metrics,
            store=store,
            extra_reload=extra_reload,
        )
        self.metrics.observe_load(
            len(self.guard.directory), len(self.guard.rules.rules), time.time(), load_s
        )
        try:  # the reviewer UI and /v1/held (api.webserve)
            hop = self.relay.next_hop if self.relay is not None else None
            self.web = await WebRuntime.start(self.config, store=store, next_hop=hop)
        except ValueError as exc:
            await self.stop()
            raise ServeError(str(exc)) from None
        app = create_app(self.service, web=self.web.context)
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="on",
            server_header=False,
            # sendguard reads X-Forwarded-For itself, only from [web] trusted_proxies;
            # uvicorn's own handling would trust any loopback client's header
            proxy_headers=False,
            timeout_graceful_shutdown=int(GRACE),
            timeout_keep_alive=30,
        )
        self._server = _Uvicorn(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        while not self._server.started:
            if self._task.done():
                await self.stop()
                raise ServeError("the HTTP server did not start")
            await asyncio.sleep(0.01)
        if not len(tokens):
            log_event(
                log,
                "no_api_tokens",
                level=logging.WARNING,
                tokens_file=str(self.config.api.tokens_file),
                hint="every check is refused (401) until `sendguard api-token add NAME`",
            )
        host, port = self.address
        log_event(
            log,
            "listening",
            listen=f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
            port=port,
            entries=len(self.guard.directory),
            rules=len(self.guard.rules.rules),
            tokens=len(tokens),
            load_s=round(load_s, 3),
            watch=self.config.api.watch,
            relay=self._relay_address(),
        )

    def _relay_address(self) -> str | None:
        if self.relay is None:
            return None
        host, port = self.relay.address
        return f"{host}:{port}"

    async def stop(self) -> None:
        """Stop accepting; requests and messages in flight finish first."""
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
        for t in list(self._reloads):
            t.cancel()
        if self.web is not None:
            await self.web.stop()
        if self.relay is not None:
            await self.relay.stop()
        if self.service is not None:
            await self.service.close()
        if self._sock is not None:
            self._sock.close()
        log_event(log, "stopped")

    async def reload(self, reason: str) -> bool:
        assert self.service is not None
        try:
            await self.service.reload(reason)
        except ReloadFailed:
            return False  # logged by the service, without the details
        return True

    def _reload_soon(self) -> None:
        task = asyncio.create_task(self._reload_logged())
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    async def _reload_logged(self) -> None:
        try:
            await self.reload("SIGHUP")
        except Exception as exc:
            log_event(log, "reload_crashed", level=logging.ERROR, error=describe_error(exc))

    async def run(self) -> None:
        """Start, serve until SIGTERM/SIGINT (SIGHUP reloads), then stop."""
        await self.start()
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGHUP, self._reload_soon)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        assert self._task is not None
        try:
            done = asyncio.create_task(stop.wait())
            await asyncio.wait([done, self._task], return_when=asyncio.FIRST_COMPLETED)
            done.cancel()
        finally:
            for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            log_event(log, "stopping")
            await self.stop()
