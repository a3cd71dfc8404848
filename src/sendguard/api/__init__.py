"""The HTTP check API (`sendguard serve`): FastAPI under uvicorn.

    from sendguard.api import create_app, ApiService
    app = create_app(ApiService(config, guard))

Importing this package loads no web framework: `create_app`, `ApiService`
and `ApiServer` are imported on first use, so the relay and the CLI can
use `sendguard.api.metrics` and `sendguard.api.tokens` on their own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sendguard.api.app import create_app
    from sendguard.api.server import ApiServer, ServeError
    from sendguard.api.service import ApiService

__all__ = ["ApiServer", "ApiService", "ServeError", "create_app"]

_WHERE = {
    "create_app": "sendguard.api.app",
    "ApiServer": "sendguard.api.server",
    "ServeError": "sendguard.api.server",
    "ApiService": "sendguard.api.service",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
