"""Helpers for the HTTP API tests: configs, a next hop stub, live servers.

Everything listens on 127.0.0.1 on free ports, and every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from sendguard.api.server import ApiServer
from sendguard.config import Config, load_config

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "demo" / "directory.json"
WAIT = 30.0

# Data from the demo directory, and data of the kind a practice system sends:
# none of it may ever reach a log line.
JANE_NHS = "9434765919"
PRACTICE_ODS = "B82005"
PRACTICE_FAX = "0113 496 0000"


def auth(token: str) -> dict[str, str]:
    """The header that carries an API token. Tests import it from here, not
    from `conftest`, a name several test folders use."""
    return {"Authorization": f"Bearer {token}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TcpListener:
    """A next hop that accepts TCP connections and closes them (enough for
    /healthz, which only connects)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(WAIT)
        self.sock.close()


def write_config(folder: Path, next_hop_port: int, extra: str = "", **api: Any) -> Path:
    """A config on the demo directory (or `sources`), quarantine and tokens in `folder`."""
    sources = api.pop("sources", [str(DEMO)])
    lines = [f"{k} = {json.dumps(v)}" for k, v in api.items()]
    text = f"""
[directory]
sources = {json.dumps([str(s) for s in sources])}

[rules]
local = ["local.d"]

[relay]
listen = "127.0.0.1:0"
hostname = "relay.test"
next_hop = "127.0.0.1:{next_hop_port}"
notify = false
check_workers = 0

[store]
url = "sqlite:///var/quarantine.db"

[api]
listen = "127.0.0.1:0"
tokens_file = "api-tokens.toml"
{chr(10).join(lines)}
{extra}
"""
    (folder / "local.d").mkdir(exist_ok=True)
    (folder / "var").mkdir(exist_ok=True)
    path = folder / "sendguard.toml"
    path.write_text(text, encoding="utf-8")
    return path


class LiveServer:
    """`ApiServer` (real uvicorn on a real socket) on its own event loop thread."""

    def __init__(self, config: Config | Path, **kwargs: Any) -> None:
        cfg = config if isinstance(config, Config) else load_config(config, environ={})
        self.server = ApiServer(cfg, **kwargs)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(WAIT)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(WAIT)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(WAIT)
        self.loop.close()

    @property
    def url(self) -> str:
        host, port = self.server.address
        return f"http://{host}:{port}"

    def call(self, coro: Any) -> Any:
        """Run a coroutine on the server's loop (e.g. a reload) and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(WAIT)


class ServeProcess:
    """`sendguard serve` as a real process; stderr (JSON lines) is collected."""

    def __init__(self, config: Path, *args: str, env: dict[str, str] | None = None) -> None:
        cmd = [
            sys.executable,
            "-c",
            "import sys; from sendguard.cli import main; sys.exit(main())",
            "serve",
            "-c",
            str(config),
            *args,
        ]
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.started = self.wait_event("listening")
        self.url = f"http://127.0.0.1:{self.started['port']}"

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))
            self._queue.put(line)

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in list(self.lines):
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out

    def wait_event(self, event: str, after: int = 0, timeout: float = WAIT) -> dict[str, Any]:
        """The first log record named `event` from line `after` on."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for rec in self.events()[after:]:
                if rec.get("event") == event:
                    return rec
            if self.proc.poll() is not None and self._queue.empty():
                break
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=0.1)
        raise AssertionError(f"no {event!r} in the log:\n" + "\n".join(self.lines[-30:]))

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def stop(self) -> str:
        """SIGTERM, wait, and the whole of stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(WAIT)
        self._reader.join(WAIT)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        return "\n".join(self.lines)
