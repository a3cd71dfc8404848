"""Check worker processes: verdicts, time limits, crashes, blue-green reload."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from support import DEMO, message

from sendguard import Guard
from sendguard.config import Config
from sendguard.core.models import Action
from sendguard.relay import CheckFailed, ReloadFailed, WorkerPool


def config_for(directory: Path) -> Config:
    return Config.model_validate({"directory": {"sources": [str(directory)]}})


def heavy_message(parts: int = 4000) -> bytes:
    """Slow to parse: thousands of MIME parts."""
    body = "".join(
        f"--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; "
        f'filename="part{i}.txt"\r\n\r\nline {i}\r\n'
        for i in range(parts)
    )
    head = (
        "From: a@nhs.net\r\nTo: jane.smith@gmail.com\r\nSubject: many\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
    )
    return (head + body + "--b--\r\n").encode()


MakePool = Callable[..., "WorkerPool"]


@pytest.fixture
async def pools() -> AsyncIterator[list[WorkerPool]]:
    made: list[WorkerPool] = []
    yield made
    for p in made:
        await p.close()


async def start(pools: list[WorkerPool], config: Config, **kw: float) -> WorkerPool:
    pool = WorkerPool(config, size=int(kw.pop("size", 1)), timeout=kw.pop("timeout", 10.0), **kw)
    pools.append(pool)
    await pool.start()
    return pool


def worker_pids(pool: WorkerPool) -> list[int]:
    return [w.proc.pid for w in pool._workers]


async def test_workers_give_the_same_verdicts_as_the_guard(pools: list[WorkerPool]) -> None:
    pool = await start(pools, config_for(DEMO), size=2)
    assert "directory entries" in pool.description
    guard = Guard.load(directory=DEMO)
    raw = message(to="Jane Smith <jane.smith@gmial.com>")
    v = await pool.check_message(raw, ["jane.smith@gmial.com"], "a@nhs.net")
    assert v == guard.check_message(
        raw, envelope_recipients=["jane.smith@gmial.com"], sender="a@nhs.net"
    )
    assert v.action is Action.HOLD
    bad = await pool.check_recipient("jane.smith@gmail", "a@nhs.net")
    assert bad.action is Action.REJECT
    assert bad.codes == ("email.invalid",)
    ok = await pool.check_recipient("jane.smith@gmail.com", "a@nhs.net")
    assert ok.action is Action.ALLOW


async def test_a_check_over_the_time_limit_fails_and_the_worker_lives_on(
    pools: list[WorkerPool],
) -> None:
    pool = await start(pools, config_for(DEMO), timeout=0.05)
    pid = worker_pids(pool)
    with pytest.raises(CheckFailed, match="no verdict within"):
        await pool.check_message(heavy_message(), ["jane.smith@gmail.com"], "a@nhs.net")
    ok = await pool.check_recipient("jane.smith@gmail.com", "")
    assert ok.action is Action.ALLOW
    assert worker_pids(pool) == pid  # interrupted inside, not killed


async def test_a_silent_worker_is_killed_and_replaced(pools: list[WorkerPool]) -> None:
    pool = await start(pools, config_for(DEMO), timeout=0.3, grace=0.3)
    (pid,) = worker_pids(pool)
    os.kill(pid, signal.SIGSTOP)
    with pytest.raises(CheckFailed, match="timed out"):
        await pool.check_recipient("jane.smith@gmail.com", "")
    ok = await pool.check_recipient("jane.smith@gmail.com", "")  # waits for the replacement
    assert ok.action is Action.ALLOW
    assert worker_pids(pool) != [pid]


async def test_a_worker_that_died_while_idle_costs_no_check(pools: list[WorkerPool]) -> None:
    pool = await start(pools, config_for(DEMO))
    (pid,) = worker_pids(pool)
    os.kill(pid, signal.SIGKILL)
    pool._workers[0].proc.wait(10)
    ok = await pool.check_recipient("jane.smith@gmail.com", "")
    assert ok.action is Action.ALLOW
    assert worker_pids(pool) != [pid]


async def test_reload_switches_to_new_workers_or_keeps_the_old(
    pools: list[WorkerPool], tmp_path: Path
) -> None:
    directory = tmp_path / "directory.json"
    shutil.copy(DEMO, directory)
    pool = await start(pools, config_for(directory))
    before = worker_pids(pool)
    described = await pool.reload()
    assert described == pool.description
    after = worker_pids(pool)
    assert set(after).isdisjoint(before)
    directory.write_text("{ not json", encoding="utf-8")
    with pytest.raises(ReloadFailed):
        await pool.reload()
    assert worker_pids(pool) == after
    ok = await pool.check_recipient("jane.smith@gmail.com", "")
    assert ok.action is Action.ALLOW


async def test_a_broken_directory_at_start_is_reported(
    pools: list[WorkerPool], tmp_path: Path
) -> None:
    directory = tmp_path / "directory.json"
    directory.write_text("[1, 2", encoding="utf-8")
    pool = WorkerPool(config_for(directory), size=1, timeout=5)
    with pytest.raises(ReloadFailed, match=r"directory\.json"):
        await pool.start()
    await pool.close()


async def test_closing_fails_waiting_checks(pools: list[WorkerPool]) -> None:
    pool = await start(pools, config_for(DEMO))
    await pool.close()
    with pytest.raises(CheckFailed, match="stopping"):
        await pool.check_recipient("jane.smith@gmail.com", "")
