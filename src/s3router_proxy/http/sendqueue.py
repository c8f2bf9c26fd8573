"""How many bytes a peer has yet to take of what was written to it: what tells a slow but
steady reader from one that stopped.

A socket turns writable again only once a good part of its send buffer (megabytes, with
autotuning) is free, and a transport resumes writing only once most of its own buffer is gone,
so a peer taking bytes steadily can leave both looking stalled for many seconds. The bytes
still queued, looked at twice, show whether it took any in between.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import fcntl
import termios


def unsent(fd: int) -> int:
    """Bytes in a socket's send queue that the peer has not taken yet (sent or not)."""
    count = array.array("i", [0])
    with contextlib.suppress(OSError):
        fcntl.ioctl(fd, termios.TIOCOUTQ, count, True)
    return count[0]


def queued(transport: asyncio.BaseTransport | None) -> int | None:
    """Bytes written to `transport` that its peer has not taken: in the transport's buffer and
    in its socket's send queue. None when there is no socket to ask."""
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or sock.fileno() < 0 or transport.is_closing():  # type: ignore[union-attr]
        return None
    return transport.get_write_buffer_size() + unsent(sock.fileno())  # type: ignore[union-attr]
