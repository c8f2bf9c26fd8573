"""The pool: which connections are lent again, which are retired, and when a request's first
byte leaves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from s3router_proxy.http import pool as pool_module
from s3router_proxy.http.pool import UpstreamPool

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"


class Backend:
    """A real server on 127.0.0.1 that answers every request head with ANSWER."""

    def __init__(self) -> None:
        self.connections = 0
        self.received = bytearray()
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                self.received += head
                writer.write(ANSWER)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


def new_pool(port: int) -> UpstreamPool:
    return UpstreamPool(
        "127.0.0.1", port, tls=False, limit=4, connect_timeout=2.0, read_timeout=2.0
    )


async def get(pool: UpstreamPool, *, read: bool = True) -> None:
    response = await pool.request("GET", "/", [("Host", "h")], None)
    if read:
        assert await response.read(100) == b"hello"
    response.release()


async def test_a_whole_answer_lends_its_connection_again() -> None:
    backend = Backend()
    pool = new_pool(await backend.start())
    try:
        for _ in range(3):
            await get(pool)
        assert backend.connections == 1 and pool.open == 1 and len(pool.idle) == 1
    finally:
        await pool.close()
        await backend.stop()


async def test_an_answer_not_read_to_its_end_retires_its_connection() -> None:
    backend = Backend()
    pool = new_pool(await backend.start())
    try:
        await get(pool, read=False)
        assert pool.open == 0 and not pool.idle
        await get(pool)
        assert backend.connections == 2
    finally:
        await pool.close()
        await backend.stop()


async def test_a_connection_idle_too_long_is_not_trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = Backend()
    pool = new_pool(await backend.start())
    monkeypatch.setattr(pool_module, "IDLE_SECONDS", 0.0)
    try:
        await get(pool)
        await get(pool)
        assert backend.connections == 2 and pool.open == 1
    finally:
        await pool.close()
        await backend.stop()


async def test_close_ends_the_idle_connections() -> None:
    backend = Backend()
    pool = new_pool(await backend.start())
    await get(pool)
    (conn,) = pool.idle
    await pool.close()
    await asyncio.sleep(0.05)
    assert not pool.idle and conn.closed
    await backend.stop()


async def test_a_body_that_fails_before_its_first_piece_sends_nothing() -> None:
    backend = Backend()
    pool = new_pool(await backend.start())

    async def refused() -> AsyncIterator[bytes]:
        raise RuntimeError("the body's check failed")
        yield b""  # pragma: no cover - makes this a generator

    try:
        with pytest.raises(RuntimeError):
            await pool.request("PUT", "/", [("Host", "h"), ("Content-Length", "3")], refused())
        await asyncio.sleep(0.05)
        assert backend.connections == 1 and bytes(backend.received) == b""
        assert pool.open == 0  # the connection is not lent again
    finally:
        await pool.close()
        await backend.stop()
