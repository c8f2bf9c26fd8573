"""The Redis rows: 4 KiB PUT and GET through the proxy to a `kind: redis` store, in the same
rounds as through the proxy to an S3 store and direct to it.

Two S3 stores stand beside it: the bench's nginx (a static-file server, the fastest store there
is, but no S3 implementation) and a moto_server (an S3 implementation in Python, as a real
store parses, checks and answers S3 requests). A redis-server of its own (nothing saved, pinned
beside the other servers) backs a rule for bucket `tmp-bench`, and moto one for bucket
`s3-bench`, of a second proxy process started from the same code (`proxy-stores`), so the Redis
client and its pool weigh on neither the main proxy's memory nor its CPU columns. The paths
`redis` and `moto` are that proxy asked for each bucket, `moto-direct` is moto asked directly,
with presigned requests made the same way as every other path's. Without redis-server (or
moto) those rows are left out and the report says so.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from bench import load
from bench.procs import LOOPBACK, SERVER_CPU, Processes, pinned
from bench.report import SMALL_LABEL, Results, _fmt, _fmt_ratio, _p50, _ratio, _value
from bench.stack import MOTO_BUCKET, Server, StoreUrls
from bench.stack import REDIS_BUCKET as BUCKET

OPS = ("PUT", "GET")
PATHS = ("moto-direct", "moto", "redis")


def _port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _wait(port: int, what: str, log: Path, proc: object) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:  # type: ignore[attr-defined]
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not start; see {log}")


def start_stores(
    procs: Processes, root: Path, python: str, *, pin: bool
) -> tuple[StoreUrls, dict[str, Server]]:
    """A redis-server and a moto_server on free ports, each when it is installed, and the
    moto_server as the `moto-direct` path."""
    directory = root / "stores"
    directory.mkdir()
    redis_url = moto_url = None
    direct: dict[str, Server] = {}
    server = shutil.which("redis-server")
    if server is not None:
        port = _port()
        argv = [server, "--port", str(port), "--bind", LOOPBACK, "--save", "", "--appendonly"]
        argv += ["no", "--dir", str(directory)]
        log = directory / "redis.log"
        proc = procs.start(pinned(SERVER_CPU, argv, enabled=pin), log=log)
        _wait(port, "redis-server", log, proc)
        redis_url = f"redis://{LOOPBACK}:{port}/0"
    has_moto = subprocess.run([python, "-c", "import moto.server"], capture_output=True)
    if redis_url is not None and has_moto.returncode == 0:
        port = _port()
        argv = [python, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)]
        log = directory / "moto.log"
        proc = procs.start(pinned(SERVER_CPU, argv, enabled=pin), log=log)
        _wait(port, "moto_server", log, proc)
        moto_url = f"http://{LOOPBACK}:{port}"
        direct["moto-direct"] = Server("moto-direct", port, proc, log)
    return StoreUrls(redis_url, moto_url), direct


def workloads(
    root: Path, proxy_port: int, stores: StoreUrls
) -> dict[str, dict[str, load.Workload]]:
    """Each path's PUT and GET workloads, their buckets filled with the GET keys first."""
    client = load.presigner(proxy_port)
    body = b"x" * load.SMALL_SIZE
    paths = {}
    for path, bucket, running in (
        ("redis", BUCKET, stores.redis),
        ("moto", MOTO_BUCKET, stores.moto),
    ):
        if running is None:
            continue
        client.create_bucket(Bucket=bucket)
        for i in range(load.POOL):
            client.put_object(Bucket=bucket, Key=f"obj-{i:04d}", Body=body)
        made = load.write_workloads(root, proxy_port, f"-{path}", bucket=bucket)
        paths[path] = {name: made[name] for name in OPS}
    if "moto" in paths:
        paths["moto-direct"] = paths["moto"]  # moto does not check signatures: the same URLs
    return paths


COLUMNS = ("direct", "proxy", "moto-direct", "moto", "redis")


def table(results: Results) -> list[str]:
    """The Redis rows: direct to nginx and through the proxy to it, direct to moto and through
    the proxy to it, and through the proxy to Redis."""
    if not any("redis" in results.rows.get(f"{op} c=64", {}) for op in OPS):
        return [
            "Redis store: not measured (redis-server or moto_server is not installed, or "
            "`--only` left out the small rows)."
        ]
    lines = [
        "A `kind: redis` store against two S3 stores, same rounds: nginx (`direct`, and "
        "through the proxy), moto_server (`moto direct`, and through a second proxy process "
        "with a Redis store and moto beside nginx), and that proxy to Redis (`proxy→redis`):",
        "",
        "| workload | metric | direct | proxy | moto direct | proxy→moto | proxy→redis "
        "| redis/moto | redis/proxy | proxy CPU | proxy→redis CPU |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for op in OPS:
        for key, metric, pick, digits in (
            (f"{op} c=1", "p50 ms", _p50, 3),
            (f"{op} c=64", "ops/s", _value, 0),
        ):
            cells = [_fmt(results.median(key, p, pick), digits) for p in COLUMNS]
            ratios = [
                _fmt_ratio(results.paired(key, "redis", other, pick, _ratio))
                for other in ("moto", "proxy")
            ]
            cpus = [results.median(key, p, lambda m: m.cpu) for p in ("proxy", "redis")]
            cpu_cells = [f"{_fmt(c)} µs/req" if c is not None else "" for c in cpus]
            lines.append(
                f"| {SMALL_LABEL[op]} {key.split()[1]} | {metric} | {' | '.join(cells)} "
                f"| {' | '.join(ratios)} | {' | '.join(cpu_cells)} |"
            )
    return lines
