"""The syntax of SigV4's fields: each refusal with the code S3 gives for where the field was."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from s3router_proxy.auth.sigv4syntax import (
    check_signature_syntax,
    header_amz_date,
    malformed,
    parse_credential,
    parse_signed_headers,
    split_header_auth,
)
from s3router_proxy.s3.errors import S3Error

HEX = "a" * 64
WHERE = {True: "AuthorizationQueryParametersError", False: "AuthorizationHeaderMalformed"}


def headers(*items: tuple[str, str]) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(items))


def code_of(call: object, *args: object, **kwargs: object) -> str:
    with pytest.raises(S3Error) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    return caught.value.code


@pytest.mark.parametrize("presigned", [True, False])
def test_malformed_names_where_the_field_was(presigned: bool) -> None:
    error = malformed("why", presigned=presigned)
    assert (error.code, error.status, error.message) == (WHERE[presigned], 400, "why")


@pytest.mark.parametrize("presigned", [True, False])
def test_parse_credential(presigned: bool) -> None:
    parsed = parse_credential(
        "AK/ID/20130524/eu-west-1/s3/aws4_request", "20130524T1", presigned=presigned
    )
    assert parsed == ("AK/ID", "20130524", "eu-west-1", "s3")
    for bad in (
        "AK/20130524/eu-west-1/s3/aws4",  # not aws4_request
        "AK/20130524/eu-west-1/s3",  # too few parts
        "/20130524/eu-west-1/s3/aws4_request",  # empty key id
        "AK/20130525/eu-west-1/s3/aws4_request",  # another day than the request's
        "AK/20130524/eu-west-1/sqs/aws4_request",  # another service
    ):
        assert (
            code_of(parse_credential, bad, "20130524T000000Z", presigned=presigned)
            == (WHERE[presigned])
        )


def test_parse_signed_headers() -> None:
    assert parse_signed_headers("host;x-amz-date", presigned=False) == ("host", "x-amz-date")
    for bad in ("", "host;", ";host", "host; x-amz-date", "host;;x"):
        assert code_of(parse_signed_headers, bad, presigned=True) == WHERE[True]


def test_check_signature_syntax() -> None:
    check_signature_syntax(HEX.upper(), presigned=False)
    for bad in ("", "a" * 63, "a" * 65, "g" * 64, "\u0661" * 64):
        assert code_of(check_signature_syntax, bad, presigned=False) == WHERE[False]


def test_header_amz_date_prefers_x_amz_date_then_date() -> None:
    assert header_amz_date(headers(("x-amz-date", "20150830T123600Z"))) == "20150830T123600Z"
    both = headers(("Date", "Mon, 01 Jan 2001 00:00:00 GMT"), ("x-amz-date", "20150830T123600Z"))
    assert header_amz_date(both) == "20150830T123600Z"
    assert header_amz_date(headers(("Date", "Sun, 30 Aug 2015 12:36:00 GMT"))) == (
        "20150830T123600Z"
    )
    for bad in (
        headers(),
        headers(("x-amz-date", "Sun, 30 Aug 2015 12:36:00 GMT")),  # x-amz-date wins, and is bad
        headers(("Date", "not a date")),
    ):
        assert code_of(header_amz_date, bad) == "AccessDenied"


def test_split_header_auth() -> None:
    value = f"AWS4-HMAC-SHA256 Credential=AK/x, SignedHeaders=host;x-amz-date, Signature={HEX}"
    assert split_header_auth(value) == ("AK/x", ("host", "x-amz-date"), HEX)
    assert code_of(split_header_auth, "AWS AK:sig") == "NotImplemented"
    assert code_of(split_header_auth, "Bearer token") == "InvalidRequest"
    for bad in (
        "AWS4-HMAC-SHA256 Credential=AK/x, SignedHeaders=host",
        f"AWS4-HMAC-SHA256 Credential=AK/x, Credential=AK/y, Signature={HEX}",
        f"AWS4-HMAC-SHA256 Credential=AK/x, SignedHeaders=host, Signature={HEX}, Extra=1",
        "AWS4-HMAC-SHA256 Credential=AK/x, SignedHeaders=host, Signature=short",
    ):
        assert code_of(split_header_auth, bad) == WHERE[False]
