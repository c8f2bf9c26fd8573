"""One request body read once and sent to several backends at the pace of the slowest.

Each branch is an async iterator with a small bounded queue; a pump task reads the source only
when every live branch has room, so memory stays at a few pieces per branch whatever the body
size (backpressure: a slow backend slows the client, it does not fill memory).

A branch whose request ends before the body does (its backend failed, or answered early) is
detached. Detaching a branch marked `essential` fails every other branch too, before their
last piece: the source holds its last piece back until the body is verified, and the pump
hands it out only after every live branch took every earlier piece, so a body that one
essential backend did not receive whole is committed by none.

A branch's first pull is its readiness: the backend clients pull only once their connection
is up, and send the request head with the first piece (or, for an empty body, with its end).
So the last piece, and for an empty body the end itself, also waits until every live
essential branch has pulled: a backend that cannot be reached (refused, still connecting) is
known before any backend holds a complete request, whatever the body's size.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from ..body.payload import BodyAborted

_END = object()
_QUEUE_PIECES = 2


class _Branch:
    __slots__ = ("essential", "finished", "live", "queue", "started")

    def __init__(self, essential: bool) -> None:
        self.queue: asyncio.Queue[object] = asyncio.Queue(_QUEUE_PIECES)
        self.live = True
        self.essential = essential
        self.finished = False  # took the end of the body
        self.started = False  # pulled once: its backend is connected


class Tee:
    """`branches[i]` yields the source's pieces; call `detach(i)` when branch i's request ends."""

    def __init__(
        self,
        source: AsyncIterator[bytes],
        essential: list[bool],
        start_timeout: float | None = None,
    ) -> None:
        self._source = source
        # A connected branch waits at the gate for the others, holding its backend connection;
        # two writes each holding what the other waits for (full pools) would wait forever.
        self._start_timeout = start_timeout
        self._overdue: asyncio.TimerHandle | None = None
        self._branches = [_Branch(flag) for flag in essential]
        self._pump: asyncio.Task[None] | None = None
        self._progress = asyncio.Event()  # a branch took a piece, or one was detached
        self.failure: BaseException | None = None  # why the body did not reach every branch
        self.cause: int | None = None  # the essential branch whose early end stopped the rest
        self.branches = [self._iterate(branch) for branch in self._branches]

    async def _iterate(self, branch: _Branch) -> AsyncIterator[bytes]:
        if self._pump is None:
            loop = asyncio.get_running_loop()
            self._pump = loop.create_task(self._run())
            if self._start_timeout is not None:
                self._overdue = loop.call_later(self._start_timeout, self._give_up_waiting)
        branch.started = True
        self._progress.set()
        while True:
            item = await branch.queue.get()
            self._progress.set()
            if item is _END:
                branch.finished = True
                return
            if isinstance(item, BaseException):
                raise BodyAborted from item
            yield item  # type: ignore[misc]

    async def _run(self) -> None:
        held: bytes | None = None
        try:
            async for piece in self._source:
                if held is not None:
                    await self._give(held)
                held = piece
                if not any(branch.live for branch in self._branches):
                    return
            # The last piece (or the end of an empty body) goes out only once every live branch
            # took all the others and every essential one is connected, so a branch that failed
            # on the way, or never got going, is known before anything can complete.
            while any(self._unready(branch) for branch in self._branches):
                self._progress.clear()
                await self._progress.wait()
            if self.failure is not None:
                return
            if held is not None:
                await self._give(held)
        except BaseException as exc:  # every branch must hear of it
            self.failure = exc
            self._fail_all(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        for branch in self._branches:
            if branch.live:
                await branch.queue.put(_END)

    @staticmethod
    def _unready(branch: _Branch) -> bool:
        return branch.live and (
            not branch.queue.empty() or (branch.essential and not branch.started)
        )

    async def _give(self, piece: bytes) -> None:
        for branch in self._branches:
            if branch.live:
                await branch.queue.put(piece)

    def _fail_all(self, exc: BaseException) -> None:
        for branch in self._branches:
            if branch.live:
                branch.live = False
                self._drain(branch)
                branch.queue.put_nowait(exc)

    @staticmethod
    def _drain(branch: _Branch) -> None:
        with contextlib.suppress(asyncio.QueueEmpty):
            while True:
                branch.queue.get_nowait()

    def _give_up_waiting(self) -> None:
        """An essential branch still not connected after `start_timeout`: the body is lost to
        every branch, before its end, so no backend holds a complete request."""
        for index, branch in enumerate(self._branches):
            if branch.live and branch.essential and not branch.started:
                if self.cause is None and self.failure is None:
                    self.cause = index
                self.failure = self.failure or BodyAborted("a backend was not ready in time")
                self._fail_all(self.failure)
                self._progress.set()
                return

    def detach(self, index: int) -> None:
        """Branch `index`'s request is over; an essential one cut short stops them all."""
        branch = self._branches[index]
        if not branch.live:
            return
        branch.live = False
        self._drain(branch)  # a pump blocked on its full queue goes on
        self._progress.set()
        if branch.essential and not branch.finished:
            if self.cause is None and self.failure is None:
                self.cause = index
            self.failure = self.failure or BodyAborted("an essential backend stopped early")
            self._fail_all(self.failure)

    async def close(self) -> None:
        """Stop the pump (after every branch's request ended)."""
        if self._overdue is not None:
            self._overdue.cancel()
        for index in range(len(self._branches)):
            self.detach(index)
        if self._pump is not None and not self._pump.done():
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
