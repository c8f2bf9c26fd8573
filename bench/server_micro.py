"""Microbenchmark: the client side alone, aiohttp's `web.Server` vs the proxy's `FrontServer`.

Both servers run the same handler in a process of their own, pinned to the server CPU, on
uvloop: a GET is answered with a 4 KiB body and the headers an S3 GET carries; a PUT reads its
4 KiB body and answers 200 with an ETag. wrk (pinned to the client CPU) keeps 64 keep-alive
connections busy. Reported: requests per second and CPU microseconds per request of the server
process (its utime + stime). This is the number that justified replacing aiohttp's server on
the request path; see docs/benchmarks.md.

Run as `python -m bench.server_micro [--seconds 3] [--rounds 3]`; prints a table and one JSON
line. `python -m bench.server_micro --serve aiohttp|front PORT` is the server it starts.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.procs import (
    CLIENT_CPU,
    SERVER_CPU,
    Processes,
    can_pin,
    cpu_seconds,
    free_port,
    pinned,
    wait_port,
)
from bench.report import print_medians

BODY = b"x" * 4096
HEADERS = {
    "ETag": '"0123456789abcdef0123456789abcdef"',
    "Last-Modified": "Sun, 22 Nov 2026 00:00:00 GMT",
    "Content-Type": "application/octet-stream",
    "Accept-Ranges": "bytes",
    "x-amz-request-id": "0123456789ABCDEF",
}
PUT_LUA = """
wrk.method = "PUT"
wrk.body = string.rep("x", 4096)
wrk.headers["Content-Type"] = "application/octet-stream"
"""


def _serve_aiohttp(port: int) -> None:
    from aiohttp import web

    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        if request.method == "PUT":
            while await request.content.readany():
                pass
            return web.Response(headers={"ETag": HEADERS["ETag"]})
        return web.Response(body=BODY, headers=HEADERS)

    async def main() -> None:
        server = web.Server(handler, access_log=None)
        runner = web.ServerRunner(server, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await _forever()

    _run(main())


def _serve_front(port: int) -> None:
    from s3router_proxy.http.messages import Request, Response
    from s3router_proxy.http.server import FrontServer

    async def handler(request: Request) -> Response:
        if request.method == "PUT":
            while await request.content.readany():
                pass
            return Response(headers={"ETag": HEADERS["ETag"]})
        return Response(body=BODY, headers=HEADERS)

    async def main() -> None:
        await FrontServer(handler).start("127.0.0.1", port)
        await _forever()

    _run(main())


async def _forever() -> None:
    import asyncio

    await asyncio.Event().wait()


def _run(coroutine: object) -> None:
    import uvloop

    uvloop.run(coroutine)  # type: ignore[arg-type]


def _wrk(procs: Processes, port: int, method: str, seconds: float, lua: Path, pin: bool) -> int:
    argv = ["wrk", "-t1", "-c64", f"-d{max(1, round(seconds))}s", f"http://127.0.0.1:{port}/b/k"]
    if method == "PUT":
        argv[1:1] = ["-s", str(lua)]
    proc = procs.start(pinned(CLIENT_CPU, argv, enabled=pin), stdout=subprocess.PIPE)
    out, _ = proc.communicate(timeout=seconds + 30)
    text = out.decode(errors="replace")
    match = re.search(r"(\d+) requests in", text)
    if match is None or "Non-2xx" in text or "Socket errors" in text:
        raise RuntimeError(f"wrk failed:\n{text}")
    return int(match.group(1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.server_micro")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", choices=["aiohttp", "front"], help=argparse.SUPPRESS)
    parser.add_argument("port", nargs="?", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        (_serve_aiohttp if args.serve == "aiohttp" else _serve_front)(args.port)
        return
    pin = can_pin()
    procs = Processes()
    results: dict[str, list[tuple[float, float]]] = {}
    names = {"aiohttp": "aiohttp web.Server", "front": "FrontServer"}
    try:
        with tempfile.TemporaryDirectory(prefix="server-micro-") as tmp:
            lua = Path(tmp) / "put.lua"
            lua.write_text(PUT_LUA)
            for _ in range(args.rounds):  # interleaved, so drift hits both alike
                for method in ("GET", "PUT"):
                    for kind in ("aiohttp", "front"):
                        port = free_port()
                        cmd = [sys.executable, "-m", "bench.server_micro", "--serve", kind]
                        log = Path(tmp) / f"{kind}.log"
                        server = procs.start(
                            pinned(SERVER_CPU, [*cmd, str(port)], enabled=pin),
                            log=log,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"},
                        )
                        try:
                            wait_port(port, server, 15, log)
                            _wrk(procs, port, method, 1, lua, pin)  # warm up
                            before = cpu_seconds(server.pid)
                            started = time.monotonic()
                            done = _wrk(procs, port, method, args.seconds, lua, pin)
                            wall = time.monotonic() - started
                            cpu = cpu_seconds(server.pid) - before
                        finally:
                            procs.stop(server)
                        label = f"{method} 4 KiB, {names[kind]}"
                        results.setdefault(label, []).append((done / wall, cpu / done * 1e6))
    finally:
        procs.stop_all()
    print_medians("server (c=64 keep-alive, uvloop), server CPU", results)


if __name__ == "__main__":
    main()
