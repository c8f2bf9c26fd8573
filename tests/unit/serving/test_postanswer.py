"""A form's fields as PutObject headers, and S3's answers to a stored form upload."""

from __future__ import annotations

from xml.etree import ElementTree

import pytest
from multidict import CIMultiDict

from s3router_proxy.s3.errors import S3Error
from s3router_proxy.serving.postanswer import object_url, post_answer, put_headers

STORED = CIMultiDict({"ETag": '"abc"', "x-amz-version-id": "v1", "x-amz-request-id": "B"})
URL = "http://proxy/b/k%20x"


def test_fields_that_become_headers() -> None:
    fields = {
        "key": "k",
        "policy": "p",
        "content-type": "text/plain",
        "x-amz-meta-a": "1",
        "acl": "public-read",
        "tagging": "<Tagging><TagSet><Tag><Key>a b</Key><Value>c&amp;d</Value></Tag>"
        "<Tag><Key>e</Key><Value></Value></Tag></TagSet></Tagging>",
        "x-amz-checksum-crc32": "AAAAAA==",
        "success_action_status": "201",
        "x-ignore-x": "y",
    }
    assert put_headers(fields) == {
        "content-type": "text/plain",
        "x-amz-meta-a": "1",
        "x-amz-acl": "public-read",
        "x-amz-tagging": "a%20b=c%26d&e=",
        "x-amz-checksum-crc32": "AAAAAA==",
    }


@pytest.mark.parametrize("value", ["a\r\nx-amz-acl: public-read", "é", "\x00"])
def test_values_no_header_can_carry(value: str) -> None:
    with pytest.raises(S3Error) as caught:
        put_headers({"x-amz-meta-a": value})
    assert caught.value.code == "InvalidArgument"


def test_answers() -> None:
    names = ("b", "k x")
    default = post_answer({}, STORED, URL, names)
    assert (default.status, default.body) == (204, None)
    assert default.headers["ETag"] == '"abc"'
    assert default.headers["Location"] == URL
    assert default.headers["x-amz-version-id"] == "v1"
    assert "x-amz-request-id" not in default.headers
    assert post_answer({"success_action_status": "200"}, STORED, URL, names).status == 200
    assert post_answer({"success_action_status": "404"}, STORED, URL, names).status == 204
    created = post_answer({"success_action_status": "201"}, STORED, URL, names)
    assert created.status == 201
    document = ElementTree.fromstring(created.body or b"")
    assert [(e.tag, e.text) for e in document] == [
        ("Location", URL),
        ("Bucket", "b"),
        ("Key", "k x"),
        ("ETag", '"abc"'),
    ]


@pytest.mark.parametrize(
    ("redirect", "location"),
    [
        ("https://site/done", "https://site/done?bucket=b&key=k%20x&etag=%22abc%22"),
        ("http://site/d?a=1", "http://site/d?a=1&bucket=b&key=k%20x&etag=%22abc%22"),
    ],
)
def test_redirects(redirect: str, location: str) -> None:
    for field in ("success_action_redirect", "redirect"):
        answer = post_answer({field: redirect}, STORED, URL, ("b", "k x"))
        assert (answer.status, answer.headers["Location"]) == (303, location)


def test_a_redirect_that_is_not_a_web_address_is_ignored() -> None:
    answer = post_answer(
        {"success_action_redirect": "javascript:alert(1)"}, STORED, URL, ("b", "k")
    )
    assert (answer.status, answer.headers["Location"]) == (204, URL)


def test_object_urls() -> None:
    assert object_url("http", "h:1", "b", "a b/c", virtual=False) == "http://h:1/b/a%20b/c"
    assert object_url("https", "b.s3.test", "b", "k", virtual=True) == "https://b.s3.test/k"
