"""Requests and answers as the proxy's own HTTP server (`server.py`) hands them around.

`Request` carries the parsed head and a `Body` that fills as the client sends it; `Response`
is an answer whose body is known (one write, head and body together) and `StreamResponse` one
written piece by piece, framed with its Content-Length, chunked, or (HTTP/1.0) to the close.
The names and the methods handlers call (`prepare`, `write`, `write_eof`, `force_close`,
`enable_chunked_encoding`) follow aiohttp's, which the proxy used before.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterable, Mapping
from email.utils import formatdate
from http import HTTPStatus
from typing import Protocol

from multidict import CIMultiDict, CIMultiDictProxy

# Body bytes buffered before the client socket stops being read.
READ_HIGH_WATER = 1024 * 1024
READ_LOW_WATER = 256 * 1024
# Buffered body pieces smaller than this are joined into one read; bigger ones are not copied.
_JOIN_BELOW = 64 * 1024
SERVER_NAME = "lakefs-s3-router"
# A whole answer larger than this leaves in two writes (head, body) rather than one copy.
JOIN_LIMIT = 256 * 1024

REASONS = {status.value: status.phrase for status in HTTPStatus}
_NO_BODY_STATUS = frozenset({204, 304})
# Names the server writes itself; a handler's values for them are ignored.
_FRAMING = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})

_date_second = 0
_date_value = ""


def http_date() -> str:
    """The Date header value, made once a second."""
    global _date_second, _date_value
    now = int(time.time())
    if now != _date_second:
        _date_second, _date_value = now, formatdate(now, usegmt=True)
    return _date_value


class Connection(Protocol):
    """What a request and its answer ask of the client connection they travel on
    (`clientconnection.ClientConnection`)."""

    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport | None
    remote: str | None
    scheme: str
    send_timeout: float  # seconds an answer may wait for the client to take its bytes

    def pause_body(self) -> None: ...

    def resume_body(self) -> None: ...

    def write(self, data: bytes) -> None: ...

    def writelines(self, data: Iterable[bytes]) -> None: ...

    async def drain(self) -> None: ...

    def must_close(self, request: Request, response: Response) -> bool: ...

    def answered(self, request: Request, close: bool) -> None: ...


class BodyTimeout(ConnectionError):
    """The client stopped sending a body (or sent it too slowly): its reader fails with this."""


class Body:
    """A request body as it arrives: `readany()` returns what is buffered, b"" at its end."""

    __slots__ = ("_conn", "_error", "_pieces", "_size", "_waiter", "complete", "discard")

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._pieces: deque[bytes] = deque()
        self._size = 0
        self._waiter: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self.complete = False  # the whole body arrived (the message is complete)
        self.discard = False  # the answer went out: what still arrives is dropped

    def feed(self, data: bytes) -> None:
        if self.discard:
            return
        self._pieces.append(data)
        self._size += len(data)
        if self._size > READ_HIGH_WATER:
            self._conn.pause_body()
        self._wake()

    def feed_eof(self) -> None:
        self.complete = True
        self._wake()

    def set_error(self, error: BaseException) -> None:
        if not self.complete:
            self._error = error
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def readany(self) -> bytes:
        while not self._pieces:
            if self._error is not None:
                raise self._error
            if self.complete:
                return b""
            self._waiter = self._conn.loop.create_future()
            await self._waiter
        pieces = self._pieces
        if len(pieces) == 1 or len(pieces[0]) >= _JOIN_BELOW:
            # A big piece goes on alone: joining pieces of a fast upload copied every byte
            # once more (about a tenth of the CPU of a streamed PUT).
            data = pieces.popleft()
            self._size -= len(data)
        else:
            data = b"".join(pieces)
            pieces.clear()
            self._size = 0
        if self._size <= READ_LOW_WATER:
            self._conn.resume_body()
        return data

    async def read(self) -> bytes:
        """The whole body (small bodies only: callers bound what they read)."""
        out = []
        while piece := await self.readany():
            out.append(piece)
        return b"".join(out)


class Request:
    """One request as the handler sees it."""

    __slots__ = (
        "_conn",
        "answer_begun",
        "body_exists",
        "content",
        "continued",
        "expect_continue",
        "headers",
        "keep_alive",
        "method",
        "raw_path",
        "remote",
        "scheme",
        "transport",
        "version",
    )

    def __init__(
        self,
        conn: Connection,
        method: str,
        raw_path: str,
        headers: CIMultiDictProxy[str],
        version: str,
        keep_alive: bool,
        body_exists: bool,
    ) -> None:
        self._conn = conn
        self.method = method
        self.raw_path = raw_path
        self.headers = headers
        self.version = version
        self.keep_alive = keep_alive
        self.body_exists = body_exists
        self.content = Body(conn)
        self.transport = conn.transport
        self.remote = conn.remote
        self.scheme = conn.scheme
        expect = headers.get("Expect")
        self.expect_continue = expect is not None and expect.lower() == "100-continue"
        self.continued = False
        self.answer_begun = False  # the answer's head is written

    def send_continue(self) -> None:
        """Answer `Expect: 100-continue`: the client may send its body now."""
        if self.expect_continue and not self.continued and not self.content.complete:
            self.continued = True
            self._conn.write(b"HTTP/1.1 100 Continue\r\n\r\n")


class Response:
    """An answer whose body is known: it leaves in one write."""

    __slots__ = ("_close", "body", "headers", "reason", "status")
    prepared = False

    def __init__(
        self,
        *,
        status: int = 200,
        reason: str | None = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        content_type: str | None = None,
    ) -> None:
        self.status = status
        self.reason = reason
        self.body = body
        self.headers: CIMultiDict[str] = (
            headers if isinstance(headers, CIMultiDict) else CIMultiDict(headers or ())
        )
        if content_type is not None:
            self.headers["Content-Type"] = content_type
        self._close = False

    def force_close(self) -> None:
        """End the connection after this answer."""
        self._close = True

    def _head(self, request: Request, length: int | None, chunked: bool, close: bool) -> bytes:
        status = self.status
        reason = self.reason or REASONS.get(status, "Unknown")
        lines = [f"HTTP/1.1 {status} {reason}\r\n"]
        append = lines.append
        has_date = has_server = False
        for name, value in self.headers.items():
            lower = name.lower()
            if lower in _FRAMING:
                continue
            if lower == "date":
                has_date = True
            elif lower == "server":
                has_server = True
            append(f"{name}: {value}\r\n")
        if length is not None:
            append(f"Content-Length: {length}\r\n")
        elif chunked:
            append("Transfer-Encoding: chunked\r\n")
        if not has_date:
            append(f"Date: {http_date()}\r\n")
        if not has_server:
            append(f"Server: {SERVER_NAME}\r\n")
        if close:
            append("Connection: close\r\n")
        elif request.version == "1.0":
            append("Connection: keep-alive\r\n")
        append("\r\n")
        text = "".join(lines)
        # One count over the whole head instead of two searches per header: a CR or LF in any
        # name or value (or the reason) adds to the count of one per line.
        if text.count("\n") != len(lines) or text.count("\r") != len(lines):
            raise ValueError("a line break in a header of the answer")
        return text.encode("utf-8", "surrogateescape")

    def _send(self, request: Request) -> None:
        conn = request._conn
        request.answer_begun = True
        close = conn.must_close(request, self)
        status = self.status
        body = self.body or b""
        if status in _NO_BODY_STATUS or status < 200:
            head = self._head(request, None, False, close)
            body = b""
        elif request.method == "HEAD":
            given = self.headers.get("Content-Length")
            length = int(given) if given is not None and given.isdigit() else len(body)
            head = self._head(request, length, False, close)
            body = b""
        else:
            head = self._head(request, len(body), False, close)
        if len(body) <= JOIN_LIMIT:
            conn.write(head + body if body else head)
        else:
            conn.write(head)
            conn.write(body)
        conn.answered(request, close)


class StreamResponse(Response):
    """An answer whose body is written piece by piece after `prepare`."""

    __slots__ = ("_done", "_framing", "_request")

    def __init__(
        self,
        *,
        status: int = 200,
        reason: str | None = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(status=status, reason=reason, headers=headers)
        self._done = False
        self._request: Request | None = None
        self._framing = ""  # "length", "chunked", "none" (no body) or "close" (to the end)

    @property
    def prepared(self) -> bool:  # type: ignore[override]
        return self._request is not None

    def enable_chunked_encoding(self) -> None:
        """Nothing to do: `prepare` frames every answer without a Content-Length as chunked
        (HTTP/1.1) or to the close (HTTP/1.0)."""

    async def prepare(self, request: Request) -> None:
        if self._request is not None:
            return
        self._request = request
        request.answer_begun = True
        conn = request._conn
        given = self.headers.get("Content-Length")
        length = int(given) if given is not None and given.isdigit() else None
        if self.status in _NO_BODY_STATUS or self.status < 200:
            framing, length, chunked = "none", None, False
        elif request.method == "HEAD":
            framing, chunked = "none", False
        elif length is not None:
            framing, chunked = "length", False
        elif request.version == "1.1":
            framing, length, chunked = "chunked", None, True
        else:
            framing, chunked = "close", False
            self._close = True
        self._framing = framing
        close = conn.must_close(request, self)
        self._close = close
        conn.write(self._head(request, length, chunked, close))
        await conn.drain()

    async def write(self, data: bytes) -> None:
        if self._request is None or self._done:
            raise RuntimeError("write before prepare, or after write_eof")
        if not data or self._framing == "none":
            return
        conn = self._request._conn
        if self._framing == "chunked":
            conn.writelines((b"%x\r\n" % len(data), data, b"\r\n"))
        else:
            conn.write(data)
        await conn.drain()

    async def write_eof(self) -> None:
        request = self._request
        if request is None or self._done:
            return
        self._done = True
        conn = request._conn
        if self._framing == "chunked":
            conn.write(b"0\r\n\r\n")
        conn.answered(request, self._close)
        await conn.drain()
