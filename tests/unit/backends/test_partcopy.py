"""UploadPartCopy across backends: what a copy-source range and a part number may be, and the
document S3 answers with. The copies themselves run end to end in tests/e2e/test_crosscopy.py."""

from __future__ import annotations

import pytest

from s3router_proxy.backends.partcopy import PartCopyResult, copy_source_range, part_number
from s3router_proxy.s3.errors import S3Error

MiB = 1024 * 1024


def test_copy_source_range_is_first_and_last_byte() -> None:
    assert copy_source_range(None) is None
    assert copy_source_range("bytes=0-0") == (0, 0)
    assert copy_source_range("bytes=5242880-10485759") == (5 * MiB, 10 * MiB - 1)
    for bad in ("bytes=0-", "bytes=-5", "0-5", "bytes=5-1", "bytes=0-1,3-4", "bytes=a-b"):
        with pytest.raises(S3Error) as caught:
            copy_source_range(bad)
        assert caught.value.code == "InvalidArgument"
        assert caught.value.details["ArgumentValue"] == bad


def test_part_numbers_are_those_s3_accepts() -> None:
    assert part_number("1") == 1
    assert part_number("10000") == 10_000
    for bad in (None, "0", "10001", "-1", "x", ""):
        with pytest.raises(S3Error) as caught:
            part_number(bad)
        assert caught.value.code == "InvalidArgument"


def test_part_copy_result_document_and_headers() -> None:
    result = PartCopyResult('"e1"', "2026-01-01T00:00:00.000Z", "v7")
    assert result.xml().endswith(
        b'<LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>"e1"</ETag></CopyPartResult>'
    )
    assert result.headers() == {"x-amz-copy-source-version-id": "v7"}
    assert PartCopyResult('"e"', "t").headers() == {}
