"""Helpers for the HTTP API tests: configs, a next hop stub, live servers.

Everything listens on 127.0.0.1 on free ports, and every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "tests" / "relay") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests" / "relay"))

from support import DEMO, WAIT, CliProcess  # noqa: E402
from support import free_port as free_port  # noqa: E402  (re-exported for the tests here)

from sendguard.api.server import ApiServer  # noqa: E402
from sendguard.config import Config, load_config  # noqa: E402

# Data from the demo directory, and data of the kind a practice system sends:
# none of it may ever reach a log line.
JANE_NHS = "9434765919"
PRACTICE_ODS = "B82005"
PRACTICE_FAX = "0113 496 0000"


def auth(token: str) -> dict[str, str]:
    """The header that carries an API token. Tests import it from here, not
    from `conftest`, a name several test folders use."""
    return {"Authorization": f"Bearer {token}"}


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


class ServeProcess(CliProcess):
    """`sendguard serve` as a real process; stderr (JSON lines) is collected."""

    def __init__(self, config: Path, *args: str, env: dict[str, str] | None = None) -> None:
        super().__init__("serve", "-c", str(config), *args, env=env)
        self.started = self.wait_event("listening")
        self.url = f"http://127.0.0.1:{self.started['port']}"

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in list(self.lines):
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out

    def wait_event(self, event: str, after: int = 0, timeout: float = WAIT) -> dict[str, Any]:
        """The first log record named `event` from line `after` on."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for rec in self.events()[after:]:
                    if rec.get("event") == event:
                        return rec
                left = deadline - time.monotonic()
                if left <= 0 or not self._reader.is_alive():
                    break
                self._cond.wait(min(left, 0.1))
        raise AssertionError(f"no {event!r} in the log:\n" + "\n".join(self.lines[-30:]))

    def stop(self) -> str:
        """SIGTERM, wait, and the whole of stderr."""
        self.terminate()
        return "\n".join(self.lines)
