"""The client side of the proxy: a small HTTP/1.1 server over asyncio and llhttp.

Requests and answers themselves are in `messages.py`.

aiohttp's `web.Server` was the largest cost left in a proxied small request after the backend
leg (about 15 to 20% of the proxy's CPU in the profile, plus yarl/multidict: per-request
`BaseRequest`, `StreamReader`, payload writer and `StreamResponse` objects, header
serialisation through several layers, timers rescheduled per request). This server does what
the proxy needs and no more, the way `client.py` does for the backend leg:

- one asyncio `Protocol` per client connection; the request head is parsed by llhttp
  (`httptools`, the parser uvicorn uses) with bounded request-line and header sizes;
- the body is handed to the handler as the bytes that arrived (`Body.readany`), with
  `pause_reading` / `resume_reading` as back-pressure toward the client;
- a whole answer (head and body) leaves in one `write`; a streamed answer is framed with its
  Content-Length or chunked, and waits on `pause_writing` / `resume_writing`;
- keep-alive, pipelined requests answered in order, HTTP/1.0, `Expect: 100-continue` (the
  handler answers it once the request is authenticated and routed), and a lingering close when
  an answer goes out before its request's body has arrived: the answer says
  `Connection: close`, the rest of the body is read and dropped for a few seconds so the answer
  is not lost to a reset, then the connection ends. When the whole body did arrive, the
  connection stays open;
- one timer task per server sweeps idle keep-alive connections, lingering closes, request
  heads that do not finish in time and request bodies that stall, instead of a timer per
  request.

A request head is bounded while it arrives: the bytes fed to llhttp while a head is open are
counted (httptools joins a header's pieces with `bytes +=`, quadratic in its length, and calls
`on_header` only once the whole value is in), and the framing headers are checked
(`check_framing`) before the handler sees the request, so nothing llhttp would refuse later
is forwarded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections import deque
from collections.abc import Awaitable, Callable, Iterable

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

from .messages import (
    READ_HIGH_WATER,
    READ_LOW_WATER,
    REASONS,
    SERVER_NAME,
    BadRequest,
    Body,
    BodyTimeout,
    Request,
    Response,
    StreamResponse,
    check_framing,
    http_date,
)

log = logging.getLogger("s3router_proxy.front")

MAX_LINE_SIZE = 16 * 1024  # the request line (method, target, version)
MAX_FIELD_SIZE = 16 * 1024  # one header line
MAX_HEADERS = 200
MAX_HEAD_SIZE = 64 * 1024  # the request line and all headers (router.max_request_head_bytes)
HEADER_TIMEOUT = 20.0  # seconds for a whole head to arrive once its first byte came
BODY_TIMEOUT = 20.0  # seconds a body may stall, and the grace before BODY_MIN_RATE counts
BODY_MIN_RATE = 1024.0  # bytes per second a body must keep up after BODY_TIMEOUT
# Answer bytes buffered in the transport before a streamed answer waits.
WRITE_HIGH_WATER = 1024 * 1024
LINGER_SECONDS = 5.0
SWEEP_SECONDS = 1.0


Handler = Callable[["Request"], Awaitable["Response"]]

_TIMED_OUT = (
    "Your socket connection to the server was not read from or written to within the "
    "timeout period."
)


def _refusal(error: Exception) -> BadRequest:
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


class _ClientConnection(asyncio.Protocol):
    """One client connection: requests parsed in, answers written out, in order."""

    def __init__(self, server: FrontServer) -> None:
        self.server = server
        self.loop = server.loop
        self.transport: asyncio.Transport | None = None
        self.remote: str | None = None
        self.scheme = "https" if server.tls else "http"
        self.parser = httptools.HttpRequestParser(self)
        self.closed = False
        self.close_after = False  # no request after the one in hand (an error, an upgrade)
        self.final = False  # the server answered the request in hand itself (a timeout)
        self.ended = False  # a request that ends the connection arrived whole: read no more
        # A refusal of bytes that came after requests still to answer: written after them.
        self.pending_error: BadRequest | None = None
        self.read_paused = False
        self.write_paused = False
        self.drain_waiter: asyncio.Future[None] | None = None
        # The request being parsed (its head done, its body arriving) and those answered next.
        self.parsing: Request | None = None
        self.queue: deque[Request] = deque()
        self.busy = False  # a request is being answered
        self.task: asyncio.Task[None] | None = None
        self.lingering = False
        # Sweeper state: when the connection went idle, or a head or a linger began.
        self.since = self.loop.time()
        self.in_head = False
        self.in_body = False
        self.head_since = 0.0
        self.begun = 0  # messages llhttp began on this connection
        self.head_size = 0  # bytes fed while this head was open (a lower bound: see feed)
        self.chunk_open = False  # a chunk header came and no data yet: maybe the trailers
        self.body_events = 0
        self.trailer_size = 0
        # The body in arrival: seconds it went without a byte, seconds it was read, bytes.
        self.body_tick = 0.0
        self.body_idle = 0.0
        self.body_active = 0.0
        self.body_bytes = 0
        self._url: list[bytes] = []
        self._url_size = 0
        self._fields_size = 0
        self._headers: list[tuple[str, str]] = []

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
        begun, idle = self.begun, not (self.in_head or self.in_body)
        trailing, events = self.chunk_open, self.body_events
        try:
            self.parser.feed_data(data)
            self._bound_fields(data, begun, idle, trailing, events)
        except httptools.HttpParserUpgrade:
            # check_framing refuses upgrades before llhttp signals one; should one still come,
            # the request is answered as HTTP/1.1 and nothing after it is read.
            self.close_after = True
            if not self.busy and not self.queue and self.parsing is None:
                self.close()
        except (BadRequest, httptools.HttpParserError) as error:
            if not self.ended:  # bytes after a last request are ignored, not refused
                self._refuse(_refusal(error))

    def _bound_fields(
        self, data: bytes, begun: int, idle: bool, trailing: bool, events: int
    ) -> None:
        """Count the bytes of a head (or trailer section) still open after `data` was fed.

        A head open before `data`, or begun at its first byte, holds all of it; one begun
        inside it (after another message) is counted from the next read, so the count never
        exceeds the truth and stays within one read of it. The exact size is checked when
        the head completes. Each read costs one comparison: linear in the bytes received.
        """
        limit = self.server.max_head_size
        if self.in_head and not self.close_after:
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

    def eof_received(self) -> bool | None:
        self.close_after = True
        if self.parsing is not None:
            self.parsing.content.set_error(ConnectionResetError("the body ended early"))
        # True keeps the write side open, so an answer in hand still reaches the client;
        # an idle connection closes now.
        return self.busy or bool(self.queue)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        waiter = self.drain_waiter
        if waiter is not None:
            self.drain_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # httptools callbacks

    def on_message_begin(self) -> None:
        if self.ended:
            # llhttp reads on after an HTTP/1.0 chunked request, which ends the connection.
            raise BadRequest("BadRequest", "Nothing is read after the last request.")
        self.in_head = True
        self.begun += 1
        self.head_size = 0
        self.head_since = self.loop.time()
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
            or self._url_size + self._fields_size > self.server.max_head_size
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
        request = Request(
            self,
            method,
            url.decode("utf-8", "surrogateescape"),
            headers,
            version,
            keep_alive,
            body_exists,
        )
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
        self.chunk_open = False
        self.body_events += 1
        self.body_bytes += len(body)
        self.body_idle = 0.0
        if self.parsing is not None:
            self.parsing.content.feed(body)

    def on_chunk_header(self) -> None:
        self.chunk_open = True
        self.trailer_size = 0

    def on_chunk_complete(self) -> None:
        self.chunk_open = False
        self.body_events += 1

    def on_message_complete(self) -> None:
        self.in_body = False
        self.chunk_open = False
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
        self.in_head = False  # a refused head is over: the head clock stops
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

    def _time_out_body(self, request: Request) -> None:
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
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{error.code}</Code><Message>{error.message}</Message></Error>"
        ).encode()
        reason = REASONS.get(error.status, "Bad Request")
        head = (
            f"HTTP/1.1 {error.status} {reason}\r\nContent-Type: application/xml\r\n"
            f"Content-Length: {len(body)}\r\nDate: {http_date()}\r\n"
            f"Server: {SERVER_NAME}\r\nConnection: close\r\n\r\n"
        ).encode()
        with contextlib.suppress(ConnectionError):
            self.write(head + body)
        self.close()

    def sweep(self, now: float, idle_timeout: float) -> None:
        if self.closed:
            return
        server = self.server
        if self.lingering:
            if now - self.since > LINGER_SECONDS and not self.busy:
                self.close()
        elif self.in_head:
            if self.read_paused:
                self.head_since = now  # not read while requests ahead are answered
            elif now - self.head_since > server.header_timeout:
                self._refuse(BadRequest("RequestTimeout", _TIMED_OUT))
        elif self.parsing is not None and not self.final:
            self._sweep_body(self.parsing, now)
        elif (
            not self.busy
            and self.parsing is None
            and not self.queue
            and now - self.since > idle_timeout
        ):
            self.close()  # an idle keep-alive connection

    def _sweep_body(self, request: Request, now: float) -> None:
        """Time a body out when it stalls for `body_timeout`, or when after that grace it has
        come slower than `body_min_rate`. Time the proxy itself is not reading (back-pressure,
        a request queued behind another, a 100-continue not yet sent) does not count."""
        elapsed, self.body_tick = now - self.body_tick, now
        body = request.content
        if body.complete or body.discard or self.read_paused:
            return
        if request.expect_continue and not request.continued:
            return
        server = self.server
        self.body_idle += elapsed
        self.body_active += elapsed
        allowed = server.body_timeout + self.body_bytes / server.body_min_rate
        if self.body_idle > server.body_timeout or self.body_active > allowed:
            self._time_out_body(request)


class FrontServer:
    """Listens on one address and serves every connection with `handler`."""

    def __init__(
        self,
        handler: Handler,
        *,
        keepalive_timeout: float = 75.0,
        header_timeout: float = HEADER_TIMEOUT,
        body_timeout: float = BODY_TIMEOUT,
        body_min_rate: float = BODY_MIN_RATE,
        max_head_size: int = MAX_HEAD_SIZE,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.handler = handler
        self.keepalive_timeout = keepalive_timeout
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.body_min_rate = body_min_rate
        self.max_head_size = max_head_size
        self.tls = tls
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]  # set by start
        self.connections: set[_ClientConnection] = set()
        self.draining = False
        self.server: asyncio.AbstractServer | None = None
        self._sweeper: asyncio.Task[None] | None = None

    async def start(
        self, host: str | None, port: int, *, reuse_port: bool = False, backlog: int = 1024
    ) -> int:
        """Listen; returns the port (the one chosen when `port` is 0)."""
        self.loop = asyncio.get_running_loop()
        self.server = await self.loop.create_server(
            lambda: _ClientConnection(self),
            host,
            port,
            ssl=self.tls,
            reuse_address=True,
            reuse_port=reuse_port or None,
            backlog=backlog,
        )
        self._sweeper = self.loop.create_task(self._sweep())
        return int(self.server.sockets[0].getsockname()[1])

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            now = self.loop.time()
            for conn in list(self.connections):
                conn.sweep(now, self.keepalive_timeout)

    def stop_listening(self) -> None:
        """Refuse new connections; idle ones close, busy ones close after their answer."""
        self.draining = True
        if self.server is not None:
            self.server.close()
        for conn in list(self.connections):
            if not conn.busy and conn.parsing is None and not conn.queue:
                conn.close()

    async def close(self) -> None:
        """End every connection (after `stop_listening` and the drain the caller waited)."""
        self.stop_listening()
        if self._sweeper is not None:
            self._sweeper.cancel()
        for conn in list(self.connections):
            conn.abort() if conn.busy else conn.close()
        if self.server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 1.0)


__all__ = [
    "MAX_FIELD_SIZE",
    "MAX_HEAD_SIZE",
    "MAX_LINE_SIZE",
    "READ_HIGH_WATER",
    "SERVER_NAME",
    "BadRequest",
    "Body",
    "BodyTimeout",
    "FrontServer",
    "Request",
    "Response",
    "StreamResponse",
]
