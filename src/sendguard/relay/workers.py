"""Checks in worker processes beside the SMTP event loop.

Each worker (relay/worker.py) loads its own `Guard` from the directory and
rules configuration and answers jobs in order over a socket pair. On the
event loop a worker is a plain asyncio `Protocol`: sending a job is one
`write`, a reply is parsed in `data_received` and resolves the caller's
future, and the next waiting job goes out at once. No task, queue or
stream per job: the loop's share of a check stays in the tens of
microseconds, and parsing and checking run on another core.

Up to two jobs are in flight per worker, so a worker never idles while the
loop is busy; jobs beyond that wait in one list that every worker takes
from.

Failure handling, all ending in `CheckFailed` for the job concerned (the
relay then holds the message):
- a check over the time limit is interrupted inside the worker (SIGALRM);
- a worker that does not answer within the limit plus a grace period, or
  dies, is killed and replaced (with growing delays if it keeps failing);
  jobs queued behind the one it was on go to another worker;
- a job nobody could take in time fails without waiting further.

`reload()` starts a complete new set of workers on the current files and
switches to them only when every one is ready: checks never pause, and if
the new directory or rules are broken the new workers are dropped and the
running ones stay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import socket
import subprocess
import sys
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sendguard.config import Config
from sendguard.core.models import Action, Verdict
from sendguard.relay.checker import Checker, CheckFailed, RecipientDecision, ReloadFailed
from sendguard.relay.frames import HEADER, encode

__all__ = ["WorkerPool"]

log = logging.getLogger("sendguard.relay.workers")
_GRACE = 5.0  # seconds past the time limit before a silent worker is killed
_START_TIMEOUT = 600.0  # loading a large directory without a snapshot takes a while
_PIPELINE = 2  # jobs in flight per worker


@dataclass(eq=False, slots=True)
class _Job:
    frame: tuple[Any, ...]
    future: asyncio.Future[Any]


@dataclass(eq=False)
class _Worker(asyncio.Protocol):
    """One worker process and its end of the socket pair."""

    pool: WorkerPool
    name: str
    proc: subprocess.Popen[bytes]
    transport: asyncio.Transport | None = None
    started: asyncio.Future[Any] | None = None
    inflight: deque[_Job] = field(default_factory=deque)
    retiring: bool = False
    dead: bool = False
    description: str = ""
    timer: asyncio.TimerHandle | None = None
    _buf: bytearray = field(default_factory=bytearray)

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        while len(buf) >= HEADER.size:
            (n,) = HEADER.unpack_from(buf)
            if len(buf) < HEADER.size + n:
                break
            frame = pickle.loads(buf[HEADER.size : HEADER.size + n])
            del buf[: HEADER.size + n]
            if self.started is not None and not self.started.done():
                self.started.set_result(frame)
            else:
                self.pool._reply(self, frame)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.started is not None and not self.started.done():
            self.started.set_exception(EOFError("the worker closed its socket"))
        self.pool._lost(self)

    # control
    def send(self, frame: tuple[Any, ...]) -> None:
        assert self.transport is not None
        self.transport.write(encode(frame))

    def kill(self) -> None:
        self.dead = True
        if self.timer is not None:
            self.timer.cancel()
        if self.transport is not None:
            self.transport.close()
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)


class WorkerPool(Checker):
    """`size` worker processes loading the directory and rules of `config`."""

    def __init__(self, config: Config, *, size: int, timeout: float, grace: float = _GRACE) -> None:
        if size < 1:
            raise ValueError("a worker pool needs at least one worker")
        self._config_data = config.model_dump(mode="json", include={"directory", "rules"})
        self._size = size
        self._timeout = timeout
        self._grace = grace
        self._pending: deque[_Job] = deque()
        self._workers: list[_Worker] = []
        self._retired: list[_Worker] = []
        self._generation = 0
        self._counter = 0
        self._closing = False
        self._reloading = False
        self._respawns: set[asyncio.Task[None]] = set()
        self.description = ""

    # -- lifecycle ---------------------------------------------------------
    async def start(self) -> str:
        self._workers, self.description = await self._spawn_set()
        return self.description

    async def reload(self) -> str:
        if self._reloading:
            raise ReloadFailed("a reload is already running")
        self._reloading = True
        try:
            new, description = await self._spawn_set()
        finally:
            self._reloading = False
        old, self._workers = self._workers, new
        for w in old:
            self._retire(w)
        self.description = description
        self._dispatch()
        return description

    async def close(self) -> None:
        self._closing = True
        for t in self._respawns:
            t.cancel()
        while self._pending:
            job = self._pending.popleft()
            if not job.future.done():
                job.future.set_exception(CheckFailed("the relay is stopping"))
        waiting = [j.future for w in self._workers + self._retired for j in w.inflight]
        if waiting:
            await asyncio.wait(waiting, timeout=self._timeout + self._grace)
        for w in self._workers + self._retired:
            w.kill()

    # -- checks ------------------------------------------------------------
    async def check_recipient(self, address: str, sender: str) -> RecipientDecision:
        action, codes = await self._call("rcpt", address, sender)
        return RecipientDecision(Action(action), tuple(codes))

    async def check_message(self, raw: bytes, recipients: Sequence[str], sender: str) -> Verdict:
        data = await self._call("msg", raw, list(recipients), sender)
        return Verdict.model_validate_json(data)

    async def _call(self, kind: str, *args: Any) -> Any:
        if self._closing:
            raise CheckFailed("the relay is stopping")
        loop = asyncio.get_running_loop()
        self._counter += 1
        job = _Job((kind, self._counter, *args), loop.create_future())
        # queueing plus the check: generous, since jobs may wait behind a
        # replaced worker; the check alone is limited inside the worker
        deadline = loop.call_later(3 * self._timeout + self._grace, _expire, job)
        self._pending.append(job)
        self._dispatch()
        try:
            return await job.future
        finally:
            deadline.cancel()

    def _dispatch(self) -> None:
        """Hand waiting jobs to the least busy workers that have room."""
        while self._pending:
            for w in self._workers:
                if not w.dead and w.proc.poll() is not None:  # died, not yet noticed
                    self._fail(w, "exited")
            ready = [w for w in self._workers if not w.dead and len(w.inflight) < _PIPELINE]
            if not ready:
                return
            w = min(ready, key=lambda x: len(x.inflight))
            job = self._pending.popleft()
            if job.future.done():  # the caller gave up waiting
                continue
            w.inflight.append(job)
            w.send(job.frame)
            if len(w.inflight) == 1:
                self._arm(w)

    def _arm(self, w: _Worker) -> None:
        """Time the job the worker is on now (the first in flight)."""
        loop = asyncio.get_running_loop()
        w.timer = loop.call_later(self._timeout + self._grace, self._silent, w)

    def _reply(self, w: _Worker, frame: tuple[Any, ...]) -> None:
        if w.timer is not None:
            w.timer.cancel()
            w.timer = None
        if not w.inflight:
            log.error("check worker %s sent an unexpected frame; replacing it", w.name)
            self._fail(w, "sent an unexpected frame")
            return
        job = w.inflight.popleft()
        if not job.future.done():
            if frame[0] == "ok" and frame[1] == job.frame[1]:
                job.future.set_result(frame[2])
            else:
                job.future.set_exception(CheckFailed(str(frame[2])))
        if w.inflight:
            self._arm(w)
        elif w.retiring:
            w.kill()
        self._dispatch()

    def _silent(self, w: _Worker) -> None:
        log.error("check worker %s did not answer in time; replacing it", w.name)
        self._fail(w, "timed out")

    def _lost(self, w: _Worker) -> None:
        if w.dead:  # we closed it
            return
        log.error("check worker %s exited (status %s); replacing it", w.name, w.proc.poll())
        self._fail(w, "exited")

    def _fail(self, w: _Worker, why: str) -> None:
        """Kill a worker: its current job fails (it may be the cause), the
        jobs queued behind it go to others, and a replacement starts."""
        inflight = list(w.inflight)
        w.inflight.clear()
        w.kill()
        if inflight and not inflight[0].future.done():
            inflight[0].future.set_exception(CheckFailed(f"check worker {why}"))
        self._pending.extendleft(reversed(inflight[1:]))
        if w in self._workers and not self._closing:
            self._replace(w)
        self._dispatch()

    def _retire(self, w: _Worker) -> None:
        w.retiring = True
        if w.inflight:
            self._retired.append(w)
        else:
            w.kill()

    # -- processes ---------------------------------------------------------
    async def _spawn_set(self) -> tuple[list[_Worker], str]:
        self._generation += 1
        results = await asyncio.gather(
            *(self._spawn(f"g{self._generation}w{i + 1}") for i in range(self._size)),
            return_exceptions=True,
        )
        workers = [r for r in results if isinstance(r, _Worker)]
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            for w in workers:
                w.kill()
            raise ReloadFailed(str(errors[0]))
        return workers, workers[0].description

    async def _spawn(self, name: str) -> _Worker:
        loop = asyncio.get_running_loop()
        parent, child = socket.socketpair()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "sendguard.relay.worker", str(child.fileno())],
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
            )
        finally:
            child.close()
        w = _Worker(self, name, proc, started=loop.create_future())
        await loop.connect_accepted_socket(lambda: w, sock=parent)
        assert w.started is not None
        try:
            w.send(("config", self._config_data, self._timeout))
            reply = await asyncio.wait_for(w.started, _START_TIMEOUT)
        except (OSError, EOFError, TimeoutError) as exc:
            w.kill()
            raise ReloadFailed(f"check worker {name} did not start ({type(exc).__name__})") from exc
        if reply[0] != "ready":
            w.kill()
            raise ReloadFailed(str(reply[1]))
        w.description = str(reply[1])
        log.info("check worker %s ready (pid %d): %s", name, proc.pid, reply[1])
        return w

    def _replace(self, dead: _Worker) -> None:
        async def respawn() -> None:
            delay = 0.5
            while not self._closing:
                try:
                    new = await self._spawn(dead.name + "r")
                except ReloadFailed as exc:
                    log.error("check worker %s could not be replaced: %s", dead.name, exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 60.0)
                    continue
                if self._closing or dead not in self._workers:
                    new.kill()
                    return
                self._workers[self._workers.index(dead)] = new
                self._dispatch()
                return

        task = asyncio.get_running_loop().create_task(respawn())
        self._respawns.add(task)
        task.add_done_callback(self._respawns.discard)


def _expire(job: _Job) -> None:
    if not job.future.done():
        job.future.set_exception(CheckFailed("no checker answered in time"))
