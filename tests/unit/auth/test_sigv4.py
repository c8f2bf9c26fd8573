"""SigV4: published vectors, the AWS test suite, botocore as the reference, and every refusal."""

from __future__ import annotations

import hashlib
import string
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from unittest import mock
from urllib.parse import quote, urlsplit

import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from s3router_proxy.auth import sigv4
from s3router_proxy.auth.canonical import uri_encode
from s3router_proxy.auth.signer import Credentials as BackendCredentials
from s3router_proxy.auth.signer import OutgoingRequest, sign_request
from s3router_proxy.auth.signingkey import signing_key
from s3router_proxy.auth.sigv4 import (
    EMPTY_SHA256,
    STREAMING_PAYLOADS,
    UNSIGNED_PAYLOAD,
    SigV4Auth,
    check_time,
    parse_auth,
    verify_signature,
)
from s3router_proxy.s3.errors import S3Error, error_xml
from s3router_proxy.s3.request import S3Request, parse_query

# S3 documentation examples (sig-v4-header-based-auth, sigv4-query-string-auth, sigv4-streaming).
DOC_AKID = "AKIAIOSFODNN7EXAMPLE"
DOC_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
DOC_DATE = "20130524T000000Z"
DOC_NOW = datetime(2013, 5, 24, tzinfo=UTC).timestamp()
DOC_SCOPE = f"{DOC_AKID}/20130524/us-east-1/s3/aws4_request"
# AWS SigV4 test suite (awslabs/aws-c-auth tests/aws-signing-test-suite/v4).
SUITE_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SUITE_DATE = "20150830T123600Z"


def make_request(method: str, target: str, headers: Iterable[tuple[str, str]]) -> S3Request:
    """An S3Request as the server builds it from a request line and headers."""
    path, _, raw_query = target.partition("?")
    items = parse_query(raw_query)
    query: dict[str, str] = {}
    for name, value in items:
        query.setdefault(name, value)
    proxy = CIMultiDictProxy(CIMultiDict(headers))
    return S3Request(
        method=method,
        raw_path=path,
        raw_query=raw_query,
        query=query,
        headers=proxy,
        host=proxy.get("Host", ""),
        bucket="",
        key="",
        addressing="path",
        query_items=items,
    )


def authorization(signed: str, signature: str, scope: str = DOC_SCOPE) -> str:
    return f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders={signed}, Signature={signature}"


def verify(request: S3Request, secret: str, now: float) -> bytes:
    auth = parse_auth(request)
    assert auth is not None
    check_time(auth, now)
    return verify_signature(request, auth, secret)


def sign(**overrides: Any) -> dict[str, str]:
    """sign_request with small defaults, for tests that care about one or two arguments."""
    arguments: dict[str, Any] = {
        "method": "GET",
        "canonical_uri": "/b/k",
        "canonical_query": "",
        "headers": {"host": "h"},
        "payload_hash": EMPTY_SHA256,
        "access_key_id": "AK",
        "secret_access_key": "S",
        "session_token": None,
        "region": "us-east-1",
        "amz_date": DOC_DATE,
    }
    arguments.update(overrides)
    return sign_request(
        OutgoingRequest(
            arguments["method"],
            arguments["canonical_uri"],
            arguments["canonical_query"],
            arguments["headers"],
            arguments["payload_hash"],
        ),
        BackendCredentials(
            arguments["access_key_id"], arguments["secret_access_key"], arguments["session_token"]
        ),
        region=arguments["region"],
        amz_date=arguments["amz_date"],
    )


def error_of(call: Callable[..., object], *args: Any, **kwargs: Any) -> S3Error:
    with pytest.raises(S3Error) as caught:
        call(*args, **kwargs)
    return caught.value


# ---------------------------------------------------------------------------------------------
# Published S3 examples

WELCOME_SHA256 = hashlib.sha256(b"Welcome to Amazon S3.").hexdigest()
DOC_HEADER_CASES = [
    pytest.param(
        "GET",
        "/test.txt",
        "",
        {"host": "examplebucket.s3.amazonaws.com", "range": "bytes=0-9"},
        EMPTY_SHA256,
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
        id="get-object-range",
    ),
    pytest.param(
        "PUT",
        "/test%24file.text",
        "",
        {
            "host": "examplebucket.s3.amazonaws.com",
            "date": "Fri, 24 May 2013 00:00:00 GMT",
            "x-amz-storage-class": "REDUCED_REDUNDANCY",
        },
        WELCOME_SHA256,
        "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
        id="put-object",
    ),
    pytest.param(
        "GET",
        "/",
        "lifecycle",
        {"host": "examplebucket.s3.amazonaws.com"},
        EMPTY_SHA256,
        "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
        id="get-bucket-lifecycle",
    ),
    pytest.param(
        "GET",
        "/",
        "max-keys=2&prefix=J",
        {"host": "examplebucket.s3.amazonaws.com"},
        EMPTY_SHA256,
        "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
        id="list-objects",
    ),
    pytest.param(
        "PUT",
        "/examplebucket/chunkObject.txt",
        "",
        {
            "host": "s3.amazonaws.com",
            "content-encoding": "aws-chunked",
            "content-length": "66824",
            "x-amz-decoded-content-length": "66560",
            "x-amz-storage-class": "REDUCED_REDUNDANCY",
        },
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
        id="chunked-seed",
    ),
    pytest.param(
        "PUT",
        "/examplebucket/chunkObject.txt",
        "",
        {
            "host": "s3.amazonaws.com",
            "content-encoding": "aws-chunked",
            "x-amz-decoded-content-length": "66560",
            "x-amz-storage-class": "REDUCED_REDUNDANCY",
            "x-amz-trailer": "x-amz-checksum-crc32c",
        },
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
        "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e",
        id="chunked-trailer-seed",
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "query", "headers", "payload", "expected"), DOC_HEADER_CASES
)
def test_doc_example_verifies(
    method: str, path: str, query: str, headers: dict[str, str], payload: str, expected: str
) -> None:
    signed = ";".join(sorted([*headers, "x-amz-content-sha256", "x-amz-date"]))
    wire = [
        *headers.items(),
        ("x-amz-date", DOC_DATE),
        ("x-amz-content-sha256", payload),
        ("Authorization", authorization(signed, expected)),
        ("User-Agent", "unsigned/1.0"),
    ]
    request = make_request(method, path + ("?" + query if query else ""), wire)
    key = verify(request, DOC_SECRET, DOC_NOW)
    assert key == signing_key(DOC_SECRET, "20130524", "us-east-1")


def test_doc_presigned_get_verifies() -> None:
    target = (
        "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
        "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    )
    request = make_request("GET", target, [("Host", "examplebucket.s3.amazonaws.com")])
    auth = parse_auth(request)
    assert auth == SigV4Auth(
        access_key_id=DOC_AKID,
        date="20130524",
        region="us-east-1",
        service="s3",
        signed_headers=("host",),
        signature="aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
        amz_date=DOC_DATE,
        payload_hash=UNSIGNED_PAYLOAD,
        presigned=True,
        expires=86400,
        security_token=None,
    )
    assert auth.scope == "20130524/us-east-1/s3/aws4_request"
    check_time(auth, DOC_NOW + 86400)
    verify_signature(request, auth, DOC_SECRET)
    tampered = make_request("GET", target.replace("test.txt", "test.txu"), request.headers.items())
    assert error_of(verify, tampered, DOC_SECRET, DOC_NOW).code == "SignatureDoesNotMatch"


# ---------------------------------------------------------------------------------------------
# AWS SigV4 test suite: service "service", us-east-1, 20150830T123600Z, payload = sha256(body).
# Targets are what arrives on the wire; the "-raw" rows are the suite's unencoded request lines,
# which verify through the canonical re-encoding of the path.

HOST = ("Host", "example.amazonaws.com")
XDATE = ("X-Amz-Date", SUITE_DATE)
EMPTY = ("x-amz-content-sha256", EMPTY_SHA256)
TOKEN = ("X-Amz-Security-Token", "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267")
FORM = [("Content-Type", "application/x-www-form-urlencoded"), ("Content-Length", "13")]
FORM_HASH = ("x-amz-content-sha256", hashlib.sha256(b"Param1=value1").hexdigest())
UNRESERVED = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
BASIC = "host;x-amz-date"
# (case, method, wire target, headers besides Host and X-Amz-Date, body, signed, signature)
SUITE_TABLE = [
    ("get-header-value-trim", "GET", "/",
     [("My-Header1", " value1"), ("My-Header2", ' "a   b   c"')], b"",
     "host;my-header1;my-header2;x-amz-date",
     "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"),
    ("get-header-value-order", "GET", "/",
     [("My-Header1", v) for v in ("value4", "value1", "value3", "value2")],
     b"", "host;my-header1;x-amz-date",
     "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"),
    ("get-header-key-duplicate", "GET", "/",
     [("My-Header1", v) for v in ("value2", "value2", "value1")],
     b"", "host;my-header1;x-amz-date",
     "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"),
    ("get-utf8", "GET", "/%E1%88%B4", [], b"", BASIC,
     "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"),
    ("get-utf8-raw", "GET", "/\u1234", [], b"", BASIC,
     "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"),
    ("get-space-unnormalized", "GET", "/example%20space/", [EMPTY], b"", BASIC,
     "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"),
    ("get-space-unnormalized-raw", "GET", "/example space/", [EMPTY], b"", BASIC,
     "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"),
    ("get-slashes-unnormalized", "GET", "//example//", [], b"", BASIC,
     "87cca117541a147f6df867677d98a7d80dff226d2bfca9e4ffa899665623c7e5"),
    ("get-relative-relative-unnormalized", "GET", "/example1/example2/../..", [], b"", BASIC,
     "dc33e0856fd4baca4d7aa2146c38958283844764f38c74252a333df5e613003b"),
    ("get-slash-dot-slash-unnormalized", "GET", "/./", [], b"", BASIC,
     "68714168e6557f8f2de0ef956fc24dc2593a4bd2961f8df51898d8a134695145"),
    ("get-vanilla-query-order-key-case", "GET", "/?Param2=value2&Param1=value1", [], b"", BASIC,
     "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
    ("get-vanilla-query-order-encoded", "GET", "/?Param-3=Value3&Param=Value2&%E1%88%B4=Value1",
     [], b"", BASIC, "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac"),
    ("get-vanilla-utf8-query", "GET", "/?%E1%88%B4=bar", [], b"", BASIC,
     "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"),
    ("get-vanilla-query-unreserved", "GET", f"/?{UNRESERVED}={UNRESERVED}", [], b"", BASIC,
     "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"),
    ("get-vanilla-with-session-token", "GET", "/", [TOKEN], b"",
     "host;x-amz-date;x-amz-security-token",
     "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8"),
    ("post-x-www-form-urlencoded", "POST", "/", [*FORM, FORM_HASH], b"Param1=value1",
     "content-length;content-type;host;x-amz-content-sha256;x-amz-date",
     "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b"),
]  # fmt: skip
SUITE_CASES = [
    pytest.param(method, target, [HOST, *headers, XDATE], body, signed, signature, id=case)
    for case, method, target, headers, body, signed, signature in SUITE_TABLE
]


def suite_auth(signed: str, signature: str, body: bytes) -> SigV4Auth:
    return SigV4Auth(
        access_key_id="AKIDEXAMPLE",
        date=SUITE_DATE[:8],
        region="us-east-1",
        service="service",
        signed_headers=tuple(signed.split(";")),
        signature=signature,
        amz_date=SUITE_DATE,
        payload_hash=hashlib.sha256(body).hexdigest(),
        presigned=False,
        expires=None,
        security_token=None,
    )


@pytest.mark.parametrize(("method", "target", "headers", "body", "signed", "expected"), SUITE_CASES)
def test_aws_suite_verifies(
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes,
    signed: str,
    expected: str,
) -> None:
    request = make_request(method, target, headers)
    key = verify_signature(request, suite_auth(signed, expected, body), SUITE_SECRET)
    assert key == signing_key(SUITE_SECRET, "20150830", "us-east-1", "service")
    wrong = suite_auth(signed, expected[:-1] + ("0" if expected[-1] != "0" else "1"), body)
    assert error_of(verify_signature, request, wrong, SUITE_SECRET).code == "SignatureDoesNotMatch"


# ---------------------------------------------------------------------------------------------
# Encoding and helpers


def test_header_trimming_matches_botocore_rules() -> None:
    request = make_request(
        "GET",
        "/b/k",
        [("Host", "h"), ("x-amz-meta-a", "\t a  \t b "), ("x-amz-meta-a", "c"), XDATE],
    )
    block = sigv4._canonical_headers(request.headers, ("host", "x-amz-meta-a"))
    assert block == "host:h\nx-amz-meta-a:a b,c\n"


def test_canonical_uri_fallback_accepts_canonically_reencoded_path() -> None:
    # Signed as UriEncode(decoded key) while sent with "~" escaped and "!" raw.
    headers = {"host": "h:9000"}
    added = sign(canonical_uri="/b/a~%21%20b", headers=headers)
    wire = [("Host", "h:9000"), *added.items()]
    verify(make_request("GET", "/b/a%7E!%20b", wire), "S", DOC_NOW)
    # The literal "+" is a plus in paths: "%2B" and "+" name the same key, " " does not.
    added = sign(canonical_uri="/b/a%2Bb", headers=headers)
    wire = [("Host", "h:9000"), *added.items()]
    verify(make_request("GET", "/b/a+b", wire), "S", DOC_NOW)
    error = error_of(verify, make_request("GET", "/b/a%20b", wire), "S", DOC_NOW)
    assert error.code == "SignatureDoesNotMatch"


def test_session_token_is_added_and_signed() -> None:
    added = sign(payload_hash=UNSIGNED_PAYLOAD, session_token="tok en")
    assert added["x-amz-security-token"] == "tok en"
    assert (
        "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"
        in (added["authorization"])
    )
    request = make_request("GET", "/b/k", [("Host", "h"), *added.items()])
    auth = parse_auth(request)
    assert auth is not None and auth.security_token == "tok en"
    verify_signature(request, auth, "S")


# ---------------------------------------------------------------------------------------------
# botocore as the reference

AKID = "AKIDPROPERTY"

key_parts = st.one_of(
    st.sampled_from(["+", "%", "%2F", "//", "..", "/../", "~", " ", "  ", "\U0001f600", "/", "ü"]),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=6),
)
object_keys = st.lists(key_parts, max_size=6).map("".join)
query_text = st.lists(
    st.one_of(
        st.sampled_from(["", "+", "%", "&", "=", "/", " ", "~", "\U0001f600", "a"]),
        st.text(st.characters(exclude_categories=("Cs",)), max_size=5),
    ),
    max_size=4,
).map("".join)
query_names = st.one_of(
    st.sampled_from(["prefix", "a", "A", "x-id", "delete", "uploadId"]),
    query_text.filter(lambda s: s != "" and not s.startswith("X-Amz-")),
)
header_values = st.text(
    st.sampled_from(string.ascii_letters + string.digits + string.punctuation + " \t"),
    max_size=20,
)
meta_names = st.text(
    st.sampled_from(string.ascii_lowercase + string.digits + "-"), min_size=1, max_size=8
).map(lambda s: "x-amz-meta-" + s)
extra_headers = st.dictionaries(
    st.one_of(meta_names, st.sampled_from(["content-type", "range", "x-amz-acl", "if-match"])),
    header_values,
    max_size=4,
)
secrets_ = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=40)
moments = st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2099, 12, 31)).map(
    lambda d: d.replace(microsecond=0)
)
regions = st.sampled_from(["us-east-1", "eu-west-3", "ap-southeast-2", "us-gov-west-1", "local"])
tokens = st.one_of(
    st.none(), st.text(st.sampled_from(string.ascii_letters + string.digits + "+/="), min_size=1)
)


def botocore_sign(
    signer_class: type,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    secret: str,
    token: str | None,
    region: str,
    when: datetime,
    *,
    params: list[tuple[str, str]] | None = None,
    unsigned_payload: bool = False,
    **signer_kwargs: int,
) -> AWSRequest:
    """A request signed by botocore at the frozen time `when`."""
    request = AWSRequest(method=method, url=url, headers=headers, data=body, params=params or {})
    if unsigned_payload:
        request.context["client_config"] = Config(s3={"payload_signing_enabled": False})
    signer = signer_class(Credentials(AKID, secret, token), "s3", region, **signer_kwargs)
    with mock.patch("botocore.auth.get_current_datetime", return_value=when):
        signer.add_auth(request)
    return request


def as_received(prepared_url: str, headers: list[tuple[str, str]], method: str) -> S3Request:
    """The S3Request the server builds for a request botocore prepared."""
    parts = urlsplit(prepared_url)
    target = parts.path + ("?" + parts.query if parts.query else "")
    names = {name.lower() for name, _ in headers}
    wire = [(name, value.strip(" \t")) for name, value in headers]  # HTTP parsers drop OWS
    if "host" not in names:
        wire.append(("Host", parts.netloc))
    wire += [("User-Agent", "Botocore/1.0"), ("Accept-Encoding", "identity")]
    return make_request(method, target, wire)


def mutations(request: S3Request, signed: tuple[str, ...]) -> list[S3Request]:
    """One-byte changes to the path, a query value and each signed header but the date/hash."""
    headers = list(request.headers.items())
    target_query = "?" + request.raw_query if request.raw_query else ""
    path = request.raw_path
    index = len(path) - 1
    if path[index] == "Z" or (index >= 2 and "%" in path[index - 2 :]):
        changed_path = path + "Z"
    else:
        changed_path = path[:index] + "Z"
    out = [make_request(request.method, changed_path + target_query, headers)]
    pairs = request.raw_query.split("&") if request.raw_query else []
    for position, pair in enumerate(pairs):
        if pair.startswith("X-Amz-"):
            continue
        changed = [*pairs]
        changed[position] = pair + ("Z" if "=" in pair else "=Z")
        out.append(make_request(request.method, path + "?" + "&".join(changed), headers))
        break
    for name in signed:
        if name in ("x-amz-date", "x-amz-content-sha256"):
            continue
        changed_headers = [(n, v + "Z" if n.lower() == name else v) for n, v in headers]
        out.append(make_request(request.method, path + target_query, changed_headers))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=st.sampled_from(["GET", "PUT", "POST", "DELETE", "HEAD"]),
    key=object_keys,
    query=st.lists(st.tuples(query_names, query_text), max_size=4),
    params_mode=st.booleans(),
    presigned=st.booleans(),
    expires=st.integers(min_value=1, max_value=604800),
    headers=extra_headers,
    body=st.binary(max_size=32),
    secret=secrets_,
    token=tokens,
    region=regions,
    when=moments,
)
def test_botocore_signed_requests_verify(
    method: str,
    key: str,
    query: list[tuple[str, str]],
    params_mode: bool,
    presigned: bool,
    expires: int,
    headers: dict[str, str],
    body: bytes,
    secret: str,
    token: str | None,
    region: str,
    when: datetime,
) -> None:
    url = "http://127.0.0.1:8080/bucket/" + quote(key, safe="/~")
    if query and not params_mode:
        url += "?" + "&".join(f"{quote(n, safe='-_.~')}={quote(v, safe='-_.~')}" for n, v in query)
    if presigned:
        signed = botocore_sign(
            S3SigV4QueryAuth,
            method,
            url,
            headers,
            b"",
            secret,
            token,
            region,
            when,
            params=query if params_mode else None,
            expires=expires,
        )
    else:
        signed = botocore_sign(
            S3SigV4Auth,
            method,
            url,
            headers,
            body,
            secret,
            token,
            region,
            when,
            params=query if params_mode else None,
        )
    prepared = signed.prepare()
    request = as_received(prepared.url, list(prepared.headers.items()), method)
    now = when.replace(tzinfo=UTC).timestamp()
    auth = parse_auth(request)
    assert auth is not None and auth.presigned == presigned
    assert auth.security_token == token
    check_time(auth, now + (expires if presigned else 0))
    key_bytes = verify_signature(request, auth, secret)
    assert key_bytes == signing_key(secret, when.strftime("%Y%m%d"), region)

    for changed in mutations(request, auth.signed_headers):
        changed_auth = parse_auth(changed)
        assert changed_auth is not None
        error = error_of(verify_signature, changed, changed_auth, secret)
        assert error.code == "SignatureDoesNotMatch"
        assert error.status == 403


def test_botocore_date_header_form_verifies() -> None:
    """botocore signs with the Date header instead of X-Amz-Date when one is present."""
    when = datetime(2026, 3, 1, 12, 30, 5)
    signed = botocore_sign(
        S3SigV4Auth,
        "GET",
        "http://h:1/b/k",
        {"Date": "whatever"},
        b"",
        "S",
        None,
        "us-east-1",
        when,
    )
    prepared = signed.prepare()
    assert "X-Amz-Date" not in prepared.headers
    request = as_received(prepared.url, list(prepared.headers.items()), "GET")
    auth = parse_auth(request)
    assert auth is not None and auth.amz_date == "20260301T123005Z"
    check_time(auth, when.replace(tzinfo=UTC).timestamp())
    verify_signature(request, auth, "S")


# ---------------------------------------------------------------------------------------------
# Refusals

GOOD_SIGNATURE = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"


def header_request(
    authorization_value: str | None = None,
    *,
    extra: list[tuple[str, str]] | None = None,
    omit: tuple[str, ...] = (),
    target: str = "/test.txt",
) -> S3Request:
    """The documented GET-with-range request, optionally altered."""
    value = authorization_value
    if value is None:
        value = authorization("host;range;x-amz-content-sha256;x-amz-date", GOOD_SIGNATURE)
    base = [
        ("Host", "examplebucket.s3.amazonaws.com"),
        ("Range", "bytes=0-9"),
        ("x-amz-content-sha256", EMPTY_SHA256),
        ("x-amz-date", DOC_DATE),
        ("Authorization", value),
    ]
    wire = [(n, v) for n, v in base if n.lower() not in omit] + (extra or [])
    return make_request("GET", target, wire)


def presigned_request(**changes: str | None) -> S3Request:
    """The documented presigned GET, with parameters replaced (or dropped when None)."""
    params = {
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": "AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request",
        "X-Amz-Date": DOC_DATE,
        "X-Amz-Expires": "86400",
        "X-Amz-SignedHeaders": "host",
        "X-Amz-Signature": "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
    }
    params.update(changes)
    query = "&".join(f"{n}={v}" for n, v in params.items() if v is not None)
    return make_request("GET", "/test.txt?" + query, [("Host", "examplebucket.s3.amazonaws.com")])


def test_anonymous_request_has_no_auth() -> None:
    assert parse_auth(make_request("GET", "/b/k?prefix=a", [("Host", "h")])) is None


def test_documented_request_parses_and_verifies() -> None:
    verify(header_request(), DOC_SECRET, DOC_NOW)


@pytest.mark.parametrize(
    "value",
    [
        "AWS4-HMAC-SHA256",
        "AWS4-HMAC-SHA256 ",
        f"AWS4-HMAC-SHA256 Credential={DOC_SCOPE}, SignedHeaders=host",
        authorization("host", GOOD_SIGNATURE) + ", X=1",
        authorization("host", GOOD_SIGNATURE).replace(
            "SignedHeaders=host", f"Credential={DOC_SCOPE}"
        ),
        f"AWS4-HMAC-SHA256 Credential={DOC_SCOPE} SignedHeaders=host Signature={GOOD_SIGNATURE}",
        authorization("host", GOOD_SIGNATURE, scope="AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3"),
        authorization("host", GOOD_SIGNATURE, scope="AKID/20130524/us-east-1/s3/aws5_request"),
        authorization("host", GOOD_SIGNATURE, scope="/20130524/us-east-1/s3/aws4_request"),
        authorization("host", GOOD_SIGNATURE, scope="AKID/20130524//s3/aws4_request"),
        authorization("host", "abc"),
        authorization("host", "é" * 64),
        authorization("", GOOD_SIGNATURE),
        authorization("host;;range", GOOD_SIGNATURE),
        authorization("host", GOOD_SIGNATURE, scope="AKID/20130525/us-east-1/s3/aws4_request"),
        authorization("host", GOOD_SIGNATURE, scope="AKID/20130524/us-east-1/iam/aws4_request"),
    ],
)
def test_malformed_authorization_header(value: str) -> None:
    error = error_of(parse_auth, header_request(value))
    assert (error.code, error.status) == ("AuthorizationHeaderMalformed", 400)


def test_access_key_with_slash_is_taken_from_the_right() -> None:
    value = authorization("host", GOOD_SIGNATURE, scope="a/b/20130524/us-east-1/s3/aws4_request")
    auth = parse_auth(header_request(value))
    assert auth is not None and auth.access_key_id == "a/b"


@pytest.mark.parametrize(
    "value",
    [
        f"AWS4-ECDSA-P256-SHA256 Credential={DOC_SCOPE}, SignedHeaders=host, Signature=30440220",
        "Bearer abc",
        "Basic dXNlcjpwYXNz",
        "aws4-hmac-sha256 Credential=x",
        "",
    ],
)
def test_unsupported_scheme(value: str) -> None:
    error = error_of(parse_auth, header_request(value))
    assert (error.code, error.status) == ("InvalidRequest", 400)
    if value:
        assert "Please use AWS4-HMAC-SHA256" in error.message


def test_both_mechanisms_refused() -> None:
    for param in ("X-Amz-Algorithm=AWS4-HMAC-SHA256", "AWSAccessKeyId=AK", "X-Amz-Signature=00"):
        error = error_of(parse_auth, header_request(target="/test.txt?" + param))
        assert (error.code, error.status) == ("InvalidArgument", 400)
    twice = header_request(extra=[("Authorization", "AWS AK:sig")])
    assert error_of(parse_auth, twice).code == "InvalidArgument"


def test_sigv2_not_implemented() -> None:
    error = error_of(
        parse_auth, header_request("AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=")
    )
    assert (error.code, error.status) == ("NotImplemented", 501)
    query = make_request(
        "GET",
        "/b/k?AWSAccessKeyId=AK&Expires=1175139620&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D",
        [("Host", "h")],
    )
    error = error_of(parse_auth, query)
    assert (error.code, error.status) == ("NotImplemented", 501)
    assert "Version 2" in error.message


def test_payload_hash_header() -> None:
    error = error_of(parse_auth, header_request(omit=("x-amz-content-sha256",)))
    assert (error.code, error.status) == ("InvalidRequest", 400)
    assert "x-amz-content-sha256" in error.message
    for bad in ("abc", "UNSIGNED", "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD", "g" * 64):
        request = header_request(
            omit=("x-amz-content-sha256",), extra=[("x-amz-content-sha256", bad)]
        )
        error = error_of(parse_auth, request)
        assert (error.code, error.status) == ("InvalidArgument", 400)
    for good in (UNSIGNED_PAYLOAD, *STREAMING_PAYLOADS, "A" * 64):
        request = header_request(
            omit=("x-amz-content-sha256",), extra=[("x-amz-content-sha256", good)]
        )
        auth = parse_auth(request)
        assert auth is not None and auth.payload_hash == good


def test_missing_or_invalid_date() -> None:
    error = error_of(parse_auth, header_request(omit=("x-amz-date",)))
    assert (error.code, error.status) == ("AccessDenied", 403)
    assert "Date" in error.message
    for bad in ("20130524", "20131324T000000Z", "20130230T000000Z", "2013-05-24T00:00:00Z"):
        request = header_request(omit=("x-amz-date",), extra=[("x-amz-date", bad)])
        assert error_of(parse_auth, request).code == "AccessDenied"
    request = header_request(omit=("x-amz-date",), extra=[("Date", "not a date")])
    assert error_of(parse_auth, request).code == "AccessDenied"
    request = header_request(
        omit=("x-amz-date",), extra=[("Date", "Fri, 24 May 2013 00:00:00 GMT")]
    )
    auth = parse_auth(request)
    assert auth is not None and auth.amz_date == DOC_DATE


def test_clock_skew_both_ways() -> None:
    auth = parse_auth(header_request())
    assert auth is not None
    check_time(auth, DOC_NOW + 900)
    check_time(auth, DOC_NOW - 900)
    for now in (DOC_NOW + 901, DOC_NOW - 901):
        error = error_of(check_time, auth, now)
        assert (error.code, error.status) == ("RequestTimeTooSkewed", 403)
        assert error.details["RequestTime"] == DOC_DATE
        assert error.details["MaxAllowedSkewMilliseconds"] == "900000"
        assert error.details["ServerTime"].endswith("Z")
    check_time(auth, DOC_NOW + 3000, max_skew=3600)


def test_presigned_time_window() -> None:
    auth = parse_auth(presigned_request())
    assert auth is not None
    check_time(auth, DOC_NOW + 86400)
    check_time(auth, DOC_NOW - 900)
    expired = error_of(check_time, auth, DOC_NOW + 86401)
    assert (expired.code, expired.status, expired.message) == (
        "AccessDenied",
        403,
        "Request has expired",
    )
    assert expired.details["Expires"] == "2013-05-25T00:00:00Z"
    early = error_of(check_time, auth, DOC_NOW - 901)
    assert (early.code, early.message) == ("AccessDenied", "Request is not valid yet")


@pytest.mark.parametrize(
    "changes",
    [
        {"X-Amz-Expires": "0"},
        {"X-Amz-Expires": "604801"},
        {"X-Amz-Expires": "-1"},
        {"X-Amz-Expires": "1e3"},
        {"X-Amz-Expires": ""},
        {"X-Amz-Algorithm": "AWS4-HMAC-SHA512"},
        {"X-Amz-Date": "20130524"},
        {"X-Amz-Credential": "AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3"},
        {"X-Amz-Credential": "AKIAIOSFODNN7EXAMPLE%2F20130525%2Fus-east-1%2Fs3%2Faws4_request"},
        {"X-Amz-Credential": "AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fsts%2Faws4_request"},
        {"X-Amz-Signature": "zz"},
        {"X-Amz-SignedHeaders": ""},
        *[{name: None} for name in sigv4._PRESIGNED_PARAMS],
    ],
)
def test_presigned_parameter_errors(changes: dict[str, str | None]) -> None:
    error = error_of(parse_auth, presigned_request(**changes))
    assert (error.code, error.status) == ("AuthorizationQueryParametersError", 400)


def test_presigned_expires_limits_accepted() -> None:
    for expires in ("1", "604800"):
        auth = parse_auth(presigned_request(**{"X-Amz-Expires": expires}))
        assert auth is not None and auth.expires == int(expires)


def test_presigned_sigv4a_unsupported() -> None:
    error = error_of(parse_auth, presigned_request(**{"X-Amz-Algorithm": "AWS4-ECDSA-P256-SHA256"}))
    assert (error.code, error.status) == ("InvalidRequest", 400)


def test_presigned_pinned_payload_hash() -> None:
    digest = hashlib.sha256(b"x").hexdigest()
    request = make_request(
        "PUT",
        presigned_request().raw_path
        + "?"
        + presigned_request().raw_query
        + "&X-Amz-Content-Sha256="
        + digest,
        [("Host", "examplebucket.s3.amazonaws.com")],
    )
    auth = parse_auth(request)
    assert auth is not None and auth.payload_hash == digest


def test_unsigned_amz_header_refused() -> None:
    request = header_request(extra=[("x-amz-meta-owner", "mallory"), ("X-Amzn-Trace-Id", "ok")])
    auth = parse_auth(request)
    assert auth is not None
    error = error_of(verify_signature, request, auth, DOC_SECRET)
    assert (error.code, error.status) == ("AccessDenied", 403)
    assert error.details == {"HeadersNotSigned": "x-amz-meta-owner"}

    presigned = make_request(
        "GET",
        presigned_request().raw_path + "?" + presigned_request().raw_query,
        [
            ("Host", "examplebucket.s3.amazonaws.com"),
            ("X-Amz-Copy-Source", "/b/k"),
            ("X-Amz-Acl", "p"),
        ],
    )
    auth = parse_auth(presigned)
    assert auth is not None
    error = error_of(verify_signature, presigned, auth, DOC_SECRET)
    assert error.code == "AccessDenied"
    assert error.details["HeadersNotSigned"] == "x-amz-acl, x-amz-copy-source"


def test_unsigned_host_refused() -> None:
    value = authorization("range;x-amz-content-sha256;x-amz-date", GOOD_SIGNATURE)
    request = header_request(value)
    auth = parse_auth(request)
    assert auth is not None
    error = error_of(verify_signature, request, auth, DOC_SECRET)
    assert (error.code, error.status) == ("AccessDenied", 403)
    assert error.details["HeadersNotSigned"] == "host"


def test_wrong_secret_or_tampering_does_not_match() -> None:
    request = header_request()
    auth = parse_auth(request)
    assert auth is not None
    error = error_of(verify_signature, request, auth, DOC_SECRET + "x")
    assert (error.code, error.status) == ("SignatureDoesNotMatch", 403)
    tampered = header_request(omit=("range",), extra=[("Range", "bytes=0-99")])
    auth = parse_auth(tampered)
    assert auth is not None
    assert error_of(verify_signature, tampered, auth, DOC_SECRET).code == "SignatureDoesNotMatch"


# ---------------------------------------------------------------------------------------------
# Secrets stay out of errors


def test_mismatch_details_hold_no_secret_signature_or_token() -> None:
    secret = "TopSecretKeyValue/+123"
    token = "SessionTokenValue123"
    added = sign(
        method="PUT",
        canonical_query="x=1",
        headers={"host": "h", "x-amz-meta-bad": "caf\udce9 \x01"},
        access_key_id="AKID",
        secret_access_key=secret,
        session_token=token,
    )
    request = make_request(
        "PUT", "/b/k?x=2", [("Host", "h"), ("x-amz-meta-bad", "caf\udce9 \x01"), *added.items()]
    )
    auth = parse_auth(request)
    assert auth is not None
    error = error_of(verify_signature, request, auth, secret)
    assert error.code == "SignatureDoesNotMatch"
    assert set(error.details) == {"AWSAccessKeyId", "StringToSign", "CanonicalRequest"}
    assert error.details["AWSAccessKeyId"] == "AKID"
    assert "\nx=2\n" in error.details["CanonicalRequest"]
    everything = " ".join([error.message, *error.details.values(), str(error)])
    for forbidden in (secret, token, auth.signature):
        assert forbidden not in everything
    body = error_xml(error, resource="/b/k", request_id="0123456789ABCDEF").decode("utf-8")
    for forbidden in (secret, token, auth.signature):
        assert forbidden not in body
    assert "\x01" not in body

    presigned = presigned_request(**{"X-Amz-Security-Token": token})
    auth = parse_auth(presigned)
    assert auth is not None and auth.security_token == token
    error = error_of(verify_signature, presigned, auth, DOC_SECRET)
    everything = " ".join(error.details.values())
    assert token not in everything
    assert auth.signature not in everything


@given(st.text(st.characters(exclude_categories=("Cs",)), min_size=1))
def test_any_unicode_key_signs_and_verifies(key: str) -> None:
    path = "/b/" + uri_encode(key, keep_slash=True)
    added = sign(canonical_uri=path)
    request = make_request("GET", path, [("Host", "h"), *added.items()])
    verify(request, "S", DOC_NOW)
    assume(key != key.upper())
    changed = make_request(
        "GET", "/b/" + uri_encode(key.upper(), keep_slash=True), request.headers.items()
    )
    assert error_of(verify, changed, "S", DOC_NOW).code == "SignatureDoesNotMatch"
