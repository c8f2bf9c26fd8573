"""The client side of the proxy: a small HTTP/1.1 server over asyncio and llhttp.

aiohttp's `web.Server` was the largest cost left in a proxied small request after the backend
leg (about 15 to 20% of the proxy's CPU in the profile, plus yarl/multidict: per-request
`BaseRequest`, `StreamReader`, payload writer and `StreamResponse` objects, header
serialisation through several layers, timers rescheduled per request). This server does what
the proxy needs and no more, the way `client.py` does for the backend leg:

- one asyncio `Protocol` per client connection (`clientconnection.py`); the request head is
  parsed by llhttp with bounded request-line and header sizes and its framing checked before
  the handler sees it (`requestparser.py`), so nothing llhttp would refuse later is forwarded;
- requests and answers themselves are in `messages.py`: the body is handed to the handler as
  the bytes that arrived, a whole answer (head and body) leaves in one `write`, a streamed one
  is framed with its Content-Length or chunked;
- keep-alive, pipelined requests answered in order, HTTP/1.0, `Expect: 100-continue` (the
  handler answers it once the request is authenticated and routed), and a lingering close when
  an answer goes out before its request's body has arrived. When the whole body did arrive, the
  connection stays open;
- one timer task per server (here) sweeps idle keep-alive connections, lingering closes, request
  heads that do not finish in time, request bodies that stall and answers the client stops
  reading, instead of a timer per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable

from .clientconnection import ClientConnection
from .messages import Request, Response
from .requestparser import MAX_HEAD_SIZE
from .sendqueue import queued

HEADER_TIMEOUT = 20.0  # seconds for a whole head to arrive once its first byte came
BODY_TIMEOUT = 20.0  # seconds a body may stall, and the grace before BODY_MIN_RATE counts
BODY_MIN_RATE = 1024.0  # bytes per second a body must keep up after BODY_TIMEOUT
# Seconds an answer may wait for the client to take its bytes (nginx's send_timeout is 60 s).
SEND_TIMEOUT = 60.0
LINGER_SECONDS = 5.0
SWEEP_SECONDS = 1.0


Handler = Callable[["Request"], Awaitable["Response"]]


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
        send_timeout: float = SEND_TIMEOUT,
        max_head_size: int = MAX_HEAD_SIZE,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.handler = handler
        self.keepalive_timeout = keepalive_timeout
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.body_min_rate = body_min_rate
        self.send_timeout = send_timeout
        self.max_head_size = max_head_size
        self.tls = tls
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]  # set by start
        self.connections: set[ClientConnection] = set()
        self.draining = False
        self.server: asyncio.AbstractServer | None = None
        self._sweeper: asyncio.Task[None] | None = None

    async def start(
        self, host: str | None, port: int, *, reuse_port: bool = False, backlog: int = 1024
    ) -> int:
        """Listen; returns the port (the one chosen when `port` is 0)."""
        self.loop = asyncio.get_running_loop()
        self.server = await self.loop.create_server(
            lambda: ClientConnection(self),
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
                self._sweep_connection(conn, now)

    def _sweep_connection(self, conn: ClientConnection, now: float) -> None:
        if conn.closed:
            return
        if conn.write_paused and self._client_stopped_reading(conn, now):
            # A client that stopped reading its answer: the answer is cut (the client cannot
            # take it as complete) and the backend connection it held is let go.
            conn.abort()
            return
        if conn.lingering:
            if now - conn.since > LINGER_SECONDS and not conn.busy:
                conn.close()
        elif conn.parser.in_head:
            if conn.read_paused:
                conn.parser.head_since = now  # not read while requests ahead are answered
            elif now - conn.parser.head_since > self.header_timeout:
                conn.time_out_head()
        elif conn.parsing is not None and not conn.final:
            self._sweep_body(conn, conn.parsing, now)
        elif (
            not conn.busy
            and conn.parsing is None
            and not conn.queue
            and now - conn.since > self.keepalive_timeout
        ):
            conn.close()  # an idle keep-alive connection

    def _client_stopped_reading(self, conn: ClientConnection, now: float) -> bool:
        """Whether a client whose answer waits took no byte of it for `send_timeout`: the
        bytes still queued toward it, compared sweep to sweep, show a slow client's progress
        long before writing resumes (`sendqueue.py`)."""
        left = queued(conn.transport)
        if left is not None:
            if left < conn.answer_queued:
                conn.write_paused_since = now
            conn.answer_queued = left
        return now - conn.write_paused_since > self.send_timeout

    def _sweep_body(self, conn: ClientConnection, request: Request, now: float) -> None:
        """Time a body out when it stalls for `body_timeout`, or when after that grace it has
        come slower than `body_min_rate`. Time the proxy itself is not reading (back-pressure,
        a request queued behind another, a 100-continue not yet sent) does not count."""
        elapsed, conn.body_tick = now - conn.body_tick, now
        body = request.content
        if body.complete or body.discard or conn.read_paused:
            return
        if request.expect_continue and not request.continued:
            return
        conn.body_idle += elapsed
        conn.body_active += elapsed
        allowed = self.body_timeout + conn.body_bytes / self.body_min_rate
        if conn.body_idle > self.body_timeout or conn.body_active > allowed:
            conn.time_out_body(request)

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
