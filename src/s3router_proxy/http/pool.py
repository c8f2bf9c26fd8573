"""Keep-alive connections to one backend, one exchange at a time, and the requests sent on them.

This is the proxy's only client to backends: the requests it makes itself (listing pages,
split deletes, cross-backend copies streamed from a GET into a PUT, mirror writes, migrate and
repair, readiness probes) take the same pools through `proxy.backend_response`, so they get the
same framing rules and bounds, and one `max_connections` per backend counts them all. A streamed
body's first piece is pulled only once the connection is up and leaves with the request head
(an empty body's end too): `tee.py` counts on it to know every mirror is ready.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterator, Iterable
from typing import Protocol

from .client import (
    BackendConnection,
    ConnectFailed,
    ConnectTimeout,
    Disconnected,
    UpstreamError,
    UpstreamResponse,
)

# How long an idle pooled connection is trusted; most servers close idle ones later than this
# (nginx 75 s, S3 about 20 s), so a reused connection is rarely one the backend just closed.
IDLE_SECONDS = 15.0
# Connection attempts in flight per pool. A burst of requests to a backend that closes every
# connection (moto, some gateways) would otherwise send hundreds of SYNs at once, overflow its
# listen backlog (128 for Python servers) and have connects wait out SYN retransmits.
MAX_CONNECTING = 32

_CHUNK_END = b"\r\n"


class BodySender(Protocol):
    """A body that sends itself, after the head, on the connection it is given
    (`uploadsplice.SplicedUpload`: the kernel moves it from the client's socket), and says
    whether all of it went out."""

    async def send(self, conn: BackendConnection, head: bytes) -> bool: ...


class UpstreamPool:
    """Keep-alive connections to one backend, at most `limit` open at once."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: bool,
        limit: int,
        connect_timeout: float,
        read_timeout: float,
    ) -> None:
        self.host = host
        self.port = port
        self.ssl: ssl.SSLContext | None = ssl.create_default_context() if tls else None
        self.limit = limit
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.idle: list[BackendConnection] = []
        self.open = 0
        self.connecting = 0
        self.waiters: deque[asyncio.Future[BackendConnection | None]] = deque()
        self.closing = False

    async def request(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]],
        body: bytes | AsyncIterator[bytes] | BodySender | None,
        *,
        chunked: bool = False,
    ) -> UpstreamResponse:
        """Send one request and return once the answer's head arrived.

        `headers` must hold Host and, for a body of known size, Content-Length; `chunked`
        frames a streamed body with Transfer-Encoding: chunked (added here)."""
        lines = [f"{method} {target} HTTP/1.1"]
        lines += [f"{name}: {value}" for name, value in headers]
        if chunked:
            lines.append("Transfer-Encoding: chunked")
        lines.append("\r\n")
        text = "\r\n".join(lines)
        if "\n" in target or text.count("\n") != len(lines):
            raise ValueError("a header holds a line break")
        head = text.encode("utf-8", "surrogateescape")
        # An idle connection is taken without a coroutine of its own: the usual case.
        conn = self._idle_connection() or await self._acquire()
        try:
            conn._reset()
            conn.in_use = True
            conn.parser.begin(method == "HEAD")
            transport = conn.transport
            assert transport is not None
            if conn.closed or transport.is_closing():
                raise Disconnected("the backend closed the connection")
            whole = True
            if body is None:
                transport.write(head)
            elif isinstance(body, bytes):
                transport.write(head + body)
            elif isinstance(body, AsyncIterator):
                whole = await self._send_stream(conn, head, body, chunked)
            else:
                whole = await body.send(conn, head)
            await conn.wait_headers()
            if not whole and conn.status < 300:
                # S3 answers a write once its whole body is in. A success that came before it,
                # for a body cut short here, would vouch for an object the backend never had.
                raise UpstreamError("the backend answered 2xx before the whole body was sent")
        except BaseException:
            conn.reusable = False
            self.take_back(conn)
            raise
        return UpstreamResponse(conn)

    @staticmethod
    async def _send_stream(
        conn: BackendConnection, head: bytes, body: AsyncIterator[bytes], chunked: bool
    ) -> bool:
        """Stream `body` after `head`; whether all of it went. The head leaves with the first
        piece: a body refused before its first piece went out (a failed check) never reaches
        the backend at all."""
        transport = conn.transport
        assert transport is not None
        pending: bytes | None = head
        async for piece in body:
            if conn.headers_done or conn.closed:
                # The backend answered (or hung up) before the whole body: stop sending; the
                # connection is not reusable with half a body on it.
                conn.reusable = False
                aclose = getattr(body, "aclose", None)
                if aclose is not None:
                    await aclose()
                return False
            if not piece:
                continue
            parts = [f"{len(piece):x}\r\n".encode(), piece, _CHUNK_END] if chunked else [piece]
            if pending is not None:
                parts.insert(0, pending)
                pending = None
            if len(parts) == 1:
                transport.write(piece)
            else:
                transport.writelines(parts)
            if conn.write_paused:
                await conn.drain()
        if conn.closed:
            return pending is None and not chunked
        if chunked:
            transport.write(b"0\r\n\r\n" if pending is None else pending + b"0\r\n\r\n")
        elif pending is not None:
            transport.write(pending)
        return True

    def _idle_connection(self) -> BackendConnection | None:
        """A pooled connection still fit to carry a request, or None; unfit ones are closed."""
        idle = self.idle
        while idle:
            conn = idle.pop()
            if (
                conn.reusable
                and not conn.closed
                and not conn.transport.is_closing()  # type: ignore[union-attr]
                and conn.loop.time() - conn.idle_since < IDLE_SECONDS
            ):
                return conn
            conn.reusable = False
            if conn.transport is not None:
                conn.transport.close()
            self.forget(conn)
        return None

    async def _acquire(self) -> BackendConnection:
        while True:
            conn = self._idle_connection()
            if conn is not None:
                return conn
            # Only here, off the pooled path: get_running_loop costs a getpid() system call.
            loop = asyncio.get_running_loop()
            if self.open < self.limit and self.connecting < MAX_CONNECTING:
                self.open += 1
                self.connecting += 1
                try:
                    return await self._connect(loop)
                finally:
                    self.connecting -= 1
                    self._wake_one()
            waiter: asyncio.Future[BackendConnection | None] = loop.create_future()
            self.waiters.append(waiter)
            try:
                conn_or_none = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled() and waiter.result() is not None:
                    self.take_back(waiter.result())  # type: ignore[arg-type]
                raise
            if conn_or_none is not None:
                return conn_or_none

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> BackendConnection:
        conn = BackendConnection(self, loop)
        try:
            async with asyncio.timeout(self.connect_timeout):
                await loop.create_connection(
                    lambda: conn,
                    self.host,
                    self.port,
                    ssl=self.ssl,
                    server_hostname=self.host if self.ssl is not None else None,
                )
        except TimeoutError:
            self.forget(conn)
            if conn.transport is not None:
                conn.transport.abort()
            raise ConnectTimeout("the connection was not made in time") from None
        except (OSError, ssl.SSLError) as exc:
            self.forget(conn)
            raise ConnectFailed(str(exc) or type(exc).__name__) from exc
        except BaseException:
            self.forget(conn)
            raise
        return conn

    def take_back(self, conn: BackendConnection) -> None:
        conn.in_use = False
        if (
            conn.reusable
            and conn.complete
            and not conn.body
            and not conn.closed
            and not self.closing
        ):
            while self.waiters:
                waiter = self.waiters.popleft()
                if not waiter.done():
                    waiter.set_result(conn)
                    return
            conn.idle_since = conn.loop.time()
            self.idle.append(conn)
            return
        conn.reusable = False
        if conn.transport is not None and not conn.closed:
            conn.transport.abort() if not conn.complete else conn.transport.close()
        self.forget(conn)

    def forget(self, conn: BackendConnection) -> None:
        """`conn` no longer counts against the limit; a waiter may open a new one."""
        if not conn.counted:
            return
        conn.counted = False
        self.open -= 1
        if conn in self.idle:
            self.idle.remove(conn)
        self._wake_one()

    def _wake_one(self) -> None:
        """Let one queued request try again: a connection slot or a connect slot came free."""
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def close(self) -> None:
        self.closing = True
        for conn in list(self.idle):
            if conn.transport is not None:
                conn.transport.close()
        self.idle.clear()
