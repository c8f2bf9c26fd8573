"""Copies with mirrors: a strict CopyObject whose mirror is down is refused before the copy
starts; in best-effort mode the copy is made and the mirror that could not follow is
journaled. The stores are ports nothing listens on: no server, and no stand-in for one."""

from __future__ import annotations

import asyncio

from s3router_proxy.multi.mirrorcopy import then_mirror
from s3router_proxy.s3.errors import S3Error
from s3router_proxy.serving.state import ProxyState

from .test_mirror import exchange_for, journaled, state, write_for

__all__ = ["state"]  # the fixture, shared with test_mirror


def copied(state: ProxyState, bucket: str) -> tuple[str | S3Error, list[str]]:
    exchange = exchange_for(
        state, "PUT", f"/{bucket}/k", **{"x-amz-copy-source": f"/{bucket}/source"}
    )
    write = write_for(state, exchange)
    started: list[str] = []

    async def work() -> str:
        started.append("copy")
        return "copied"

    try:
        return asyncio.run(then_mirror(write, work())), started
    except S3Error as error:
        return error, started


def test_a_strict_copy_is_refused_before_it_starts_when_a_mirror_is_down(
    state: ProxyState,
) -> None:
    result, started = copied(state, "strict-1")
    assert isinstance(result, S3Error) and result.code == "ServiceUnavailable"
    assert started == []
    assert journaled(state) == []


def test_a_best_effort_copy_is_made_and_the_mirror_that_missed_it_journaled(
    state: ProxyState,
) -> None:
    result, started = copied(state, "loose-1")
    assert (result, started) == ("copied", ["copy"])
    assert journaled(state) == [("copy", "k", "CopyObject")]
