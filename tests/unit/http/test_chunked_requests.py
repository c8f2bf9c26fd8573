"""A streamed request body the backend client frames itself, Transfer-Encoding: chunked, byte
for byte as a backend receives it: one size line per piece the proxy chose (never the
client's), no empty chunk before the end, and a body that fails never gets its last chunk."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from s3router_proxy.http.pool import UpstreamPool

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


class RawServer:
    """Records every byte each connection sends; answers once a chunked body ended."""

    def __init__(self) -> None:
        self.received: list[bytearray] = []
        self.closed = asyncio.Event()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen = bytearray()
        self.received.append(seen)
        try:
            while piece := await reader.read(65536):
                seen += piece
                if seen.endswith(b"\r\n0\r\n\r\n") or seen.endswith(b"\r\n\r\n0\r\n\r\n"):
                    writer.write(ANSWER)
        except ConnectionError:
            pass
        finally:
            self.closed.set()
            writer.close()


async def _pieces(*pieces: bytes, fail: bool = False) -> AsyncIterator[bytes]:
    for piece in pieces:
        await asyncio.sleep(0)
        yield piece
    if fail:
        raise RuntimeError("the client's body failed a check")


async def _send(body: AsyncIterator[bytes]) -> tuple[RawServer, bytes]:
    server = RawServer()
    listener = await asyncio.start_server(server.serve, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    pool = UpstreamPool(
        "127.0.0.1", port, tls=False, limit=1, connect_timeout=2.0, read_timeout=2.0
    )
    try:
        response = await pool.request("PUT", "/b/k", [("Host", "h")], body, chunked=True)
        assert response.status == 200
        response.release()
    finally:
        await pool.close()
        listener.close()
    return server, bytes(server.received[0])


HEAD = b"PUT /b/k HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"


async def test_each_piece_is_one_chunk_and_empty_pieces_are_no_chunk() -> None:
    _, wire = await _send(_pieces(b"abc", b"", b"0123456789abcdefX"))
    assert wire == HEAD + b"3\r\nabc\r\n11\r\n0123456789abcdefX\r\n0\r\n\r\n"


async def test_an_empty_body_is_its_last_chunk_alone() -> None:
    _, wire = await _send(_pieces())
    assert wire == HEAD + b"0\r\n\r\n"


async def test_a_body_that_fails_never_gets_its_last_chunk() -> None:
    server = RawServer()
    listener = await asyncio.start_server(server.serve, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    pool = UpstreamPool(
        "127.0.0.1", port, tls=False, limit=1, connect_timeout=2.0, read_timeout=2.0
    )
    try:
        with pytest.raises(RuntimeError):
            await pool.request(
                "PUT", "/b/k", [("Host", "h")], _pieces(b"abc", fail=True), chunked=True
            )
        await asyncio.wait_for(server.closed.wait(), 2)
    finally:
        await pool.close()
        listener.close()
    assert bytes(server.received[0]) == HEAD + b"3\r\nabc\r\n"
    assert pool.open == 0
