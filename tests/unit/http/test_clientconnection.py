"""One client connection of the front server, over real sockets on 127.0.0.1: what it reads
ahead, and what it does with a body that outlives its answer."""

from __future__ import annotations

import asyncio

from s3router_proxy.http.clientconnection import ClientConnection
from s3router_proxy.http.messages import Request, Response
from s3router_proxy.http.server import FrontServer


async def until(condition, seconds: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "the condition never held"
        await asyncio.sleep(0.01)


async def test_one_request_is_read_ahead_and_answers_keep_their_order() -> None:
    release = asyncio.Event()

    async def handler(request: Request) -> Response:
        await release.wait()
        return Response(body=request.raw_path.encode())

    server = FrontServer(handler)
    port = await server.start("127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /0 HTTP/1.1\r\nHost: h\r\n\r\n")
        await until(lambda: len(server.connections) == 1)
        (conn,) = server.connections
        assert isinstance(conn, ClientConnection)
        await until(lambda: conn.busy)
        writer.write(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\n")
        await until(lambda: conn.read_paused and len(conn.queue) == 1)
        writer.write(b"GET /2 HTTP/1.1\r\nHost: h\r\n\r\n")
        await asyncio.sleep(0.1)
        assert len(conn.queue) == 1  # one request ahead is read; the next waits in the socket
        release.set()
        answers = b""
        while answers.count(b"HTTP/1.1 200") < 3 or not answers.endswith(b"/2"):
            answers += await asyncio.wait_for(reader.read(4096), 5)
        assert [answers.index(b"\r\n\r\n/%d" % i) for i in range(3)] == sorted(
            answers.index(b"\r\n\r\n/%d" % i) for i in range(3)
        )
        writer.close()
    finally:
        await server.close()


async def test_a_body_that_outlives_its_answer_is_dropped_then_the_connection_ends() -> None:
    async def early(request: Request) -> Response:
        return Response(status=403, body=b"no")

    server = FrontServer(early)
    port = await server.start("127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"PUT /o HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 403") and b"Connection: close" in head
        (conn,) = server.connections
        assert conn.lingering and conn.parsing is not None and conn.parsing.content.discard
        writer.write(b"defghij")  # the rest of the body: read and dropped
        assert await asyncio.wait_for(reader.read(), 5) == b"no"  # then the connection ends
        await until(lambda: not server.connections)
        writer.close()
    finally:
        await server.close()
