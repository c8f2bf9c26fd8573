"""Upload bodies the proxy need not see, moved by the kernel: `splice(2)` from the client's
socket into a pipe and from the pipe into the backend's socket, the mirror image of `splice.py`.

Only a body nothing in the proxy reads qualifies (the caller decides: an unsigned payload with
no checksum to verify, a plain Content-Length body, one backend over plain TCP). What the
front parser already took of it goes to the backend first, after the request head; then the
client connection stops reading and exactly the rest of the Content-Length is moved, so the
bytes after it on the wire (a pipelined request) stay in the client's socket. llhttp cannot
skip bytes, so the message is then ended by hand and the connection reads on with a fresh
parser (`clientconnection.ClientConnection.body_moved`).

Nothing is committed on a failure: a client that goes away or stalls (the front server's body
timeout) leaves the backend a short body, and its connection is aborted. A backend that answers
early or stops reading ends the splice and its answer is read as the copy loop would; the
client connection then closes after its answer, as what is left of its body cannot be parsed.
"""

from __future__ import annotations

from typing import Protocol, cast

from .client import BackendConnection, UpstreamError
from .messages import BodyTimeout, Request
from .splice import ClientGone, Ends, Pump, plain_socket


class BodyTimeLimit(Protocol):
    body_timeout: float  # seconds a request body may stall, and the grace before...
    body_min_rate: float  # ...it must keep up this many bytes per second


class Front(Protocol):
    """What a spliced upload asks of the client connection it arrives on
    (`clientconnection.ClientConnection`)."""

    @property
    def server(self) -> BodyTimeLimit: ...

    def hand_over_body(self, request: Request) -> tuple[bytes, int]: ...

    def body_moved(self, request: Request) -> None: ...

    def body_broken(self) -> None: ...

    def time_out_body(self, request: Request) -> None: ...


class _Stop(Exception):
    """The backend answered, closed or stopped reading before the whole body: stop sending."""


class SplicedUpload:
    """A request body of `length` bytes, sent after the head by `send` (`pool.BodySender`).

    `sent` counts the bytes that reached the backend's socket, `spliced` those of them the
    kernel moved; `client_error` is why the client side failed, if it did."""

    def __init__(self, request: Request, length: int) -> None:
        self.request = request
        self.length = length
        self.sent = 0
        self.spliced = 0
        self.client_error: BaseException | None = None

    async def send(self, conn: BackendConnection, head: bytes) -> bool:
        request = self.request
        front = cast(Front, request._conn)
        try:
            held, left = front.hand_over_body(request)
        except BaseException as exc:  # the client went away, or stalled, before it began
            self.client_error = exc
            raise
        if len(held) + left != self.length:
            front.body_broken()
            raise UpstreamError("the body was read in part before it was spliced")
        transport = conn.transport
        assert transport is not None
        transport.write(head + held if held else head)
        self.sent = len(held)
        if not left:
            return True
        try:
            await _flushed(conn)
            await self._pump(conn, left, front.server)
        except _Stop:
            # As the copy loop does: stop sending and read what the backend answered. The
            # backend connection holds half a body and the client's socket the rest of it.
            conn.reusable = False
            front.body_broken()
            return False
        except BodyTimeout as exc:
            self.client_error = exc
            front.time_out_body(request)
            raise
        except BaseException as exc:
            if isinstance(exc, ClientGone):
                self.client_error = exc
            front.body_broken()
            raise
        front.body_moved(request)
        return True

    async def _pump(self, conn: BackendConnection, left: int, limits: BodyTimeLimit) -> None:
        # Looked up only now, after the awaits: a descriptor closed meanwhile may be another
        # connection's by now.
        client = self.request.transport
        client_fd = plain_socket(client)
        if client is None or client_fd is None:
            raise ClientGone("the client closed the connection")
        backend_fd = plain_socket(conn.transport)
        if backend_fd is None:
            raise _Stop

        def stopped() -> BaseException | None:
            if client.is_closing():
                return ClientGone("the client connection was closed")
            if conn.headers_done or conn.closed:
                return _Stop()
            return None

        # The front server's body timeouts, as its sweeper applies them to a body it reads.
        ends = Ends(
            limits.body_timeout,
            self._counted,
            source_failed=lambda what: ClientGone(f"the client {what}"),
            sink_failed=lambda what: _Stop(what),
            timed_out=lambda: BodyTimeout("the request body timed out"),
            stopped=stopped,
            min_rate=limits.body_min_rate,
            write_timeout=conn.pool.read_timeout,  # a backend that stops reading the body
        )
        await Pump(conn.loop, client_fd, backend_fd, left, ends).run()

    def _counted(self, count: int) -> None:
        self.sent += count
        self.spliced += count


async def _flushed(conn: BackendConnection) -> None:
    """Wait until the backend transport has written the head and what went with it, so spliced
    bytes follow them on the wire instead of overtaking them."""
    transport = conn.transport
    assert transport is not None
    if transport.get_write_buffer_size():
        low, high = transport.get_write_buffer_limits()
        transport.set_write_buffer_limits(high=0, low=0)  # resume_writing once it is empty
        try:
            await conn.drain()
        finally:
            if not transport.is_closing():
                transport.set_write_buffer_limits(high=high, low=low)
    if conn.closed or transport.is_closing() or conn.headers_done:
        raise _Stop
