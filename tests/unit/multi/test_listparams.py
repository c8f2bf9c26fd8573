"""A client's listing query, validated, and the signed continuation tokens that resume it."""

from __future__ import annotations

import pytest

from s3router_proxy.multi.listparams import (
    MAX_KEYS,
    decode_token,
    encode_token,
    parse_list_params,
)
from s3router_proxy.s3.errors import S3Error

SECRET = b"test-secret"


def test_each_listing_reads_its_own_position() -> None:
    v1 = parse_list_params("ListObjects", "b", {"marker": "m", "max-keys": "5"}, (SECRET,))
    assert (v1.kind, v1.after, v1.max_keys, v1.limit, v1.fetch_owner) == ("v1", "m", 5, 5, True)
    v2 = parse_list_params(
        "ListObjectsV2", "b", {"start-after": "s", "max-keys": "5000"}, (SECRET,)
    )
    assert (v2.kind, v2.after, v2.limit, v2.fetch_owner) == ("v2", "s", MAX_KEYS, False)
    versions = parse_list_params(
        "ListObjectVersions", "b", {"key-marker": "k", "version-id-marker": "v"}, (SECRET,)
    )
    assert (versions.kind, versions.after, versions.after_version) == ("versions", "k", "v")
    with pytest.raises(ValueError):
        parse_list_params("GetObject", "b", {}, (SECRET,))


def test_a_token_resumes_after_the_name_it_was_made_for() -> None:
    params = parse_list_params("ListObjectsV2", "b", {"prefix": "p/", "delimiter": "/"}, (SECRET,))
    token = encode_token(SECRET, params, "p/ünïcode key")
    resumed = parse_list_params(
        "ListObjectsV2",
        "b",
        {"prefix": "p/", "delimiter": "/", "continuation-token": token, "start-after": "x"},
        (SECRET,),
    )
    assert resumed.after == "p/ünïcode key"  # the token wins over start-after


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ({"max-keys": "x"}, "max-keys"),
        ({"max-keys": "-1"}, "max-keys"),
        ({"encoding-type": "base64"}, "Encoding"),
        ({"continuation-token": ""}, "continuation token"),
        ({"continuation-token": "garbage"}, "continuation token"),
    ],
)
def test_bad_parameters(query: dict[str, str], fragment: str) -> None:
    with pytest.raises(S3Error) as caught:
        parse_list_params("ListObjectsV2", "b", query, (SECRET,))
    assert caught.value.code == "InvalidArgument"
    assert fragment in caught.value.message


def test_version_marker_needs_key_marker() -> None:
    with pytest.raises(S3Error):
        parse_list_params("ListObjectVersions", "b", {"version-id-marker": "v"}, (SECRET,))


def test_token_is_tamper_proof() -> None:
    params = parse_list_params("ListObjectsV2", "b", {"prefix": "p"}, (SECRET,))
    token = encode_token(SECRET, params, "p/last")
    assert decode_token((SECRET,), token, "b", "p", "") == "p/last"
    for forged in (
        token[:-2] + ("AA" if token[-2:] != "AA" else "BB"),
        encode_token(b"other-secret", params, "p/last"),
        token[:10],
    ):
        with pytest.raises(S3Error) as caught:
            decode_token((SECRET,), forged, "b", "p", "")
        assert caught.value.message == "The continuation token provided is incorrect"
    for bucket, prefix, delimiter in (("c", "p", ""), ("b", "q", ""), ("b", "p", "/")):
        with pytest.raises(S3Error):
            decode_token((SECRET,), token, bucket, prefix, delimiter)


def test_a_token_signed_under_a_previous_secret_resumes_while_it_is_accepted() -> None:
    params = parse_list_params("ListObjectsV2", "b", {"prefix": "p"}, (SECRET,))
    old_token = encode_token(b"previous-secret", params, "p/last")
    assert decode_token((SECRET, b"previous-secret"), old_token, "b", "p", "") == "p/last"
    with pytest.raises(S3Error) as caught:
        decode_token((SECRET,), old_token, "b", "p", "")
    assert caught.value.code == "InvalidArgument"
