"""One client connection of the front server, over real sockets on 127.0.0.1: what it reads
ahead, and what it does with a body that outlives its answer."""

from __future__ import annotations

import asyncio
import os
import socket

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


async def test_a_body_moved_past_the_parser_leaves_the_next_request_whole() -> None:
    """What `uploadsplice.py` does with the socket, done here by hand: the connection hands
    over the body, exactly the rest of it is read past llhttp, and a fresh parser reads the
    request pipelined behind it."""
    size = 3 * 1024 * 1024
    body = bytes(range(256)) * (size // 256)
    moved: list[bytes] = []

    async def handler(request: Request) -> Response:
        if request.raw_path != "/big":
            return Response(body=request.raw_path.encode() + await request.content.read())
        conn = request._conn
        assert isinstance(conn, ClientConnection) and conn.transport is not None
        held, left = conn.hand_over_body(request)
        assert len(held) + left == size and left > 0
        sock = conn.transport.get_extra_info("socket")
        with socket.socket(fileno=os.dup(sock.fileno())) as own:
            own.setblocking(False)
            rest = bytearray()
            while len(rest) < left:
                rest += await asyncio.get_running_loop().sock_recv(own, left - len(rest))
        moved.append(held + rest)
        conn.body_moved(request)
        assert request.content.complete
        return Response(body=b"moved")

    server = FrontServer(handler)
    port = await server.start("127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"PUT /big HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % size)
        writer.write(body[: 64 * 1024])
        await asyncio.sleep(0.2)  # some of the body goes through llhttp first
        writer.write(
            body[64 * 1024 :] + b"PUT /next HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok"
        )
        answers = b""
        while not answers.endswith(b"/nextok"):
            answers += await asyncio.wait_for(reader.read(4096), 5)
        assert answers.count(b"HTTP/1.1 200 OK") == 2 and b"\r\n\r\nmoved" in answers
        assert moved == [body]
        writer.close()
    finally:
        await server.close()


async def test_bytes_read_while_a_body_is_handed_over_end_the_connection() -> None:
    """Reading is paused while the kernel moves a body past the parser; a byte the transport
    delivered all the same would be the body's, not the start of a request, so the connection
    is ended rather than parsing it (or feeding it to a body nobody reads)."""
    handed: list[int] = []
    release = asyncio.Event()

    async def handler(request: Request) -> Response:
        conn = request._conn
        assert isinstance(conn, ClientConnection)
        handed.append(conn.hand_over_body(request)[1])
        conn.data_received(b"GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n")  # as a loop might
        await release.wait()
        return Response(body=b"never")

    server = FrontServer(handler)
    port = await server.start("127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"PUT /big HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000\r\n\r\nabc")
        answer = await asyncio.wait_for(reader.read(), 5)
        assert answer == b"" and handed and handed[0] > 0  # cut, nothing answered
        release.set()
        writer.close()
    finally:
        await server.close()
