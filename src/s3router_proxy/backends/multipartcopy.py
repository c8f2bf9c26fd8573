"""A copy across backends written as a multipart upload, for objects above the destination's
`multipart_copy_threshold`: `copy_part_size` parts, a few streamed at once.

The first GET feeds part 1; the other parts are ranged GETs pinned to what that GET found: its
version id, if the source has versions (the copy is then of that version, whatever happens to
the key meanwhile), and its ETag (`If-Match`), so a concurrent overwrite of an unversioned
source fails the copy instead of mixing two objects. Any failure aborts the upload: no partial
object and no orphaned parts. The result's ETag is the destination's multipart ETag (`"…-N"`),
as with a multipart copy inside S3 itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from xml.sax.saxutils import escape

from ..http.client import UpstreamResponse
from ..s3.errors import S3Error
from ..s3.xml import child_text, local_name, parse_xml
from .call import backend_exchange
from .transfer import (
    MAX_PARTS,
    Feed,
    Progress,
    StoredObject,
    backend_failure,
    check_range,
    put_stream,
    source_get,
)

log = logging.getLogger("s3router_proxy.crosspart")

PART_CONCURRENCY = 4  # parts of one copy in flight at once
ABORT_RETRY_DELAYS = (0.0, 0.2, 1.0, 3.0)  # seconds before each try
_aborts: set[asyncio.Task[None]] = set()  # aborts outlive a cancelled copy


@dataclass(frozen=True)
class SourceObject:
    """The copy source as its first GET found it: `at` names the version that GET returned
    (None: unversioned), `response` is that GET, still unread."""

    at: StoredObject
    response: UpstreamResponse
    length: int

    @property
    def etag(self) -> str | None:
        return self.response.header_map.get("etag")


def part_layout(length: int, part_size: int) -> tuple[int, int]:
    """(part size, part count) for an object: parts grow if 10,000 would not hold it."""
    size = max(part_size, -(-length // MAX_PARTS))
    return size, max(1, -(-length // size))


async def copy_multipart(
    source: SourceObject,
    destination: StoredObject,
    headers: Mapping[str, str],
    part_size: int,
    progress: Progress | None = None,
) -> tuple[str, str | None]:
    """Write the source as a multipart upload at `destination`: (ETag, version id or None).

    `headers` go on CreateMultipartUpload (metadata, content headers, tagging, ...)."""
    backend, bucket, key = destination.backend, destination.bucket, destination.key
    status, _, answer = await backend_exchange(
        backend, "POST", bucket, key, [("uploads", "")], headers=headers
    )
    if status != 200:
        raise backend_failure(status, answer, "starting the multipart copy")
    upload_id = child_text(parse_xml(answer), "UploadId")
    if not upload_id:
        raise S3Error("InternalError", "The destination did not return an upload id.")
    try:
        etags = await _copy_parts(source, destination, upload_id, part_size, progress)
        document = "".join(
            f"<Part><PartNumber>{number}</PartNumber><ETag>{escape(etag)}</ETag></Part>"
            for number, etag in sorted(etags.items())
        )
        status, answer_headers, answer = await backend_exchange(
            backend,
            "POST",
            bucket,
            key,
            [("uploadId", upload_id)],
            body=f"<CompleteMultipartUpload>{document}</CompleteMultipartUpload>".encode(),
        )
        root = parse_xml(answer) if status == 200 else None
        if root is None or local_name(root) == "Error":  # a 200 can still carry an error
            raise backend_failure(
                500 if status == 200 else status, answer, "completing the multipart copy"
            )
        return child_text(root, "ETag") or "", answer_headers.get("x-amz-version-id")
    except BaseException:
        abort = asyncio.create_task(_abort(destination, upload_id))
        _aborts.add(abort)
        abort.add_done_callback(_aborts.discard)
        await asyncio.shield(abort)
        raise


async def _copy_parts(
    source: SourceObject,
    destination: StoredObject,
    upload_id: str,
    part_size: int,
    progress: Progress | None = None,
) -> dict[int, str]:
    """Every part copied: part number → ETag. A failed part cancels the others."""
    size, count = part_layout(source.length, part_size)
    pin = {"if-match": source.etag} if source.etag else {}
    numbers = iter(range(1, count + 1))
    etags: dict[int, str] = {}

    async def copy_one(number: int) -> None:
        first = (number - 1) * size
        length = min(size, source.length - first)
        if number == 1:  # the GET that found the source starts with part 1
            response = source.response
        else:
            response = await source_get(
                source.at, {**pin, "range": f"bytes={first}-{first + length - 1}"}
            )
        try:
            if number != 1:
                check_range(response, first, first + length - 1)
            answer = await put_stream(
                destination,
                [("partNumber", str(number)), ("uploadId", upload_id)],
                {},
                Feed(response, source.at.backend, length, progress),
                "writing a part of the copy",
            )
            etags[number] = answer.get("ETag", "")
        finally:
            response.release()

    async def worker() -> None:
        for number in numbers:  # shared: each worker takes the next part number
            await copy_one(number)

    workers = [asyncio.create_task(worker()) for _ in range(min(PART_CONCURRENCY, count))]
    try:
        await asyncio.gather(*workers)
    except BaseException as exc:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        if isinstance(exc, S3Error) and exc.code == "PreconditionFailed":
            raise S3Error(
                "OperationAborted",
                "The copy source changed while it was being copied; please retry.",
                status=409,
            ) from None
        raise
    finally:
        source.response.release()
    return etags


async def _abort(destination: StoredObject, upload_id: str) -> None:
    """Abort the upload of a failed copy. A part still being written when it fails can make
    the store refuse the abort (S3 documents this race): it is asked again, briefly."""
    backend = destination.backend
    status = 0
    for delay in ABORT_RETRY_DELAYS:
        await asyncio.sleep(delay)
        try:
            status, _, _ = await backend_exchange(
                backend, "DELETE", destination.bucket, destination.key, [("uploadId", upload_id)]
            )
        except S3Error:
            status = 0
        if status in (200, 204, 404):  # 404: NoSuchUpload, gone already
            return
    log.warning(
        "backend %s: a failed copy's multipart upload could not be aborted (status %s); "
        "its parts stay until the bucket's lifecycle rules remove them",
        backend.name,
        status,
    )
