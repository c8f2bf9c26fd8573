"""Microbenchmark: the backend leg alone, aiohttp's ClientSession vs the proxy's UpstreamPool.

Both clients send the same signed-looking 4 KiB GET (and a 4 KiB PUT) to the same nginx (the
benchmark's object-store nginx, pinned to the server CPU), from one process pinned to the client
CPU, with `concurrency` requests in flight over a keep-alive pool, on uvloop. Reported: requests
per second and CPU microseconds per request of the client process (its own utime + stime, so
nginx's work is not counted). This is the number that justified replacing aiohttp's client on
the forwarding path; see docs/benchmarks.md.

Run as `python -m bench.client_micro [--seconds 3] [--concurrency 64]`; prints a table and one
JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from bench.procs import CLIENT_CPU, Processes, can_pin
from bench.report import print_medians
from bench.stack import BUCKET, _start_nginx, backend_conf
from s3router_proxy.http.pool import UpstreamPool

BODY = os.urandom(4096)
HEADERS = {
    "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
    "x-amz-date": "20261122T000000Z",
    "authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261122/us-east-1/s3/"
    "aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=" + "0" * 64,
}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _drive(
    one: Callable[[], Awaitable[None]], *, concurrency: int, seconds: float
) -> tuple[float, float]:
    """(requests per second, CPU µs per request) of `concurrency` loops of `one` for `seconds`."""
    for _ in range(50):
        await one()
    done = 0
    stop = time.monotonic() + seconds

    async def loop() -> None:
        nonlocal done
        while time.monotonic() < stop:
            await one()
            done += 1

    cpu, wall = _cpu(), time.monotonic()
    await asyncio.gather(*(loop() for _ in range(concurrency)))
    cpu, wall = _cpu() - cpu, time.monotonic() - wall
    return done / wall, cpu / max(done, 1) * 1e6


async def _aiohttp(port: int, method: str, concurrency: int, seconds: float) -> tuple[float, float]:
    host = f"127.0.0.1:{port}"
    url = f"http://{host}/{BUCKET}/obj-4k"
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=60),
        auto_decompress=False,
        skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent", "Content-Type"),
        cookie_jar=aiohttp.DummyCookieJar(),
    ) as session:
        yarl_url = aiohttp.client.URL(url, encoded=True)

        async def one() -> None:
            headers = {"host": host, **HEADERS}
            if method == "PUT":
                headers["content-length"] = str(len(BODY))
            async with session.request(
                method,
                yarl_url,
                headers=headers,
                data=BODY if method == "PUT" else None,
                allow_redirects=False,
                compress=None,
                chunked=None,
            ) as response:
                await response.read()
                assert response.status in (200, 201, 204), response.status

        return await _drive(one, concurrency=concurrency, seconds=seconds)


async def _lean(port: int, method: str, concurrency: int, seconds: float) -> tuple[float, float]:
    host = f"127.0.0.1:{port}"
    pool = UpstreamPool(
        "127.0.0.1", port, tls=False, limit=concurrency, connect_timeout=5, read_timeout=60
    )

    async def one() -> None:
        headers = {"host": host, **HEADERS}
        if method == "PUT":
            headers["content-length"] = str(len(BODY))
        response = await pool.request(
            method, f"/{BUCKET}/obj-4k", headers.items(), BODY if method == "PUT" else None
        )
        await response.read(1 << 20)
        response.release()
        assert response.status in (200, 201, 204), response.status

    try:
        return await _drive(one, concurrency=concurrency, seconds=seconds)
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.client_micro")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    import uvloop

    if can_pin():
        os.sched_setaffinity(0, {CLIENT_CPU})
    procs = Processes()
    results: dict[str, list[tuple[float, float]]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="client-micro-") as tmp:
            root = Path(tmp)
            data = root / "data"
            (data / BUCKET).mkdir(parents=True)
            (data / BUCKET / "obj-4k").write_bytes(BODY)
            server = _start_nginx(
                procs,
                "backend",
                root / "nginx",
                lambda port: backend_conf(root / "nginx", data, port),
                pin=can_pin(),
            )
            for _ in range(args.rounds):  # interleaved, so drift hits both alike
                for method in ("GET", "PUT"):
                    for name, run in (("aiohttp ClientSession", _aiohttp), ("UpstreamPool", _lean)):
                        coroutine = run(server.port, method, args.concurrency, args.seconds)
                        result = uvloop.run(coroutine)
                        results.setdefault(f"{method} 4 KiB, {name}", []).append(result)
    finally:
        procs.stop_all()
    print_medians(f"client (c={args.concurrency}, uvloop), client CPU", results)


if __name__ == "__main__":
    main()
