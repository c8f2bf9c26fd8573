"""Answer bodies the proxy need not see, moved by the kernel: `splice(2)` from the backend's
socket into a pipe and from the pipe into the client's socket, the way HAProxy forwards, so a
large download's bytes never cross into Python.

Only a body that passes through untouched qualifies (`splice_length`): a Content-Length body
of at least `MIN_SPLICE` bytes, on plain TCP at both ends (TLS needs the bytes in user space),
and not disabled by `S3_ROUTER_SPLICE=off`. Everything else goes through the copy loop of
`backends/relay.py`.

While a body is spliced neither asyncio protocol touches the sockets: the backend connection
stops reading (`client.BackendConnection.hand_over_body`), and the client connection has
nothing to write, its answer's head and the body bytes read with the backend's head having
left first (`_flushed`). The pump works on duplicates of the two descriptors, since the event
loop refuses to watch a descriptor that a transport owns. Exactly the bytes left of the
Content-Length are moved, so the backend connection is whole afterwards and goes back to its
pool; a backend that ends early or stalls past its read timeout fails with `UpstreamError` or
`TimeoutError`, a client that goes away with `ClientGone`, as the copy loop's would.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import fcntl
import os
import termios
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .client import HOLD_BODY, UpstreamError, UpstreamResponse
from .messages import Request, StreamResponse
from .sendqueue import unsent

AVAILABLE = hasattr(os, "splice")
# Below this the copy loop costs about what the pipe and the extra system calls cost (measured:
# the same CPU per GET at 256 KiB, 30% less at 512 KiB, 45% less at 1 MiB, 65% less at 4 MiB).
MIN_SPLICE = HOLD_BODY
# The pipe between the sockets: bytes in flight per splice call (the default is 64 KiB).
PIPE_SIZE = 1024 * 1024
_FLAGS = getattr(os, "SPLICE_F_MOVE", 0) | getattr(os, "SPLICE_F_NONBLOCK", 0)
_MORE = getattr(os, "SPLICE_F_MORE", 0)
_SETTINGS = {"on": True, "1": True, "true": True, "off": False, "0": False, "false": False}
# How often a waiting pump checks the backend's read timeout and the client connection.
_TICK = 1.0


class ClientGone(ConnectionError):
    """The client connection ended (or was ended) while its answer's body was being spliced."""


def setting(value: str | None) -> bool:
    """Whether `S3_ROUTER_SPLICE` (on, off; unset is on) lets bodies be spliced."""
    if value is None or not value.strip():
        return True
    try:
        return _SETTINGS[value.strip().lower()]
    except KeyError:
        raise ValueError(f"S3_ROUTER_SPLICE={value!r} is not on or off") from None


# Whether bodies are spliced in this process: the command sets it from S3_ROUTER_SPLICE.
ENABLED = AVAILABLE


def splice_length(
    method: str, status: int, header_map: Mapping[str, str], *, enabled: bool = True
) -> int | None:
    """The length of a backend answer's body when it is worth splicing, else None.

    Not for HEAD, 1xx, 204 or 304 (no body), nor a chunked or to-the-close body (its framing
    must be read), nor a body under `MIN_SPLICE`."""
    if not enabled or method == "HEAD" or status < 200 or status in (204, 304):
        return None
    if "transfer-encoding" in header_map:
        return None
    length = header_map.get("content-length", "")
    if not length.isdigit() or int(length) < MIN_SPLICE:
        return None
    return int(length)


def plain_socket(transport: asyncio.BaseTransport | None) -> int | None:
    """The descriptor of a transport's socket when it carries plain TCP, else None."""
    if transport is None or transport.is_closing():
        return None
    if transport.get_extra_info("sslcontext") is not None:
        return None
    sock = transport.get_extra_info("socket")
    if sock is None:
        return None
    fd = sock.fileno()
    return fd if fd >= 0 else None


async def splice_answer(
    request: Request,
    response: StreamResponse,
    upstream: UpstreamResponse,
    read_timeout: float,
    counted: Callable[[int], None],
) -> None:
    """Send the rest of `upstream`'s body to the client of `response` (prepared already).

    `counted` is told each run of bytes that reached the client's socket."""
    backend = upstream.connection
    held, left = backend.hand_over_body()
    if held:
        await response.write(held)
        counted(len(held))
    if left:
        await _flushed(request)
        # Looked up only now, after the awaits: a descriptor closed meanwhile may be another
        # connection's by now.
        client_fd = plain_socket(request.transport)
        if client_fd is None:
            raise ClientGone("the client closed the connection")
        backend_fd = plain_socket(backend.transport)
        if backend_fd is None:
            raise UpstreamError("the backend connection closed")
        transport = request.transport
        assert transport is not None

        def client_closing() -> BaseException | None:
            return (
                ClientGone("the client connection was closed") if transport.is_closing() else None
            )

        ends = Ends(
            read_timeout,
            counted,
            source_failed=lambda what: UpstreamError(f"the backend {what}"),
            sink_failed=lambda what: ClientGone(f"the client {what}"),
            timed_out=lambda: TimeoutError("the backend did not send its answer in time"),
            stopped=client_closing,
            write_timeout=request._conn.send_timeout,
        )
        await Pump(backend.loop, backend_fd, client_fd, left, ends).run()
    backend.body_moved()


async def _flushed(request: Request) -> None:
    """Wait until the client transport has written everything it holds, so spliced bytes
    follow the head on the wire instead of overtaking it."""
    transport = request.transport
    assert transport is not None
    if not transport.get_write_buffer_size():
        return
    low, high = transport.get_write_buffer_limits()
    transport.set_write_buffer_limits(high=0, low=0)  # resume_writing once it is empty
    try:
        await request._conn.drain()
    finally:
        if not transport.is_closing():
            transport.set_write_buffer_limits(high=high, low=low)
    if transport.is_closing():
        raise ClientGone("the client closed the connection")


@dataclass(frozen=True, slots=True)
class Ends:
    """What a pump tells and raises about its two ends. `source_failed` and `sink_failed` make
    the error for a side that broke (told what happened, "closed the connection mid-body"
    say); `timed_out` the one for a source silent for `read_timeout`; `stopped`, asked once a
    tick, the error that ends the pump early (a connection closed meanwhile), if any;
    `sink_failed` also for a sink that took no byte for `write_timeout` while bytes waited."""

    read_timeout: float
    counted: Callable[[int], None]  # told each run of bytes that reached the sink
    source_failed: Callable[[str], BaseException]
    sink_failed: Callable[[str], BaseException]
    timed_out: Callable[[], BaseException]
    stopped: Callable[[], BaseException | None]
    # Bytes per second the source must keep up once `read_timeout` has passed (a request
    # body's `body_min_rate`); time spent waiting for the sink does not count.
    min_rate: float | None = None
    write_timeout: float | None = None


class Pump:
    """socket -> pipe -> socket for `count` bytes, driven by the event loop: a backend's answer
    to the client here, a client's upload to the backend in `uploadsplice.py`."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, source: int, sink: int, count: int, ends: Ends
    ) -> None:
        self.loop = loop
        self.source_fd, self.sink_fd = source, sink
        self.count = count
        self.left = count  # still to read from the source
        self.held = 0  # in the pipe
        self.ends = ends
        self.reading = self.writing = False
        self.pipe_full = False
        self.last_read = self.last_write = loop.time()
        self.sink_queued = -1  # the sink's send queue at the last tick spent waiting on it
        self.reading_for = 0.0  # seconds spent waiting on the source, roughly (whole ticks)
        self.done: asyncio.Future[None] = loop.create_future()

    async def run(self) -> None:
        with contextlib.ExitStack() as stack:
            self.source = os.dup(self.source_fd)
            stack.callback(os.close, self.source)
            self.sink = os.dup(self.sink_fd)
            stack.callback(os.close, self.sink)
            self.pipe_out, self.pipe_in = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            stack.callback(os.close, self.pipe_out)
            stack.callback(os.close, self.pipe_in)
            with contextlib.suppress(OSError):
                fcntl.fcntl(self.pipe_in, fcntl.F_SETPIPE_SZ, PIPE_SIZE)  # capped by pipe-max-size
            self.room = fcntl.fcntl(self.pipe_in, fcntl.F_GETPIPE_SZ)
            # Unwatched before the descriptors close (callbacks run last first): epoll would
            # otherwise keep reporting a closed duplicate while the original stays open.
            stack.callback(self._watch, read=False, write=False)
            self.timer = self.loop.call_later(_TICK, self._tick)
            stack.callback(lambda: self.timer.cancel())
            self._step()
            await self.done

    def _step(self) -> None:
        """Move what moves now, then wait for the side that blocks."""
        if self.done.done():
            return
        while True:
            moved = False
            if self.left and not self.pipe_full and self.held < self.room:
                try:
                    n = os.splice(
                        self.source,
                        self.pipe_in,
                        min(self.left, self.room - self.held),
                        flags=_FLAGS,
                    )
                except BlockingIOError:
                    # An empty socket, or a pipe whose slots small pieces used up: then the
                    # socket stays readable, and only a write out of the pipe makes room.
                    self.pipe_full = self.held > 0 and _unread(self.source) > 0
                except OSError as exc:
                    return self._fail(self.ends.source_failed(f"connection failed: {exc}"))
                else:
                    if n == 0:
                        return self._fail(self.ends.source_failed("closed the connection mid-body"))
                    self.left -= n
                    self.held += n
                    self.last_read = self.loop.time()
                    moved = True
            if self.held:
                try:
                    n = os.splice(
                        self.pipe_out,
                        self.sink,
                        self.held,
                        flags=_FLAGS | (_MORE if self.left else 0),
                    )
                except BlockingIOError:
                    n = 0
                except OSError as exc:
                    return self._fail(self.ends.sink_failed(f"connection failed: {exc}"))
                if n:
                    self.held -= n
                    self.last_write = self.loop.time()
                    self.ends.counted(n)
                    self.pipe_full = False
                    moved = True
            if not self.left and not self.held:
                self._watch(read=False, write=False)
                self.done.set_result(None)
                return
            if not moved:
                break
        # Both ends at once: the backend fills the pipe while the client empties it.
        read = bool(self.left) and not self.pipe_full and self.held < self.room
        self._watch(read=read, write=bool(self.held))

    def _watch(self, *, read: bool, write: bool) -> None:
        loop = self.loop
        if read != self.reading:
            self.reading = read
            if read:
                self.last_read = loop.time()  # the silence that counts is the one while waiting
                loop.add_reader(self.source, self._step)
            else:
                loop.remove_reader(self.source)
        if write != self.writing:
            self.writing = write
            if write:
                self.last_write = loop.time()
                loop.add_writer(self.sink, self._step)
            else:
                loop.remove_writer(self.sink)

    def _tick(self) -> None:
        if self.done.done():
            return
        stopped = self.ends.stopped()
        if self.reading:
            self.reading_for += _TICK
        if stopped is not None:
            self._fail(stopped)
        elif self._too_slow():
            self._fail(self.ends.timed_out())
        elif self._sink_stuck():
            self._fail(self.ends.sink_failed("stopped reading"))
        else:
            self.timer = self.loop.call_later(_TICK, self._tick)

    def _too_slow(self) -> bool:
        """Whether the source went silent for `read_timeout` while waited on, or after that
        grace kept below `min_rate`."""
        ends = self.ends
        if self.reading and self.loop.time() - self.last_read > ends.read_timeout:
            return True
        taken = self.count - self.left
        return bool(ends.min_rate) and self.reading_for > ends.read_timeout + taken / ends.min_rate

    def _sink_stuck(self) -> bool:
        """Whether the sink took no byte for `write_timeout` while bytes waited for it."""
        timeout = self.ends.write_timeout
        if timeout is None or not self.writing:
            self.sink_queued = -1
            return False
        queued = unsent(self.sink)  # a slow but steady peer shows its progress here first
        if queued < self.sink_queued:
            self.last_write = self.loop.time()
        self.sink_queued = queued
        return self.loop.time() - self.last_write > timeout

    def _fail(self, error: BaseException) -> None:
        self._watch(read=False, write=False)
        if not self.done.done():
            self.done.set_exception(error)


def _unread(fd: int) -> int:
    """Bytes waiting in a socket's receive queue."""
    count = array.array("i", [0])
    with contextlib.suppress(OSError):
        fcntl.ioctl(fd, termios.FIONREAD, count, True)
    return count[0]
