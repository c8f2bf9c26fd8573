"""Mirrored writes: a rule's `mirror:` backends get every write its target gets.

The mirror holds the same backend bucket and key as the target (the rule's mapping applies to
both). Bodies are read from the client once and teed to every backend (`tee.Tee`), so memory
stays bounded whatever the object size.

`strict`: the client sees success only when every backend took the write. No backend gets
a complete request until every backend is ready for it: the last piece of the body (for an
empty body, the request's end) is held until every backend is connected and took every
earlier piece, so a backend that is down, refused or cut off leaves every store as it was,
the previous object included, whatever the body's size. Completes and deletes go to the
mirrors first and to the target last, so a failure leaves the target as the client's error
says it is; a CopyObject, which the target makes first, waits until every mirror answered a
HEAD of the key.

Backends can still disagree after the body (one answered 200, another 500 or hung up). A
store that names the version it wrote (a versioned bucket) has exactly that version deleted,
so its previous version is current again. Otherwise the write is left where it landed and
never deleted: the backend already replaced the previous object, and a delete would only
take the client's bytes too and leave the key absent. Each mirror that then differs from the
target is journaled (`router.mirror_journal`) for `lakefs-s3-router repair`, which makes it
equal to the target, and the client gets an error (`503` naming the mirror, or the target's
own), which S3 clients retry: as with S3's own 5xx, the write may have been applied.

`best_effort`: the target's answer is the client's; a mirror that failed is logged, counted
(`s3router_mirror_failures_total`) and written to the journal (`router.mirror_journal`), from
which `lakefs-s3-router repair` makes the mirror equal to the target again.

`mirrored` is the decorator around `forward` that does this for a write with mirrors; the
legs are in `mirrorwrite.py`, uploads in `mirrorupload.py`, copies in `mirrorcopy.py`.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol, TypeVar

from ..backends.backend import Backend
from ..backends.forward import Forward, Forwarded, Leg
from ..backends.outgoing import request_has_body
from ..body.payload import BodyOutcome, upstream_body
from ..http.messages import Body, Response
from ..routing.uploadid import UploadPin
from ..s3.errors import S3Error
from .mirrorcopy import check_mirrors_ready, mirror_copy
from .mirrorupload import abort_upload, complete_upload, create_upload
from .mirrorwrite import (
    MirroredWrite,
    Mirrors,
    leg_outcome,
    mirror_failed,
    primary_ok,
    settle,
    target_then_mirrors,
    version_named,
)
from .tee import Tee


class MirroredExchange(Forwarded, Protocol):
    """What `mirrored` reads of a write beyond what `forward` does: where it is mirrored, a
    copy's source as the mirrors repeat it, and the upload it is pinned to, which a mirrored
    CreateMultipartUpload sets to the upload it creates (its id names every mirror's)."""

    @property
    def mirrors(self) -> Mirrors: ...
    @property
    def copy_source(self) -> tuple[str, str, str, str | None] | None: ...

    pin: UploadPin | None


M = TypeVar("M", bound=MirroredExchange)


def mirrored(forward: Forward[M], backends: dict[str, Backend], journal: str | None) -> Forward[M]:
    """`forward`, with a write that has mirrors applied to every one of them too, in the
    order and with the all-or-journal semantics of its mode; without mirrors, as it is."""

    async def with_mirrors(exchange: M, leg: Leg) -> Response:
        mirrors = exchange.mirrors
        write = MirroredWrite(
            exchange.request,
            exchange.auth,
            exchange.plan,
            leg.route,
            backends,
            mirrors,
            journal,
            exchange.copy_source,
        )

        async def primary(
            stream: tuple[AsyncIterator[bytes], BodyOutcome] | None = None,
        ) -> Response:
            return await forward(exchange, dataclasses.replace(leg, stream=stream))

        async def created(ids: tuple[tuple[str, str, str, str], ...]) -> Response:
            route = leg.route
            exchange.pin = UploadPin(route.backend, route.bucket, route.key, "", ids, mirrors.mode)
            return await forward(exchange, leg)

        content, document = exchange.http.content, exchange.body_override
        return await serve_mirrored(write, content, document, primary, created)

    def forwarded(exchange: M, leg: Leg) -> Awaitable[Response]:
        # Most requests have no mirrors: theirs is `forward`'s own awaitable, no step between.
        if exchange.mirrors.names:
            return with_mirrors(exchange, leg)
        return forward(exchange, leg)

    return forwarded


async def serve_mirrored(
    write: MirroredWrite,
    content: Body,
    document: bytes | None,
    primary: Callable[..., Awaitable[Response]],
    created: Callable[[tuple[tuple[str, str, str, str], ...]], Awaitable[Response]],
) -> Response:
    """Serve one mirrored write; `primary(stream=None)` sends it to the target as usual and
    `created(mirror upload ids)` does so for a CreateMultipartUpload."""
    operation = write.request.operation
    if operation in ("PutObject", "UploadPart"):
        return await streamed_write(write, content, primary)
    if operation == "CreateMultipartUpload":
        return await create_upload(write, created)
    if operation == "CompleteMultipartUpload":
        return await complete_upload(write, document or b"", primary)
    if operation == "AbortMultipartUpload":
        return await abort_upload(write, primary)
    if operation == "DeleteObject":
        return await delete_object(write, primary)
    # CopyObject and UploadPartCopy within the target's backend: server-side there first.
    await check_mirrors_ready(write)
    response = await primary()
    if primary_ok(response):
        await mirror_copy(write)
    return response


async def _no_body() -> AsyncIterator[bytes]:
    return
    yield  # an async generator that ends at once


PrimaryCall = Callable[[tuple[AsyncIterator[bytes], BodyOutcome] | None], Awaitable[Response]]


async def streamed_write(write: MirroredWrite, content: Body, primary: PrimaryCall) -> Response:
    """PutObject / UploadPart: one body, teed to the target and every mirror at once."""
    names = write.mirrors.names
    strict = write.mirrors.strict
    outcome = BodyOutcome()
    # An empty body is a stream too: its end is what must wait until every backend is ready.
    empty = not request_has_body(write.request, write.plan)
    source = _no_body() if empty else upstream_body(content, write.plan, outcome)
    involved = [write.backends[n].config for n in (write.route.backend, *names)]
    tee = Tee(
        source,
        [True] + [strict] * len(names),
        start_timeout=max(c.connect_timeout + c.read_timeout for c in involved),
    )

    async def leg(index: int, work: Awaitable[object]) -> object:
        try:
            return await work
        finally:
            tee.detach(index)

    legs = [leg(0, primary((tee.branches[0], outcome)))]
    for index, name in enumerate(names, 1):
        legs.append(leg(index, write.send(name, tee.branches[index], empty=empty)))
    try:
        results = await asyncio.gather(*legs, return_exceptions=True)
    finally:
        await tee.close()
    response, mirror_results = results[0], results[1:]
    outcomes = [leg_outcome(result) for result in mirror_results]
    failed = [(name, reason) for name, (ok, reason) in zip(names, outcomes, strict=True) if not ok]
    target_ok = primary_ok(response)
    if target_ok and not failed:
        return response  # type: ignore[return-value]
    written = [n for n, (ok, _) in zip(names, outcomes, strict=True) if ok]
    kept = ""
    if not strict:
        if target_ok:
            for name, reason in failed:
                await write.diverged(name, reason)
            return response  # type: ignore[return-value]
        for name in written:  # the target refused what a mirror took: repair decides
            await write.diverged(name, "taken by the mirror, refused by the target")
    elif write.request.operation == "PutObject":
        committed = {
            name: version_named(result)
            for name, result, (ok, _) in zip(names, mirror_results, outcomes, strict=True)
            if ok
        }
        if target_ok:
            committed[write.route.backend] = version_named(response)
        kept = await settle(write, committed)
    if outcome.failure is not None:
        raise outcome.failure  # the client's body was at fault (digest, length, signature)
    cut_by_mirror = tee.cause is not None and tee.cause > 0
    if failed and (target_ok or cut_by_mirror):
        failing = dict(failed)
        name = names[tee.cause - 1] if cut_by_mirror and tee.cause else failed[0][0]
        raise mirror_failed(name, failing.get(name, failed[0][1]), kept)
    if isinstance(response, BaseException):
        raise response
    return response  # type: ignore[return-value]


async def delete_object(
    write: MirroredWrite, primary: Callable[[], Awaitable[Response]]
) -> Response:
    """DeleteObject: mirrors first, then the target (strict); target first (best_effort)."""

    async def delete(name: str) -> object:
        try:
            return await write.call(name, "DELETE", [])
        except S3Error as error:
            return error

    if write.mirrors.strict:
        results = await asyncio.gather(*(delete(n) for n in write.mirrors.names))
        for name, result in zip(write.mirrors.names, results, strict=True):
            ok, reason = leg_outcome(result)
            if not ok:
                # A delete cannot be undone: the mirrors that did delete are journaled, the
                # target keeps the object, and the client (told it failed) retries.
                for other, other_result in zip(write.mirrors.names, results, strict=True):
                    if leg_outcome(other_result)[0]:
                        await write.diverged(other, "deleted on the mirror, kept on the target")
                raise mirror_failed(name, reason)
        return await primary()
    return await target_then_mirrors(write, primary, delete)
