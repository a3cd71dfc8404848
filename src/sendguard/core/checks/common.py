"""Checks that apply to every channel."""

from __future__ import annotations

from typing import Any

from sendguard.core.checks.base import Params, register
from sendguard.core.context import SendContext
from sendguard.core.models import Finding, Severity

__all__: list[str] = []


class NoParams(Params):
    pass


@register("send.unknown_patient", None, NoParams, ("send.unknown_patient",))
def unknown_patient(ctx: SendContext, p: NoParams, state: Any) -> list[Finding]:
    """The caller named a patient the directory does not hold, so the
    recipients cannot be checked against that patient's contacts."""
    return [
        Finding(
            code="send.unknown_patient",
            severity=Severity.MEDIUM,
            message=f"the patient {ref!r} is not in the directory",
        )
        for ref in ctx.unknown_patient_refs
    ]
