"""The backend leg of forwarded requests: a small HTTP/1.1 client over pooled connections.

It replaced aiohttp's `ClientSession`, the largest single cost of a proxied small request
(`bench/client_micro.py` compares the two against nginx). One asyncio `Protocol` per keep-alive
connection; the request head and a small body leave in one `write`; the answer is delimited by
`responseparser.py` (bounded while it arrives, parsed by llhttp) and its body handed over as it
arrives, with `pause_reading` / `resume_reading` and `pause_writing` / `resume_writing` as the
back-pressure both ways.

A connection is only reused after an answer that was whole and well framed. A byte after an
answer's end, or while no request is out, retires it: HTTP/1.1 has no request ids, so such a
byte could only be read as the next client's answer (while an answer is read, such bytes other
than an empty line fail it: the answer in hand may be another's). Interim 1xx answers are
skipped; a malformed answer, a 101 or a head beyond its bounds fails the exchange with
`UpstreamError` (a 503 for the client) and closes the connection. The backend's reason phrase
is never passed on: `UpstreamResponse.reason` is the standard phrase for the status.

The pool that lends these connections, and writes requests on them, is `pool.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import deque
from collections.abc import AsyncIterator
from http import HTTPStatus
from typing import Protocol

from .responseparser import BadAnswer, ResponseParser
from .sendqueue import queued

# Answer bytes buffered before the backend socket stops being read (per connection).
READ_HIGH_WATER = 1024 * 1024
READ_LOW_WATER = 256 * 1024
# A Content-Length body at least this large is not read past what came with its head until
# it is asked for: it may be spliced past this connection (`splice.py`) instead.
HOLD_BODY = 512 * 1024

REASONS = {status.value: status.phrase for status in HTTPStatus}


class Lender(Protocol):
    """Where a connection is lent from (the pool): it is handed back there after a whole answer,
    and forgotten there when it closes."""

    read_timeout: float

    def take_back(self, conn: BackendConnection) -> None: ...

    def forget(self, conn: BackendConnection) -> None: ...


class UpstreamError(ConnectionError):
    """The backend connection failed or the backend broke the protocol."""


class ConnectFailed(UpstreamError):
    """No connection could be made (refused, unresolvable): nothing was sent."""


class ConnectTimeout(ConnectFailed, TimeoutError):
    """The connection was not made within `connect_timeout`: nothing was sent either."""


class Disconnected(UpstreamError):
    """The backend closed the connection before any byte of its answer."""


class TooLarge(UpstreamError):
    """An answer read whole was longer than the reader's limit."""


class BackendConnection(asyncio.Protocol):
    """One connection to a backend; carries one exchange at a time."""

    __slots__ = (
        "body",
        "body_waiter",
        "buffered",
        "closed",
        "complete",
        "counted",
        "drain_waiter",
        "error",
        "header_map",
        "headers",
        "headers_done",
        "headers_waiter",
        "idle_since",
        "in_use",
        "last_data",
        "loop",
        "parser",
        "pool",
        "queued",
        "read_paused",
        "reusable",
        "status",
        "timer",
        "transport",
        "waiting",
        "write_paused",
    )

    def __init__(self, pool: Lender, loop: asyncio.AbstractEventLoop) -> None:
        self.pool = pool
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.counted = True
        self.write_paused = False
        self.drain_waiter: asyncio.Future[None] | None = None
        self.idle_since = 0.0
        self.in_use = False
        # The read timer outlives a wait (see `_wait`); `waiting` is the wait it guards, if any.
        self.timer: asyncio.TimerHandle | None = None
        self.waiting: asyncio.Future[None] | None = None
        self.queued = -1  # request bytes the backend had yet to take, at the last look
        # Idle until a request goes out: a byte before that is stray and retires the connection.
        self.parser = ResponseParser(self)
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.header_map: dict[str, str] = {}
        self.headers_done = False
        self.headers_waiter: asyncio.Future[None] | None = None
        self.body: deque[bytes] = deque()
        self.buffered = 0
        self.body_waiter: asyncio.Future[None] | None = None
        self.complete = False
        self.read_paused = False
        self.reusable = True
        self.error: BaseException | None = None
        self.last_data = 0.0

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # A request head and a small body leave at once, not after the previous ACK.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.last_data = self.loop.time()
        try:
            self.parser.feed(data)
        except BadAnswer as exc:
            self._fail(UpstreamError(f"malformed answer from the backend: {exc}"))
            self.transport.abort()  # type: ignore[union-attr]

    def eof_received(self) -> bool:
        self.reusable = False
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        # feed_eof completes an answer delimited by the end of the connection.
        if not self.complete and self.error is None and not self.parser.feed_eof():
            if not self.parser.started:
                self._fail(Disconnected("the backend closed the connection"))
            else:
                self._fail(UpstreamError("the backend closed the connection mid-answer"))
        waiter = self.drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self.pool.forget(self)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        waiter = self.drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ResponseParser callbacks

    def on_head(self) -> None:
        parser = self.parser
        self.status = parser.status
        self.headers = parser.headers
        self.header_map = parser.header_map
        if not parser.keep_alive:
            self.reusable = False
        if parser.body_left >= HOLD_BODY and not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()  # type: ignore[union-attr]
        self.headers_done = True
        waiter = self.headers_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def on_body(self, body: bytes) -> None:
        self.body.append(body)
        self.buffered += len(body)
        if self.buffered > READ_HIGH_WATER and not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()  # type: ignore[union-attr]
        self._wake_body()

    def on_complete(self) -> None:
        self.complete = True
        self._wake_body()

    def on_stray(self, data: bytes) -> None:
        # Bytes after a complete answer, or while no request was out: never read as the next
        # answer, and the connection is not used again. A backend that answers what was not
        # asked is out of step with its requests, so the answer still being read may be
        # another request's too: it fails. Only an empty line is let pass (RFC 9112 2.2 asks
        # to tolerate one before a status line).
        self.reusable = False
        if self.in_use and data.strip(b"\r\n"):
            self._fail(UpstreamError("the backend sent bytes after its answer"))
        self.transport.close()  # type: ignore[union-attr]

    # helpers

    def _wake_body(self) -> None:
        waiter = self.body_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        self.reusable = False
        for waiter in (self.headers_waiter, self.body_waiter):
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    async def _wait(self, waiter: asyncio.Future[None]) -> None:
        """Wait for the backend, failing after `read_timeout` without a byte from it (or to it).

        One timer per connection, not per wait (scheduling one per answer cost more than the
        wait): a timer left from an earlier wait fires early, sees a shorter silence and is set
        again for the wait in hand; one that finds no wait lapses until the next sets it."""
        loop = self.loop
        self.last_data = loop.time()  # the silence that counts is the one while waiting
        self.queued = -1  # and so do the bytes the backend took during it
        self.waiting = waiter
        if self.timer is None:
            self.timer = loop.call_at(self.last_data + self.pool.read_timeout, self._check_timeout)
        try:
            await waiter
        finally:
            self.waiting = None

    def _check_timeout(self) -> None:
        self.timer = None
        waiter = self.waiting
        if waiter is None or waiter.done() or self.closed:
            return
        now, due = self.loop.time(), self.last_data + self.pool.read_timeout
        if now < due:
            self.timer = self.loop.call_at(due, self._check_timeout)  # bytes came meanwhile
            return
        # A backend still taking the request's body is not silent, though it sends nothing.
        left = queued(self.transport) or 0
        took = left < self.queued  # bytes since the last look, the last of them too
        if took or (left and self.queued < 0):
            if took:
                self.last_data = now
            self.queued = left
            self.timer = self.loop.call_at(now + 1.0, self._check_timeout)  # a second look
            return
        self._fail(TimeoutError("the backend did not answer in time"))
        if self.transport is not None:
            self.transport.abort()

    async def wait_headers(self) -> None:
        while not self.headers_done:
            if self.error is not None:
                raise self.error
            waiter = self.headers_waiter = self.loop.create_future()
            await self._wait(waiter)
        if self.error is not None:
            # The answer broke in the read that completed its head: nothing went to the client
            # yet, so it gets an error rather than a head and a cut body.
            raise self.error

    async def next_piece(self) -> bytes:
        """Body bytes as they arrived (several reads joined), b"" at the end."""
        if self.error is not None:
            raise self.error  # even with bytes in hand: they may not be this answer's
        while not self.body:
            if self.complete:
                return b""
            if self.error is not None:
                raise self.error
            if self.read_paused and not self.closed:  # a held body (HOLD_BODY), now wanted
                self.read_paused = False
                self.transport.resume_reading()  # type: ignore[union-attr]
            waiter = self.body_waiter = self.loop.create_future()
            await self._wait(waiter)
        body = self.body
        data = body.popleft() if len(body) == 1 else b"".join(body)
        body.clear()
        self.buffered = 0
        if self.read_paused and not self.closed:
            self.read_paused = False
            self.transport.resume_reading()  # type: ignore[union-attr]
        return data

    def hand_over_body(self) -> tuple[bytes, int]:
        """Stop reading: the rest of a Content-Length body is moved past this connection by the
        kernel (`splice.py`). Returns the body bytes read already and how many are to come."""
        if self.error is not None:
            raise self.error
        if not self.read_paused and self.transport is not None:
            self.read_paused = True
            self.transport.pause_reading()
        held = b"".join(self.body)
        self.body.clear()
        self.buffered = 0
        return held, self.parser.body_left

    def body_moved(self) -> None:
        """All of the body handed over reached the client: the answer is whole, and bytes that
        come after it are stray again."""
        self.parser.body_skipped()
        if self.read_paused and not self.closed:
            self.read_paused = False
            self.transport.resume_reading()  # type: ignore[union-attr]

    async def drain(self) -> None:
        """Wait until the backend takes more of a request body: `TimeoutError` when it takes
        none for the read timeout (a backend that stopped reading would hold the upload)."""
        while self.write_paused and not self.closed:
            waiter = self.drain_waiter = self.loop.create_future()
            await self._wait(waiter)  # the connection's own read timer, not one per wait


class UpstreamResponse:
    """A backend's answer: status, headers as sent, and the body to read or stream once."""

    __slots__ = ("_conn", "header_map", "headers", "reason", "status")

    def __init__(self, conn: BackendConnection) -> None:
        self._conn: BackendConnection | None = conn
        self.status = conn.status
        # The backend's own phrase is never passed on: it is free text a client would trust.
        self.reason = REASONS.get(conn.status, "")
        self.headers = conn.headers  # (name, value) in the order sent
        self.header_map = conn.header_map  # lower-case name -> value (repeats joined)

    @property
    def connection(self) -> BackendConnection:
        """The connection the answer arrives on (for a body spliced past it)."""
        assert self._conn is not None
        return self._conn

    @property
    def body_complete(self) -> bool:
        conn = self._conn
        return conn is not None and conn.complete and not conn.body

    async def read(self, limit: int) -> bytes:
        """The whole body; `UpstreamError` when it is longer than `limit` or breaks off."""
        conn = self._conn
        assert conn is not None
        if conn.complete and len(conn.body) <= 1 and conn.error is None:
            data = conn.body.popleft() if conn.body else b""
            if len(data) > limit:
                raise TooLarge("the backend's answer is larger than expected")
            return data
        pieces = bytearray()
        while piece := await conn.next_piece():
            pieces += piece
            if len(pieces) > limit:
                raise TooLarge("the backend's answer is larger than expected")
        return bytes(pieces)

    async def next_piece(self) -> bytes:
        """Body bytes as they arrived, b"" at the end."""
        conn = self._conn
        assert conn is not None
        return await conn.next_piece()

    async def iter_pieces(self) -> AsyncIterator[bytes]:
        conn = self._conn
        assert conn is not None
        while piece := await conn.next_piece():
            yield piece

    def release(self) -> None:
        """Hand the connection back (answer fully read) or drop it (anything else)."""
        conn = self._conn
        if conn is None:
            return
        self._conn = None
        conn.pool.take_back(conn)
