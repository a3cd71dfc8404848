"""Schemathesis against the app's own /openapi.json: no 5xx, responses as documented.

In-process (ASGI), every operation of the published schema, with a bounded
number of generated requests each (valid ones, and for the check endpoints
invalid ones too), so it stays well under a minute. Requests carry an
admin token, which may call every endpoint.

Schemathesis's pytest plugin does not load under this pytest, so the
operations are driven through its Python API with Hypothesis directly.
"""

from __future__ import annotations

import socket
from ipaddress import ip_network
from typing import Any

import pytest
import schemathesis
from api_support import auth
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

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
        # Where a callback may go is not in the schema (it takes a DNS lookup
        # and the server's [api] callback_networks): a schema-valid URL may be
        # refused, at body.callback_url and nowhere else.
        callback = isinstance(case.body, dict) and case.body.get("callback_url") is not None
        excluded = [positive_data_acceptance] if callback else []
        response = case.call_and_validate(headers=headers, excluded_checks=excluded)
        if callback and mode is GenerationMode.POSITIVE and response.status_code == 422:
            assert [e["loc"] for e in response.json()["detail"]] == [["body", "callback_url"]]
        seen.add(response.status_code)
        assert response.status_code < 500 or (op.path == "/healthz" and response.status_code == 503)

    run()
    return seen


@pytest.mark.parametrize("mode", list(EXAMPLES))
def test_the_api_keeps_to_its_schema(
    service: ApiService,
    tokens: dict[str, str],
    mode: GenerationMode,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Invalid strings are generated far past their maxLength; let validation answer
    # them (422) rather than the body limit (413, tested on its own elsewhere).
    service.config.api.max_body = 64 * 1024 * 1024
    # Callbacks anywhere, every name resolving to a documentation address, so
    # that generated callback URLs reach the checks (the limits have their own
    # tests in test_api_callbacks.py).
    service.config.api.callback_networks = [ip_network("0.0.0.0/0"), ip_network("::/0")]
    answer = [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("192.0.2.1", 0))]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *_, **__: answer)
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
