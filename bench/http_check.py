"""HTTP check API throughput and latency, beside the same checks through the library.

    python -m bench.http_check                    # 1 M entries, 20 000 requests, 8 in flight
    python -m bench.http_check --size 100000 --requests 5000 --connections 8
    python -m bench.http_check --log-level WARNING  # no per-request log lines

The directory is bench/generate.py's (loaded from its snapshot, as in
bench/latency.py) and the sends are the latency benchmark's mixed query set
(email typos and correct addresses, faxes, letters). In one run it

  (a) checks every send through the library in this process (`Guard.check_*`,
      one at a time): checks/s and p50/p99 per call;
  (b) starts `sendguard serve` (a real process, real uvicorn, token auth,
      body limit, JSON logs at --log-level) on the same snapshot and sends the
      same checks over HTTP/1.1 keep-alive: first one at a time from
      `httpx.AsyncClient` (the latency one practice system sees), then with
      `--connections` requests in flight, from `wrk` if it is installed (a C
      client, which leaves the server most of the CPU) or from httpx:
      checks/s and p50/p99 per request as the client sees them;

then prints the ratio HTTP / library, the server's CPU per request, and how
many HTTP verdicts differed from the library's (expected 0). Faxes and
letters are sent with `"hold": false` (advice only, as the library gives):
nothing is kept in the quarantine and every `hold_id` is null. On 2 cores the
client and server share the machine; httpx itself costs more CPU per
request than the server, so with httpx the loaded figure measures the
client more than sendguard.

Measurements only: nothing here asserts a number.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.generate import AS_OF, OUT_DIR, directory_file  # noqa: E402
from bench.latency import prepare_queries  # noqa: E402

__all__ = ["main", "measure_http", "measure_library", "percentiles", "run"]

PATHS = {"email": "/v1/check/email", "fax": "/v1/check/fax", "letter": "/v1/check/letter"}


def _body(q: dict[str, Any]) -> str:
    """The request body of one send. Faxes and letters say `"hold": false`:
    advice only, as the library gives, so that a run neither fills the
    quarantine nor answers held sends with a hold id the library has not."""
    args = q["args"] if q["channel"] == "email" else {**q["args"], "hold": False}
    return json.dumps(args)


def percentiles(ns: list[int]) -> dict[str, float]:
    """n, p50, p99 and max in microseconds."""
    if not ns:
        return {"n": 0, "p50_us": 0.0, "p99_us": 0.0, "max_us": 0.0}
    s = sorted(ns)

    def q(p: float) -> float:
        return s[min(len(s) - 1, int(p * len(s)))] / 1000

    return {"n": len(s), "p50_us": q(0.5), "p99_us": q(0.99), "max_us": s[-1] / 1000}


def load_queries(size: int, seed: int, out_dir: Path, count: int) -> tuple[Path, list[Any]]:
    """The directory file and the latency benchmark's sends (built once, then reused)."""
    qpath = out_dir / f"latency-queries-{size}-s{seed}.json"
    path = directory_file(size, seed, out_dir)
    if not (qpath.exists() and path.exists()):
        path, qpath, _ = prepare_queries(size, seed, max(count, 3000), out_dir)
    data = json.loads(qpath.read_text())
    queries = data["queries"]
    if not queries:
        raise SystemExit(f"{qpath}: no queries")
    reps = -(-count // len(queries))
    return path, (_interleave(queries) * reps)[:count]


def _interleave(queries: list[Any]) -> list[Any]:
    """Each channel spread evenly through the list: the query file is grouped
    by kind, and any prefix (a short run, the one-at-a-time phase) should
    mix email, fax and letter as the whole does."""
    by_channel: dict[str, list[Any]] = {}
    for q in queries:
        by_channel.setdefault(q["channel"], []).append(q)
    keyed = [
        ((i + 0.5) / len(qs), n, i)
        for n, qs in enumerate(by_channel.values())
        for i in range(len(qs))
    ]
    groups = list(by_channel.values())
    return [groups[n][i] for _, n, i in sorted(keyed)]


def _config(work: Path, directory: Path, snapshot: Path, max_body: int) -> Path:
    cfg = work / "sendguard.toml"
    cfg.write_text(
        f"""
[directory]
sources = [{json.dumps(str(directory))}]
snapshot = {json.dumps(str(snapshot))}

[store]
url = "sqlite:///{work}/quarantine.db"

[api]
listen = "127.0.0.1:0"
tokens_file = "{work}/api-tokens.toml"
max_body = {max_body}
"""
    )
    return cfg


def _guard(cfg: Path) -> Any:
    from sendguard import Guard
    from sendguard.config import load_config

    return Guard.load(load_config(cfg, environ={}), as_of=AS_OF)


def measure_library(guard: Any, queries: list[Any]) -> dict[str, Any]:
    """Every send through the library, one after the other."""
    call = {"email": guard.check_email, "fax": guard.check_fax, "letter": guard.check_letter}
    for q in queries[:200]:  # warm-up: lazy state, caches
        call[q["channel"]](**q["args"])
    perf = time.perf_counter_ns
    times: list[int] = []
    verdicts: list[str] = []
    t0 = perf()
    for q in queries:
        t = perf()
        v = call[q["channel"]](**q["args"])
        times.append(perf() - t)
        verdicts.append(v.model_dump_json())
    wall = (perf() - t0) / 1e9
    return {
        **percentiles(times),
        "checks_per_s": len(queries) / wall,
        "seconds": wall,
        "verdicts": verdicts,
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`sendguard serve` in a child process; its log is drained in a thread."""

    def __init__(self, cfg: Path, log_level: str) -> None:
        self.port = _free_port()
        cmd = [
            sys.executable,
            "-c",
            "import sys; from sendguard.cli import main; sys.exit(main())",
            "serve",
            "-c",
            str(cfg),
            "--listen",
            f"127.0.0.1:{self.port}",
            "--log-level",
            log_level,
        ]
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + str(ROOT)}
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
        self.lines = 0
        self._drain = threading.Thread(target=self._read, daemon=True)
        self._drain.start()
        deadline = time.monotonic() + 300
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sendguard serve exited with {self.proc.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("sendguard serve did not start listening") from None
                time.sleep(0.05)

    def cpu_seconds(self) -> float:
        """User + system CPU the server process has used so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for _ in self.proc.stderr:
            self.lines += 1

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(30)
        self._drain.join(10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


async def _drive_httpx(
    url: str, token: str, queries: list[Any], connections: int
) -> tuple[list[int], list[str], float]:
    """Send every query, `connections` at a time over keep-alive connections:
    (per-request times in ns, response bodies, wall seconds)."""
    import httpx

    bodies = [(PATHS[q["channel"]], _body(q).encode()) for q in queries]
    times = [0] * len(bodies)
    answers = [""] * len(bodies)
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits) as client:
        for path, body in bodies[: min(100, len(bodies))]:  # warm-up, connections opened
            (await client.post(path, content=body)).raise_for_status()
        next_i = 0
        perf = time.perf_counter_ns

        async def worker() -> None:
            nonlocal next_i
            while next_i < len(bodies):
                i = next_i
                next_i += 1
                path, body = bodies[i]
                t = perf()
                r = await client.post(path, content=body)
                times[i] = perf() - t
                if r.status_code != 200:
                    raise RuntimeError(f"{path}: HTTP {r.status_code}: {r.text[:200]}")
                answers[i] = r.text

        t0 = perf()
        await asyncio.gather(*(worker() for _ in range(connections)))
        wall = (perf() - t0) / 1e9
    return times, answers, wall


def _drive_wrk(
    url: str, token: str, queries: list[Any], connections: int, work: Path
) -> tuple[list[int], float, int]:
    """wrk cycling through the same bodies for about as long as httpx would take."""
    bodies = [{"path": PATHS[q["channel"]], "body": _body(q)} for q in queries[:2000]]
    script = work / "checks.lua"
    script.write_text(
        "local bodies = " + _lua(bodies) + "\nlocal i = 0\n"
        'wrk.method = "POST"\n'
        f'wrk.headers["Authorization"] = "Bearer {token}"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        "request = function()\n  i = i % #bodies + 1\n"
        "  return wrk.format(nil, bodies[i].path, nil, bodies[i].body)\nend\n"
        "done = function(summary, latency, requests)\n"
        '  io.write(string.format("WRK %d %d %d %d\\n", summary.requests, '
        "summary.duration, latency:percentile(50), latency:percentile(99)))\nend\n"
    )
    seconds = max(5, min(30, len(queries) // 2000))
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRK "))
    n, duration_us, p50, p99 = map(int, line.split()[1:])
    return [p50 * 1000, p99 * 1000], duration_us / 1e6, n


def _lua(items: list[dict[str, str]]) -> str:
    def s(text: str) -> str:
        return json.dumps(text)  # JSON string escapes are valid Lua escapes for this data

    return "{" + ",".join(f"{{path={s(b['path'])}, body={s(b['body'])}}}" for b in items) + "}"


def measure_http(
    cfg: Path, queries: list[Any], connections: int, log_level: str, driver: str
) -> dict[str, Any]:
    """The same sends over HTTP to a `sendguard serve` child process: first one
    request at a time (the latency one practice system sees), then with
    `connections` in flight (throughput, and latency under that load)."""
    from sendguard.api.tokens import add_token
    from sendguard.config import load_config

    token = add_token(load_config(cfg, environ={}).api.tokens_file, f"bench-{os.getpid()}")
    t0 = time.perf_counter()
    server = Server(cfg, log_level)
    start_s = time.perf_counter() - t0
    url = f"http://127.0.0.1:{server.port}"
    single = queries[: max(200, len(queries) // 4)]
    try:
        times1, answers1, wall1 = asyncio.run(_drive_httpx(url, token, single, 1))
        cpu0 = server.cpu_seconds()
        if driver == "wrk":
            (p50, p99), wall, n = _drive_wrk(url, token, queries, connections, cfg.parent)
            loaded = {"n": n, "p50_us": p50 / 1000, "p99_us": p99 / 1000, "max_us": 0.0}
            answers = answers1
        else:
            times, answers, wall = asyncio.run(_drive_httpx(url, token, queries, connections))
            loaded = percentiles(times)
            n = len(queries) + min(100, len(queries))  # with the warm-up
        cpu = server.cpu_seconds() - cpu0
    finally:
        server.stop()
    return {
        "single": {**percentiles(times1), "checks_per_s": len(single) / wall1},
        "loaded": {**loaded, "checks_per_s": loaded["n"] / wall, "seconds": wall},
        "server_cpu_us": cpu / n * 1e6,
        "answers": answers,
        "start_s": start_s,
        "driver": driver,
    }


def run(
    size: int,
    *,
    seed: int = 1,
    requests: int = 20_000,
    connections: int = 8,
    out_dir: Path = OUT_DIR,
    log_level: str = "INFO",
    driver: str = "httpx",
) -> dict[str, Any]:
    """Library and HTTP measurements on one directory, and how they compare."""
    directory, queries = load_queries(size, seed, out_dir, requests)
    snapshot = directory.with_suffix(".snapshot")
    with tempfile.TemporaryDirectory(prefix="sendguard-http-bench-") as tmp:
        cfg = _config(Path(tmp), directory, snapshot, max_body=1024 * 1024)
        t0 = time.perf_counter()
        guard = _guard(cfg)  # builds the snapshot if it is missing or stale
        load_s = time.perf_counter() - t0
        lib = measure_library(guard, queries)
        http = measure_http(cfg, queries, connections, log_level, driver)
    answers = http["answers"]
    differ = held = 0
    channels: dict[str, int] = {}
    for q, a, b in zip(queries, answers, lib["verdicts"][: len(answers)], strict=False):
        answer = json.loads(a)
        hold_id = answer.pop("hold_id", None)  # fax and letter answers carry it: null here
        held += hold_id is not None
        differ += answer != json.loads(b) or hold_id is not None
        channels[q["channel"]] = channels.get(q["channel"], 0) + 1
    return {
        "entries": len(guard.directory),
        "load_s": load_s,
        "requests": len(queries),
        "connections": connections,
        "log_level": log_level,
        "library": {k: v for k, v in lib.items() if k != "verdicts"},
        "http": {k: v for k, v in http.items() if k != "answers"},
        "ratio": http["loaded"]["checks_per_s"] / lib["checks_per_s"],
        "compared": len(answers),
        "compared_by_channel": channels,
        "differ": differ,
        "held": held,
    }


def print_report(r: dict[str, Any]) -> None:
    lib, http = r["library"], r["http"]
    one, many = http["single"], http["loaded"]
    print(
        f"\n== {r['entries']:,} entries (snapshot loaded in {r['load_s']:.1f} s), "
        f"{r['requests']:,} mixed checks (email, fax, letter)"
    )
    print(f"  {'':40} {'checks/s':>10} {'p50 µs':>9} {'p99 µs':>9} {'max µs':>9}")
    rows = [
        ("library, in process, one at a time", lib),
        ("HTTP, 1 connection, one at a time", one),
        (f"HTTP, {r['connections']} in flight ({http['driver']})", many),
    ]
    for label, s in rows:
        top = f"{s['max_us']:>9.0f}" if s["max_us"] else f"{'-':>9}"
        print(
            f"  {label:40} {s['checks_per_s']:>10,.0f} {s['p50_us']:>9.1f} "
            f"{s['p99_us']:>9.1f} {top}"
        )
    print(
        f"  HTTP / library: {r['ratio']:.2f}x the checks/s "
        f"({r['connections']} in flight); one request at a time adds "
        f"{one['p50_us'] - lib['p50_us']:.0f} µs at p50"
    )
    print(
        f"  server CPU per request: {http['server_cpu_us']:.0f} µs (the library's mean per "
        f"check: {1e6 / lib['checks_per_s']:.0f} µs); logging at {r['log_level']}; "
        f"started in {http['start_s']:.1f} s"
    )
    print(
        f"  verdicts that differed from the library's: {r['differ']} of {r['compared']:,}; "
        f"answers with a hold id: {r['held']} (faxes and letters are sent with hold=false)"
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size", type=int, default=1_000_000, help="directory entries")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--requests", type=int, default=20_000, help="checks sent over HTTP")
    ap.add_argument("--connections", type=int, default=8, help="requests in flight")
    ap.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    ap.add_argument(
        "--driver",
        choices=["auto", "httpx", "wrk"],
        default="auto",
        help="the load: httpx.AsyncClient, or wrk (a C client that leaves the server the "
        "CPU); auto: wrk if installed",
    )
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    ap.add_argument("--out", type=Path, default=OUT_DIR)
    args = ap.parse_args(argv)
    if args.driver == "auto":
        args.driver = "wrk" if shutil.which("wrk") else "httpx"
    if args.driver == "wrk" and shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk), use --driver httpx")
    r = run(
        args.size,
        seed=args.seed,
        requests=args.requests,
        connections=args.connections,
        out_dir=args.out,
        log_level=args.log_level,
        driver=args.driver,
    )
    print_report(r)
    if args.json:
        args.json.write_text(json.dumps(r, indent=2))


if __name__ == "__main__":
    main()
