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
    from conftest import write_config

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
