"""Where the relay's checks run, behind one small interface.

Parsing and checking a message is CPU work (about a millisecond or two in
Python). The SMTP event loop must never wait on it unboundedly, so every
check goes through a `Checker` with a deadline:

- `InlineChecker`: a `Guard` in the relay process, checks in a small thread
  pool. Simple, one copy of the directory; but checks share the interpreter
  (and its lock) with the SMTP loop.
- `WorkerPool` (relay/workers.py): checks in separate worker processes, so
  on a machine with spare cores they run beside the SMTP loop, not in turn
  with it. A worker that hangs is killed and replaced.

Either raises `CheckFailed` when no verdict came in time; the relay then
holds the message (fail safe). `reload()` re-reads the directory and rules
and raises `ReloadFailed` (keeping the previous ones) if they are broken.
"""

from __future__ import annotations

import abc
import asyncio
import functools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from sendguard.core.models import Action, Verdict
from sendguard.guard import Guard

__all__ = [
    "CheckFailed",
    "Checker",
    "InlineChecker",
    "RecipientDecision",
    "ReloadFailed",
    "decide_recipient",
    "describe_guard",
]

T = TypeVar("T")


class CheckFailed(Exception):
    """No verdict: the check timed out, crashed, or no checker was available."""


class ReloadFailed(Exception):
    """The new directory or rules could not be loaded; the old ones stay."""


@dataclass(frozen=True, slots=True)
class RecipientDecision:
    """What the recipient-only check at RCPT TO says about one address.

    `codes`: the finding codes behind `action` (the ones that would refuse
    the recipient when it is reject).
    """

    action: Action
    codes: tuple[str, ...] = ()


def decide_recipient(guard: Guard, address: str, sender: str) -> RecipientDecision:
    """Check one envelope recipient alone (no message yet)."""
    v = guard.check_email([address], sender=sender)
    codes = tuple(sorted({f.code for f in v.findings if not f.monitor and f.action is v.action}))
    return RecipientDecision(v.action, codes)


def describe_guard(guard: Guard) -> str:
    """A one-line, data-free description of what a Guard has loaded."""
    return f"{len(guard.directory)} directory entries, {len(guard.rules.rules)} rules"


class Checker(abc.ABC):
    """Runs the engine for the relay, with a deadline on every call."""

    async def start(self) -> str:
        """Load the directory and rules; return a description of them."""
        return ""

    @abc.abstractmethod
    async def check_recipient(self, address: str, sender: str) -> RecipientDecision:
        """The recipient-only check for RCPT TO; raises CheckFailed."""

    @abc.abstractmethod
    async def check_message(self, raw: bytes, recipients: Sequence[str], sender: str) -> Verdict:
        """Parse and check a whole message; raises CheckFailed."""

    @abc.abstractmethod
    async def reload(self) -> str:
        """Re-read directory and rules; a description, or ReloadFailed."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop; checks in flight may fail with CheckFailed."""


class InlineChecker(Checker):
    """Checks in threads of the relay process, on a given `Guard`."""

    def __init__(self, guard: Guard, *, timeout: float, threads: int = 2) -> None:
        self.guard = guard
        self._timeout = timeout
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sendguard-check")
        self._reloading = False

    async def start(self) -> str:
        return describe_guard(self.guard)

    async def _run(self, fn: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(loop.run_in_executor(self._pool, fn), self._timeout)
        except TimeoutError:
            raise CheckFailed(f"no verdict within {self._timeout:g} s") from None
        except RuntimeError as exc:  # the pool is shut down
            raise CheckFailed(f"the checker is stopped ({exc})") from exc
        except Exception as exc:
            raise CheckFailed(f"the check failed ({type(exc).__name__})") from exc

    async def check_recipient(self, address: str, sender: str) -> RecipientDecision:
        return await self._run(functools.partial(decide_recipient, self.guard, address, sender))

    async def check_message(self, raw: bytes, recipients: Sequence[str], sender: str) -> Verdict:
        return await self._run(
            functools.partial(
                self.guard.check_message,
                raw,
                envelope_recipients=list(recipients),
                sender=sender,
            )
        )

    async def reload(self) -> str:
        if self._reloading:
            raise ReloadFailed("a reload is already running")
        self._reloading = True
        try:
            await asyncio.to_thread(self.guard.reload)
        except Exception as exc:
            raise ReloadFailed(str(exc) or type(exc).__name__) from exc
        finally:
            self._reloading = False
        return describe_guard(self.guard)

    async def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
