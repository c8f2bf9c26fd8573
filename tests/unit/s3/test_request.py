"""One parse of the request line: bucket, key, query, addressing style, operation.

The key a client means is the raw path decoded exactly once, with nothing normalised: these
tests pin the cases frameworks get wrong (`+`, `%2F`, `//`, `..`, unicode forms, long keys) and
the two addressing styles, because a key that changes on its way through the proxy is data loss.
"""

from __future__ import annotations

import unicodedata

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from s3router_proxy.s3.errors import S3Error
from s3router_proxy.s3.request import (
    MAX_KEY_BYTES,
    S3Request,
    decode_component,
    parse_query,
    parse_request,
    virtual_host_bucket,
)

BASE = ("s3.local",)


def headers(host: str = "s3.local:8080", **extra: str) -> CIMultiDictProxy[str]:
    """Request headers as aiohttp hands them over: case-insensitive and read-only."""
    return CIMultiDictProxy(CIMultiDict({"Host": host, **extra}))


def parse(
    raw_path: str, *, method: str = "GET", host: str = "s3.local:8080", **extra: str
) -> S3Request:
    return parse_request(method, raw_path, headers(host, **extra), base_domains=BASE)


def error_code(raw_path: str, *, host: str = "s3.local:8080") -> str:
    with pytest.raises(S3Error) as caught:
        parse(raw_path, host=host)
    return caught.value.code


# -- addressing -----------------------------------------------------------------------------------


def test_path_style() -> None:
    request = parse("/bucket/dir/key.txt")
    assert (request.bucket, request.key, request.addressing) == ("bucket", "dir/key.txt", "path")
    assert request.operation == "GetObject"
    assert request.host == "s3.local:8080"


@pytest.mark.parametrize("host", ["bucket.s3.local:8080", "bucket.s3.local"])
def test_virtual_hosted_style(host: str) -> None:
    request = parse("/dir/key.txt", host=host)
    assert (request.bucket, request.key, request.addressing) == (
        "bucket",
        "dir/key.txt",
        "virtual",
    )
    assert request.operation == "GetObject"
    assert request.host == host


@pytest.mark.parametrize("host", ["s3.local", "s3.local:8080", "S3.Local:8080", "s3.local."])
def test_host_exactly_the_base_domain_is_path_style(host: str) -> None:
    request = parse("/bucket/key", host=host)
    assert (request.bucket, request.key, request.addressing) == ("bucket", "key", "path")


@pytest.mark.parametrize(
    "host",
    ["localhost:8080", "127.0.0.1:8080", "[::1]:8080", "[::1]", "evil-s3.local", "s3.local.evil"],
)
def test_hosts_outside_the_base_domain_are_path_style(host: str) -> None:
    request = parse("/bucket/key", host=host)
    assert (request.bucket, request.key, request.addressing) == ("bucket", "key", "path")


def test_no_base_domains_means_path_style_whatever_the_host() -> None:
    request = parse_request("GET", "/bucket/key", headers("bucket.s3.local:8080"))
    assert (request.bucket, request.key, request.addressing) == ("bucket", "key", "path")


def test_missing_host_header_is_path_style() -> None:
    request = parse_request(
        "GET", "/bucket/key", CIMultiDictProxy(CIMultiDict()), base_domains=BASE
    )
    assert (request.host, request.bucket, request.key) == ("", "bucket", "key")


@pytest.mark.parametrize(
    ("host", "bucket"),
    [
        ("my.dotted.bucket.s3.local:8080", "my.dotted.bucket"),
        ("Bucket.S3.LOCAL", "bucket"),  # host names are case-insensitive
        ("bucket.s3.local.:8080", "bucket"),  # fully qualified, trailing dot
    ],
)
def test_virtual_hosted_bucket_names(host: str, bucket: str) -> None:
    assert parse("/k", host=host).bucket == bucket


def test_virtual_host_bucket_with_several_base_domains() -> None:
    domains = ("s3.local", "s3.example.com")
    assert virtual_host_bucket("b.s3.example.com:443", domains) == "b"
    assert virtual_host_bucket("b.s3.local", domains) == "b"
    assert virtual_host_bucket("s3.example.com", domains) is None
    assert virtual_host_bucket(".s3.local", domains) is None


def test_service_level() -> None:
    request = parse("/")
    assert (request.bucket, request.key, request.operation) == ("", "", "ListBuckets")


@pytest.mark.parametrize("raw_path", ["/bucket", "/bucket/"])
def test_bucket_level_path_style(raw_path: str) -> None:
    request = parse(raw_path)
    assert (request.bucket, request.key, request.operation) == ("bucket", "", "ListObjects")


def test_bucket_level_virtual_hosted() -> None:
    request = parse("/", host="bucket.s3.local")
    assert (request.bucket, request.key, request.operation) == ("bucket", "", "ListObjects")


# -- keys: decoded once, never normalised --------------------------------------------------------


@pytest.mark.parametrize(
    ("raw_key", "key"),
    [
        ("my%20key.txt", "my key.txt"),
        ("a+b", "a+b"),  # `+` in a path is a plus, not a space
        ("a%2Bb", "a+b"),
        ("a%2Fb", "a/b"),
        ("dir%2Fsub/file", "dir/sub/file"),
        ("a//b", "a//b"),
        ("/leading", "/leading"),
        ("./a", "./a"),
        ("../a", "../a"),
        ("a/./b", "a/./b"),
        ("a/../b", "a/../b"),
        ("..", ".."),
        ("dir/", "dir/"),
        ("dir//", "dir//"),
        ("%25", "%"),  # decoded exactly once: `%2525` would be `%25`
        ("%2525", "%25"),
        ("caf%C3%A9", "café"),
        ("%E2%82%AC%F0%9F%98%80", "€😀"),
        ("with%00nul", "with\x00nul"),
        ("semi;colon=and&amp", "semi;colon=and&amp"),
    ],
)
def test_key_decoding(raw_key: str, key: str) -> None:
    assert parse(f"/bucket/{raw_key}").key == key
    assert parse(f"/{raw_key}", host="bucket.s3.local").key == key


def test_unicode_forms_stay_distinct() -> None:
    nfc = unicodedata.normalize("NFC", "café")
    nfd = unicodedata.normalize("NFD", "café")
    assert nfc != nfd
    from_nfc = parse("/bucket/caf%C3%A9").key
    from_nfd = parse("/bucket/cafe%CC%81").key
    assert (from_nfc, from_nfd) == (nfc, nfd)
    assert from_nfc != from_nfd


def test_raw_unicode_in_path_is_kept() -> None:
    assert parse("/bucket/café/日本").key == "café/日本"


def test_bucket_is_percent_decoded_too() -> None:
    assert parse("/%62ucket/k").bucket == "bucket"


# -- key length -----------------------------------------------------------------------------------


def test_key_of_exactly_1024_bytes_is_accepted() -> None:
    assert MAX_KEY_BYTES == 1024
    assert parse("/bucket/" + "a" * 1024).key == "a" * 1024
    assert parse("/" + "a" * 1024, host="bucket.s3.local").key == "a" * 1024


def test_key_of_1025_bytes_is_too_long() -> None:
    assert error_code("/bucket/" + "a" * 1025) == "KeyTooLongError"
    assert error_code("/" + "a" * 1025, host="bucket.s3.local") == "KeyTooLongError"


def test_key_length_counts_utf8_bytes_not_characters() -> None:
    two_bytes = "%C3%A9"  # é
    assert len(parse("/bucket/" + two_bytes * 512).key) == 512  # 1024 bytes
    assert error_code("/bucket/" + two_bytes * 512 + "a") == "KeyTooLongError"


def test_key_length_counts_decoded_bytes_not_escapes() -> None:
    assert parse("/bucket/" + "%61" * 1024).key == "a" * 1024


# -- malformed paths ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw_path",
    [
        "/bucket/%zz",
        "/bucket/a%",
        "/bucket/a%2",
        "/bucket/a%2Fb%",
        "/b%zzucket/key",
        "/bucket/%FF",  # not UTF-8
        "/bucket/%C3",  # a lone UTF-8 lead byte
        "/bucket/%C3%28",  # invalid continuation
        "/bucket/%ED%A0%80",  # an encoded surrogate
        "/bucket/%C0%AF",  # overlong `/`
    ],
)
def test_bad_escapes_are_invalid_uri(raw_path: str) -> None:
    assert error_code(raw_path) == "InvalidURI"


def test_invalid_uri_is_a_400() -> None:
    with pytest.raises(S3Error) as caught:
        parse("/bucket/%zz")
    assert caught.value.status == 400


@pytest.mark.parametrize("raw_path", ["", "bucket/key", "*", "http://s3.local/bucket/key"])
def test_path_must_start_with_a_slash(raw_path: str) -> None:
    assert error_code(raw_path) == "InvalidURI"


def test_slash_in_path_style_bucket_is_invalid() -> None:
    assert error_code("/buck%2Fet/key") == "InvalidBucketName"


@pytest.mark.parametrize("raw_path", ["/%2e%2e/key", "/../key", "/./key", "/%2E", "/..?acl"])
def test_dot_segment_bucket_is_invalid(raw_path: str) -> None:
    assert error_code(raw_path) == "InvalidBucketName"


@pytest.mark.parametrize(
    ("raw_path", "key"),
    [
        ("/bkt/reports/%2e%2e/secret", "reports/../secret"),
        ("/bkt/reports/../secret", "reports/../secret"),
        ("/bkt/./a", "./a"),
        ("/bkt/%2E%2E", ".."),
    ],
)
def test_dot_segments_in_keys_are_kept(raw_path: str, key: str) -> None:
    request = parse(raw_path)
    assert (request.bucket, request.key) == ("bkt", key)


@pytest.mark.parametrize(
    "method", ["TRACE", "PROPFIND", "PURGE", "MKCOL", "PATCH", "CONNECT", "COPY", "get"]
)
def test_methods_s3_does_not_have_are_refused(method: str) -> None:
    with pytest.raises(S3Error) as caught:
        parse_request(method, "/bucket/key", headers(), base_domains=BASE)
    assert (caught.value.code, caught.value.status) == ("MethodNotAllowed", 405)
    assert caught.value.details == {"Method": method}
    assert "TRACE" not in caught.value.headers["Allow"]


def test_empty_bucket_with_a_key_is_rejected() -> None:
    with pytest.raises(S3Error) as caught:
        parse("//key")
    assert caught.value.code == "InvalidURI"


def test_decode_component_fast_path_returns_the_same_string() -> None:
    raw = "plain/key+with spaces"
    assert decode_component(raw) is raw


# -- query ----------------------------------------------------------------------------------------


def test_bare_sub_resource() -> None:
    request = parse("/bucket?acl")
    assert request.query_items == [("acl", "")]
    assert request.query == {"acl": ""}
    assert request.operation == "GetBucketAcl"


def test_repeated_names_are_all_kept_in_order() -> None:
    request = parse("/bucket/key?a=1&b=2&a=3")
    assert request.query_items == [("a", "1"), ("b", "2"), ("a", "3")]
    assert request.query == {"a": "1", "b": "2"}  # first value wins


@pytest.mark.parametrize(
    ("raw_query", "items"),
    [
        ("prefix=a+b", [("prefix", "a b")]),  # `+` in a query is a space
        ("prefix=a%2Bb", [("prefix", "a+b")]),
        ("prefix=a%20b", [("prefix", "a b")]),
        ("prefix=dir%2F", [("prefix", "dir/")]),
        ("prefix=caf%C3%A9", [("prefix", "café")]),
        ("a%3Db=c%3Dd", [("a=b", "c=d")]),
        ("x=a=b", [("x", "a=b")]),
        ("x=", [("x", "")]),
        ("&&acl&&", [("acl", "")]),
        ("", []),
        ("uploadId=u&partNumber=1", [("uploadId", "u"), ("partNumber", "1")]),
    ],
)
def test_query_parsing(raw_query: str, items: list[tuple[str, str]]) -> None:
    assert parse_query(raw_query) == items


def test_query_that_is_not_utf8_is_invalid_uri() -> None:
    assert error_code("/bucket/key?prefix=%FF") == "InvalidURI"


def test_query_selects_the_operation() -> None:
    assert parse("/bucket/key?partNumber=1&uploadId=u", method="PUT").operation == "UploadPart"
    assert parse("/bucket?list-type=2&prefix=a").operation == "ListObjectsV2"
    copy = parse("/bucket/key", method="PUT", **{"x-amz-copy-source": "/src/key"})
    assert copy.operation == "CopyObject"


# -- the raw request is kept exactly --------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw_path", "path", "query"),
    [
        ("/bucket/my%20key+x?acl", "/bucket/my%20key+x", "acl"),
        ("/bucket/a//b/../c?", "/bucket/a//b/../c", ""),
        ("/bucket/k?prefix=a+b&prefix=%2B&&", "/bucket/k", "prefix=a+b&prefix=%2B&&"),
        ("/bucket/%c3%a9?X-Amz-Signature=ab%2Fc", "/bucket/%c3%a9", "X-Amz-Signature=ab%2Fc"),
        ("/", "/", ""),
    ],
)
def test_raw_path_and_query_are_preserved(raw_path: str, path: str, query: str) -> None:
    request = parse(raw_path)
    assert (request.raw_path, request.raw_query) == (path, query)


def test_method_and_headers_are_kept() -> None:
    hdrs = headers("bucket.s3.local", **{"X-Amz-Date": "20240101T000000Z"})
    request = parse_request("HEAD", "/k", hdrs, base_domains=BASE)
    assert request.method == "HEAD"
    assert request.headers is hdrs
    assert request.headers["x-amz-date"] == "20240101T000000Z"
    assert request.operation == "HeadObject"
