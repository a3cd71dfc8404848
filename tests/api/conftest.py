"""Fixtures for the HTTP API tests: a config in tmp_path, tokens, an app."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from api_support import TcpListener, auth, write_config
from fastapi.testclient import TestClient

from sendguard.api import ApiService, create_app
from sendguard.api.tokens import Role, add_token
from sendguard.config import Config, load_config
from sendguard.guard import Guard


@pytest.fixture
def next_hop() -> Iterator[TcpListener]:
    hop = TcpListener()
    yield hop
    hop.close()


@pytest.fixture
def config_path(tmp_path: Path, next_hop: TcpListener) -> Path:
    return write_config(tmp_path, next_hop.port)


@pytest.fixture
def config(config_path: Path) -> Config:
    return load_config(config_path, environ={})


@pytest.fixture
def tokens(config: Config) -> dict[str, str]:
    """A check token and an admin token, added as `sendguard api-token add` does."""
    return {
        "check": add_token(config.api.tokens_file, "practice-system"),
        "admin": add_token(config.api.tokens_file, "ops", Role.ADMIN),
    }


@pytest.fixture
def service(config: Config) -> ApiService:
    return ApiService(config, Guard.load(config))


@pytest.fixture
def client(service: ApiService, tokens: dict[str, str]) -> Iterator[TestClient]:
    """A TestClient whose requests carry the check token."""
    with TestClient(create_app(service), headers=auth(tokens["check"])) as c:
        yield c


@pytest.fixture
def client_allowing(
    tmp_path: Path, next_hop: TcpListener, tokens: dict[str, str]
) -> Iterator[Callable[..., TestClient]]:
    """`client_allowing("127.0.0.0/8", ...)`: a client as `client` (same
    folder, tokens and quarantine) on a config whose `[api]
    callback_networks` lists those networks."""
    with contextlib.ExitStack() as stack:

        def make(*networks: str) -> TestClient:
            path = write_config(tmp_path, next_hop.port, callback_networks=list(networks))
            config = load_config(path, environ={})
            app = create_app(ApiService(config, Guard.load(config)))
            return stack.enter_context(TestClient(app, headers=auth(tokens["check"])))

        yield make
