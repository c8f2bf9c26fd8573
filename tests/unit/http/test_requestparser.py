"""Where each request on a client connection begins and ends: the framing a head must state,
and the bounds a head and a trailer section are held to while they arrive."""

from __future__ import annotations

from types import SimpleNamespace

import httptools
import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from s3router_proxy.http.messages import Request
from s3router_proxy.http.requestparser import (
    MAX_HEAD_SIZE,
    BadRequest,
    RequestParser,
    check_framing,
    refusal,
)


class Connection:
    """What a RequestParser hands its requests to, recording them (the parser's collaborator)."""

    def __init__(self, max_head_size: int = MAX_HEAD_SIZE) -> None:
        self.ended = False
        self.close_after = False
        self.server = SimpleNamespace(max_head_size=max_head_size)
        self.loop = SimpleNamespace(time=lambda: 1.0)
        self.events: list[tuple[object, ...]] = []
        self.transport, self.remote, self.scheme = None, "127.0.0.1", "http"

    def on_request(self, request: Request) -> None:
        self.events.append(
            (
                "request",
                request.method,
                request.raw_path,
                dict(request.headers),
                request.version,
                request.keep_alive,
            )
        )
        self.events.append(("body_exists", request.body_exists))

    def on_body(self, body: bytes) -> None:
        self.events.append(("body", body))

    def on_message_complete(self) -> None:
        self.events.append(("complete",))


def parsed(*reads: bytes, conn: Connection | None = None) -> Connection:
    conn = conn or Connection()
    parser = RequestParser(conn)  # type: ignore[arg-type]
    for data in reads:
        parser.feed(data)
    return conn


def refused(*reads: bytes, conn: Connection | None = None) -> BadRequest:
    with pytest.raises((BadRequest, httptools.HttpParserError)) as caught:
        parsed(*reads, conn=conn)
    return refusal(caught.value)


def headers(*pairs: tuple[str, str]) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(pairs))


def test_a_head_in_pieces_then_its_body_then_the_next_request() -> None:
    conn = parsed(
        b"PUT /a%2Fb//c HT",
        b"TP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nab",
        b"cGET / HTTP/1.1\r\nHost: h\r\n\r\n",
    )
    assert conn.events == [
        ("request", "PUT", "/a%2Fb//c", {"Host": "h", "Content-Length": "3"}, "1.1", True),
        ("body_exists", True),
        ("body", b"ab"),
        ("body", b"c"),
        ("complete",),
        ("request", "GET", "/", {"Host": "h"}, "1.1", True),
        ("body_exists", False),
        ("complete",),
    ]


def test_http_1_0_chunked_ends_the_connection() -> None:
    conn = parsed(
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
    )
    assert conn.events[0][-1] is False  # keep_alive


@pytest.mark.parametrize(
    ("method", "version", "fields", "code", "status"),
    [
        ("GET", "1.1", [("Host", "h"), ("Upgrade", "h2c")], "BadRequest", 400),
        ("GET", "1.1", [("Host", "h"), ("Connection", "keep-alive, Upgrade")], "BadRequest", 400),
        ("CONNECT", "1.1", [("Host", "h")], "BadRequest", 400),
        ("GET", "1.1", [], "BadRequest", 400),
        ("GET", "1.1", [("Host", "a"), ("Host", "b")], "BadRequest", 400),
        ("PUT", "1.1", [("Host", "h"), ("Transfer-Encoding", "gzip")], "NotImplemented", 501),
        (
            "PUT",
            "1.1",
            [("Host", "h"), ("Transfer-Encoding", "chunked"), ("Content-Length", "1")],
            "BadRequest",
            400,
        ),
        (
            "PUT",
            "1.1",
            [("Host", "h"), ("Content-Length", "1"), ("Content-Length", "1")],
            "BadRequest",
            400,
        ),
        ("PUT", "1.1", [("Host", "h"), ("Content-Length", "+1")], "BadRequest", 400),
        ("PUT", "1.1", [("Host", "h"), ("Content-Length", "1" * 19)], "BadRequest", 400),
        ("GET", "2.0", [("Host", "h")], "BadRequest", 400),
    ],
)
def test_check_framing_refuses(
    method: str, version: str, fields: list[tuple[str, str]], code: str, status: int
) -> None:
    with pytest.raises(BadRequest) as caught:
        check_framing(method, version, headers(*fields))
    assert (caught.value.code, caught.value.status) == (code, status)


def test_check_framing_accepts_one_framing() -> None:
    check_framing("GET", "1.0", headers())  # HTTP/1.0 needs no Host
    check_framing("PUT", "1.1", headers(("Host", "h"), ("Content-Length", "1" * 18)))
    check_framing("PUT", "1.1", headers(("Host", "h"), ("Transfer-Encoding", " Chunked ")))


def test_a_head_over_its_bound_is_refused_before_it_ends() -> None:
    conn = Connection(max_head_size=1024)
    error = refused(b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: ", b"v" * 2048, conn=conn)
    assert error.code == "RequestHeaderSectionTooLarge"
    assert conn.events == []  # the head never completed: nothing was handed on


def test_trailer_fields_are_refused_and_the_trailer_section_is_bounded() -> None:
    head = b"PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n"
    assert "Trailer fields" in refused(head + b"X-Late: 1\r\n\r\n").message
    conn = Connection(max_head_size=1024)
    error = refused(head, b"X-Late: " + b"v" * 2048, conn=conn)
    assert error.message == "The request trailers are too large."


def test_nothing_is_read_after_the_last_request() -> None:
    conn = Connection()
    conn.ended = True
    error = refused(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", conn=conn)
    assert error.message == "Nothing is read after the last request."


def test_refusal_names_what_was_refused() -> None:
    own = BadRequest("RequestURITooLong", "The request line is too long.", 414)
    assert refusal(own) is own
    assert refusal(httptools.HttpParserInvalidMethodError("x")).message == (
        "The request is not valid HTTP/1.1."
    )
