"""A mirrored multipart upload: created on every mirror first and on the target with every
mirror's upload id sealed into the one id the client gets; completed by each mirror from its
own parts (its own ETags), then the target (strict), or the target first (best_effort);
aborted everywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from xml.sax.saxutils import escape

from ..backends.outgoing import outgoing_headers
from ..http.messages import Response
from ..s3.errors import S3Error
from ..s3.xml import child, children, parse_xml
from .mirrorwrite import (
    Answer,
    MirroredWrite,
    leg_outcome,
    mirror_failed,
    primary_ok,
    settle,
    target_then_mirrors,
    version_named,
)


async def create_upload(
    write: MirroredWrite,
    primary: Callable[[tuple[tuple[str, str, str, str], ...]], Awaitable[Response]],
) -> Response:
    """CreateMultipartUpload on every mirror, then on the target with all ids in one id."""
    signed, _ = outgoing_headers(write.request, write.plan, False)
    signed.pop("content-length", None)
    results = await asyncio.gather(
        *(
            write.call(name, "POST", [("uploads", "")], headers=signed)
            for name in write.mirrors.names
        ),
        return_exceptions=True,
    )
    created: list[tuple[str, str, str, str]] = []
    failed: list[tuple[str, str]] = []
    for name, result in zip(write.mirrors.names, results, strict=True):
        ok, reason = leg_outcome(result)
        upload_id = _upload_id(result) if ok else None
        if upload_id:
            there = write.route_for(name)
            created.append((name, upload_id, there.bucket, there.key))
        else:
            failed.append((name, reason or "no UploadId in the answer"))
    if failed and write.mirrors.strict:
        await abort_all(write, created)
        raise mirror_failed(*failed[0])
    for name, reason in failed:
        await write.diverged(name, reason)
    try:
        response = await primary(tuple(created))
    except BaseException:
        await abort_all(write, created)
        raise
    if not primary_ok(response):
        await abort_all(write, created)
    return response


def _upload_id(result: object) -> str | None:
    if not isinstance(result, Answer):
        return None
    try:
        element = child(parse_xml(result.body), "UploadId")
    except S3Error:
        return None
    return element.text if element is not None and element.text else None


async def abort_all(write: MirroredWrite, uploads: list[tuple[str, str, str, str]]) -> None:
    for name, upload_id, *_ in uploads:
        with contextlib.suppress(S3Error):
            await write.call(name, "DELETE", [("uploadId", upload_id)])


async def complete_upload(
    write: MirroredWrite, document: bytes, primary: Callable[[], Awaitable[Response]]
) -> Response:
    """CompleteMultipartUpload: each mirror completes its own parts (its own ETags), then the
    target (strict), or the target first and the mirrors after it (best_effort)."""
    upload_ids = write.mirrors.upload_ids or {}
    wanted = _part_numbers(document)

    async def complete(name: str) -> object:
        try:
            etags = await _mirror_part_etags(write, name, upload_ids[name])
            missing = [n for n in wanted if n not in etags]
            if missing:
                return S3Error("InvalidPart", f"part {missing[0]} is missing on the mirror")
            body = _complete_document([(n, etags[n]) for n in wanted])
            return await write.call(
                name,
                "POST",
                [("uploadId", upload_ids[name])],
                body=body,
                headers={"content-type": "application/xml"},
            )
        except S3Error as error:
            return error

    if write.mirrors.strict:
        results = await asyncio.gather(*(complete(n) for n in write.mirrors.names))
        outcomes = [leg_outcome(r) for r in results]
        failed = [
            (n, why) for n, (ok, why) in zip(write.mirrors.names, outcomes, strict=True) if not ok
        ]
        if failed:
            committed = {
                name: version_named(result)
                for name, result, (ok, _) in zip(
                    write.mirrors.names, results, outcomes, strict=True
                )
                if ok
            }
            raise mirror_failed(*failed[0], await settle(write, committed))
        response = await primary()
        if not primary_ok(response):
            await settle(
                write,
                {
                    name: version_named(r)
                    for name, r in zip(write.mirrors.names, results, strict=True)
                },
            )
        return response
    return await target_then_mirrors(write, primary, complete)


def _part_numbers(document: bytes) -> list[int]:
    root = parse_xml(document, request=True)
    numbers: list[int] = []
    for part in children(root, "Part"):
        element = child(part, "PartNumber")
        if element is None or not (element.text or "").strip().isdigit():
            raise S3Error("MalformedXML", "Every Part needs a PartNumber.")
        numbers.append(int(element.text.strip()))
    return numbers


async def _mirror_part_etags(write: MirroredWrite, name: str, upload_id: str) -> dict[int, str]:
    etags: dict[int, str] = {}
    marker = ""
    while True:
        query = [("uploadId", upload_id), ("max-parts", "1000")]
        if marker:
            query.append(("part-number-marker", marker))
        answer = await write.call(name, "GET", query)
        if answer.status != 200:
            raise S3Error("InternalError", f"listing the mirror's parts: {answer.reason()}")
        root = parse_xml(answer.body)
        for part in children(root, "Part"):
            number, etag = child(part, "PartNumber"), child(part, "ETag")
            if number is not None and etag is not None and number.text:
                etags[int(number.text)] = etag.text or ""
        truncated = child(root, "IsTruncated")
        next_marker = child(root, "NextPartNumberMarker")
        if truncated is None or truncated.text != "true" or next_marker is None:
            return etags
        marker = next_marker.text or ""


def _complete_document(parts: list[tuple[int, str]]) -> bytes:
    body = "".join(
        f"<Part><PartNumber>{n}</PartNumber><ETag>{escape(etag)}</ETag></Part>" for n, etag in parts
    )
    return (
        '<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        f"{body}</CompleteMultipartUpload>"
    ).encode()


async def abort_upload(
    write: MirroredWrite, primary: Callable[[], Awaitable[Response]]
) -> Response:
    """AbortMultipartUpload: the target's and every mirror's upload."""
    response = await primary()
    upload_ids = write.mirrors.upload_ids or {}
    await abort_all(write, [(n, upload_ids[n], "", "") for n in write.mirrors.names])
    return response
