"""Flexible checksums: published values, and botocore's own implementations as the reference."""

from __future__ import annotations

import base64
import hashlib
import itertools

import pytest
from botocore.httpchecksum import (
    Crc32Checksum,
    CrtCrc32cChecksum,
    CrtCrc64NvmeChecksum,
    CrtXxhash3Checksum,
    CrtXxhash64Checksum,
    CrtXxhash128Checksum,
    Sha1Checksum,
    Sha256Checksum,
    Sha512Checksum,
)
from hypothesis import given
from hypothesis import strategies as st

from s3router_proxy.s3.checksums import (
    ALGORITHMS,
    DIGEST_SIZES,
    algorithm_for_header,
    content_md5,
    header_for,
    new_checksum,
    valid_value,
)
from s3router_proxy.s3.errors import S3Error

BOTOCORE = {
    "CRC32": Crc32Checksum,
    "CRC32C": CrtCrc32cChecksum,
    "CRC64NVME": CrtCrc64NvmeChecksum,
    "SHA1": Sha1Checksum,
    "SHA256": Sha256Checksum,
    "SHA512": Sha512Checksum,
    "XXHASH64": CrtXxhash64Checksum,
    "XXHASH3": CrtXxhash3Checksum,
    "XXHASH128": CrtXxhash128Checksum,
}


def b64(algorithm: str, data: bytes) -> str:
    checksum = new_checksum(algorithm)
    checksum.update(data)
    return checksum.b64digest()


def test_header_names_round_trip() -> None:
    assert header_for("CRC32") == "x-amz-checksum-crc32"
    assert header_for("crc64nvme") == "x-amz-checksum-crc64nvme"
    for algorithm in ALGORITHMS:
        assert algorithm_for_header(header_for(algorithm)) == algorithm
        assert algorithm_for_header(header_for(algorithm).upper()) == algorithm
    assert algorithm_for_header("x-amz-checksum-xxhash128") == "XXHASH128"
    # Known to S3 but not verified here (botocore does not compute it): callers pass it through.
    assert algorithm_for_header("x-amz-checksum-md5") is None
    assert algorithm_for_header("x-amz-checksum-algorithm") is None
    assert algorithm_for_header("content-md5") is None


@pytest.mark.parametrize("name", ["MD5", "xxhash32", "", "crc32 ; x"])
def test_unknown_algorithm_is_invalid_request(name: str) -> None:
    with pytest.raises(S3Error) as caught:
        new_checksum(name)
    assert caught.value.code == "InvalidRequest"
    assert caught.value.status == 400
    with pytest.raises(S3Error):
        header_for(name)


def test_published_values() -> None:
    assert b64("CRC32", b"hello world") == "DUoRhQ=="  # boto3's trailer for this body
    # The S3 sigv4-streaming-trailers example: 66560 bytes of "a".
    assert b64("crc32c", b"a" * 66560) == "sOO8/Q=="
    assert b64("SHA256", b"") == base64.b64encode(hashlib.sha256().digest()).decode()
    assert b64("SHA1", b"abc") == "qZk+NkcGgWq6PiVxeFDCbJzQ2J0="
    # The CRC-64/NVME check value: crc of "123456789" is 0xAE8B14860A799888.
    assert new_checksum("CRC64NVME").digest() == bytes(8)
    crc64 = new_checksum("CRC64NVME")
    crc64.update(b"123456789")
    assert crc64.digest() == bytes.fromhex("ae8b14860a799888")
    assert b64("SHA512", b"") == base64.b64encode(hashlib.sha512().digest()).decode()
    # xxHash's own values for the empty input, big-endian as S3 and botocore write them.
    assert new_checksum("XXHASH64").digest() == bytes.fromhex("ef46db3751d8e999")
    assert new_checksum("XXHASH3").digest() == bytes.fromhex("2d06800538d394c2")
    assert new_checksum("xxhash128").digest() == bytes.fromhex("99aa06d3014798d86001c324468d497f")


def test_content_md5() -> None:
    assert content_md5(b"") == "1B2M2Y8AsgTpgAmY7PhCfg=="
    assert content_md5(b"Welcome to Amazon S3.") == base64.b64encode(
        hashlib.md5(b"Welcome to Amazon S3.").digest()
    ).decode("ascii")


def test_checksum_knows_its_header() -> None:
    assert new_checksum("crc32c").header == "x-amz-checksum-crc32c"
    assert new_checksum("Sha256").algorithm == "SHA256"


def test_valid_value() -> None:
    assert valid_value("CRC32", "DUoRhQ==")
    assert not valid_value("CRC32", "DUoRhQ")  # padding missing
    assert not valid_value("CRC32", "DUoR hQ==")
    assert not valid_value("CRC64NVME", "DUoRhQ==")  # 4 bytes, 8 needed
    assert not valid_value("MD5", "DUoRhQ==")
    for algorithm, size in DIGEST_SIZES.items():
        assert valid_value(algorithm, base64.b64encode(bytes(size)).decode())


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@given(
    data=st.binary(max_size=5000),
    cuts=st.lists(st.integers(min_value=0, max_value=5000), max_size=6),
)
def test_matches_botocore_over_any_split(algorithm: str, data: bytes, cuts: list[int]) -> None:
    reference = BOTOCORE[algorithm]()
    reference.update(data)
    checksum = new_checksum(algorithm)
    bounds = [0, *sorted(min(cut, len(data)) for cut in cuts), len(data)]
    view = memoryview(data)
    for start, stop in itertools.pairwise(bounds):
        checksum.update(view[start:stop])  # memoryview slices, as the decoder passes them
    assert checksum.b64digest() == reference.b64digest()
    assert checksum.digest() == reference.digest()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_large_buffer_matches_botocore(algorithm: str) -> None:
    data = bytes(range(256)) * 40_000  # 10 MB, beyond any small-input fast path
    reference = BOTOCORE[algorithm]()
    reference.update(data)
    assert b64(algorithm, data) == reference.b64digest()
