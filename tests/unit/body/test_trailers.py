"""The trailer section of an aws-chunked body, line by line, then as a whole."""

from __future__ import annotations

import pytest

from s3router_proxy.auth.signingkey import signing_key
from s3router_proxy.body.chunksigning import ChunkSigning
from s3router_proxy.body.trailers import TrailerSection
from s3router_proxy.s3 import checksums
from s3router_proxy.s3.errors import S3Error

# The S3 documentation's signed-trailer example (sigv4-streaming-trailers).
SIGNING = ChunkSigning(
    signing_key=signing_key("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524", "us-east-1"),
    amz_date="20130524T000000Z",
    scope="20130524/us-east-1/s3/aws4_request",
    seed_signature="unused here",
)
FINAL_CHUNK_SIGNATURE = "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992"
DOC_TRAILER_SIGNATURE = "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435"
CRC32C = "x-amz-checksum-crc32c"


def section(*lines: bytes, announced: tuple[str, ...] = (CRC32C,), signed: bool = False):  # type: ignore[no-untyped-def]
    trailers = TrailerSection(announced, signed, {})
    ended = [trailers.line(line) for line in lines]
    return trailers, ended


def refusal(*lines: bytes, **options: object) -> str:
    with pytest.raises(S3Error) as caught:
        section(*lines, **options)  # type: ignore[arg-type]
    assert caught.value.code == "MalformedTrailerError"
    return caught.value.message


def test_lines_are_collected_until_the_empty_line() -> None:
    trailers, ended = section(b"", b"X-Amz-Checksum-CRC32C : sOO8/Q==", b"")
    assert ended == [False, False, True]  # one blank line before the trailers is tolerated
    assert trailers.found == {CRC32C: "sOO8/Q=="}
    assert trailers.lines == [f"{CRC32C}:sOO8/Q==\n"]


def test_the_document_example_signature_matches_and_nothing_else_does() -> None:
    signed, _ = section(
        f"{CRC32C}:sOO8/Q==".encode(),
        f"x-amz-trailer-signature:{DOC_TRAILER_SIGNATURE}".encode(),
        signed=True,
    )
    assert signed.signature_matches(SIGNING, FINAL_CHUNK_SIGNATURE)
    assert not signed.signature_matches(SIGNING, "0" * 64)  # chained from another chunk
    unsigned, _ = section(f"{CRC32C}:sOO8/Q==".encode(), signed=True)
    assert not unsigned.signature_matches(SIGNING, FINAL_CHUNK_SIGNATURE)


@pytest.mark.parametrize(
    ("lines", "why"),
    [
        ((b"x-amz-checksum-crc32:AAAAAA==",), "not announced"),
        ((b"x-amz-checksum-crc32c:a", b"x-amz-checksum-crc32c:b"), "sent twice"),
        ((b"no colon here",), "not name:value"),
        ((b"bad name:v",), "not name:value"),
        (("x-amz-checksum-crc32c:\u00e9".encode(),), "not ASCII"),
        ((b"x-amz-trailer-signature:" + b"0" * 64,), "unsigned trailer"),
    ],
)
def test_malformed_lines(lines: tuple[bytes, ...], why: str) -> None:
    assert why in refusal(*lines)


def test_nothing_after_the_trailer_signature() -> None:
    assert "after the trailer signature" in refusal(
        b"x-amz-trailer-signature:" + b"0" * 64, b"x-amz-checksum-crc32c:sOO8/Q==", signed=True
    )


def test_every_announced_trailer_must_come() -> None:
    trailers, _ = section(b"", announced=(CRC32C, "x-amz-checksum-sha256"))
    trailers.found[CRC32C] = "sOO8/Q=="
    with pytest.raises(S3Error) as caught:
        trailers.check_announced_present()
    assert "x-amz-checksum-sha256 is missing" in caught.value.message


@pytest.mark.parametrize(
    ("value", "code"),
    [("DUoRhQ==", None), ("AAAAAA==", "BadDigest"), ("not base64", "InvalidRequest")],
)
def test_checksums_against_the_decoded_bytes(value: str, code: str | None) -> None:
    computed = checksums.new_checksum("CRC32")
    computed.update(b"hello world")
    trailers, _ = section(f"x-amz-checksum-crc32:{value}".encode(), announced=(computed.header,))
    if code is None:
        trailers.check_checksums([computed])
        return
    with pytest.raises(S3Error) as caught:
        trailers.check_checksums([computed])
    assert caught.value.code == code
