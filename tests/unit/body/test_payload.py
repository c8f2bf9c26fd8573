"""Bodies sent with Transfer-Encoding: chunked and no length: refused as S3 refuses them unless
every store they go to takes them, and then checked (payload hash, a cap) as they stream, the
last piece held back so a failure reaches the backend as a body without its end. And which
`x-amz-checksum-*` headers are the body's at all."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from s3router_proxy.auth.sigv4 import UNSIGNED_PAYLOAD, SigV4Auth
from s3router_proxy.body.cap import check_body_cap
from s3router_proxy.body.payload import (
    BodyAborted,
    BodyOutcome,
    PayloadPlan,
    forward_body,
    plan_payload,
)
from s3router_proxy.s3.errors import S3Error
from s3router_proxy.s3.request import S3Request, parse_request

CHUNKED = {"Transfer-Encoding": "chunked"}


def request(target: str, headers: dict[str, str], method: str = "PUT") -> S3Request:
    return parse_request(method, target, CIMultiDictProxy(CIMultiDict(headers)))


def auth(payload_hash: str) -> SigV4Auth:
    return SigV4Auth(
        access_key_id="AKID",
        date="20260101",
        region="us-east-1",
        service="s3",
        signed_headers=("host",),
        signature="0" * 64,
        amz_date="20260101T000000Z",
        payload_hash=payload_hash,
        presigned=False,
        expires=None,
        security_token=None,
    )


@pytest.mark.parametrize("target", ["/b/k", "/b/k?partNumber=1&uploadId=u"])
def test_an_upload_of_unknown_length_is_missing_content_length_unless_the_stores_take_it(
    target: str,
) -> None:
    with pytest.raises(S3Error) as caught:
        plan_payload(request(target, CHUNKED), auth(UNSIGNED_PAYLOAD), None, backend_trailers=False)
    assert (caught.value.status, caught.value.code) == (411, "MissingContentLength")
    plan = plan_payload(
        request(target, CHUNKED),
        auth(UNSIGNED_PAYLOAD),
        None,
        backend_trailers=False,
        chunked_uploads=True,
    )
    assert (plan.upstream_length, plan.upstream_payload_hash) == (None, UNSIGNED_PAYLOAD)


def test_only_uploads_need_a_length() -> None:
    # PutObjectTagging's small document, and a PutObject with a length, go on as before.
    plan_payload(
        request("/b/k?tagging", CHUNKED), auth(UNSIGNED_PAYLOAD), None, backend_trailers=False
    )
    plan = plan_payload(
        request("/b/k", {"Content-Length": "3"}),
        auth(UNSIGNED_PAYLOAD),
        None,
        backend_trailers=False,
    )
    assert plan.upstream_length == 3


def test_a_payload_hash_goes_to_the_backend_and_is_checked_here_too() -> None:
    digest = hashlib.sha256(b"hello").hexdigest()
    plan = plan_payload(
        request("/b/k", CHUNKED), auth(digest), None, backend_trailers=False, chunked_uploads=True
    )
    assert plan.upstream_payload_hash == digest
    assert len(plan.checks) == 1


async def _pieces(*pieces: bytes) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


def stream(plan: PayloadPlan, *pieces: bytes) -> tuple[list[bytes], BodyOutcome]:
    outcome = BodyOutcome()
    sent: list[bytes] = []

    async def run() -> None:
        body = forward_body(
            _pieces(*pieces), checks=plan.checks, outcome=outcome, limit=plan.size_limit
        )
        async for piece in body:
            sent.append(piece)

    with contextlib.suppress(BodyAborted):
        asyncio.run(run())
    return sent, outcome


def test_a_wrong_payload_hash_holds_back_the_last_piece() -> None:
    plan = plan_payload(
        request("/b/k", CHUNKED),
        auth(hashlib.sha256(b"other").hexdigest()),
        None,
        backend_trailers=False,
        chunked_uploads=True,
    )
    sent, outcome = stream(plan, b"hel", b"lo")
    assert sent == [b"hel"]
    assert outcome.failure is not None and outcome.failure.code == "XAmzContentSHA256Mismatch"
    assert not outcome.complete


def test_a_capped_stream_stops_before_the_first_byte_over_the_cap() -> None:
    plan = plan_payload(
        request("/b/k", CHUNKED),
        auth(UNSIGNED_PAYLOAD),
        None,
        backend_trailers=False,
        chunked_uploads=True,
    )
    check_body_cap(plan, CIMultiDict(CHUNKED), 8)
    sent, outcome = stream(plan, b"1234", b"5678", b"9")
    assert sent == [b"1234", b"5678"]
    assert outcome.failure is not None
    assert (outcome.failure.code, outcome.failure.details) == (
        "EntityTooLarge",
        {"MaxSizeAllowed": "8"},
    )
    # Exactly the cap is a whole body.
    sent, outcome = stream(plan, b"1234", b"5678")
    assert (b"".join(sent), outcome.failure, outcome.complete) == (b"12345678", None, True)


def test_a_checksum_header_completing_an_upload_is_the_objects_not_the_documents() -> None:
    # CompleteMultipartUpload's x-amz-checksum-* (with x-amz-checksum-type: FULL_OBJECT) is
    # the whole object's checksum, for the backend to check against its parts.
    headers = {"Content-Length": "40", "x-amz-checksum-crc32": "AAAAAA=="}
    complete = plan_payload(
        request("/b/k?uploadId=u", headers, method="POST"),
        auth(UNSIGNED_PAYLOAD),
        None,
        backend_trailers=False,
    )
    assert complete.checks == []
    put = plan_payload(
        request("/b/k", headers), auth(UNSIGNED_PAYLOAD), None, backend_trailers=False
    )
    assert len(put.checks) == 1
