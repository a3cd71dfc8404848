"""Schemathesis against the app's own /openapi.json: no 5xx, responses as documented.

In-process (ASGI), every operation of the published schema, with a bounded
number of generated requests each (valid ones, and for the check endpoints
invalid ones too), so it stays well under a minute. Requests carry an
admin token, which may call every endpoint.

Schemathesis's pytest plugin does not load under this pytest, so the
operations are driven through its Python API with Hypothesis directly.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from api_support import auth
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode

from sendguard.api import ApiService, create_app

EXAMPLES = {GenerationMode.POSITIVE: 40, GenerationMode.NEGATIVE: 15}
CHECKS = ("/v1/check/email", "/v1/check/fax", "/v1/check/letter")


def _exercise(op: Any, mode: GenerationMode, headers: dict[str, str]) -> set[int]:
    """Generated requests to one operation, each validated; the statuses seen."""
    seen: set[int] = set()

    @given(case=op.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES[mode],
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        response = case.call_and_validate(headers=headers)
        seen.add(response.status_code)
        assert response.status_code < 500 or (op.path == "/healthz" and response.status_code == 503)

    run()
    return seen


@pytest.mark.parametrize("mode", list(EXAMPLES))
def test_the_api_keeps_to_its_schema(
    service: ApiService, tokens: dict[str, str], mode: GenerationMode
) -> None:
    # Invalid strings are generated far past their maxLength; let validation answer
    # them (422) rather than the body limit (413, tested on its own elsewhere).
    service.config.api.max_body = 64 * 1024 * 1024
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(service))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {*CHECKS, "/healthz", "/metrics", "/v1/admin/reload"} <= {op.path for op in operations}
    seen: dict[str, set[int]] = {}
    for op in operations:
        if mode is GenerationMode.NEGATIVE and op.path not in CHECKS:
            continue  # nothing there to get wrong: no parameters, no body
        seen[op.path] = _exercise(op, mode, auth(tokens["admin"]))
    for path in CHECKS:  # the generated requests did get through to the checks, or were refused
        assert (200 if mode is GenerationMode.POSITIVE else 422) in seen[path], (path, seen[path])
