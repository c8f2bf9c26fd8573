"""Signing toward backends: the published S3 and AWS-suite vectors, botocore as the reference."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import datetime
from urllib.parse import quote

import pytest
from botocore.auth import S3SigV4Auth
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s3router_proxy.auth.canonical import canonical_query_string
from s3router_proxy.auth.signer import Credentials, OutgoingRequest, sign_request
from s3router_proxy.auth.sigv4 import EMPTY_SHA256, UNSIGNED_PAYLOAD
from s3router_proxy.s3.request import parse_query

from .test_sigv4 import (
    AKID,
    DOC_AKID,
    DOC_DATE,
    DOC_HEADER_CASES,
    DOC_SECRET,
    SUITE_DATE,
    SUITE_SECRET,
    authorization,
    botocore_sign,
    extra_headers,
    moments,
    object_keys,
    query_names,
    query_text,
    regions,
    secrets_,
    tokens,
)


@pytest.mark.parametrize(
    ("method", "path", "query", "headers", "payload", "expected"), DOC_HEADER_CASES
)
def test_doc_example_signs_exactly(
    method: str, path: str, query: str, headers: dict[str, str], payload: str, expected: str
) -> None:
    items = parse_query(query)
    added = sign_request(
        OutgoingRequest(method, path, canonical_query_string(items), headers, payload),
        Credentials(DOC_AKID, DOC_SECRET),
        region="us-east-1",
        amz_date=DOC_DATE,
    )
    assert added["x-amz-date"] == DOC_DATE
    assert added["x-amz-content-sha256"] == payload
    signed = ";".join(sorted([*headers, "x-amz-content-sha256", "x-amz-date"]))
    assert added["authorization"] == authorization(signed, expected)


def test_aws_suite_post_form_signs_exactly() -> None:
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "host": "example.amazonaws.com",
        "content-length": "13",
    }
    payload = hashlib.sha256(b"Param1=value1").hexdigest()
    added = sign_request(
        OutgoingRequest("POST", "/", "", headers, payload),
        Credentials("AKIDEXAMPLE", SUITE_SECRET),
        region="us-east-1",
        amz_date=SUITE_DATE,
        service="service",
    )
    assert added["authorization"] == authorization(
        "content-length;content-type;host;x-amz-content-sha256;x-amz-date",
        "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b",
        scope="AKIDEXAMPLE/20150830/us-east-1/service/aws4_request",
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=st.sampled_from(["GET", "PUT", "POST", "DELETE", "HEAD"]),
    bucket=st.from_regex(r"[a-z0-9][a-z0-9.-]{1,20}[a-z0-9]", fullmatch=True),
    key=object_keys,
    query=st.lists(st.tuples(query_names, query_text), max_size=5),
    params_mode=st.booleans(),
    headers=extra_headers,
    body=st.binary(max_size=64),
    unsigned_payload=st.booleans(),
    secret=secrets_,
    token=tokens,
    region=regions,
    when=moments,
)
def test_sign_request_equals_botocore(
    method: str,
    bucket: str,
    key: str,
    query: list[tuple[str, str]],
    params_mode: bool,
    headers: dict[str, str],
    body: bytes,
    unsigned_payload: bool,
    secret: str,
    token: str | None,
    region: str,
    when: datetime,
) -> None:
    host = "s3.example.com:9000"
    path = "/" + bucket + "/" + quote(key, safe="/~")
    canonical_query = canonical_query_string(query)
    url = f"http://{host}{path}" + ("" if params_mode or not query else "?" + canonical_query)
    reference = botocore_sign(
        S3SigV4Auth,
        method,
        url,
        {"Host": host, **headers},
        body,
        secret,
        token,
        region,
        when,
        params=query if params_mode else None,
        unsigned_payload=unsigned_payload,
    )
    payload = UNSIGNED_PAYLOAD if unsigned_payload else hashlib.sha256(body).hexdigest()
    added = sign_request(
        OutgoingRequest(method, path, canonical_query, {"host": host, **headers}, payload),
        Credentials(AKID, secret, token),
        region=region,
        amz_date=when.strftime("%Y%m%dT%H%M%SZ"),
    )
    assert added["authorization"] == reference.headers["Authorization"]
    assert added["x-amz-date"] == reference.headers["X-Amz-Date"]
    assert added["x-amz-content-sha256"] == reference.headers["X-Amz-Content-SHA256"]
    assert added.get("x-amz-security-token") == reference.headers.get("X-Amz-Security-Token")


def test_mixed_case_header_names_are_signed_lower_case() -> None:
    request = OutgoingRequest("GET", "/b/k", "", {"host": "h", "x-amz-meta-a": "1"}, EMPTY_SHA256)
    mixed = dataclasses.replace(request, headers={"Host": "h", "X-Amz-Meta-A": "1"})
    credentials = Credentials("AK", "S")
    assert sign_request(mixed, credentials, region="r", amz_date=DOC_DATE) == sign_request(
        request, credentials, region="r", amz_date=DOC_DATE
    )


def test_an_empty_session_token_is_neither_sent_nor_signed() -> None:
    request = OutgoingRequest("GET", "/b/k", "", {"host": "h"}, EMPTY_SHA256)
    added = sign_request(request, Credentials("AK", "S", ""), region="r", amz_date=DOC_DATE)
    assert "x-amz-security-token" not in added
    assert added == sign_request(request, Credentials("AK", "S"), region="r", amz_date=DOC_DATE)


def test_credentials_and_requests_are_frozen_and_keep_secrets_out_of_repr() -> None:
    credentials = Credentials("AKID", "the-secret", "the-token")
    assert "the-secret" not in repr(credentials) and "the-token" not in repr(credentials)
    with pytest.raises(dataclasses.FrozenInstanceError):
        credentials.access_key_id = "other"  # type: ignore[misc]
    request = OutgoingRequest("GET", "/", "", {"host": "h"}, EMPTY_SHA256)
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.method = "PUT"  # type: ignore[misc]
