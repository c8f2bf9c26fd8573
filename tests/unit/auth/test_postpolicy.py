"""A form's policy: its signature (botocore's presigned POST as the reference) and conditions."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import boto3
import pytest
from botocore.config import Config

from s3router_proxy.auth.postpolicy import (
    check_policy,
    parse_policy,
    post_signer,
    verify_post_signature,
)
from s3router_proxy.s3.errors import S3Error

KEY, SECRET = "AKIDPOLICY", "policy-secret"
NOW = time.time()


def presigned_fields(version: str, **options: Any) -> dict[str, str]:
    client = boto3.session.Session(
        aws_access_key_id=KEY, aws_secret_access_key=SECRET, region_name="eu-west-1"
    ).client("s3", endpoint_url="http://localhost", config=Config(signature_version=version))
    form = client.generate_presigned_post(Bucket="bkt", Key="k/${filename}", **options)
    return {name.lower(): value for name, value in form["fields"].items()}


@pytest.mark.parametrize("version", ["s3v4", "s3"])
def test_botocore_forms_verify(version: str) -> None:
    fields = presigned_fields(version, Conditions=[["starts-with", "$key", "k/"]])
    signer = post_signer(fields)
    assert signer is not None
    assert signer.access_key_id == KEY
    assert signer.version == (4 if version == "s3v4" else 2)
    verify_post_signature(signer, fields["policy"], SECRET)
    with pytest.raises(S3Error) as caught:
        verify_post_signature(signer, fields["policy"], "another secret")
    assert caught.value.code == "SignatureDoesNotMatch"
    assert "another secret" not in caught.value.message
    tampered = base64.b64encode(base64.b64decode(fields["policy"]) + b" ").decode()
    with pytest.raises(S3Error):
        verify_post_signature(signer, tampered, SECRET)
    fields["key"] = "k/a.txt"
    check_policy(parse_policy(fields["policy"]), fields, "bkt", 10, NOW)


def test_a_form_without_policy_is_anonymous_unless_it_signs() -> None:
    assert post_signer({"key": "k"}) is None
    with pytest.raises(S3Error) as caught:
        post_signer({"key": "k", "awsaccesskeyid": KEY, "signature": "x"})
    assert caught.value.code == "InvalidArgument"


@pytest.mark.parametrize(
    "change",
    [
        {"x-amz-algorithm": "AWS4-ECDSA-P256-SHA256"},
        {"x-amz-credential": "AKID/20260101/eu-west-1/s3"},
        {"x-amz-credential": "AKID/20260101/eu-west-1/iam/aws4_request"},
        {"x-amz-date": "2026-01-01"},
    ],
)
def test_malformed_sigv4_fields(change: dict[str, str]) -> None:
    fields = {**presigned_fields("s3v4"), **change}
    with pytest.raises(S3Error) as caught:
        post_signer(fields)
    assert caught.value.code == "InvalidArgument"


def policy(conditions: list[Any], expiration: str = "2099-01-01T00:00:00Z") -> str:
    document = {"expiration": expiration, "conditions": conditions}
    return base64.b64encode(json.dumps(document).encode()).decode()


BASE = [{"bucket": "bkt"}, ["starts-with", "$key", "up/"]]


def check(conditions: list[Any], fields: dict[str, str], size: int = 5, **kw: Any) -> None:
    text = policy(conditions, **kw)
    check_policy(parse_policy(text), {"policy": text, **fields}, "bkt", size, NOW)


def refusal(conditions: list[Any], fields: dict[str, str], size: int = 5, **kw: Any) -> S3Error:
    with pytest.raises(S3Error) as caught:
        check(conditions, fields, size, **kw)
    return caught.value


def test_conditions_that_hold() -> None:
    check(BASE, {"key": "up/a"})
    check(
        [*BASE, ["StArTs-WiTh", "$Content-Type", "image/"]],
        {"key": "up/a", "content-type": "image/png, image/gif"},
    )
    check([*BASE, ["starts-with", "$x-amz-meta-tag", ""]], {"key": "up/a", "x-amz-meta-tag": "x"})
    check([*BASE, ["eq", "$acl", "private"]], {"key": "up/a", "acl": "private"})
    check([*BASE, ["content-length-range", 5, 5]], {"key": "up/a", "x-ignore-me": "1"})
    check(BASE, {"key": "up/a", "x-amz-checksum-sha256": "abc"})


@pytest.mark.parametrize(
    ("conditions", "fields", "message"),
    [
        (BASE, {"key": "down/a"}, 'Policy Condition failed: ["starts-with", "$key", "up/"]'),
        ([["starts-with", "$key", ""]], {"key": "a"}, "Extra input fields: bucket"),
        (BASE, {"key": "up/a", "acl": "public-read"}, "Extra input fields: acl"),
        ([*BASE, {"acl": "private"}], {"key": "up/a", "acl": "public-read"}, "Condition failed"),
        ([*BASE, ["eq", "$x-amz-meta-a", "b"]], {"key": "up/a"}, "Condition failed"),
        (
            [*BASE, ["starts-with", "$content-type", "image/"]],
            {"key": "up/a", "content-type": "image/png,text/html"},
            "Condition failed",
        ),
        ([{"bucket": "other"}, ["starts-with", "$key", ""]], {"key": "a"}, "Condition failed"),
        (BASE, {"key": "up/a", "bucket": "other"}, "Condition failed"),
    ],
)
def test_conditions_that_fail(conditions: list[Any], fields: dict[str, str], message: str) -> None:
    error = refusal(conditions, fields)
    assert (error.code, error.status) == ("AccessDenied", 403)
    assert error.message.startswith("Invalid according to Policy: ")
    assert message in error.message


def test_expired() -> None:
    error = refusal(BASE, {"key": "up/a"}, expiration="2001-01-01T00:00:00.000Z")
    assert error.message == "Invalid according to Policy: Policy expired."


@pytest.mark.parametrize(("size", "code"), [(11, "EntityTooLarge"), (1, "EntityTooSmall")])
def test_content_length_range(size: int, code: str) -> None:
    error = refusal([*BASE, ["content-length-range", 2, 10]], {"key": "up/a"}, size)
    assert (error.code, error.status) == (code, 400)


@pytest.mark.parametrize(
    "document",
    [
        "not base64!",
        base64.b64encode(b"not json").decode(),
        base64.b64encode(b"[]").decode(),
        base64.b64encode(b'{"conditions": [["eq", "$key", "a"]]}').decode(),
        base64.b64encode(b'{"EXPIRATION": "2099-01-01T00:00:00Z", "conditions": [1]}').decode(),
        base64.b64encode(b'{"expiration": "2099-01-01T00:00:00Z", "CONDITIONS": [1]}').decode(),
        base64.b64encode(b'{"expiration": "2099-01-01T00:00:00Z", "conditions": []}').decode(),
        base64.b64encode(b'{"expiration": "2099-01-01 00:00:00", "conditions": [1]}').decode(),
        base64.b64encode(b'{"expiration": "tomorrow", "conditions": [1]}').decode(),
    ],
)
def test_invalid_documents(document: str) -> None:
    with pytest.raises(S3Error) as caught:
        parse_policy(document)
    assert (caught.value.code, caught.value.status) == ("InvalidPolicyDocument", 400)


@pytest.mark.parametrize(
    "condition",
    [
        ["content-length-range", 0],
        ["content-length-range", -1, 10],
        ["content-length-range", 10, 1],
        ["content-length-range", "0", "10"],
        ["in", "$key", "a"],
        ["eq", "key", "a"],
        {"a": "b", "c": "d"},
        "key",
    ],
)
def test_invalid_conditions(condition: Any) -> None:
    error = refusal([*BASE, condition], {"key": "up/a"})
    assert (error.code, error.status) == ("InvalidPolicyDocument", 400)
