"""The tee that sends one body to several backends: every branch gets every byte, memory stays
bounded, and an essential branch that stops early keeps the last piece from everyone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from s3router_proxy.body.payload import BodyAborted
from s3router_proxy.multi.tee import Tee


async def pieces(
    count: int, size: int = 4, produced: list[int] | None = None
) -> AsyncIterator[bytes]:
    for index in range(count):
        if produced is not None:
            produced.append(index)
        yield bytes([index % 256]) * size


async def collect(branch: AsyncIterator[bytes], delay: float = 0.0) -> bytes:
    data = bytearray()
    async for piece in branch:
        data += piece
        if delay:
            await asyncio.sleep(delay)
    return bytes(data)


async def test_every_branch_gets_the_whole_body() -> None:
    expected = b"".join([bytes([i]) * 4 for i in range(50)])
    tee = Tee(pieces(50), [True, True, False])
    results = await asyncio.gather(*(collect(b) for b in tee.branches))
    await tee.close()
    assert results == [expected] * 3
    assert tee.failure is None


async def test_the_slowest_branch_sets_the_pace() -> None:
    produced: list[int] = []
    tee = Tee(pieces(1000, produced=produced), [True, True])
    fast = asyncio.ensure_future(collect(tee.branches[0]))
    slow_branch = tee.branches[1]
    first = await slow_branch.__anext__()
    await asyncio.sleep(0.05)  # the fast branch would read everything if nothing held it back
    assert first == b"\0" * 4
    assert len(produced) < 10  # bounded: a few pieces per branch, not the body
    rest = await collect(slow_branch)
    assert len(first + rest) == 4000
    assert len(await fast) == 4000
    await tee.close()


async def test_a_dropped_optional_branch_does_not_stop_the_others() -> None:
    tee = Tee(pieces(100), [True, False])
    optional = tee.branches[1]
    await optional.__anext__()
    tee.detach(1)  # its backend failed
    assert len(await collect(tee.branches[0])) == 400
    await tee.close()
    assert tee.failure is None


async def test_an_essential_branch_cut_short_withholds_the_last_piece_from_all() -> None:
    tee = Tee(pieces(20), [True, True])
    survivor: list[bytes] = []

    async def keep(branch: AsyncIterator[bytes]) -> None:
        async for piece in branch:
            survivor.append(piece)

    task = asyncio.ensure_future(keep(tee.branches[0]))
    essential = tee.branches[1]
    for _ in range(5):
        await essential.__anext__()
    tee.detach(1)  # an essential backend broke off after five pieces
    with pytest.raises(BodyAborted):
        await task
    assert len(survivor) < 20  # the last piece never went out
    await tee.close()


async def test_a_source_failure_reaches_every_branch() -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"a" * 10
        raise BodyAborted

    tee = Tee(broken(), [True, False])
    results = await asyncio.gather(*(collect(b) for b in tee.branches), return_exceptions=True)
    await tee.close()
    assert all(isinstance(r, BodyAborted) for r in results)
    assert tee.failure is not None


@pytest.mark.parametrize("count", [0, 1])
async def test_nothing_completes_before_every_essential_branch_pulled(count: int) -> None:
    # A one-piece or empty body has no earlier piece to hold back: the last piece (or the end)
    # waits for the branch whose backend is still connecting, and never comes when it fails.
    tee = Tee(pieces(count), [True, True])
    got: list[bytes] = []

    async def keep() -> None:
        async for piece in tee.branches[0]:
            got.append(piece)
        got.append(b"<end>")

    task = asyncio.ensure_future(keep())
    await asyncio.sleep(0.05)
    assert got == [] and not task.done()
    tee.detach(1)  # its connection was refused: it never pulled
    with pytest.raises(BodyAborted):
        await task
    assert got == []
    assert tee.cause == 1
    await tee.close()


@pytest.mark.parametrize("count", [0, 1])
async def test_the_end_goes_out_once_every_essential_branch_pulled(count: int) -> None:
    tee = Tee(pieces(count), [True, True, False])
    first = asyncio.ensure_future(collect(tee.branches[0]))
    await asyncio.sleep(0.05)
    assert not first.done()
    # The optional branch is not waited for; the essential one is.
    assert await collect(tee.branches[1]) == b"\0" * 4 * count
    assert await first == b"\0" * 4 * count
    assert await collect(tee.branches[2]) == b"\0" * 4 * count
    await tee.close()
    assert tee.failure is None


async def test_a_branch_that_never_connects_stops_the_others_after_the_start_timeout() -> None:
    # Two strict writes with full pools would each hold the connection the other waits for.
    tee = Tee(pieces(3), [True, True], start_timeout=0.1)
    received: list[bytes] = []

    async def keep(branch: AsyncIterator[bytes]) -> None:
        async for piece in branch:
            received.append(piece)

    with pytest.raises(BodyAborted):
        await asyncio.wait_for(keep(tee.branches[0]), 5)  # branch 1 never pulls
    assert tee.cause == 1
    assert len(received) < 3  # the last piece never went out
    await tee.close()


async def test_the_start_timeout_spares_branches_that_connected() -> None:
    tee = Tee(pieces(3), [True, True], start_timeout=0.05)
    first, second = tee.branches
    await first.__anext__()
    await second.__anext__()
    await asyncio.sleep(0.1)  # past the timeout: both are connected, nothing is stopped
    results = await asyncio.gather(collect(first), collect(second))
    assert [len(r) for r in results] == [8, 8]
    assert tee.failure is None
    await tee.close()
