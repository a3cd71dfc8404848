"""`sendguard serve`'s web parts: a quarantine that is down, a store that fails."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support import Sink
from webkit import login

from sendguard.api import webserve
from sendguard.api.webapp import Unavailable
from sendguard.store.base import Store


async def test_the_ui_waits_for_a_quarantine_that_cannot_be_opened(
    tmp_path: Path, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    from webkit import write_config

    monkeypatch.setattr(webserve, "RETRY", 0.05)
    blocker = tmp_path / "var"
    cfg = write_config(tmp_path, sink.port)
    blocker.rmdir()
    blocker.write_text("a file where the quarantine's folder should be")
    rt = await webserve.WebRuntime.start(cfg)
    try:
        assert not rt.context.ready
        with pytest.raises(Unavailable):
            _ = rt.context.store
        blocker.unlink()
        blocker.mkdir()
        for _ in range(100):
            if rt.context.ready:
                break
            await asyncio.sleep(0.02)
        assert rt.context.ready
        assert rt.review is not None
    finally:
        await rt.stop()


def test_a_failing_store_gives_a_503_page(client: TestClient, store: Store) -> None:
    login(client, "rita")
    store.close()
    r = client.get("/held")
    assert r.status_code == 503
    assert "cannot be reached" in r.text


async def test_a_local_client_cannot_pose_as_a_trusted_proxy(tmp_path: Path, sink: Sink) -> None:
    """Only [web] trusted_proxies may name the user or the client address: a
    loopback client's X-Forwarded-For must not make it look like one."""
    import httpx
    from webkit import add_users, write_config

    from sendguard.api.server import ApiServer
    from sendguard.store.sqlite import SqliteStore

    extra = 'trusted_user_header = "X-Remote-User"\ntrusted_proxies = ["10.9.9.9/32"]'
    cfg = write_config(tmp_path, sink.port, web_extra=extra)
    with SqliteStore(tmp_path / "var" / "quarantine.db") as s:
        add_users(s)
    server = ApiServer(cfg, listen="127.0.0.1:0")
    await server.start()
    try:
        host, port = server.address
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as c:
            forged = {"X-Remote-User": "adam", "X-Forwarded-For": "10.9.9.9"}
            r = await c.get("/admin/users", headers=forged, follow_redirects=False)
    finally:
        await server.stop()
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login")
