"""One client connection of the front server: requests parsed in, answers written out, in order.

An asyncio `Protocol`: the bytes that arrive go to `requestparser.RequestParser`, which hands
back each request head, body piece and end. The body is handed to the handler as the bytes that
arrived (`Body.readany`), with `pause_reading` / `resume_reading` as back-pressure toward the
client; answers (`messages.py`) go out through `write` and wait on `pause_writing` /
`resume_writing`. Pipelined requests are answered in order, one ahead read at the most. An
answer that goes out before its request's body has arrived says `Connection: close`; the rest
of the body is read and dropped for a while (a lingering close) so the answer is not lost to a
reset. The server's sweeper (`server.py`) times heads, bodies, lingers and idle connections out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

import httptools

from .messages import (
    READ_LOW_WATER,
    BodyTimeout,
    Request,
    Response,
)
from .requestparser import BadRequest, RequestParser, refusal

log = logging.getLogger("s3router_proxy.front")


class Serving(Protocol):
    """The server a connection belongs to (`server.FrontServer`): its loop, TLS and limits,
    whether it drains, its handler and the connections it holds."""

    loop: asyncio.AbstractEventLoop
    tls: ssl.SSLContext | None
    max_head_size: int
    draining: bool
    connections: set[ClientConnection]
    body_timeout: float
    body_min_rate: float
    send_timeout: float
    handler: Callable[[Request], Awaitable[Response]]


# Answer bytes buffered in the transport before a streamed answer waits.
WRITE_HIGH_WATER = 1024 * 1024

_TIMED_OUT = (
    "Your socket connection to the server was not read from or written to within the "
    "timeout period."
)


class ClientConnection(asyncio.Protocol):
    """One client connection: requests parsed in, answers written out, in order."""

    def __init__(self, server: Serving) -> None:
        self.server = server
        self.loop = server.loop
        self.transport: asyncio.Transport | None = None
        self.remote: str | None = None
        self.scheme = "https" if server.tls else "http"
        self.send_timeout = server.send_timeout
        self.parser = RequestParser(self)
        self.closed = False
        self.close_after = False  # no request after the one in hand (an error, an upgrade)
        self.final = False  # the server answered the request in hand itself (a timeout)
        self.ended = False  # a request that ends the connection arrived whole: read no more
        # A refusal of bytes that came after requests still to answer: written after them.
        self.pending_error: BadRequest | None = None
        self.read_paused = False
        self.handed_over = False  # the kernel moves the rest of a body past the parser
        self.write_paused = False
        self.write_paused_since = 0.0  # when the client last stopped taking answer bytes
        self.answer_queued = -1  # answer bytes it had yet to take, at the last sweep
        self.drain_waiter: asyncio.Future[None] | None = None
        # The request being parsed (its head done, its body arriving) and those answered next.
        self.parsing: Request | None = None
        self.queue: deque[Request] = deque()
        self.busy = False  # a request is being answered
        self.task: asyncio.Task[None] | None = None
        self.lingering = False
        # Sweeper state: when the connection went idle, or a head or a linger began.
        self.since = self.loop.time()
        # The body in arrival: seconds it went without a byte, seconds it was read, bytes.
        self.body_tick = 0.0
        self.body_idle = 0.0
        self.body_active = 0.0
        self.body_bytes = 0

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)  # type: ignore[attr-defined]
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and peer:
            self.remote = str(peer[0])
        elif peer:
            self.remote = str(peer)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.connections.add(self)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True
        self.server.connections.discard(self)
        error = ConnectionResetError("the client closed the connection")
        if self.parsing is not None:
            self.parsing.content.set_error(error)
        for request in self.queue:
            request.content.set_error(error)
        waiter = self.drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        self.drain_waiter = None

    def data_received(self, data: bytes) -> None:
        if self.ended or (self.close_after and self.parsing is None):
            return  # nothing after the request in hand is served
        if self.handed_over:  # reading is paused then: a byte here would be the body's
            self.abort()
            return
        try:
            self.parser.feed(data)
        except httptools.HttpParserUpgrade:
            # check_framing refuses upgrades before llhttp signals one; should one still come,
            # the request is answered as HTTP/1.1 and nothing after it is read.
            self.close_after = True
            if not self.busy and not self.queue and self.parsing is None:
                self.close()
        except (BadRequest, httptools.HttpParserError) as error:
            if not self.ended:  # bytes after a last request are ignored, not refused
                self._refuse(refusal(error))

    def eof_received(self) -> bool | None:
        self.close_after = True
        if self.parsing is not None:
            self.parsing.content.set_error(ConnectionResetError("the body ended early"))
        # True keeps the write side open, so an answer in hand still reaches the client;
        # an idle connection closes now.
        return self.busy or bool(self.queue)

    def pause_writing(self) -> None:
        self.write_paused = True
        self.write_paused_since = self.loop.time()
        self.answer_queued = -1

    def resume_writing(self) -> None:
        self.write_paused = False
        waiter = self.drain_waiter
        if waiter is not None:
            self.drain_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # what the parser found

    def on_request(self, request: Request) -> None:
        if self.close_after:
            self.parsing = None  # after a refused or final request: not served
            return
        self.parsing = request
        self.body_tick = self.loop.time()
        self.body_idle = self.body_active = 0.0
        self.body_bytes = 0
        if self.busy:
            self.queue.append(request)
            self._pause_reading()  # one request ahead is enough
        else:
            self._start(request)

    def on_body(self, body: bytes) -> None:
        self.body_bytes += len(body)
        self.body_idle = 0.0
        if self.parsing is not None:
            self.parsing.content.feed(body)

    def on_message_complete(self) -> None:
        request = self.parsing
        self.parsing = None
        if request is not None:
            # After a request that ends the connection nothing is processed (RFC 9112, 9.6);
            # what came before it is still answered, in order.
            self.ended = not request.keep_alive
            request.content.feed_eof()
            if self.lingering and not self.busy:
                self.close()

    # flow control

    def pause_body(self) -> None:
        self._pause_reading()

    def resume_body(self) -> None:
        if self.read_paused and not self.queue:
            self.read_paused = False
            if self.transport is not None and not self.closed:
                self.transport.resume_reading()

    def hand_over_body(self, request: Request) -> tuple[bytes, int]:
        """Stop reading: the rest of `request`'s body is moved past this connection by the
        kernel (`uploadsplice.py`). The body bytes parsed already, and how many are to come."""
        body = request.content
        if body._error is not None:
            raise body._error
        held, body._size = b"".join(body._pieces), 0
        body._pieces.clear()
        if body.complete:
            self.resume_body()
            return held, 0
        if self.parsing is not request or self.closed:
            raise ConnectionResetError("the client closed the connection")
        self._pause_reading()
        self.handed_over = True
        return held, int(request.headers["Content-Length"]) - self.body_bytes

    def body_moved(self, request: Request) -> None:
        """The rest went past llhttp (which cannot skip bytes): a fresh parser reads on."""
        self.parser, self.handed_over = RequestParser(self), False
        self.on_message_complete()
        self.resume_body()

    def body_broken(self) -> None:
        """Part of a body went past llhttp, not all: nothing more on the socket is read."""
        self.ended = self.close_after = True

    def _pause_reading(self) -> None:
        if not self.read_paused and self.transport is not None and not self.closed:
            self.read_paused = True
            self.transport.pause_reading()

    def write(self, data: bytes) -> None:
        if self.closed or self.transport is None or self.transport.is_closing():
            raise ConnectionResetError("the client closed the connection")
        self.transport.write(data)

    def writelines(self, data: Iterable[bytes]) -> None:
        if self.closed or self.transport is None or self.transport.is_closing():
            raise ConnectionResetError("the client closed the connection")
        self.transport.writelines(data)

    async def drain(self) -> None:
        if self.closed:
            raise ConnectionResetError("the client closed the connection")
        if self.write_paused:
            waiter = self.drain_waiter
            if waiter is None:
                waiter = self.drain_waiter = self.loop.create_future()
            await waiter

    # answering

    def _start(self, request: Request) -> None:
        self.busy = True
        self.task = self.loop.create_task(self._answer(request))

    async def _answer(self, request: Request) -> None:
        server = self.server
        try:
            response = await server.handler(request)
        except Exception:
            if self.final:
                self.busy = False
                return  # the body timed out: its reader failed, the answer is out already
            log.exception("the request handler failed")
            response = Response(status=500, body=b"", headers={"Content-Type": "text/plain"})
        if self.final:
            self.busy = False
            return
        try:
            if not response.prepared:
                response._send(request)
            elif not response._done:  # type: ignore[attr-defined]
                # A streamed answer cut short: the client must not take it as complete.
                self.abort()
                return
        except (ConnectionError, ValueError) as exc:
            if isinstance(exc, ValueError):
                log.error("an answer could not be written: %s", exc)
            self.abort()
            return
        self._next()

    def must_close(self, request: Request, response: Response) -> bool:
        """Whether the connection ends after this answer."""
        return (
            response._close
            or not request.keep_alive
            # Whole requests read before the last one (or a refusal) are answered first.
            or (self.close_after and not self.queue and self.pending_error is None)
            or self.server.draining
            or not request.content.complete
        )

    def answered(self, request: Request, close: bool) -> None:
        """The answer's last byte is written: what happens to the connection next."""
        body = request.content
        if close:
            self.close_after = True
            if not body.complete and not self.closed:
                # Read and drop the rest of the body for a while, so the client sees the
                # answer rather than a reset, then end the connection.
                body.discard = True
                body._pieces.clear()
                self.lingering = True
                self.since = self.loop.time()
                self.resume_body()
                if self.read_paused and self.transport is not None:
                    self.read_paused = False
                    self.transport.resume_reading()
            else:
                self.close()
        else:
            body._pieces.clear()

    def _next(self) -> None:
        self.busy = False
        if self.closed:
            return
        if self.lingering:
            if self.parsing is None:
                self.close()
            return  # the body's end, or the sweeper, closes the connection
        if self.queue and not self.server.draining:
            self.since = self.loop.time()
            request = self.queue.popleft()
            if self.read_paused and request.content._size <= READ_LOW_WATER:
                self.read_paused = False
                self.transport.resume_reading()  # type: ignore[union-attr]
            self._start(request)
        elif self.pending_error is not None:
            self._write_error(self.pending_error)
        elif self.close_after or self.server.draining:
            self.close()
        else:
            self.since = self.loop.time()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self) -> None:
        if self.final:
            self.close()  # the server's own answer is still being written
        elif self.transport is not None:
            self.transport.abort()

    def _refuse(self, error: BadRequest) -> None:
        """A request that cannot be parsed: answer it (unless one is in hand), then close."""
        self.close_after = True
        self.parser.in_head = False  # a refused head is over: the head clock stops
        broken, self.parsing = self.parsing, None
        if broken is not None:
            broken.content.set_error(ConnectionResetError("the request was malformed"))
        if self.busy or self.queue:
            # The answers to the whole requests before it go out first. A request in hand
            # whose body broke is answered by its handler (its body read fails); one still
            # queued is never handled: the refusal answers it.
            if broken is None or broken in self.queue:
                if broken is not None:
                    self.queue.remove(broken)
                self.pending_error = error
            return
        self._write_error(error)

    def time_out_head(self) -> None:
        """A head that did not arrive whole in time: RequestTimeout, then the connection ends."""
        self._refuse(BadRequest("RequestTimeout", _TIMED_OUT))

    def time_out_body(self, request: Request) -> None:
        """A body that stalled: its reader fails (so the backend request is aborted and
        nothing is committed), the client gets RequestTimeout, the connection ends."""
        self.close_after = True
        self.parsing = None
        request.content.set_error(BodyTimeout("the request body timed out"))
        if request.answer_begun:
            self.abort()  # an answer is under way: the client must not take it as complete
            return
        self.final = True
        self._write_error(BadRequest("RequestTimeout", _TIMED_OUT))

    def _write_error(self, error: BadRequest) -> None:
        with contextlib.suppress(ConnectionError):
            self.write(error.answer())
        self.close()
