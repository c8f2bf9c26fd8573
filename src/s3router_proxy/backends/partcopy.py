"""UploadPartCopy with its source on another backend: the source (or its
`x-amz-copy-source-range`) streamed into an UploadPart of the client's upload, which lives on
the destination.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from xml.sax.saxutils import escape

from ..s3.errors import S3Error
from .transfer import (
    MAX_PART,
    MAX_PARTS,
    Feed,
    StoredObject,
    check_range,
    now_iso8601,
    put_stream,
    source_conditions,
    source_get,
)

_RANGE = re.compile(r"bytes=(\d+)-(\d+)")
_RANGE_FORM = (
    "The x-amz-copy-source-range value must be of the form bytes=first-last where first and "
    "last are the zero-based offsets of the first and last bytes to copy"
)


@dataclass(frozen=True)
class PartCopyResult:
    """What an UploadPartCopy across backends wrote."""

    etag: str
    last_modified: str
    source_version_id: str | None = None

    def xml(self) -> bytes:
        """The `CopyPartResult` document S3 answers an UploadPartCopy with."""
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<CopyPartResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<LastModified>{self.last_modified}</LastModified><ETag>{escape(self.etag)}</ETag>"
            "</CopyPartResult>"
        ).encode()

    def headers(self) -> dict[str, str]:
        if self.source_version_id:
            return {"x-amz-copy-source-version-id": self.source_version_id}
        return {}


def copy_source_range(value: str | None) -> tuple[int, int] | None:
    """`x-amz-copy-source-range: bytes=first-last` as (first, last), or InvalidArgument."""
    if value is None:
        return None
    found = _RANGE.fullmatch(value.strip())
    if found is None or int(found[1]) > int(found[2]):
        raise S3Error(
            "InvalidArgument",
            _RANGE_FORM,
            details={"ArgumentName": "x-amz-copy-source-range", "ArgumentValue": value},
        )
    return int(found[1]), int(found[2])


def part_number(value: str | None) -> int:
    """A `partNumber` S3 accepts (1 to 10,000), or InvalidArgument."""
    if value is None or not value.isdigit() or not 1 <= int(value) <= MAX_PARTS:
        raise S3Error(
            "InvalidArgument",
            "Part number must be an integer between 1 and 10000, inclusive",
            details={"ArgumentName": "partNumber", "ArgumentValue": value or ""},
        )
    return int(value)


async def copy_part_across(
    source: StoredObject,
    destination: StoredObject,
    upload_id: str,
    number: str | None,
    headers: Mapping[str, str],
) -> PartCopyResult:
    """UploadPartCopy with its source on another backend: part `number` of `upload_id` (the
    destination backend's own id) streamed from the source or its copy-source range.
    `headers` are the UploadPartCopy request's (the range and the source conditions)."""
    number_value = part_number(number)
    wanted = copy_source_range(headers.get("x-amz-copy-source-range"))
    get_headers = source_conditions(headers)
    if wanted is not None:
        get_headers["range"] = f"bytes={wanted[0]}-{wanted[1]}"
    response = await source_get(source, get_headers)
    try:
        if wanted is not None:
            check_range(response, *wanted)
            length = wanted[1] - wanted[0] + 1
        else:
            length = int(response.header_map.get("content-length", "-1"))
            if response.status != 200 or length < 0:
                raise S3Error("InternalError", "The copy source has no length.")
        if length > MAX_PART:
            raise S3Error(
                "InvalidRequest",
                "The specified copy source is larger than the maximum allowable size for a "
                f"copy source: {MAX_PART}",
            )
        answer = await put_stream(
            destination,
            [("partNumber", str(number_value)), ("uploadId", upload_id)],
            {},
            Feed(response, source.backend, length),
            "writing the part",
        )
    finally:
        response.release()
    return PartCopyResult(
        answer.get("ETag", ""), now_iso8601(), response.header_map.get("x-amz-version-id")
    )
