"""What a check is, and the table of all of them.

A check is a pure function `(context, params, state) -> findings`: one
concern, no I/O, no clock. `prepare(directory, params)` may build state
once per directory load (e.g. the list of popular domains), so nothing
per-send scans the directory. Rules name checks by `name`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from sendguard.core.directory import Directory
from sendguard.core.models import Channel, Finding

__all__ = ["CHECKS", "CheckSpec", "Params", "register"]


class Params(BaseModel):
    """Base of every check's parameters: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


P = TypeVar("P", bound=Params)
C = TypeVar("C")


@dataclass(frozen=True, slots=True)
class CheckSpec(Generic[C, P]):
    name: str
    channel: Channel | None  # None: every channel
    params: type[P]
    codes: tuple[str, ...]
    description: str
    run: Callable[[C, P, Any], Sequence[Finding]]
    prepare: Callable[[Directory, P], Any] | None = None


CHECKS: dict[str, CheckSpec[Any, Any]] = {}


def register(
    name: str,
    channel: Channel | None,
    params: type[P],
    codes: tuple[str, ...],
    prepare: Callable[[Directory, P], Any] | None = None,
) -> Callable[[Callable[[C, P, Any], Sequence[Finding]]], Callable[[C, P, Any], Sequence[Finding]]]:
    """Add a check to the table under `name` (its docstring describes it)."""

    def deco(
        fn: Callable[[C, P, Any], Sequence[Finding]],
    ) -> Callable[[C, P, Any], Sequence[Finding]]:
        if name in CHECKS:
            raise ValueError(f"check {name} registered twice")
        summary = " ".join((fn.__doc__ or "").strip().split("\n\n")[0].split())
        CHECKS[name] = CheckSpec(name, channel, params, codes, summary, fn, prepare)
        return fn

    return deco
