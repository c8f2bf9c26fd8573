"""The lean backend client: framing, keep-alive reuse, limits, timeouts and failures."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from s3router_proxy.http.client import (
    READ_HIGH_WATER,
    ConnectFailed,
    Disconnected,
    UpstreamError,
)
from s3router_proxy.http.pool import UpstreamPool

DATA = os.urandom(300_000)


async def _backend(handler) -> tuple[web.AppRunner, int]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


def _pool(port: int, **overrides: float) -> UpstreamPool:
    settings = {"limit": 4, "connect_timeout": 2.0, "read_timeout": 2.0, **overrides}
    return UpstreamPool(
        "127.0.0.1",
        port,
        tls=False,
        limit=int(settings["limit"]),
        connect_timeout=settings["connect_timeout"],
        read_timeout=settings["read_timeout"],
    )


async def _echo(request: web.Request) -> web.StreamResponse:
    if request.path == "/slow":
        await asyncio.sleep(5)
    if request.method == "PUT":
        body = await request.read()
        return web.Response(
            text=f"{len(body)} {request.headers.get('Transfer-Encoding', '')}",
            headers={"X-Seen": request.headers.get("X-Test", "")},
        )
    if request.path == "/chunked":
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(DATA), 100_000):
            await response.write(DATA[start : start + 100_000])
        await response.write_eof()
        return response
    return web.Response(body=DATA, headers={"X-Twice": "a"})


async def _pieces(count: int, size: int) -> AsyncIterator[bytes]:
    for _ in range(count):
        await asyncio.sleep(0)
        yield b"x" * size


async def test_get_head_and_keep_alive_reuse() -> None:
    runner, port = await _backend(_echo)
    pool = _pool(port)
    try:
        for method in ("GET", "HEAD", "GET"):
            response = await pool.request(method, "/obj", [("Host", "h")], None)
            assert response.status == 200
            assert response.header_map["x-twice"] == "a"
            assert response.header_map["content-length"] == str(len(DATA))
            body = b"".join([piece async for piece in response.iter_pieces()])
            assert body == (b"" if method == "HEAD" else DATA)
            response.release()
            assert pool.open == 1 and len(pool.idle) == 1  # one connection, reused
        response = await pool.request("GET", "/chunked", [("Host", "h")], None)
        assert await response.read(1 << 20) == DATA
        response.release()
    finally:
        await pool.close()
        await runner.cleanup()


async def test_streamed_and_chunked_bodies() -> None:
    runner, port = await _backend(_echo)
    pool = _pool(port)
    try:
        headers = [("Host", "h"), ("Content-Length", "50000"), ("X-Test", "yes")]
        response = await pool.request("PUT", "/o", headers, _pieces(5, 10_000))
        assert await response.read(100) == b"50000 "
        assert response.header_map["x-seen"] == "yes"
        response.release()
        response = await pool.request("PUT", "/o", [("Host", "h")], _pieces(3, 7), chunked=True)
        assert await response.read(100) == b"21 chunked"
        response.release()
        response = await pool.request("PUT", "/o", [("Host", "h"), ("Content-Length", "3")], b"abc")
        assert await response.read(100) == b"3 "
        response.release()
        assert pool.open == 1
    finally:
        await pool.close()
        await runner.cleanup()


async def test_read_limit_and_line_breaks_in_headers_are_refused() -> None:
    runner, port = await _backend(_echo)
    pool = _pool(port)
    try:
        response = await pool.request("GET", "/obj", [("Host", "h")], None)
        with pytest.raises(UpstreamError):
            await response.read(1000)
        response.release()
        with pytest.raises(ValueError):
            await pool.request("GET", "/obj", [("Host", "h"), ("X-Bad", "a\r\nX-Evil: 1")], None)
    finally:
        await pool.close()
        await runner.cleanup()


async def test_limit_queues_requests() -> None:
    runner, port = await _backend(_echo)
    pool = _pool(port, limit=2)
    try:

        async def one() -> int:
            response = await pool.request("GET", "/obj", [("Host", "h")], None)
            await response.read(1 << 20)
            response.release()
            return response.status

        assert await asyncio.gather(*(one() for _ in range(10))) == [200] * 10
        assert pool.open <= 2
    finally:
        await pool.close()
        await runner.cleanup()


async def test_read_timeout() -> None:
    runner, port = await _backend(_echo)
    pool = _pool(port, read_timeout=0.3)
    try:
        with pytest.raises(TimeoutError):
            await pool.request("GET", "/slow", [("Host", "h")], None)
        assert pool.open == 0
    finally:
        await pool.close()
        await runner.cleanup()


async def test_read_timeout_on_a_reused_connection() -> None:
    """The read timer outlives each wait: a slow answer on a connection whose earlier answers
    were quick still times out, after `read_timeout` of its own silence, not before."""
    runner, port = await _backend(_echo)
    pool = _pool(port, read_timeout=0.6)
    loop = asyncio.get_running_loop()
    try:
        for _ in range(3):
            response = await pool.request("GET", "/obj", [("Host", "h")], None)
            assert await response.read(len(DATA)) == DATA
            response.release()
            await asyncio.sleep(0.25)  # the first wait's timer comes due during a later one
        assert pool.open == 1
        started = loop.time()
        with pytest.raises(TimeoutError):
            await pool.request("GET", "/slow", [("Host", "h")], None)
        assert 0.55 <= loop.time() - started < 2.0
        assert pool.open == 0
    finally:
        await pool.close()
        await runner.cleanup()


async def test_refused_and_closed_connections() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    pool = _pool(port)
    with pytest.raises(ConnectFailed):
        await pool.request("GET", "/", [("Host", "h")], None)
    assert pool.open == 0

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    pool = _pool(server.sockets[0].getsockname()[1])
    try:
        with pytest.raises(Disconnected):
            await pool.request("GET", "/", [("Host", "h")], None)
    finally:
        server.close()
        await server.wait_closed()


async def test_a_large_body_is_held_unread_until_asked_for() -> None:
    big = os.urandom(8 * 1024 * 1024)

    async def large(request: web.Request) -> web.Response:
        return web.Response(body=big)

    runner, port = await _backend(large)
    pool = _pool(port)
    try:
        response = await pool.request("GET", "/big", [("Host", "h")], None)
        await asyncio.sleep(0.3)  # a body read on would be in the buffer by now
        conn = response.connection
        # Only what came in the read that brought the head, not up to the read buffer's bound.
        assert conn.read_paused and conn.buffered < READ_HIGH_WATER, conn.buffered
        body = b"".join([piece async for piece in response.iter_pieces()])
        assert body == big
        response.release()
        assert len(pool.idle) == 1  # whole, so reused
    finally:
        await pool.close()
        await runner.cleanup()
