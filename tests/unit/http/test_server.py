"""The proxy's own HTTP/1.1 server (http/server.py), driven over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from s3router_proxy.http import messages, requestparser
from s3router_proxy.http.messages import Request, Response, StreamResponse
from s3router_proxy.http.server import FrontServer

Handler = Callable[[Request], Awaitable[Response]]


@contextlib.asynccontextmanager
async def serving(handler: Handler, **options: float) -> AsyncIterator[tuple[FrontServer, int]]:
    server = FrontServer(handler, **options)
    port = await server.start("127.0.0.1", 0)
    try:
        yield server, port
    finally:
        await server.close()


async def echo_sha(request: Request) -> Response:
    """Reads the whole body, answers its sha256 and length."""
    digest, size = hashlib.sha256(), 0
    while piece := await request.content.readany():
        digest.update(piece)
        size += len(piece)
    return Response(
        body=f"{request.method} {request.raw_path} {size} {digest.hexdigest()}".encode(),
        headers={"x-test": "yes"},
    )


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One answer off a raw connection: status, lower-cased headers, body (by length)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if status == 100:
        return status, headers, b""
    body = b""
    if "content-length" in headers:
        body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 5)
    return status, headers, body


async def closed(reader: asyncio.StreamReader, seconds: float = 5) -> bool:
    try:
        return await asyncio.wait_for(reader.read(), seconds) == b""
    except (TimeoutError, ConnectionError):
        return False


async def test_keep_alive_answers_in_order_with_framing_headers() -> None:
    async with serving(echo_sha) as (_, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"PUT /b/k?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc")
        status, headers, body = await read_answer(reader)
        assert status == 200
        assert body == f"PUT /b/k?x=1 3 {hashlib.sha256(b'abc').hexdigest()}".encode()
        assert headers["x-test"] == "yes"
        assert headers["server"] == messages.SERVER_NAME
        assert headers["date"].endswith("GMT")
        assert "connection" not in headers  # HTTP/1.1: kept alive
        # Two pipelined requests on the same connection come back in order.
        writer.write(b"GET /one HTTP/1.1\r\nHost: h\r\n\r\nGET /two HTTP/1.1\r\nHost: h\r\n\r\n")
        first, second = await read_answer(reader), await read_answer(reader)
        assert first[2].startswith(b"GET /one 0 ")
        assert second[2].startswith(b"GET /two 0 ")
        writer.close()


async def test_a_big_body_streams_with_bounded_buffering() -> None:
    seen: list[int] = []

    async def slow_reader(request: Request) -> Response:
        await asyncio.sleep(0.5)  # the client sends meanwhile; the server stops reading
        seen.append(request.content._size)
        return await echo_sha(request)

    data = bytes(range(256)) * 4096 * 16  # 16 MiB
    async with (
        serving(slow_reader) as (_, port),
        aiohttp.ClientSession() as session,
        session.put(f"http://127.0.0.1:{port}/big", data=data) as answer,
    ):
        text = await answer.text()
    assert text == f"PUT /big {len(data)} {hashlib.sha256(data).hexdigest()}"
    assert seen and seen[0] <= messages.READ_HIGH_WATER + 512 * 1024


async def test_an_answer_before_the_body_closes_the_connection_after_it() -> None:
    async def refuse(request: Request) -> Response:
        return Response(status=403, body=b"no")

    async with serving(refuse) as (_, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"PUT /k HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\n" + b"x" * 10)
        status, headers, body = await read_answer(reader)
        assert (status, body, headers["connection"]) == (403, b"no", "close")
        writer.write(b"x" * 99990)  # the rest is read and dropped, then the connection ends
        assert await closed(reader)


async def test_a_whole_body_left_unread_keeps_the_connection() -> None:
    async def ignore(request: Request) -> Response:
        return Response(status=200, body=b"ok")

    async with serving(ignore) as (_, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"PUT /k HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello")
        status, headers, _ = await read_answer(reader)
        assert status == 200 and "connection" not in headers
        writer.write(b"GET /k HTTP/1.1\r\nHost: h\r\n\r\n")
        assert (await read_answer(reader))[2] == b"ok"
        writer.close()


async def test_expect_continue_is_answered_when_the_handler_says() -> None:
    async def continuing(request: Request) -> Response:
        assert request.expect_continue
        request.send_continue()
        return await echo_sha(request)

    async with serving(continuing) as (_, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"PUT /k HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        )
        assert (await read_answer(reader))[0] == 100
        writer.write(b"data")
        status, headers, body = await read_answer(reader)
        assert status == 200 and body.startswith(b"PUT /k 4 ")
        assert "connection" not in headers


async def test_expect_continue_refused_closes_without_waiting_for_the_body() -> None:
    async def refuse(request: Request) -> Response:
        return Response(status=403, body=b"denied")

    async with serving(refuse) as (_, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"PUT /k HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        )
        status, headers, body = await read_answer(reader)
        assert (status, body, headers["connection"]) == (403, b"denied", "close")
        writer.close()


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (
            b"GET /" + b"a" * (requestparser.MAX_LINE_SIZE + 10) + b" HTTP/1.1\r\n\r\n",
            414,
            b"RequestURITooLong",
        ),
        (
            b"GET / HTTP/1.1\r\n"
            + b"".join(b"X-H%d: v\r\n" % i for i in range(requestparser.MAX_HEADERS + 1))
            + b"\r\n",
            400,
            b"RequestHeaderSectionTooLarge",
        ),
        (
            b"GET / HTTP/1.1\r\nX-Big: " + b"v" * (requestparser.MAX_FIELD_SIZE + 10) + b"\r\n\r\n",
            400,
            b"RequestHeaderSectionTooLarge",
        ),
        (b"NOT HTTP AT ALL\r\n\r\n", 400, b"BadRequest"),
        (b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400, None),
    ],
)
async def test_malformed_requests_get_an_error_and_a_closed_connection(
    raw: bytes, status: int, code: bytes | None
) -> None:
    calls: list[str] = []

    async def handler(request: Request) -> Response:
        calls.append(request.raw_path)
        return Response(body=b"served")

    async with serving(handler) as (_, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(raw)
        answer_status, headers, body = await read_answer(reader)
        assert answer_status == status
        assert headers["connection"] == "close"
        if code is not None:
            assert b"<Code>" + code + b"</Code>" in body
        assert await closed(reader)
    assert calls == []


async def test_http_1_0_closes_unless_kept_alive_and_streams_to_the_close() -> None:
    async def streamed(request: Request) -> Response:
        response = StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        await response.write(b"piece one, ")
        await response.write(b"piece two")
        await response.write_eof()
        return response

    async with serving(streamed) as (_, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /k HTTP/1.0\r\n\r\n")
        everything = await asyncio.wait_for(reader.read(), 5)  # ends with the connection
        head, _, body = everything.partition(b"\r\n\r\n")
        assert b"Transfer-Encoding" not in head and b"Connection: close" in head
        assert body == b"piece one, piece two"


async def test_a_streamed_answer_is_chunked_for_http_1_1_clients() -> None:
    async def streamed(request: Request) -> Response:
        response = StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        for number in range(50):
            await response.write(b"%d," % number)
        await response.write_eof()
        return response

    expected = "".join(f"{n}," for n in range(50))
    async with serving(streamed) as (_, port), aiohttp.ClientSession() as session:
        for _ in range(2):  # twice over one kept-alive connection
            async with session.get(f"http://127.0.0.1:{port}/k") as answer:
                assert answer.headers["Transfer-Encoding"] == "chunked"
                assert await answer.text() == expected


async def test_head_answers_carry_the_length_but_no_body() -> None:
    async def head(request: Request) -> Response:
        return Response(body=b"ignored", headers={"Content-Length": "12345"})

    async with serving(head) as (_, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"HEAD /k HTTP/1.1\r\nHost: h\r\n\r\nHEAD /k HTTP/1.1\r\nHost: h\r\n\r\n")
        for _ in range(2):
            head_bytes = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert b"Content-Length: 12345\r\n" in head_bytes
        writer.close()


async def test_a_client_leaving_mid_body_is_an_error_for_the_reader() -> None:
    outcome: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()

    async def reading(request: Request) -> Response:
        try:
            while await request.content.readany():
                pass
        except ConnectionError as exc:
            outcome.set_result(exc)
            raise
        outcome.set_result(None)
        return Response(body=b"done")

    async with serving(reading) as (_, port):
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"PUT /k HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.transport.abort()
        assert isinstance(await asyncio.wait_for(outcome, 5), ConnectionError)


async def test_idle_connections_are_closed_after_the_keepalive_timeout() -> None:
    async with serving(echo_sha, keepalive_timeout=0.5, header_timeout=30) as (server, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /k HTTP/1.1\r\nHost: h\r\n\r\n")
        assert (await read_answer(reader))[0] == 200
        assert await closed(reader, 4)
        assert not server.connections


async def test_a_head_that_never_finishes_times_out_on_its_own_clock() -> None:
    async with serving(echo_sha, keepalive_timeout=30, header_timeout=0.5) as (server, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /k HTTP/1.1\r\nHost: h\r\n")
        status, headers, body = await read_answer(reader)
        assert (status, headers["connection"]) == (400, "close")
        assert b"<Code>RequestTimeout</Code>" in body
        assert await closed(reader, 4)
        assert not server.connections


@pytest.mark.parametrize(
    "header",
    [
        ("Location", "/a\r\nSet-Cookie: evil=1"),
        ("Location", "/a\nSet-Cookie: evil=1"),
        ("Location", "/a\rSet-Cookie: evil=1"),
        ("X-A\r\nSet-Cookie", "evil=1"),
    ],
)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_a_header_with_a_line_break_is_never_written(
    header: tuple[str, str], method: str
) -> None:
    async def splitting(request: Request) -> Response:
        return Response(body=b"x", headers=[header])

    async with serving(splitting) as (_, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"{method} /k HTTP/1.1\r\nHost: h\r\n\r\n".encode())
        everything = await asyncio.wait_for(reader.read(), 5)
        assert b"Set-Cookie" not in everything
        assert not everything.startswith(b"HTTP/1.1 200")


async def test_stop_listening_closes_idle_connections_and_ends_busy_ones_after_the_answer() -> None:
    release = asyncio.Event()

    async def waiting(request: Request) -> Response:
        if request.raw_path == "/slow":
            await release.wait()
        return Response(body=b"answered")

    async with serving(waiting) as (server, port):
        idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)
        idle_writer.write(b"GET /fast HTTP/1.1\r\nHost: h\r\n\r\n")
        assert (await read_answer(idle_reader))[2] == b"answered"
        busy_reader, busy_writer = await asyncio.open_connection("127.0.0.1", port)
        busy_writer.write(b"GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
        await asyncio.sleep(0.1)
        server.stop_listening()
        assert await closed(idle_reader)
        release.set()
        status, headers, body = await read_answer(busy_reader)
        assert (status, body, headers["connection"]) == (200, b"answered", "close")
        assert await closed(busy_reader)
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)


async def test_whole_requests_before_a_refused_one_are_answered_first() -> None:
    async with serving(echo_sha) as (_, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"GET /one HTTP/1.1\r\nHost: h\r\n\r\n"
            b"PUT /two HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
            b"\x01junk\r\n\r\n"
        )
        first, second, third = [await read_answer(reader) for _ in range(3)]
        assert first[2].startswith(b"GET /one 0 ") and "connection" not in first[1]
        assert second[2].startswith(b"PUT /two 3 ")
        assert (third[0], third[1]["connection"]) == (400, "close")
        assert await closed(reader)


async def test_a_half_close_after_pipelined_requests_loses_no_answer() -> None:
    async def slow_first(request: Request) -> Response:
        if request.raw_path == "/one":
            await asyncio.sleep(0.3)  # the half-close arrives while this is answered
        return await echo_sha(request)

    async with serving(slow_first) as (_, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /one HTTP/1.1\r\nHost: h\r\n\r\nGET /two HTTP/1.1\r\nHost: h\r\n\r\n")
        writer.write_eof()
        first, second = await read_answer(reader), await read_answer(reader)
        assert first[2].startswith(b"GET /one 0 ")
        assert second[2].startswith(b"GET /two 0 ")
        assert await closed(reader)


async def test_time_the_server_is_not_reading_does_not_count_against_a_body() -> None:
    """A handler that reads nothing for 3 s (body_timeout 2 s): the client is held by
    back-pressure, or waits for 100-continue, and its body is still taken whole. (The timeout
    leaves room for a loaded machine's stalls while the body does flow.)"""

    async def late_reader(request: Request) -> Response:
        await asyncio.sleep(3)
        request.send_continue()
        return await echo_sha(request)

    data = b"x" * (4 * 1024 * 1024)
    async with serving(late_reader, body_timeout=2, body_min_rate=256 * 1024) as (_, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"PUT /big HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % len(data))
        writer.write(data)
        status, _, body = await read_answer(reader)
        assert (status, body) == (
            200,
            f"PUT /big {len(data)} {hashlib.sha256(data).hexdigest()}".encode(),
        )
        writer.write(
            b"PUT /k HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        )
        assert (await read_answer(reader))[0] == 100
        writer.write(b"data")
        assert (await read_answer(reader))[2].startswith(b"PUT /k 4 ")
        writer.close()


async def test_a_stalled_body_fails_its_reader_and_gets_request_timeout() -> None:
    failures: list[BaseException] = []

    async def reading(request: Request) -> Response:
        try:
            await request.content.read()
        except ConnectionError as exc:
            failures.append(exc)
            return Response(status=400, body=b"the handler's own answer")
        return Response(body=b"complete")

    async with serving(reading, body_timeout=1) as (_, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"PUT /k HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc")
        status, headers, body = await read_answer(reader)
        assert (status, headers["connection"]) == (400, "close")
        assert b"<Code>RequestTimeout</Code>" in body
        assert await closed(reader)
    assert len(failures) == 1 and isinstance(failures[0], messages.BodyTimeout)
