"""The SigV4 and request-parsing fast paths and caches give what the plain code gives.

Each fast path is compared against a straightforward reference (the code as it was before the
fast path) on tricky inputs, so a shortcut that changes a result fails here.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
from urllib.parse import quote, unquote_plus, unquote_to_bytes

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from s3router_proxy.auth import canonical, sigv4, sigv4syntax
from s3router_proxy.auth.sigv4 import SigV4Auth
from s3router_proxy.s3 import request as s3request
from s3router_proxy.s3.errors import S3Error
from s3router_proxy.s3.request import parse_query, parse_request

# Pieces a query or header is made of that a shortcut could get wrong: escapes of unreserved
# and reserved bytes in both cases, broken escapes, `+`, `=`, `&`, `/`, spaces, non-ASCII,
# undecodable (surrogate-escaped) bytes.
QUERY_PIECES = [
    "a",
    "Z",
    "0",
    "-",
    ".",
    "_",
    "~",
    "%2F",
    "%2f",
    "%41",
    "%7E",
    "%7e",
    "%20",
    "%2B",
    "%3D",
    "%26",
    "%E2%82%AC",
    "%e2%82%ac",
    "%FF",
    "%C3",
    "%",
    "%4",
    "%zz",
    "+",
    "=",
    "&",
    "/",
    " ",
    "*",
    "é",
    "€",
    "\udce9",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
]
raw_queries = st.lists(st.sampled_from(QUERY_PIECES), max_size=14).map("".join)


def _reference_part(raw: str) -> str:
    return quote(unquote_to_bytes(canonical.utf8(raw.replace("+", " "))), safe="")


def _reference_canonical_query(
    raw_query: str, drop: frozenset[str] = frozenset(), redact: frozenset[str] = frozenset()
) -> str:
    pairs = []
    for part in raw_query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        name = _reference_part(name)
        if name in drop:
            continue
        pairs.append((name, "<redacted>" if name in redact else _reference_part(value)))
    pairs.sort()
    return "&".join(f"{name}={value}" for name, value in pairs)


@given(raw_queries)
@settings(max_examples=600)
def test_raw_canonical_query_equals_decode_and_encode(raw: str) -> None:
    for drop, redact in (
        (frozenset(), frozenset()),
        (sigv4._SIGNATURE_PARAM, frozenset()),
        (sigv4._SIGNATURE_PARAM, sigv4._REDACTED_QUERY),
    ):
        expected = _reference_canonical_query(raw, drop, redact)
        assert canonical.raw_canonical_query(raw, drop=drop, redact=redact) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "&",
        "&&a=b&",
        "=",
        "=x",
        "a",
        "a=",
        "a=b=c",
        "a==",
        "b=2&a=1&a=0&A=3",
        "X-Amz-Credential=AK%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=ab",
        "prefix=photos/2024&delimiter=%2F",
        "prefix=a%2fb",
        "k=%7E%41",
        "k=a+b",
        "k=a%20b",
        "k=%",
        "k=%G0",
        "a-b=1&a=2",
    ],
)
def test_raw_canonical_query_examples(raw: str) -> None:
    assert canonical.raw_canonical_query(raw) == _reference_canonical_query(raw)
    assert canonical.raw_canonical_query(
        raw, drop=sigv4._SIGNATURE_PARAM
    ) == _reference_canonical_query(raw, sigv4._SIGNATURE_PARAM)


def test_encoded_query_regex_accepts_only_canonical_queries() -> None:
    for raw in ("", "a=b", "a=b&c", "&&", "x=%2F%E2%82%AC~", "=&="):
        assert canonical._ENCODED_QUERY.fullmatch(raw) is not None, raw
    for raw in ("a=b=c", "a=%2f", "a=+", "a=/", "a=%4", "a=%41", "a=%7E", "a=%zz", "a= "):
        assert canonical._ENCODED_QUERY.fullmatch(raw) is None, raw


def test_canonical_regexes_fail_in_linear_time() -> None:
    """A long unreserved run followed by a character that is not allowed (a `/` in a prefix)
    once backtracked exponentially; run in a subprocess so a regression fails, not hangs."""
    code = textwrap.dedent(
        """
        from s3router_proxy.auth import canonical
        run = "photos-summer-vacation-" * 400
        for tail in ("/", "+", "%2f", "%4", "!", "=x=y"):
            canonical._reencode_query_part(run + tail)
            canonical.raw_canonical_query("a=" + run + tail + "&" + run + "=" + run + tail)
            canonical.raw_canonical_query(("k=" + run + "&") * 50 + "k=" + run + tail)
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert done.stdout.strip() == "ok"


# ---------------------------------------------------------------------------------------------
# parse_query and parse_request


def _reference_parse_query(raw_query: str) -> list[tuple[str, str]]:
    items = []
    for part in raw_query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        try:
            items.append(
                (unquote_plus(name, errors="strict"), unquote_plus(value, errors="strict"))
            )
        except UnicodeDecodeError:
            raise S3Error("InvalidURI", "The query string is not valid UTF-8.") from None
    return items


def _outcome(call: object, *args: object) -> object:
    try:
        return ("ok", call(*args))  # type: ignore[operator]
    except S3Error as error:
        return ("error", error.code, error.message)


@given(raw_queries)
@settings(max_examples=600)
def test_parse_query_equals_unquote_plus(raw: str) -> None:
    expected = _outcome(_reference_parse_query, raw)
    assert _outcome(parse_query, raw) == expected
    assert _outcome(parse_query, raw) == expected  # again, from the decode cache


def test_parse_query_decode_cache_stays_bounded_and_skips_long_values() -> None:
    for n in range(s3request._DECODED_SIZE + 50):
        parse_query(f"k=v%20{n}")
    assert len(s3request._DECODED) <= s3request._DECODED_SIZE
    long = "x%20" * 200
    assert parse_query("k=" + long) == [("k", unquote_plus(long))]
    assert long not in s3request._DECODED


@given(
    st.one_of(
        raw_queries,
        st.lists(st.sampled_from(["a", "a=", "a=1", "a=2", "b=3", "%61=4", "a+=5", "a%20=6"])).map(
            "&".join
        ),
    )
)
@settings(max_examples=300)
@example("a=1&a=2")
@example("a=1&b=2&a=3&b")
@example("a&a=1")
def test_parse_request_query_keeps_first_value(raw: str) -> None:
    headers = CIMultiDictProxy(CIMultiDict([("Host", "h")]))
    try:
        items = _reference_parse_query(raw)
    except S3Error:
        return
    expected: dict[str, str] = {}
    for name, value in items:
        expected.setdefault(name, value)
    request = parse_request("GET", "/b/k?" + raw, headers)
    assert request.query_items == items
    assert request.query == expected
    assert list(request.query) == list(expected)


@pytest.mark.parametrize(
    ("key", "too_long"),
    [
        ("a" * 1024, False),
        ("a" * 1025, True),
        ("é" * 512, False),
        ("é" * 513, True),
        ("€" * 341, False),
        ("€" * 342, True),
        ("\U0001f600" * 256, False),
        ("\U0001f600" * 256 + "a", True),
        ("\U0001f600" * 255 + "abcd", False),
        ("\U0001f600" * 255 + "abcde", True),
    ],
)
def test_key_length_limit_in_bytes(key: str, too_long: bool) -> None:
    headers = CIMultiDictProxy(CIMultiDict([("Host", "h")]))
    path = "/b/" + quote(key, safe="/")
    if too_long:
        with pytest.raises(S3Error) as caught:
            parse_request("GET", path, headers)
        assert caught.value.code == "KeyTooLongError"
    else:
        assert parse_request("GET", path, headers).key == key


# ---------------------------------------------------------------------------------------------
# Authorization header parsing

HEX_A = "a" * 64
HEX_B = "0123456789abcdefABCDEF" * 2 + "0123456789abcdefABCD"
CREDENTIAL = "AKID/20130524/us-east-1/s3/aws4_request"

auth_pieces = st.sampled_from(
    [
        "AWS4-HMAC-SHA256 ",
        "AWS4-HMAC-SHA256",
        " ",
        ", ",
        ",",
        "Credential=",
        CREDENTIAL,
        "SignedHeaders=",
        "host;x-amz-date",
        "host; x-amz-date",
        "Signature=",
        HEX_A,
        "=",
        "x",
        "\t",
    ]
)
heads = st.lists(auth_pieces, max_size=10).map("".join)


def _split_outcome(call: object, authorization: str) -> object:
    try:
        return ("ok", call(authorization))  # type: ignore[operator]
    except S3Error as error:
        return ("error", error.code, error.message)


def _check_split_twice(head: str, tail: str) -> None:
    """Parse `head + "Signature=" + HEX_A` (fills the cache), then the same head with
    another tail: the cached parse must give what the uncached one gives."""
    sigv4syntax._AUTH_HEAD_CACHE.clear()
    first = head + "Signature=" + HEX_A
    assert _split_outcome(sigv4syntax.split_header_auth, first) == _split_outcome(
        sigv4syntax._split_header_auth_uncached, first
    )
    second = head + "Signature=" + tail
    assert _split_outcome(sigv4syntax.split_header_auth, second) == _split_outcome(
        sigv4syntax._split_header_auth_uncached, second
    )


@given(heads, st.sampled_from([HEX_A, HEX_B, HEX_B + " ", " " + HEX_B, HEX_B[:63], "", "x,y"]))
@settings(max_examples=800)
def test_cached_authorization_head_equals_uncached_parse(head: str, tail: str) -> None:
    _check_split_twice(head, tail)


@pytest.mark.parametrize(
    "head",
    [
        f"AWS4-HMAC-SHA256 Credential={CREDENTIAL}, SignedHeaders=host;x-amz-date, ",
        f"AWS4-HMAC-SHA256 Credential={CREDENTIAL},SignedHeaders=host,",
        f"  AWS4-HMAC-SHA256 Credential={CREDENTIAL}, SignedHeaders=host,\t",
        # The last "Signature=" is not the Signature component: never served from the cache.
        f"AWS4-HMAC-SHA256 Credential={CREDENTIAL}, Signature={HEX_A}, SignedHeaders=host",
        f"AWS4-HMAC-SHA256 Credential={CREDENTIAL}, Signature={HEX_A}, SignedHeaders=host;x",
        f"AWS4-HMAC-SHA256 Credential={CREDENTIAL}, SignedHeaders=host, x",
        f"AWS4-HMAC-SHA256 Credential={CREDENTIAL}, SignedHeaders=host, Signature=, ",
        f"AWS4-HMAC-SHA256 Credential={CREDENTIAL}, Credential=x, SignedHeaders=host, ",
        f"AWS4-HMAC-SHA256 Credential={CREDENTIAL}, SignedHeaders=, ",
        f"AWS4-ECDSA-P256-SHA256 Credential={CREDENTIAL}, SignedHeaders=host, ",
    ],
)
@pytest.mark.parametrize("tail", [HEX_B, HEX_A, HEX_B + "\n", HEX_B.upper(), "z" * 64])
def test_cached_authorization_head_examples(head: str, tail: str) -> None:
    _check_split_twice(head, tail)


def test_misplaced_signature_is_not_cached() -> None:
    sigv4syntax._AUTH_HEAD_CACHE.clear()
    head = f"AWS4-HMAC-SHA256 Credential={CREDENTIAL}, Signature={HEX_A}, SignedHeaders=hSignature="
    _, signed, signature = sigv4syntax.split_header_auth(head + HEX_A)
    assert signed == (f"hSignature={HEX_A}",) and signature == HEX_A
    assert not sigv4syntax._AUTH_HEAD_CACHE
    assert sigv4syntax.split_header_auth(head + HEX_B) == (
        CREDENTIAL,
        (f"hSignature={HEX_B}",),
        HEX_A,
    )


def test_parse_caches_stay_bounded() -> None:
    for n in range(sigv4syntax._PARSE_CACHE_SIZE + 20):
        sigv4syntax.split_header_auth(
            f"AWS4-HMAC-SHA256 Credential=K{n}/20130524/r/s3/aws4_request, "
            f"SignedHeaders=host;x-{n}, Signature={HEX_A}"
        )
        sigv4syntax.parse_credential(
            f"K{n}/20130524/r/s3/aws4_request", "20130524T000000Z", presigned=True
        )
    assert len(sigv4syntax._AUTH_HEAD_CACHE) <= sigv4syntax._PARSE_CACHE_SIZE
    assert len(sigv4syntax._CREDENTIAL_CACHE) <= sigv4syntax._PARSE_CACHE_SIZE
    assert len(sigv4syntax._SIGNED_HEADERS_CACHE) <= sigv4syntax._PARSE_CACHE_SIZE


@pytest.mark.parametrize("presigned", [False, True])
def test_cached_credential_still_checks_the_date(presigned: bool) -> None:
    sigv4syntax._CREDENTIAL_CACHE.clear()
    parsed = sigv4syntax.parse_credential(CREDENTIAL, "20130524T000000Z", presigned=presigned)
    assert parsed == ("AKID", "20130524", "us-east-1", "s3")
    assert (
        sigv4syntax.parse_credential(CREDENTIAL, "20130524T235959Z", presigned=presigned) == parsed
    )
    for _ in range(2):
        with pytest.raises(S3Error) as caught:
            sigv4syntax.parse_credential(CREDENTIAL, "20130525T000000Z", presigned=presigned)
        with pytest.raises(S3Error) as uncached:
            sigv4syntax._parse_credential_uncached(
                CREDENTIAL, "20130525T000000Z", presigned=presigned
            )
        assert (caught.value.code, caught.value.message) == (
            uncached.value.code,
            uncached.value.message,
        )


def test_cached_signed_headers_error_kind_follows_the_caller() -> None:
    sigv4syntax._SIGNED_HEADERS_CACHE.clear()
    assert sigv4syntax.parse_signed_headers("host;x", presigned=True) == ("host", "x")
    assert sigv4syntax.parse_signed_headers("host;x", presigned=False) == ("host", "x")
    for presigned, code in (
        (True, "AuthorizationQueryParametersError"),
        (False, "AuthorizationHeaderMalformed"),
    ):
        with pytest.raises(S3Error) as caught:
            sigv4syntax.parse_signed_headers("host;;x", presigned=presigned)
        assert caught.value.code == code


def test_new_auth_equals_the_dataclass() -> None:
    values = (
        "AKID",
        "20130524",
        "us-east-1",
        "s3",
        ("host", "x-amz-date"),
        HEX_A,
        "20130524T000000Z",
        sigv4.UNSIGNED_PAYLOAD,
        True,
        3600,
        "token",
    )
    assert len(values) == len(dataclasses.fields(SigV4Auth))
    fast = sigv4._new_auth(*values)
    slow = SigV4Auth(*values)
    assert type(fast) is SigV4Auth
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.signature = "x"  # type: ignore[misc]
    with pytest.raises(ValueError):  # a field added to SigV4Auth must be passed here too
        sigv4._new_auth(*values[:-1])
