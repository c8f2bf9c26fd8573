"""SigV2: the published AWS examples, botocore as the reference, tampering, and every refusal."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import HmacV1Auth, HmacV1QueryAuth
from botocore.awsrequest import AWSPreparedRequest, AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.utils import percent_encode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from s3router_proxy.auth.sigv2 import (
    check_time_v2,
    parse_auth_v2,
    sign_v2,
    verify_signature_v2,
)
from s3router_proxy.auth.sigv2canonical import SUBRESOURCES, SigV2Auth, string_to_sign_v2
from s3router_proxy.s3.errors import S3Error, error_xml
from s3router_proxy.s3.request import S3Request, parse_request

# The RESTAuthentication examples' credentials (docs.aws.amazon.com/AmazonS3/latest/userguide/
# RESTAuthentication.html).
DOC_AKID = "AKIAIOSFODNN7EXAMPLE"
DOC_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AWS_DOMAINS = ("s3.amazonaws.com",)
# The property tests' endpoint.
ENDPOINT = "s3.example.com"
DOMAINS = (ENDPOINT,)
SECRET = "s3cr3t/+Key=="
CREDS = Credentials("AKIDTEST", SECRET)
HOUR = 3600

Headers = list[tuple[str, str]]


def make_request(
    method: str, target: str, headers: Headers, *, base_domains: Sequence[str] = AWS_DOMAINS
) -> S3Request:
    """An S3Request exactly as the server builds it from a request line and headers."""
    return parse_request(
        method, target, CIMultiDictProxy(CIMultiDict(headers)), base_domains=base_domains
    )


def epoch(text: str) -> float:
    return datetime.strptime(text, "%a, %d %b %Y %H:%M:%S %z").timestamp()


def error_of(call: Callable[..., object], *args: Any, **kwargs: Any) -> S3Error:
    with pytest.raises(S3Error) as caught:
        call(*args, **kwargs)
    return caught.value


def parsed(request: S3Request) -> SigV2Auth:
    auth = parse_auth_v2(request)
    assert auth is not None
    return auth


def verify(request: S3Request, secret: str = SECRET, now: float | None = None) -> SigV2Auth:
    auth = parsed(request)
    check_time_v2(auth, request, time.time() if now is None else now)
    verify_signature_v2(request, auth, secret)
    return auth


def refused(request: S3Request, secret: str = SECRET) -> S3Error:
    error = error_of(verify_signature_v2, request, parsed(request), secret)
    assert (error.code, error.status) == ("SignatureDoesNotMatch", 403)
    return error


# ---------------------------------------------------------------------------------------------
# The AWS RESTAuthentication examples

DOC_CASES = [
    pytest.param(
        "GET",
        "/photos/puppy.jpg",
        [("Host", "johnsmith.s3.amazonaws.com"), ("Date", "Tue, 27 Mar 2007 19:36:42 +0000")],
        "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/johnsmith/photos/puppy.jpg",
        "bWq2s1WEIj+Ydj0vQ697zp+IXMU=",
        id="object-get",
    ),
    pytest.param(
        "PUT",
        "/photos/puppy.jpg",
        [
            ("Content-Type", "image/jpeg"),
            ("Content-Length", "94328"),
            ("Host", "johnsmith.s3.amazonaws.com"),
            ("Date", "Tue, 27 Mar 2007 21:15:45 +0000"),
        ],
        "PUT\n\nimage/jpeg\nTue, 27 Mar 2007 21:15:45 +0000\n/johnsmith/photos/puppy.jpg",
        "MyyxeRY7whkBe+bq8fHCL/2kKUg=",
        id="object-put",
    ),
    pytest.param(
        "GET",
        "/?prefix=photos&max-keys=50&marker=puppy",
        [
            ("User-Agent", "Mozilla/5.0"),
            ("Host", "johnsmith.s3.amazonaws.com"),
            ("Date", "Tue, 27 Mar 2007 19:42:41 +0000"),
        ],
        "GET\n\n\nTue, 27 Mar 2007 19:42:41 +0000\n/johnsmith/",
        "htDYFYduRNen8P9ZfE/s9SuKy0U=",
        id="list",
    ),
    pytest.param(
        "GET",
        "/?acl",
        [("Host", "johnsmith.s3.amazonaws.com"), ("Date", "Tue, 27 Mar 2007 19:44:46 +0000")],
        "GET\n\n\nTue, 27 Mar 2007 19:44:46 +0000\n/johnsmith/?acl",
        "c2WLPFtWHVgbEmeEG93a4cG37dM=",
        id="fetch-acl",
    ),
    pytest.param(
        "GET",
        "/",
        [("Host", "s3.amazonaws.com"), ("Date", "Wed, 28 Mar 2007 01:29:59 +0000")],
        "GET\n\n\nWed, 28 Mar 2007 01:29:59 +0000\n/",
        "qGdzdERIC03wnaRNKh6OqZehG9s=",
        id="list-all-my-buckets",
    ),
    pytest.param(
        # Path style, and the path is signed exactly as sent: mixed-case escapes included.
        "GET",
        "/dictionary/fran%C3%A7ais/pr%c3%a9f%c3%a8re",
        [("Host", "s3.amazonaws.com"), ("Date", "Wed, 28 Mar 2007 01:49:49 +0000")],
        "GET\n\n\nWed, 28 Mar 2007 01:49:49 +0000\n/dictionary/fran%C3%A7ais/pr%c3%a9f%c3%a8re",
        "DNEZGsoieTZ92F3bUfSPQcbGmlM=",
        id="unicode-keys",
    ),
]


@pytest.mark.parametrize(("method", "target", "headers", "expected_sts", "signature"), DOC_CASES)
def test_doc_header_examples(
    method: str, target: str, headers: Headers, expected_sts: str, signature: str
) -> None:
    request = make_request(method, target, [*headers, ("Authorization", f"AWS {DOC_AKID}:x")])
    auth = parsed(request)
    assert auth == SigV2Auth(DOC_AKID, "x", presigned=False, expires=None, security_token=None)
    assert string_to_sign_v2(request, auth) == expected_sts
    assert sign_v2(DOC_SECRET, expected_sts) == signature

    signed = make_request(
        method, target, [*headers, ("Authorization", f"AWS {DOC_AKID}:{signature}")]
    )
    verify(signed, DOC_SECRET, now=epoch(dict(headers)["Date"]) + 60)


def test_doc_upload_example_with_repeated_amz_headers() -> None:
    """The CNAME upload: several x-amz-meta headers, one repeated, names in mixed case."""
    headers = [
        ("Host", "static.johnsmith.net:8080"),
        ("Date", "Tue, 27 Mar 2007 21:06:08 +0000"),
        ("x-amz-acl", "public-read"),
        ("content-type", "application/x-download"),
        ("Content-MD5", "4gJE4saaMU4BqNR0kLY+lw=="),
        ("X-Amz-Meta-ReviewedBy", "joe@johnsmith.net"),
        ("X-Amz-Meta-ReviewedBy", "jane@johnsmith.net"),
        ("X-Amz-Meta-FileChecksum", "0x02661779"),
        ("X-Amz-Meta-ChecksumAlgorithm", "crc32"),
        ("Content-Disposition", "attachment; filename=database.dat"),
        ("Content-Encoding", "gzip"),
        ("Content-Length", "5913339"),
        ("Authorization", f"AWS {DOC_AKID}:ilyl83RwaSoYIEdixDQcA4OnAnc="),
    ]
    # The Host is the whole bucket name (a CNAME), which the proxy's parser does not resolve.
    request = dataclasses.replace(
        make_request("PUT", "/db-backup.dat.gz", headers, base_domains=()),
        bucket="static.johnsmith.net",
        key="db-backup.dat.gz",
        addressing="virtual",
    )
    assert string_to_sign_v2(request, parsed(request)) == (
        "PUT\n4gJE4saaMU4BqNR0kLY+lw==\napplication/x-download\nTue, 27 Mar 2007 21:06:08 +0000\n"
        "x-amz-acl:public-read\nx-amz-meta-checksumalgorithm:crc32\n"
        "x-amz-meta-filechecksum:0x02661779\n"
        "x-amz-meta-reviewedby:joe@johnsmith.net,jane@johnsmith.net\n"
        "/static.johnsmith.net/db-backup.dat.gz"
    )
    verify(request, DOC_SECRET, now=epoch("Tue, 27 Mar 2007 21:06:08 +0000"))


def test_doc_query_example() -> None:
    request = make_request(
        "GET",
        f"/photos/puppy.jpg?AWSAccessKeyId={DOC_AKID}&Expires=1175139620"
        "&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D",
        [("Host", "johnsmith.s3.amazonaws.com")],
    )
    auth = parsed(request)
    assert auth == SigV2Auth(
        DOC_AKID,
        "NpgCjnDzrM+WFzoENXmpNDUsSn8=",
        presigned=True,
        expires=1175139620,
        security_token=None,
    )
    assert string_to_sign_v2(request, auth) == "GET\n\n\n1175139620\n/johnsmith/photos/puppy.jpg"
    verify(request, DOC_SECRET, now=1175139620)
    error = error_of(check_time_v2, auth, request, 1175139621)
    assert (error.code, error.status, error.message) == ("AccessDenied", 403, "Request has expired")
    assert error.details["Expires"] == "2007-03-29T03:40:20Z"


def test_query_expires_is_signed_as_sent() -> None:
    sts = "GET\n\n\n01175139620\n/johnsmith/photos/puppy.jpg"
    signature = sign_v2(DOC_SECRET, sts).replace("+", "%2B").replace("/", "%2F")
    request = make_request(
        "GET",
        f"/photos/puppy.jpg?AWSAccessKeyId={DOC_AKID}&Expires=01175139620&Signature={signature}",
        [("Host", "johnsmith.s3.amazonaws.com")],
    )
    assert parsed(request).expires == 1175139620
    assert string_to_sign_v2(request, parsed(request)) == sts
    verify(request, DOC_SECRET, now=1175139620)


def test_doc_query_example_with_a_raw_plus_in_the_signature() -> None:
    """A client that leaves base64's `+` unencoded sends what query decoding reads as a space."""
    request = make_request(
        "GET",
        f"/photos/puppy.jpg?AWSAccessKeyId={DOC_AKID}&Expires=1175139620"
        "&Signature=NpgCjnDzrM+WFzoENXmpNDUsSn8=",
        [("Host", "johnsmith.s3.amazonaws.com")],
    )
    verify(request, DOC_SECRET, now=1175139620)


# ---------------------------------------------------------------------------------------------
# botocore as the reference

BOTOCORE_SIGNED = tuple(sorted(set(HmacV1Auth.QSAOfInterest)))
UNSIGNED_PARAMS = ("prefix", "marker", "max-keys", "encoding-type", "x-id", "list-type", "foo")
KEY_PIECES = ("+", "%", " ", "~", "//", "/", "..", "%2F", "%20", "é", "ü~!*'()", "😀", "?", "#")
TEXT = st.text(st.characters(codec="utf-8"), max_size=6)
ASCII_VALUE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12)

buckets = st.from_regex(r"[a-z0-9][a-z0-9-]{1,14}[a-z0-9]", fullmatch=True)
keys = (
    st.lists(st.one_of(st.sampled_from(KEY_PIECES), TEXT), min_size=1, max_size=8)
    .map("".join)
    .filter(lambda key: 0 < len(key.encode("utf-8")) <= 1024)
)
params = st.lists(
    st.tuples(
        st.sampled_from(BOTOCORE_SIGNED + UNSIGNED_PARAMS),
        st.one_of(st.none(), TEXT, st.sampled_from(("+", "a+b", "%2B", "=", "&", " "))),
    ),
    max_size=5,
)
amz_headers = st.dictionaries(
    st.from_regex(r"x-amz-meta-[a-z0-9][a-z0-9-]{0,10}", fullmatch=True).flatmap(
        lambda name: st.sampled_from((name, name.upper(), name.title()))
    ),
    ASCII_VALUE,
    max_size=4,
    dict_class=dict,
).filter(lambda headers: len({name.lower() for name in headers}) == len(headers))
content_types = st.one_of(st.none(), st.sampled_from(("text/plain", "image/jpeg", " a/b ")))
content_md5s = st.one_of(st.none(), st.sampled_from(("1B2M2Y8AsgTpgAmY7PhCfg==", "abc")))
methods = st.sampled_from(("GET", "PUT", "POST", "DELETE", "HEAD"))


@dataclasses.dataclass
class Wire:
    """A request as the HTTP server sees it: request line and header lines, before parsing."""

    method: str
    target: str
    headers: Headers
    base_domains: Sequence[str] = DOMAINS

    def request(self) -> S3Request:
        return make_request(self.method, self.target, self.headers, base_domains=self.base_domains)

    def path(self) -> str:
        return self.target.partition("?")[0]

    def query(self) -> str:
        return self.target.partition("?")[2]

    def with_target(self, path: str, query: str) -> Wire:
        target = f"{path}?{query}" if query else path
        return dataclasses.replace(self, target=target)


def _wire_value(value: str | bytes) -> str:
    """A header value as aiohttp hands it over: bytes as sent, UTF-8 with surrogateescape."""
    raw = value if isinstance(value, bytes) else value.encode("latin-1")
    return raw.decode("utf-8", "surrogateescape").strip(" \t")


def wire_of(prepared: AWSPreparedRequest, *, drop: Sequence[str] = ()) -> Wire:
    """The request botocore would put on the wire, as the proxy's HTTP server receives it."""
    split = urlsplit(prepared.url)
    headers = [("Host", split.netloc)]
    dropped = {name.lower() for name in drop}
    for name, value in prepared.headers.items():
        if name.lower() not in dropped:
            headers.append((name, _wire_value(value)))
    target = split.path + (f"?{split.query}" if split.query else "")
    return Wire(prepared.method, target, headers)


def query_string(items: Sequence[tuple[str, str | None]]) -> str:
    """A query string encoded as botocore encodes parameters (`percent_encode`)."""
    return "&".join(
        percent_encode(name) + ("" if value is None else "=" + percent_encode(value))
        for name, value in items
    )


def botocore_request(
    *,
    method: str,
    bucket: str,
    key: str | None,
    items: Sequence[tuple[str, str | None]],
    headers: dict[str, str],
    virtual: bool,
    bucket_slash: bool = False,
) -> AWSRequest:
    """An AWSRequest shaped like botocore's own: key quoted with `safe='/~'`, auth_path set
    for virtual-hosted requests (and, as the client does, for path-style bucket requests)."""
    encoded_key = "" if key is None else percent_encode(key, safe="/~")
    query = query_string(items)
    suffix = f"?{query}" if query else ""
    if virtual:
        url = f"http://{bucket}.{ENDPOINT}/{encoded_key}{suffix}"
        auth_path: str | None = f"/{bucket}/{encoded_key}"
    else:
        url = f"http://{ENDPOINT}/{bucket}{'' if key is None else '/' + encoded_key}{suffix}"
        auth_path = f"/{bucket}/" if key is None and bucket_slash else None
    request = AWSRequest(method=method, url=url, headers=dict(headers))
    request.auth_path = auth_path
    return request


def standard_headers(
    amz: dict[str, str], content_type: str | None, content_md5: str | None
) -> dict[str, str]:
    headers = dict(amz)
    if content_type is not None:
        headers["Content-Type"] = content_type
    if content_md5 is not None:
        headers["Content-MD5"] = content_md5
    return headers


@settings(max_examples=200, deadline=None)
@given(
    method=methods,
    bucket=buckets,
    key=st.one_of(st.none(), keys),
    items=params,
    amz=amz_headers,
    content_type=content_types,
    content_md5=content_md5s,
    virtual=st.booleans(),
    bucket_slash=st.booleans(),
    token=st.one_of(st.none(), st.just("FwoGZXIvYXdzEJr//token+/=")),
)
def test_botocore_header_auth_verifies(
    method: str,
    bucket: str,
    key: str | None,
    items: list[tuple[str, str | None]],
    amz: dict[str, str],
    content_type: str | None,
    content_md5: str | None,
    virtual: bool,
    bucket_slash: bool,
    token: str | None,
) -> None:
    aws_request = botocore_request(
        method=method,
        bucket=bucket,
        key=key,
        items=items,
        headers=standard_headers(amz, content_type, content_md5),
        virtual=virtual,
        bucket_slash=bucket_slash,
    )
    HmacV1Auth(Credentials("AKIDTEST", SECRET, token)).add_auth(aws_request)
    request = wire_of(aws_request.prepare()).request()
    auth = verify(request)
    assert auth.access_key_id == "AKIDTEST"
    assert auth.security_token == token
    assert (request.bucket, request.key) == (bucket, key or "")
    assert request.addressing == ("virtual" if virtual else "path")
    refused(request, secret=SECRET + "x")


@settings(max_examples=200, deadline=None)
@given(
    method=methods,
    bucket=buckets,
    key=st.one_of(st.none(), keys),
    items=params,
    amz=amz_headers,
    content_type=content_types,
    content_md5=content_md5s,
    virtual=st.booleans(),
    send_headers=st.booleans(),
    token=st.one_of(st.none(), st.just("FwoGZXIvYXdzEJr//token+/=")),
)
def test_botocore_presigned_verifies(
    method: str,
    bucket: str,
    key: str | None,
    items: list[tuple[str, str | None]],
    amz: dict[str, str],
    content_type: str | None,
    content_md5: str | None,
    virtual: bool,
    send_headers: bool,
    token: str | None,
) -> None:
    """`HmacV1QueryAuth` moves Content-Type, Content-MD5 and x-amz-* into the URL; a client
    may send them again as headers or not at all, and both must verify."""
    headers = standard_headers(amz, content_type, content_md5)
    aws_request = botocore_request(
        method=method, bucket=bucket, key=key, items=items, headers=headers, virtual=virtual
    )
    HmacV1QueryAuth(Credentials("AKIDTEST", SECRET, token), expires=HOUR).add_auth(aws_request)
    split = urlsplit(aws_request.url)
    target = split.path + (f"?{split.query}" if split.query else "")
    sent = [(name, value.strip()) for name, value in headers.items()] if send_headers else []
    request = Wire(method, target, [("Host", split.netloc), *sent]).request()
    auth = verify(request)
    assert auth.presigned
    assert auth.security_token == token
    assert auth.expires is not None and 0 < auth.expires - time.time() <= HOUR
    error = error_of(check_time_v2, auth, request, auth.expires + 1)
    assert (error.code, error.message) == ("AccessDenied", "Request has expired")
    refused(request, secret=SECRET + "x")


def _change_char(char: str) -> str:
    return "b" if char == "a" else "a"


def _path_positions(path: str) -> list[int]:
    """Indexes of path characters that can change without breaking a `%XX` escape or `/`."""
    positions = []
    index = 1
    while index < len(path):
        if path[index] == "%":
            index += 3
            continue
        if path[index] != "/":
            positions.append(index)
        index += 1
    return positions


def tamper(wire: Wire, how: str, data: st.DataObject) -> Wire:
    """The wire request with one signed element changed."""
    path, query = wire.path(), wire.query()
    if how == "path":
        positions = _path_positions(path)
        if not positions:
            return wire.with_target(path + "x", query)
        at = data.draw(st.sampled_from(positions))
        return wire.with_target(path[:at] + _change_char(path[at]) + path[at + 1 :], query)
    if how == "subresource":
        parts = query.split("&") if query else []
        valued = [
            index
            for index, part in enumerate(parts)
            if part.partition("=")[0] in SUBRESOURCES and "=" in part
        ]
        if valued:
            at = data.draw(st.sampled_from(valued))
            parts[at] += "x"
        else:
            parts.append(data.draw(st.sampled_from(("versionId=x", "acl", "attributes"))))
        return wire.with_target(path, "&".join(parts))
    if how == "amz":
        headers = list(wire.headers)
        amz = [index for index, (name, _) in enumerate(headers) if name.lower().startswith("x-amz")]
        if amz:
            at = data.draw(st.sampled_from(amz))
            headers[at] = (headers[at][0], headers[at][1] + "x")
        else:
            headers.append(("x-amz-meta-added", "1"))
        return dataclasses.replace(wire, headers=headers)
    if how == "method":
        other = data.draw(
            st.sampled_from([m for m in ("GET", "PUT", "DELETE") if m != wire.method])
        )
        return dataclasses.replace(wire, method=other)
    if how == "host":
        host = dict(wire.headers)["Host"]
        if host.startswith(ENDPOINT):  # path style: the bucket is in the path
            return tamper(wire, "path", data)
        headers = [(n, v if n != "Host" else "x" + v) for n, v in wire.headers]
        return dataclasses.replace(wire, headers=headers)
    name = {"content-type": "Content-Type", "content-md5": "Content-MD5", "date": "Date"}[how]
    headers = [(n, v) for n, v in wire.headers if n.lower() != name.lower()]
    previous = dict((n.lower(), v) for n, v in wire.headers).get(name.lower(), "")
    headers.append((name, previous + "1"))
    return dataclasses.replace(wire, headers=headers)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=methods,
    bucket=buckets,
    key=st.one_of(st.none(), keys),
    items=params,
    amz=amz_headers,
    content_type=content_types,
    virtual=st.booleans(),
    how=st.sampled_from(
        ("path", "subresource", "amz", "method", "host", "content-type", "content-md5", "date")
    ),
    data=st.data(),
)
def test_tampered_header_auth_is_refused(
    method: str,
    bucket: str,
    key: str | None,
    items: list[tuple[str, str | None]],
    amz: dict[str, str],
    content_type: str | None,
    virtual: bool,
    how: str,
    data: st.DataObject,
) -> None:
    aws_request = botocore_request(
        method=method,
        bucket=bucket,
        key=key,
        items=items,
        headers=standard_headers(amz, content_type, None),
        virtual=virtual,
    )
    HmacV1Auth(CREDS).add_auth(aws_request)
    wire = wire_of(aws_request.prepare())
    verify(wire.request())
    refused(tamper(wire, how, data).request())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    bucket=buckets,
    key=keys,
    items=params,
    amz=amz_headers,
    virtual=st.booleans(),
    how=st.sampled_from(("path", "subresource", "amz", "method", "host", "expires", "query-amz")),
    data=st.data(),
)
def test_tampered_presigned_url_is_refused(
    bucket: str,
    key: str,
    items: list[tuple[str, str | None]],
    amz: dict[str, str],
    virtual: bool,
    how: str,
    data: st.DataObject,
) -> None:
    aws_request = botocore_request(
        method="GET", bucket=bucket, key=key, items=items, headers=amz, virtual=virtual
    )
    HmacV1QueryAuth(CREDS, expires=HOUR).add_auth(aws_request)
    split = urlsplit(aws_request.url)
    wire = Wire("GET", f"{split.path}?{split.query}", [("Host", split.netloc)])
    verify(wire.request())
    if how == "expires":
        parts = wire.query().split("&")
        parts = [p + "0" if p.startswith("Expires=") else p for p in parts]
        tampered = wire.with_target(wire.path(), "&".join(parts))
    elif how == "query-amz":
        # An x-amz-* parameter added to the URL counts as a header and was not signed; one
        # sent as a header with a value other than the URL's is not what was signed either.
        if amz:
            name = data.draw(st.sampled_from(sorted(amz)))
            tampered = dataclasses.replace(wire, headers=[*wire.headers, (name, amz[name] + "x")])
        else:
            tampered = wire.with_target(wire.path(), wire.query() + "&x-amz-acl=public-read")
    else:
        tampered = tamper(wire, how, data)
    refused(tampered.request())


# ---------------------------------------------------------------------------------------------
# boto3 itself


class Captured(Exception):
    """Raised from `before-send` to stop the client and hand over what it would send."""

    def __init__(self, request: AWSPreparedRequest) -> None:
        super().__init__("captured")
        self.request = request


def _capture(request: AWSPreparedRequest, **kwargs: Any) -> None:
    raise Captured(request)


_CLIENTS: dict[str, Any] = {}


def client(style: str) -> Any:
    """A boto3 S3 client signing with SigV2 ("s3"), which never reaches the network."""
    if style not in _CLIENTS:
        s3 = boto3.session.Session().client(
            "s3",
            endpoint_url=f"http://{ENDPOINT}",
            region_name="us-east-1",
            aws_access_key_id="AKIDTEST",
            aws_secret_access_key=SECRET,
            config=Config(signature_version="s3", s3={"addressing_style": style}),
        )
        s3.meta.events.register("before-send.s3", _capture)
        _CLIENTS[style] = s3
    return _CLIENTS[style]


def sent_by(style: str, operation: str, **kwargs: Any) -> Wire:
    with pytest.raises(Captured) as caught:
        getattr(client(style), operation)(**kwargs)
    return wire_of(caught.value.request)


ascii_metadata = st.dictionaries(
    st.from_regex(r"[a-z0-9][a-z0-9-]{0,8}", fullmatch=True), ASCII_VALUE, max_size=3
)
response_overrides = st.fixed_dictionaries(
    {},
    optional={
        "ResponseContentType": TEXT,
        "ResponseContentDisposition": TEXT,
        "ResponseCacheControl": TEXT,
        "ResponseContentEncoding": TEXT,
        "ResponseContentLanguage": TEXT,
        "VersionId": TEXT,
        "PartNumber": st.integers(1, 10000),
    },
)


@settings(max_examples=40, deadline=None)
@given(
    style=st.sampled_from(("path", "virtual")),
    bucket=buckets,
    key=keys,
    overrides=response_overrides,
    metadata=ascii_metadata,
    content_type=st.sampled_from(("text/plain", "application/x-download; q=1")),
)
def test_boto3_client_requests_verify(
    style: str,
    bucket: str,
    key: str,
    overrides: dict[str, Any],
    metadata: dict[str, str],
    content_type: str,
) -> None:
    calls: list[tuple[str, dict[str, Any]]] = [
        ("list_buckets", {}),
        ("list_objects", {"Bucket": bucket, "Prefix": key}),
        ("list_objects_v2", {"Bucket": bucket, "Prefix": key}),
        ("get_bucket_acl", {"Bucket": bucket}),
        ("get_bucket_versioning", {"Bucket": bucket}),
        ("delete_objects", {"Bucket": bucket, "Delete": {"Objects": [{"Key": key}]}}),
        ("get_object", {"Bucket": bucket, "Key": key, **overrides}),
        ("head_object", {"Bucket": bucket, "Key": key}),
        ("get_object_acl", {"Bucket": bucket, "Key": key}),
        ("get_object_tagging", {"Bucket": bucket, "Key": key}),
        ("delete_object", {"Bucket": bucket, "Key": key}),
        ("create_multipart_upload", {"Bucket": bucket, "Key": key}),
        ("list_parts", {"Bucket": bucket, "Key": key, "UploadId": "u/p+1 2"}),
        (
            "put_object",
            {
                "Bucket": bucket,
                "Key": key,
                "Body": b"hello",
                "Metadata": metadata,
                "ContentType": content_type,
                "ACL": "private",
            },
        ),
        (
            "copy_object",
            {"Bucket": bucket, "Key": key, "CopySource": {"Bucket": bucket, "Key": key + "2"}},
        ),
    ]
    for operation, kwargs in calls:
        request = sent_by(style, operation, **kwargs).request()
        if "Bucket" in kwargs:
            assert request.bucket == bucket
            assert request.addressing == style
        verify(request)


def test_boto3_path_style_bucket_request_signs_a_trailing_slash() -> None:
    """boto3 sends `GET /bucket` but signs `/bucket/`, the form AWS uses for a bucket."""
    wire = sent_by("path", "list_objects", Bucket="bkt")
    assert wire.path() == "/bkt"
    request = wire.request()
    assert string_to_sign_v2(request, parsed(request)).endswith("\n/bkt")
    verify(request)


@settings(max_examples=100, deadline=None)
@given(
    style=st.sampled_from(("path", "virtual")),
    bucket=buckets,
    key=keys,
    overrides=response_overrides,
    metadata=ascii_metadata,
    content_type=st.one_of(st.none(), st.just("text/plain")),
    send_headers=st.booleans(),
)
def test_boto3_generate_presigned_url_verifies(
    style: str,
    bucket: str,
    key: str,
    overrides: dict[str, Any],
    metadata: dict[str, str],
    content_type: str | None,
    send_headers: bool,
) -> None:
    s3 = client(style)
    get_url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key, **overrides}, ExpiresIn=600
    )
    put_params: dict[str, Any] = {"Bucket": bucket, "Key": key, "Metadata": metadata}
    sent: Headers = []
    if content_type is not None:
        put_params["ContentType"] = content_type
        sent.append(("Content-Type", content_type))
    sent.extend((f"x-amz-meta-{name}", value.strip()) for name, value in metadata.items())
    put_url = s3.generate_presigned_url("put_object", Params=put_params, ExpiresIn=600)
    list_url = s3.generate_presigned_url("list_objects", Params={"Bucket": bucket})
    for method, url, headers in (
        ("GET", get_url, []),
        ("PUT", put_url, sent if send_headers else []),
        ("GET", list_url, []),
    ):
        split = urlsplit(url)
        wire = Wire(method, f"{split.path}?{split.query}", [("Host", split.netloc), *headers])
        auth = verify(wire.request())
        assert auth.presigned
        assert auth.access_key_id == "AKIDTEST"
        refused(dataclasses.replace(wire, method="DELETE").request())


def test_boto3_presigned_example_from_the_research_note() -> None:
    url = client("path").generate_presigned_url(
        "get_object", Params={"Bucket": "b", "Key": "dir/a b+c~(1).txt"}, ExpiresIn=600
    )
    split = urlsplit(url)
    request = Wire("GET", f"{split.path}?{split.query}", [("Host", split.netloc)]).request()
    auth = verify(request)
    assert string_to_sign_v2(request, auth) == (
        f"GET\n\n\n{auth.expires}\n/b/dir/a%20b%2Bc~%281%29.txt"
    )


# ---------------------------------------------------------------------------------------------
# The signed resource

OUR_ONLY = sorted(SUBRESOURCES - set(BOTOCORE_SIGNED))


@pytest.mark.parametrize("name", OUR_ONLY)
def test_botocore_requests_for_selectors_it_does_not_sign_are_refused(name: str) -> None:
    """Deliberate: botocore leaves these out of its resource, and a signature without them
    must not reach the operation they select."""
    aws_request = botocore_request(
        method="GET", bucket="b", key="k", items=[(name, None)], headers={}, virtual=False
    )
    HmacV1Auth(CREDS).add_auth(aws_request)
    refused(wire_of(aws_request.prepare()).request())


def _signed(
    method: str, target: str, sts: str, headers: Sequence[tuple[str, str]] = ()
) -> S3Request:
    """A request carrying the signature of `sts`, whatever the request really is."""
    signature = sign_v2(SECRET, sts)
    return make_request(
        method,
        target,
        [("Host", ENDPOINT), *headers, ("Authorization", f"AWS AKIDTEST:{signature}")],
        base_domains=DOMAINS,
    )


def test_percent_encoded_selector_name_is_signed() -> None:
    """`%61cl` is `acl` to the operation router, so it is `acl` in the resource too."""
    request = _signed("GET", "/b/k?%61cl", "GET\n\n\n\n/b/k")
    assert request.operation == "GetObjectAcl"
    refused(request)
    signed = _signed("GET", "/b/k?%61cl", "GET\n\n\n\n/b/k?acl")
    verify_signature_v2(signed, parsed(signed), SECRET)


def test_plus_in_a_subresource_value_means_a_space() -> None:
    """The proxy reads a raw `+` as a space, so that is what must have been signed; botocore
    itself sends `%2B` for a `+` and never meets this."""
    as_read = _signed("GET", "/b/k?versionId=a+b", "GET\n\n\n\n/b/k?versionId=a b")
    assert as_read.query["versionId"] == "a b"
    verify_signature_v2(as_read, parsed(as_read), SECRET)
    refused(_signed("GET", "/b/k?versionId=a+b", "GET\n\n\n\n/b/k?versionId=a+b"))
    encoded = _signed("GET", "/b/k?versionId=a%2Bb", "GET\n\n\n\n/b/k?versionId=a+b")
    verify_signature_v2(encoded, parsed(encoded), SECRET)


def test_x_amz_date_blanks_the_date_line_and_botocore_signs_date_anyway() -> None:
    now = time.time()
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now))
    amz_date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(now))
    headers = [("Date", date), ("x-amz-date", amz_date)]
    aws_style = _signed("DELETE", "/b/k", f"DELETE\n\n\n\nx-amz-date:{amz_date}\n/b/k", headers)
    assert string_to_sign_v2(aws_style, parsed(aws_style)) == (
        f"DELETE\n\n\n\nx-amz-date:{amz_date}\n/b/k"
    )
    verify(aws_style)

    aws_request = botocore_request(
        method="DELETE",
        bucket="b",
        key="k",
        items=[],
        headers={"x-amz-date": amz_date},
        virtual=False,
    )
    HmacV1Auth(CREDS).add_auth(aws_request)
    verify(wire_of(aws_request.prepare()).request())


def test_repeated_amz_headers_join_in_arrival_order() -> None:
    aws_request = botocore_request(
        method="PUT", bucket="b", key="k", items=[], headers={}, virtual=False
    )
    aws_request.headers["x-amz-meta-a"] = " one "
    aws_request.headers["X-Amz-Meta-A"] = "two"
    HmacV1Auth(CREDS).add_auth(aws_request)
    # botocore's prepared headers keep only one of the two; a client can send both. Values
    # are not stripped here (aiohttp would), so the verifier's own strip is what is tested.
    headers = [("Host", ENDPOINT), *aws_request.headers.items()]
    request = make_request("PUT", "/b/k", headers, base_domains=DOMAINS)
    assert "x-amz-meta-a:one,two\n" in string_to_sign_v2(request, parsed(request))
    verify(request)
    swapped = [h for h in headers if h[0].lower() != "x-amz-meta-a"]
    swapped += [("x-amz-meta-a", "two"), ("x-amz-meta-a", "one")]
    refused(make_request("PUT", "/b/k", swapped, base_domains=DOMAINS))


def test_presigned_amz_parameter_and_header_must_agree() -> None:
    """A URL signed with x-amz-acl=private, its query changed to public-read and the signed
    value sent as a header: both copies count, so the request cannot carry an unsigned one."""
    aws_request = botocore_request(
        method="PUT", bucket="b", key="k", items=[], headers={"x-amz-acl": "private"}, virtual=False
    )
    HmacV1QueryAuth(CREDS, expires=HOUR).add_auth(aws_request)
    split = urlsplit(aws_request.url)
    assert "x-amz-acl=private" in split.query
    wire = Wire("PUT", f"{split.path}?{split.query}", [("Host", ENDPOINT)])
    verify(wire.request())
    verify(dataclasses.replace(wire, headers=[*wire.headers, ("x-amz-acl", "private")]).request())
    swapped = wire.with_target(wire.path(), split.query.replace("=private", "=public-read"))
    refused(swapped.request())
    refused(
        dataclasses.replace(swapped, headers=[*wire.headers, ("x-amz-acl", "private")]).request()
    )


# ---------------------------------------------------------------------------------------------
# Refusals


@pytest.mark.parametrize(
    "authorization", ["AWS nocolon", "AWS :sig", "AWS akid:", "AWS", "AWS a b:sig"]
)
def test_malformed_header(authorization: str) -> None:
    request = make_request("GET", "/b/k", [("Authorization", authorization)])
    error = error_of(parse_auth_v2, request)
    assert (error.code, error.status) == ("InvalidArgument", 400)
    assert error.details == {"ArgumentName": "Authorization"}


def test_not_sigv2() -> None:
    assert parse_auth_v2(make_request("GET", "/b/k", [])) is None
    v4 = "AWS4-HMAC-SHA256 Credential=a/20130524/us-east-1/s3/aws4_request, SignedHeaders=host"
    assert parse_auth_v2(make_request("GET", "/b/k", [("Authorization", v4)])) is None
    assert parse_auth_v2(make_request("GET", "/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256", [])) is None


@pytest.mark.parametrize(
    ("target", "headers"),
    [
        ("/b/k?AWSAccessKeyId=a&Expires=1&Signature=s", [("Authorization", "AWS a:s")]),
        ("/b/k?X-Amz-Signature=ab", [("Authorization", "AWS a:s")]),
        ("/b/k", [("Authorization", "AWS a:s"), ("Authorization", "AWS a:t")]),
        ("/b/k?AWSAccessKeyId=a&Expires=1&Signature=s&X-Amz-Algorithm=AWS4-HMAC-SHA256", []),
        ("/b/k?AWSAccessKeyId=a&Expires=1&Signature=s", [("Authorization", "Bearer x")]),
    ],
)
def test_two_mechanisms(target: str, headers: Headers) -> None:
    error = error_of(parse_auth_v2, make_request("GET", target, headers))
    assert (error.code, error.status) == ("InvalidArgument", 400)
    assert error.message.startswith("Only one auth mechanism allowed")


@pytest.mark.parametrize(
    "query",
    [
        "AWSAccessKeyId=a&Signature=s",
        "AWSAccessKeyId=a&Expires=1",
        "Signature=s&Expires=1",
        "AWSAccessKeyId=&Expires=1&Signature=s",
        "Signature=s",
    ],
)
def test_query_parameters_missing(query: str) -> None:
    error = error_of(parse_auth_v2, make_request("GET", f"/b/k?{query}", []))
    assert (error.code, error.status) == ("AccessDenied", 403)
    assert "requires the Signature, Expires and AWSAccessKeyId" in error.message


@pytest.mark.parametrize("expires", ["soon", "-5", "1.5", "1" * 40, "%C2%B2"])
def test_query_expires_not_a_number(expires: str) -> None:
    request = make_request("GET", f"/b/k?AWSAccessKeyId=a&Expires={expires}&Signature=s", [])
    error = error_of(parse_auth_v2, request)
    assert (error.code, error.status) == ("AccessDenied", 403)
    assert error.message.startswith("Invalid date (should be seconds since epoch)")


def test_query_expired_and_not_yet() -> None:
    request = make_request("GET", "/b/k?AWSAccessKeyId=a&Expires=1000&Signature=s", [])
    auth = parsed(request)
    check_time_v2(auth, request, 1000)
    check_time_v2(auth, request, 0)  # SigV2 URLs have no start time
    error = error_of(check_time_v2, auth, request, 1000.5)
    assert (error.code, error.status, error.message) == ("AccessDenied", 403, "Request has expired")
    assert error.details == {
        "Expires": "1970-01-01T00:16:40Z",
        "ServerTime": "1970-01-01T00:16:40Z",
    }


NOW = epoch("Tue, 27 Mar 2007 19:36:42 +0000")


@pytest.mark.parametrize("offset", [-901, 901, -86400, 86400])
def test_date_skewed(offset: int) -> None:
    request = make_request(
        "GET", "/b/k", [("Date", "Tue, 27 Mar 2007 19:36:42 +0000"), ("Authorization", "AWS a:s")]
    )
    error = error_of(check_time_v2, parsed(request), request, NOW + offset)
    assert (error.code, error.status) == ("RequestTimeTooSkewed", 403)
    assert error.details["RequestTime"] == "Tue, 27 Mar 2007 19:36:42 +0000"
    assert error.details["MaxAllowedSkewMilliseconds"] == "900000"


@pytest.mark.parametrize("offset", [-900, 0, 900])
def test_date_within_skew(offset: int) -> None:
    request = make_request(
        "GET", "/b/k", [("Date", "Tue, 27 Mar 2007 19:36:42 GMT"), ("Authorization", "AWS a:s")]
    )
    check_time_v2(parsed(request), request, NOW + offset)


@pytest.mark.parametrize(
    "amz_date",
    ["Tue, 27 Mar 2007 19:36:42 +0000", "20070327T193642Z", "Tuesday, 27-Mar-07 19:36:42 GMT"],
)
def test_x_amz_date_wins_over_date(amz_date: str) -> None:
    headers = [("Date", "Mon, 01 Jan 2001 00:00:00 GMT"), ("Authorization", "AWS a:s")]
    request = make_request("GET", "/b/k", [*headers, ("x-amz-date", amz_date)])
    check_time_v2(parsed(request), request, NOW)
    stale = make_request(
        "GET",
        "/b/k",
        [
            ("Date", "Tue, 27 Mar 2007 19:36:42 GMT"),
            ("x-amz-date", "Mon, 01 Jan 2001 00:00:00 GMT"),
            ("Authorization", "AWS a:s"),
        ],
    )
    assert error_of(check_time_v2, parsed(stale), stale, NOW).code == "RequestTimeTooSkewed"


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [("Date", "yesterday")],
        [("x-amz-date", "20071327T000000Z")],
        [("Date", "Tue, 27 Mar 2007 19:36:42 GMT"), ("x-amz-date", "")],
    ],
)
def test_no_valid_date(headers: Headers) -> None:
    request = make_request("GET", "/b/k", [*headers, ("Authorization", "AWS a:s")])
    error = error_of(check_time_v2, parsed(request), request, NOW)
    assert (error.code, error.status) == ("AccessDenied", 403)
    assert "valid Date or x-amz-date" in error.message


def test_signature_mismatch_details_leak_nothing() -> None:
    token = "FwoGZXIvYXdzEJr-session-token"
    aws_request = botocore_request(
        method="GET", bucket="b", key="k", items=[("acl", None)], headers={}, virtual=False
    )
    HmacV1Auth(Credentials("AKIDTEST", SECRET, token)).add_auth(aws_request)
    wire = wire_of(aws_request.prepare())
    error = refused(wire.request(), secret="wrong")
    assert set(error.details) == {"AWSAccessKeyId", "StringToSign"}
    assert error.details["AWSAccessKeyId"] == "AKIDTEST"
    assert error.details["StringToSign"].endswith("\nx-amz-security-token:<redacted>\n/b/k?acl")
    signature = dict(wire.headers)["Authorization"].rpartition(":")[2]
    body = error_xml(error, resource="/b/k", request_id="R").decode()
    for secret in (signature, SECRET, "wrong", token):
        assert secret not in body
    assert "<Code>SignatureDoesNotMatch</Code>" in body


def test_mismatch_details_are_xml_safe() -> None:
    request = _signed("GET", "/b/k%01", "x", [("x-amz-meta-a", "\x01")])
    error = refused(request)
    assert "\x01" not in error.details["StringToSign"]
    error_xml(error, resource="/", request_id="R")


def test_provided_signature_may_be_anything() -> None:
    for signature in ("é", "\udcff", "x" * 1000, "a=="):
        request = make_request(
            "GET", "/b/k", [("Host", ENDPOINT), ("Authorization", f"AWS a:{signature}")]
        )
        refused(request)
