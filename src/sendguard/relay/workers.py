"""Checks in worker processes beside the SMTP event loop.

Each worker (relay/worker.py) loads its own `Guard` from the directory and
rules configuration and answers one job at a time over a socket pair; the
event loop only writes a frame and reads one back, so parsing and checking
use another core. Jobs wait in one queue that every worker takes from.

Failure handling, all ending in `CheckFailed` for the job concerned (the
relay then holds the message):
- a check over the time limit is interrupted inside the worker (SIGALRM);
- a worker that does not answer within the limit plus a grace period, or
  dies, is killed and replaced (with growing delays if it keeps failing);
- a job nobody took in time fails without waiting further.

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


@dataclass(eq=False)
class _Job:
    frame: tuple[Any, ...]
    future: asyncio.Future[Any]


@dataclass(eq=False)
class _Worker:
    name: str
    proc: subprocess.Popen[bytes]
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    description: str = ""
    busy: bool = False
    retiring: bool = False
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    async def send(self, obj: Any) -> None:
        self.writer.write(encode(obj))
        await self.writer.drain()

    async def recv(self) -> Any:
        head = await self.reader.readexactly(HEADER.size)
        return pickle.loads(await self.reader.readexactly(HEADER.unpack(head)[0]))

    def kill(self) -> None:
        self.writer.close()
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
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._workers: list[_Worker] = []
        self._generation = 0
        self._counter = 0
        self._closing = False
        self._reloading = False
        self._respawns: set[asyncio.Task[None]] = set()
        self.description = ""

    # -- lifecycle ---------------------------------------------------------
    async def start(self) -> str:
        self._workers, self.description = await self._spawn_set()
        for w in self._workers:
            self._run(w)
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
        for w in new:
            self._run(w)
        for w in old:
            self._retire(w)
        self.description = description
        return description

    async def close(self) -> None:
        self._closing = True
        for t in self._respawns:
            t.cancel()
        for w in self._workers:
            self._retire(w)
        tasks = [w.task for w in self._workers if w.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=self._timeout + self._grace)
        for w in self._workers:
            w.kill()
        while not self._queue.empty():
            job = self._queue.get_nowait()
            if not job.future.done():
                job.future.set_exception(CheckFailed("the relay is stopping"))

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
        self._counter += 1
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        job = _Job((kind, self._counter, *args), fut)
        self._queue.put_nowait(job)
        try:
            # queueing plus the check itself: generous, since a queue behind a
            # replaced worker can take a while; the check alone is limited in the worker
            return await asyncio.wait_for(fut, 3 * self._timeout + self._grace)
        except TimeoutError:
            raise CheckFailed("no checker answered in time") from None

    # -- workers -----------------------------------------------------------
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
        parent, child = socket.socketpair()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "sendguard.relay.worker", str(child.fileno())],
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
            )
        finally:
            child.close()
        reader, writer = await asyncio.open_connection(sock=parent, limit=1 << 20)
        w = _Worker(name, proc, reader, writer)
        try:
            await w.send(("config", self._config_data, self._timeout))
            reply = await asyncio.wait_for(w.recv(), _START_TIMEOUT)
        except (OSError, EOFError, asyncio.IncompleteReadError, TimeoutError) as exc:
            w.kill()
            raise ReloadFailed(f"check worker {name} did not start ({type(exc).__name__})") from exc
        if reply[0] != "ready":
            w.kill()
            raise ReloadFailed(str(reply[1]))
        w.description = str(reply[1])
        log.info("check worker %s ready (pid %d): %s", name, proc.pid, reply[1])
        return w

    def _run(self, w: _Worker) -> None:
        w.task = asyncio.create_task(self._serve(w), name=f"sendguard-check-{w.name}")

    def _retire(self, w: _Worker) -> None:
        w.retiring = True
        if not w.busy and w.task is not None:
            w.task.cancel()

    async def _serve(self, w: _Worker) -> None:
        """Feed one worker jobs from the queue until it retires or fails."""
        failed = False
        try:
            while not w.retiring:
                job = await self._queue.get()
                if job.future.done():  # the caller gave up waiting
                    continue
                if w.proc.poll() is not None:  # died while idle: not this job's fault
                    self._queue.put_nowait(job)
                    log.error("check worker %s exited; replacing it", w.name)
                    failed = True
                    return
                w.busy = True
                try:
                    await w.send(job.frame)
                    reply = await asyncio.wait_for(w.recv(), self._timeout + self._grace)
                except (OSError, EOFError, asyncio.IncompleteReadError, TimeoutError) as exc:
                    reason = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
                    log.error("check worker %s failed (%s); replacing it", w.name, reason)
                    if not job.future.done():
                        job.future.set_exception(CheckFailed(f"check worker {reason}"))
                    failed = True
                    return
                finally:
                    w.busy = False
                if job.future.done():
                    continue
                if reply[0] == "ok":
                    job.future.set_result(reply[2])
                else:
                    job.future.set_exception(CheckFailed(str(reply[2])))
        except asyncio.CancelledError:
            pass
        finally:
            if failed or w.retiring:
                w.kill()
            if failed and not self._closing and w in self._workers:
                self._replace(w)

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
                self._run(new)
                return

        task = asyncio.create_task(respawn())
        self._respawns.add(task)
        task.add_done_callback(self._respawns.discard)
