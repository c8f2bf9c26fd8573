"""The Redis rows: 4 KiB PUT and GET through the proxy to a `kind: redis` store, in the same
rounds as through the proxy to the nginx store and direct to it.

A redis-server of its own (nothing saved, pinned beside the other servers) backs a `tmp-*`
rule of the proxy under test; the `redis` path is that proxy asked for bucket `tmp-bench`, with
presigned requests made the same way as every other path's. Without redis-server the rows are
left out and the report says so.
"""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

from bench import load
from bench.procs import LOOPBACK, SERVER_CPU, Processes, pinned
from bench.report import SMALL_LABEL, Results, _fmt, _fmt_ratio, _p50, _ratio, _value
from bench.stack import REDIS_BUCKET as BUCKET

OPS = ("PUT", "GET")


def start_redis(procs: Processes, root: Path, *, pin: bool) -> str | None:
    """A redis-server on a free port: its url, or None when none is installed."""
    server = shutil.which("redis-server")
    if server is None:
        return None
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port = int(sock.getsockname()[1])
    directory = root / "redis"
    directory.mkdir()
    argv = [server, "--port", str(port), "--bind", LOOPBACK, "--save", "", "--appendonly", "no"]
    argv += ["--dir", str(directory)]
    proc = procs.start(pinned(SERVER_CPU, argv, enabled=pin), log=directory / "redis.log")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return f"redis://{LOOPBACK}:{port}/0"
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"redis-server did not start; see {directory / 'redis.log'}")


def workloads(root: Path, proxy_port: int) -> dict[str, load.Workload]:
    """PUT and GET workloads for the store's bucket, filled with the GET keys first."""
    client = load.presigner(proxy_port)
    client.create_bucket(Bucket=BUCKET)
    body = b"x" * load.SMALL_SIZE
    for i in range(load.POOL):
        client.put_object(Bucket=BUCKET, Key=f"obj-{i:04d}", Body=body)
    made = load.write_workloads(root, proxy_port, "-redis", bucket=BUCKET)
    return {name: made[name] for name in OPS}


def table(results: Results) -> list[str]:
    """The Redis rows beside the nginx store's: direct, proxy to nginx, proxy to Redis."""
    if not any("redis" in results.rows.get(f"{op} c=64", {}) for op in OPS):
        return ["Redis store: not measured (redis-server is not installed)."]
    lines = [
        "Through the proxy to a `kind: redis` store (path `redis`) against through the proxy "
        "to the nginx store (`proxy`) and direct to it, same rounds:",
        "",
        "| workload | metric | direct | proxy | proxy→redis | redis/proxy | redis/direct "
        "| proxy CPU | proxy→redis CPU |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for op in OPS:
        for key, metric, pick, digits in (
            (f"{op} c=1", "p50 ms", _p50, 3),
            (f"{op} c=64", "ops/s", _value, 0),
        ):
            cells = [
                _fmt(results.median(key, p, pick), digits) for p in ("direct", "proxy", "redis")
            ]
            ratios = [
                _fmt_ratio(results.paired(key, "redis", other, pick, _ratio))
                for other in ("proxy", "direct")
            ]
            cpus = [results.median(key, p, lambda m: m.cpu) for p in ("proxy", "redis")]
            cpu_cells = [f"{_fmt(c)} µs/req" if c is not None else "" for c in cpus]
            lines.append(
                f"| {SMALL_LABEL[op]} {key.split()[1]} | {metric} | {' | '.join(cells)} "
                f"| {' | '.join(ratios)} | {' | '.join(cpu_cells)} |"
            )
    return lines
