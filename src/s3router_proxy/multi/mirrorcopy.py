"""Copies with mirrors: a CopyObject or UploadPartCopy the target made (or the proxy made
across stores) is made again on every mirror, after every mirror was seen to answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine
from typing import TypeVar

from ..backends.partcopy import copy_part_across
from ..backends.transfer import StoredObject
from ..s3.errors import S3Error
from .copyacross import copy_object_across
from .mirrorwrite import MirroredWrite, leg_outcome, mirror_failed, settle

T = TypeVar("T")


async def mirror_copy(write: MirroredWrite) -> None:
    """After the target took a CopyObject or UploadPartCopy, the same on every mirror.

    A copied object is copied on from the target (so every mirror gets what the target now
    holds); a copied part is read again from the copy source into each mirror's upload. Raises
    (strict, after undoing a copied object everywhere) or journals (best_effort) a failure."""
    operation = write.request.operation
    target = StoredObject(write.backends[write.route.backend], write.route.bucket, write.route.key)

    async def copy(name: str) -> object:
        there = write.route_for(name)
        destination = StoredObject(write.backends[name], there.bucket, there.key)
        try:
            if operation == "UploadPartCopy":
                assert write.copy_source is not None
                source, bucket, key, version = write.copy_source
                return await copy_part_across(
                    StoredObject(write.backends[source], bucket, key, version),
                    destination,
                    (write.mirrors.upload_ids or {})[name],
                    write.request.query.get("partNumber"),
                    write.request.headers,
                )
            return await copy_object_across(target, destination, {})
        except S3Error as error:
            return error

    results = await asyncio.gather(*(copy(n) for n in write.mirrors.names))
    outcomes = [leg_outcome(r) for r in results]
    failed = [
        (n, why) for n, (ok, why) in zip(write.mirrors.names, outcomes, strict=True) if not ok
    ]
    if not failed:
        return
    if not write.mirrors.strict:
        for name, reason in failed:
            await write.diverged(name, reason)
        return
    kept = ""
    if operation == "CopyObject":
        # The copy's version ids are not at hand: the copies stay, and repair aligns the mirrors.
        written = [n for n, (ok, _) in zip(write.mirrors.names, outcomes, strict=True) if ok]
        kept = await settle(write, dict.fromkeys([*written, write.route.backend]))
    raise mirror_failed(*failed[0], kept)


async def check_mirrors_ready(write: MirroredWrite) -> None:
    """Before a strict CopyObject, which the target makes first: every mirror answers (a HEAD of
    the key), or the copy is refused with nothing written. A copy has no body to hold back, so
    this is how a mirror that is down is known before the target replaces its object."""
    if not write.mirrors.strict or write.request.operation != "CopyObject":
        return

    async def probe(name: str) -> str:
        try:
            answer = await write.call(name, "HEAD", [])
        except S3Error as error:
            return error.code
        return f"status {answer.status}" if answer.status >= 500 else ""

    reasons = await asyncio.gather(*(probe(n) for n in write.mirrors.names))
    for name, reason in zip(write.mirrors.names, reasons, strict=True):
        if reason:
            raise mirror_failed(name, reason)


async def then_mirror(write: MirroredWrite, work: Awaitable[T]) -> T:
    """A copy the proxy makes itself (across backends), then its mirrors' copies."""
    try:
        await check_mirrors_ready(write)
    except S3Error:
        if isinstance(work, Coroutine):
            work.close()  # never started: nothing was copied
        raise
    result = await work
    await mirror_copy(write)
    return result
