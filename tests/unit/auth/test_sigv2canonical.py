"""What a SigV2 signature signs: the signed resource, the string to sign and its readings."""

from __future__ import annotations

from s3router_proxy.auth.sigv2canonical import (
    SUBRESOURCES,
    candidates_v2,
    query_values,
    string_to_sign_v2,
)
from s3router_proxy.s3 import operationtable

from .test_sigv2 import BOTOCORE_SIGNED, DOMAINS, ENDPOINT, _signed, make_request, parsed


def test_every_botocore_subresource_is_signed() -> None:
    assert set(BOTOCORE_SIGNED) <= SUBRESOURCES


def test_every_operation_selector_is_signed() -> None:
    """An unsigned selector would let a GetObject signature drive GetObjectAttributes, a
    CreateBucket signature drive PutPublicAccessBlock, and so on. `list-type` only picks
    between two listings, and botocore does not sign it."""
    selectors = {sub for _, _, sub, _ in operationtable.ROWS if sub}
    assert selectors - {"list-type"} <= SUBRESOURCES
    assert "list-type" not in SUBRESOURCES


def test_subresources_are_sorted_decoded_and_keep_their_form() -> None:
    request = _signed("GET", "/b/k?versionId=a%2Fb%20c&acl=&prefix=p&uploads", "")
    assert string_to_sign_v2(request, parsed(request)) == (
        "GET\n\n\n\n/b/k?acl=&uploads&versionId=a/b c"
    )


def test_string_to_sign_hides_the_session_token_only_when_asked() -> None:
    request = make_request(
        "GET",
        "/b/k",
        [
            ("Host", ENDPOINT),
            ("Date", "D"),
            ("x-amz-security-token", "tok"),
            ("Authorization", "AWS A:s"),
        ],
        base_domains=DOMAINS,
    )
    auth = parsed(request)
    assert string_to_sign_v2(request, auth) == "GET\n\n\nD\nx-amz-security-token:tok\n/b/k"
    assert string_to_sign_v2(request, auth, redact=True) == (
        "GET\n\n\nD\nx-amz-security-token:<redacted>\n/b/k"
    )


def test_candidates_are_the_aws_reading_first_then_what_botocore_and_minio_sign() -> None:
    headers = [("Host", ENDPOINT), ("Date", "D"), ("x-amz-date", "X"), ("Authorization", "AWS A:s")]
    request = make_request("GET", "/b", headers, base_domains=DOMAINS)
    auth = parsed(request)
    candidates = list(candidates_v2(request, auth))
    assert candidates[0] == string_to_sign_v2(request, auth)
    assert candidates == [
        "GET\n\n\n\nx-amz-date:X\n/b",
        "GET\n\n\nD\nx-amz-date:X\n/b",
        "GET\n\n\n\nx-amz-date:X\n/b/",
        "GET\n\n\nD\nx-amz-date:X\n/b/",
    ]
    key_request = make_request("GET", "/b/k", headers[:2] + headers[3:], base_domains=DOMAINS)
    assert list(candidates_v2(key_request, parsed(key_request))) == ["GET\n\n\nD\n/b/k"]


def test_query_values_group_repeats_by_lower_case_name() -> None:
    request = make_request(
        "GET", "/b/k?X-Amz-Meta-A=1&x-amz-meta-a=2&acl", [("Host", ENDPOINT)], base_domains=DOMAINS
    )
    assert query_values(request) == {"x-amz-meta-a": ["1", "2"], "acl": [""]}
