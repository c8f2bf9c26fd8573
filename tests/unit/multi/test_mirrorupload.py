"""A mirrored CreateMultipartUpload around a scripted target call: a mirror that is down
refuses a strict upload before the target starts one, and is journaled (the upload going on
without it) in best-effort mode. The mirror is a port nothing listens on."""

from __future__ import annotations

import asyncio

import pytest

from s3router_proxy.http.messages import Response
from s3router_proxy.multi.mirrorupload import complete_upload, create_upload
from s3router_proxy.s3.errors import S3Error
from s3router_proxy.serving.state import ProxyState

from .test_mirror import exchange_for, journaled, state, write_for

__all__ = ["state"]  # the fixture, shared with test_mirror


def created(state: ProxyState, bucket: str) -> tuple[Response | S3Error, list[tuple]]:
    write = write_for(state, exchange_for(state, "POST", f"/{bucket}/k?uploads"))
    asked: list[tuple] = []

    async def primary(ids: tuple) -> Response:
        asked.append(ids)
        return Response(status=200)

    try:
        return asyncio.run(create_upload(write, primary)), asked
    except S3Error as error:
        return error, asked


def test_a_strict_upload_is_refused_before_the_target_when_a_mirror_is_down(
    state: ProxyState,
) -> None:
    result, asked = created(state, "strict-1")
    assert isinstance(result, S3Error) and result.code == "ServiceUnavailable"
    assert asked == []
    assert journaled(state) == []


def test_a_best_effort_upload_goes_on_without_the_mirror_and_journals_it(
    state: ProxyState,
) -> None:
    result, asked = created(state, "loose-1")
    assert isinstance(result, Response) and result.status == 200
    assert asked == [()]  # the id names no mirror upload
    assert journaled(state) == [("copy", "k", "CreateMultipartUpload")]


def test_a_complete_document_without_part_numbers_is_malformed(state: ProxyState) -> None:
    write = write_for(state, exchange_for(state, "DELETE", "/strict-1/k"))

    async def primary() -> Response:
        raise AssertionError("never asked")

    with pytest.raises(S3Error) as caught:
        asyncio.run(complete_upload(write, b"<CompleteMultipartUpload><Part/></X>", primary))
    assert caught.value.code == "MalformedXML"
    document = b"<CompleteMultipartUpload><Part><ETag>e</ETag></Part></CompleteMultipartUpload>"
    with pytest.raises(S3Error) as caught:
        asyncio.run(complete_upload(write, document, primary))
    assert caught.value.code == "MalformedXML"
