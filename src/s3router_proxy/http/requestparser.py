"""Where each request on a client connection begins and ends: llhttp fed, heads bounded.

The request head is parsed by llhttp (`httptools`, the parser uvicorn uses) with bounded
request-line and header sizes. A head is bounded while it arrives: the bytes fed to llhttp while
a head is open are counted (httptools joins a header's pieces with `bytes +=`, quadratic in its
length, and calls `on_header` only once the whole value is in), and so are the bytes of a
chunked body's trailer section; trailer fields themselves are refused.

`check_framing` is what a request head must say about its own framing before it is handed on.
llhttp decides where a message ends, but some of it only after `on_headers_complete` (a
Transfer-Encoding that does not end in `chunked` is refused after that callback ran), and it
takes an upgrade request's body for the next protocol's bytes. So a head is checked once it is
parsed and before anything else sees it: one reading of the framing headers that llhttp, the
proxy and every backend agree on, or a refusal (`BadRequest`).
"""

from __future__ import annotations

import logging
from typing import Protocol

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

from .messages import REASONS, SERVER_NAME, Connection, Request, http_date

log = logging.getLogger("s3router_proxy.front")


class HeadLimit(Protocol):
    max_head_size: int  # the most a request head may be, request line and headers together


class ParsedFor(Connection, Protocol):
    """The connection a parser reads for (`clientconnection.ClientConnection`): its limits and
    state, and where each parsed request, body piece and end goes (its requests travel on it)."""

    @property
    def server(self) -> HeadLimit: ...

    close_after: bool
    ended: bool

    def on_request(self, request: Request) -> None: ...

    def on_body(self, body: bytes) -> None: ...

    def on_message_complete(self) -> None: ...


MAX_LINE_SIZE = 16 * 1024  # the request line (method, target, version)
MAX_FIELD_SIZE = 16 * 1024  # one header line
MAX_HEADERS = 200
MAX_HEAD_SIZE = 64 * 1024  # the request line and all headers (router.max_request_head_bytes)
# A Content-Length of 19 digits is over 8 EiB; more digits only serve to overflow a parser.
_MAX_LENGTH_DIGITS = 18


class BadRequest(Exception):
    """A request refused before it is handled: answered with an S3 error, then the connection
    ends."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status

    def answer(self) -> bytes:
        """The whole answer, head and S3 error document; the connection closes after it."""
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{self.code}</Code><Message>{self.message}</Message></Error>"
        ).encode()
        reason = REASONS.get(self.status, "Bad Request")
        head = (
            f"HTTP/1.1 {self.status} {reason}\r\nContent-Type: application/xml\r\n"
            f"Content-Length: {len(body)}\r\nDate: {http_date()}\r\n"
            f"Server: {SERVER_NAME}\r\nConnection: close\r\n\r\n"
        ).encode()
        return head + body


def check_framing(method: str, version: str, headers: CIMultiDictProxy[str]) -> None:
    """Raise `BadRequest` unless the head frames its body one way only, as HTTP/1.1 chunked,
    by one Content-Length, or not at all, and asks for no other protocol."""
    if version not in ("1.0", "1.1"):
        raise BadRequest("BadRequest", "Only HTTP/1.0 and HTTP/1.1 requests are served.")
    if method == "CONNECT":
        raise BadRequest("BadRequest", "CONNECT is not served: this is not a forwarding proxy.")
    if "Upgrade" in headers or any(
        token.strip(" \t").lower() == "upgrade"
        for value in headers.getall("Connection", ())
        for token in value.split(",")
    ):
        # llhttp would take the body for the next protocol's bytes and the request as
        # bodiless: the backend would be promised a body that never comes.
        raise BadRequest("BadRequest", "Protocol upgrades are not served.")
    hosts = len(headers.getall("Host", ()))
    if hosts > 1 or (hosts == 0 and version == "1.1"):
        raise BadRequest("BadRequest", "An HTTP/1.1 request has one Host header (RFC 9112, 3.2).")
    codings = headers.getall("Transfer-Encoding", ())
    lengths = headers.getall("Content-Length", ())
    if codings:
        if len(codings) > 1 or codings[0].strip(" \t").lower() != "chunked":
            raise BadRequest(
                "NotImplemented",
                "A Transfer-Encoding other than chunked is not implemented.",
                501,
            )
        if lengths:
            raise BadRequest(
                "BadRequest", "Content-Length and Transfer-Encoding together are ambiguous."
            )
    if lengths:
        if len(lengths) > 1:
            raise BadRequest("BadRequest", "The request has more than one Content-Length.")
        length = lengths[0].strip(" \t")
        if not (length.isascii() and length.isdigit()) or len(length) > _MAX_LENGTH_DIGITS:
            raise BadRequest("BadRequest", "The Content-Length is not a number of bytes.")


def refusal(error: Exception) -> BadRequest:
    """The answer to bytes llhttp, or a check of ours, refused."""
    if isinstance(error, httptools.HttpParserCallbackError):
        cause = error.__context__
        if isinstance(cause, BadRequest):
            return cause
        log.error("request parse failed", exc_info=cause)
        return BadRequest("BadRequest", "The request could not be parsed.")
    if isinstance(error, BadRequest):
        return error
    return BadRequest("BadRequest", "The request is not valid HTTP/1.1.")


class RequestParser:
    """llhttp over one connection's bytes; hands `conn` each request head, body piece and end.

    What the connection's sweeper reads is here too: whether a head is open (`in_head`) and
    since when (`head_since`).
    """

    def __init__(self, conn: ParsedFor) -> None:
        self.conn = conn
        self.parser = httptools.HttpRequestParser(self)
        self.in_head = False
        self.in_body = False
        self.head_since = 0.0
        self.begun = 0  # messages llhttp began on this connection
        self.head_size = 0  # bytes fed while this head was open (a lower bound: see feed)
        self.chunk_open = False  # a chunk header came and no data yet: maybe the trailers
        self.body_events = 0
        self.trailer_size = 0
        self._url: list[bytes] = []
        self._url_size = 0
        self._fields_size = 0
        self._headers: list[tuple[str, str]] = []

    def feed(self, data: bytes) -> None:
        """Parse `data`; raises what llhttp, or a bound or check of ours, refused."""
        begun, idle = self.begun, not (self.in_head or self.in_body)
        trailing, events = self.chunk_open, self.body_events
        self.parser.feed_data(data)
        self._bound_fields(data, begun, idle, trailing, events)

    def _bound_fields(
        self, data: bytes, begun: int, idle: bool, trailing: bool, events: int
    ) -> None:
        """Count the bytes of a head (or trailer section) still open after `data` was fed.

        A head open before `data`, or begun at its first byte, holds all of it; one begun
        inside it (after another message) is counted from the next read, so the count never
        exceeds the truth and stays within one read of it. The exact size is checked when
        the head completes. Each read costs one comparison: linear in the bytes received.
        """
        limit = self.conn.server.max_head_size
        if self.in_head and not self.conn.close_after:
            if self.begun == begun or (idle and self.begun == begun + 1):
                self.head_size += len(data)
                if self.head_size > limit:
                    raise BadRequest(
                        "RequestHeaderSectionTooLarge", "The request headers are too large."
                    )
        elif trailing and self.chunk_open and self.body_events == events:
            self.trailer_size += len(data)
            if self.trailer_size > limit:
                raise BadRequest("BadRequest", "The request trailers are too large.")

    # httptools callbacks

    def on_message_begin(self) -> None:
        if self.conn.ended:
            # llhttp reads on after an HTTP/1.0 chunked request, which ends the connection.
            raise BadRequest("BadRequest", "Nothing is read after the last request.")
        self.in_head = True
        self.begun += 1
        self.head_size = 0
        self.head_since = self.conn.loop.time()
        self._url = []
        self._url_size = 0
        self._fields_size = 0
        self._headers = []

    def on_url(self, url: bytes) -> None:
        self._url_size += len(url)
        if self._url_size > MAX_LINE_SIZE:
            raise BadRequest("RequestURITooLong", "The request line is too long.", 414)
        self._url.append(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.in_body:
            # Trailer fields: nothing here reads them, and a backend must not be told later
            # what framed a body it already has (Content-Length, Transfer-Encoding, …).
            raise BadRequest("BadRequest", "Trailer fields are not accepted in a request.")
        size = len(name) + len(value)
        self._fields_size += size + 4  # ": " and CRLF
        if (
            size > MAX_FIELD_SIZE
            or len(self._headers) >= MAX_HEADERS
            or self._url_size + self._fields_size > self.conn.server.max_head_size
        ):
            raise BadRequest("RequestHeaderSectionTooLarge", "The request headers are too large.")
        self._headers.append((name.decode("latin-1"), value.decode("utf-8", "surrogateescape")))

    def on_headers_complete(self) -> None:
        self.in_head = False
        self.in_body = True  # until on_message_complete, which comes at once if bodiless
        parser = self.parser
        method = parser.get_method().decode("ascii")
        version = parser.get_http_version()
        headers = CIMultiDictProxy(CIMultiDict(self._headers))
        check_framing(method, version, headers)
        url = self._url[0] if len(self._url) == 1 else b"".join(self._url)
        length = headers.get("Content-Length")
        chunked = "Transfer-Encoding" in headers
        body_exists = chunked or (length is not None and length != "0")
        # HTTP/1.0 has no chunked framing: a 1.0 message that claims it is read as sent, and
        # the connection ends after its answer (RFC 9112, 6.1).
        keep_alive = parser.should_keep_alive() and not (chunked and version == "1.0")
        self.conn.on_request(
            Request(
                self.conn,
                method,
                url.decode("utf-8", "surrogateescape"),
                headers,
                version,
                keep_alive,
                body_exists,
            )
        )

    def on_body(self, body: bytes) -> None:
        self.chunk_open = False
        self.body_events += 1
        self.conn.on_body(body)

    def on_chunk_header(self) -> None:
        self.chunk_open = True
        self.trailer_size = 0

    def on_chunk_complete(self) -> None:
        self.chunk_open = False
        self.body_events += 1

    def on_message_complete(self) -> None:
        self.in_body = False
        self.chunk_open = False
        self.conn.on_message_complete()
