"""The bytes a peer has yet to take (`http/sendqueue.py`), between real sockets."""

from __future__ import annotations

import asyncio
import socket
import time

from s3router_proxy.http import sendqueue


def test_unsent_falls_as_the_peer_reads() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    with server, socket.create_connection(server.getsockname()) as sender:
        peer, _ = server.accept()
        with peer:
            sender.setblocking(False)
            written = 0
            try:
                while True:
                    written += sender.send(b"x" * 65536)
            except BlockingIOError:
                pass
            before = sendqueue.unsent(sender.fileno())
            assert 0 < before <= written
            taken = 0
            while taken < 1024 * 1024:  # the peer reads: the window opens, the queue moves
                taken += len(peer.recv(65536))
            time.sleep(0.1)
            assert sendqueue.unsent(sender.fileno()) < before


def test_nothing_queued_on_an_idle_socket() -> None:
    left, right = socket.socketpair()
    with left, right:
        assert sendqueue.unsent(left.fileno()) == 0


async def test_queued_counts_a_transport_and_its_socket() -> None:
    assert sendqueue.queued(None) is None
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        assert sendqueue.queued(writer.transport) == 0
        writer.write(b"y" * (16 * 1024 * 1024))  # more than the peer, never reading, takes
        await asyncio.sleep(0.1)
        assert sendqueue.queued(writer.transport) > 8 * 1024 * 1024
        writer.transport.abort()
        await asyncio.sleep(0)
        assert sendqueue.queued(writer.transport) is None
