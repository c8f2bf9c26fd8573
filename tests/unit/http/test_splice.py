"""Which answer bodies are spliced (`http/splice.py`), the switch, and the pump itself between
real sockets in this process (the e2e tests run it inside the proxy)."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
from typing import Any

import pytest

from s3router_proxy.http import splice
from s3router_proxy.http.client import UpstreamError
from s3router_proxy.http.responseparser import ResponseParser

BIG = str(splice.MIN_SPLICE)

pytestmark = pytest.mark.skipif(not splice.AVAILABLE, reason="no os.splice here")


@pytest.mark.parametrize(
    ("method", "status", "headers", "expected"),
    [
        ("GET", 200, {"content-length": BIG}, splice.MIN_SPLICE),
        ("GET", 206, {"content-length": "5000000"}, 5_000_000),
        ("GET", 200, {"content-length": str(splice.MIN_SPLICE - 1)}, None),  # not worth it
        ("HEAD", 200, {"content-length": BIG}, None),  # no body
        ("GET", 304, {"content-length": BIG}, None),
        ("GET", 204, {"content-length": BIG}, None),
        ("GET", 200, {"transfer-encoding": "chunked"}, None),  # framing to read
        ("GET", 200, {}, None),  # to the close
        ("GET", 200, {"content-length": "1e9"}, None),
    ],
)
def test_splice_length(
    method: str, status: int, headers: dict[str, str], expected: int | None
) -> None:
    assert splice.splice_length(method, status, headers) == expected


def test_disabled_never_splices() -> None:
    assert splice.splice_length("GET", 200, {"content-length": BIG}, enabled=False) is None


@pytest.mark.parametrize(
    ("value", "enabled"),
    [(None, True), ("", True), ("on", True), ("1", True), ("OFF", False), ("false", False)],
)
def test_setting(value: str | None, enabled: bool) -> None:
    assert splice.setting(value) is enabled


def test_setting_refuses_what_it_cannot_read() -> None:
    with pytest.raises(ValueError, match="S3_ROUTER_SPLICE='maybe' is not on or off"):
        splice.setting("maybe")


class FakeTransport(asyncio.Transport):
    def __init__(self, extra: dict[str, Any], closing: bool = False) -> None:
        super().__init__()
        self.extra, self.closing = extra, closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.extra.get(name, default)

    def is_closing(self) -> bool:
        return self.closing


def test_plain_socket_only_for_plain_tcp() -> None:
    with socket.socket() as sock:
        assert splice.plain_socket(FakeTransport({"socket": sock})) == sock.fileno()
        tls = {"socket": sock, "sslcontext": ssl.create_default_context()}
        assert splice.plain_socket(FakeTransport(tls)) is None
        assert splice.plain_socket(FakeTransport({"socket": sock}, closing=True)) is None
    assert splice.plain_socket(FakeTransport({})) is None
    assert splice.plain_socket(None) is None


def test_parser_hands_over_and_ends_a_length_body() -> None:
    events: list[str] = []

    class Sink:
        def on_head(self) -> None:
            events.append("head")

        def on_body(self, data: bytes) -> None:
            events.append(f"body {len(data)}")

        def on_complete(self) -> None:
            events.append("complete")

        def on_stray(self, data: bytes) -> None:
            events.append("stray")

    parser = ResponseParser(Sink())
    parser.begin(head_only=False)
    parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    assert parser.body_left == 7
    parser.body_skipped()
    assert parser.body_left == 0
    parser.feed(b"x")
    assert events == ["head", "body 3", "complete", "stray"]


async def _pump(body: bytes, *, close_early: bool = False, read_timeout: float = 5.0) -> bytes:
    loop = asyncio.get_running_loop()
    backend, source = socket.socketpair()
    sink, client = socket.socketpair()
    for sock in (backend, source, sink, client):
        sock.setblocking(False)
    counted: list[int] = []
    received = bytearray()
    try:
        ends = splice.Ends(
            read_timeout,
            counted.append,
            source_failed=lambda what: UpstreamError(f"the backend {what}"),
            sink_failed=lambda what: ConnectionError(f"the client {what}"),
            timed_out=lambda: TimeoutError("silent"),
            stopped=lambda: None,
        )
        pump = splice.Pump(loop, source.fileno(), sink.fileno(), len(body), ends)

        async def feed() -> None:
            sent = body[: len(body) // 2] if close_early else body
            await loop.sock_sendall(backend, sent)
            if close_early:
                backend.close()

        async def drain() -> None:
            while len(received) < len(body):
                data = await loop.sock_recv(client, 1 << 20)
                if not data:
                    return
                received.extend(data)

        reader = loop.create_task(drain())
        try:
            await asyncio.gather(feed(), pump.run())
            await asyncio.wait_for(reader, 10)
        finally:
            reader.cancel()
    finally:
        for sock in (backend, source, sink, client):
            sock.close()
    assert sum(counted) == len(received)
    return bytes(received)


async def test_pump_moves_exactly_the_body() -> None:
    body = os.urandom(9 * 1024 * 1024 + 3)
    assert await _pump(body) == body


async def test_pump_fails_when_the_source_ends_early() -> None:
    with pytest.raises(UpstreamError, match="mid-body"):
        await _pump(os.urandom(4 * 1024 * 1024), close_early=True)
