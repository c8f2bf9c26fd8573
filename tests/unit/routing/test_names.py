"""Name mapping both ways: keys, listing parameters, copy sources, DeleteObjects bodies."""

from __future__ import annotations

import base64
import hashlib
import zlib

import botocore.session
import pytest
from botocore import handlers
from botocore.parsers import RestXMLParser
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from s3router_proxy.routing.names import (
    NameMapping,
    format_copy_source,
    join_prefix,
    map_copy_source,
    map_list_query,
    parse_copy_source,
)
from s3router_proxy.s3.deleteobjects import (
    delete_objects_keys,
    group_delete_objects,
    merge_delete_results,
    rewrite_delete_objects,
)
from s3router_proxy.s3.errors import S3Error

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
TEAM2 = NameMapping("example-bucket", "minio-bucket", "team2/", "data/team2/")


def xml(body: bytes) -> etree._Element:
    return etree.fromstring(body)


def texts(body: bytes, path: str) -> list[str]:
    return [e.text or "" for e in xml(body).iter(NS + path)]


def botocore_parse(operation: str, body: bytes, *, auto_encoding: bool = False) -> dict:
    model = botocore.session.get_session().get_service_model("s3")
    op = model.operation_model(operation)
    parsed = RestXMLParser().parse(
        {"body": body, "headers": {}, "status_code": 200}, op.output_shape
    )
    decode = {
        "ListObjects": handlers.decode_list_object,
        "ListObjectsV2": handlers.decode_list_object_v2,
        "ListObjectVersions": handlers.decode_list_object_versions,
    }.get(operation)
    if decode is not None:
        decode(parsed, context={"encoding_type_auto_set": auto_encoding})
    return parsed


# -- the mapping ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("literal", "mapped", "prefix"),
    [
        ("team2/", "data/team2", "data/team2/"),
        ("team2/", "data/team2/", "data/team2/"),
        ("team2/", "", ""),
        ("team2/", None, "team2/"),
        ("", "main", "main/"),
        ("", None, ""),
        ("", "", ""),
        ("logs-", "old-", "old-"),
        ("logs-", "old", "old"),
    ],
)
def test_join_prefix(literal: str, mapped: str | None, prefix: str) -> None:
    assert join_prefix(literal, mapped) == prefix


def test_key_mapping_both_ways() -> None:
    assert TEAM2.to_backend_key("team2/obj2") == "data/team2/obj2"
    assert TEAM2.to_client_key("data/team2/obj2") == "team2/obj2"
    assert TEAM2.to_client_key("data/other") is None
    # A bucket mapped into `data/` of another: `data/` itself would be the empty client key.
    assert NameMapping("lb", "store", "", "data/").to_client_key("data/") is None
    assert TEAM2.to_backend_key("") == ""
    with pytest.raises(ValueError):
        TEAM2.to_backend_key("team1/x")
    assert not TEAM2.is_identity and TEAM2.renames_keys
    assert NameMapping.identity("b").is_identity


@given(
    c=st.text(max_size=4),
    p=st.text(max_size=4),
    keys=st.lists(st.text(min_size=1, max_size=6), min_size=2, max_size=2),
)
def test_mapping_is_an_order_preserving_bijection(c: str, p: str, keys: list[str]) -> None:
    mapping = NameMapping("a", "b", c, p)
    a, b = (c + k for k in keys)
    ma, mb = mapping.to_backend_key(a), mapping.to_backend_key(b)
    assert mapping.to_client_key(ma) == a and mapping.to_client_key(mb) == b
    assert (a < b) == (ma < mb)


@given(c=st.text(alphabet="ab/", max_size=3), after=st.text(alphabet="ab/", max_size=5))
def test_backend_position_preserves_order(c: str, after: str) -> None:
    mapping = NameMapping("a", "b", c, "P/")
    where, backend = mapping.to_backend_position(after)
    for rest in ("", "a", "b/", "ab", "/b"):
        key = c + rest
        if where == "start":
            assert key > after or not after
        elif where == "end":
            assert key < after
        else:
            assert backend is not None
            assert (key > after) == (mapping.to_backend_key(key) > backend)


# -- listing parameters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "backend", "collapse"),
    [
        (
            [("list-type", "2"), ("prefix", "team2/a")],
            [("list-type", "2"), ("prefix", "data/team2/a")],
            None,
        ),
        ([("prefix", "team2/")], [("prefix", "data/team2/")], None),
        ([("prefix", "te")], [("prefix", "data/team2/")], None),  # shorter: the rule's P
        ([], [("prefix", "data/team2/")], None),
        (
            [("prefix", ""), ("delimiter", "/")],
            [("prefix", "data/team2/"), ("delimiter", "/")],
            "team2/",
        ),
        (
            [("prefix", "t"), ("delimiter", "m")],
            [("prefix", "data/team2/"), ("delimiter", "m")],
            "team",
        ),
        ([("prefix", "team1/")], None, None),  # elsewhere: empty answer
        (
            [("prefix", "team2/"), ("marker", "team2/b")],
            [("prefix", "data/team2/"), ("marker", "data/team2/b")],
            None,
        ),
        ([("start-after", "a")], [("prefix", "data/team2/")], None),  # below the rule: dropped
        ([("start-after", "zzz")], None, None),  # above the rule: empty
        (
            [("key-marker", "a"), ("version-id-marker", "v1"), ("max-keys", "3")],
            [("max-keys", "3"), ("prefix", "data/team2/")],
            None,
        ),
        (
            [("key-marker", "team2/x"), ("upload-id-marker", "u"), ("encoding-type", "url")],
            [
                ("key-marker", "data/team2/x"),
                ("upload-id-marker", "u"),
                ("encoding-type", "url"),
                ("prefix", "data/team2/"),
            ],
            None,
        ),
        ([("delimiter", "/"), ("marker", "team2/")], None, "team2/"),  # at/after the collapse
    ],
)
def test_map_list_query(
    query: list[tuple[str, str]], backend: list[tuple[str, str]] | None, collapse: str | None
) -> None:
    mapped = map_list_query(query, TEAM2)
    assert mapped.query == backend
    assert mapped.collapse == (collapse if backend is not None else None)


def test_map_list_query_identity_keeps_everything() -> None:
    query = [("prefix", "a"), ("delimiter", "/"), ("continuation-token", "t")]
    assert map_list_query(query, NameMapping.identity("b")).query == query


# -- x-amz-copy-source ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "bucket", "key", "version"),
    [
        ("src/a/b.txt", "src", "a/b.txt", None),
        ("/src/a/b.txt", "src", "a/b.txt", None),
        ("src/a%20b%2Bc+d", "src", "a b+c+d", None),
        ("src/k?versionId=abc", "src", "k", "abc"),
        ("src/we%3FversionId%3Dx?versionId=v", "src", "we?versionId=x", "v"),
        ("src/%E2%82%AC", "src", "€", None),
    ],
)
def test_parse_copy_source(value: str, bucket: str, key: str, version: str | None) -> None:
    source = parse_copy_source(value)
    assert (source.bucket, source.key, source.version_id) == (bucket, key, version)


@pytest.mark.parametrize("value", ["src", "src/", "/", "%ff/x"])
def test_parse_copy_source_rejects(value: str) -> None:
    with pytest.raises(S3Error) as caught:
        parse_copy_source(value)
    assert caught.value.code == "InvalidArgument"


def test_copy_source_arn_not_implemented() -> None:
    with pytest.raises(S3Error) as caught:
        parse_copy_source("arn:aws:s3:us-east-1:1:accesspoint/ap/object/k")
    assert caught.value.code == "NotImplemented"


def test_copy_source_round_trip_like_botocore() -> None:
    assert format_copy_source("b", "a b/€~+", "v1") == "b/a%20b/%E2%82%AC~%2B?versionId=v1"
    assert map_copy_source("/example-bucket/team2/x%20y", TEAM2) == "minio-bucket/data/team2/x%20y"
    with pytest.raises(ValueError):
        map_copy_source("other/team2/x", TEAM2)


# -- DeleteObjects --------------------------------------------------------------------------------

DELETE = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet>'
    b"<Object><Key>team2/a</Key></Object>"
    b"<Object><Key>team1/b</Key><VersionId>v2</VersionId></Object>"
    b"<Object><Key>team2/c &amp; d</Key></Object></Delete>"
)


def test_delete_objects_keys_and_rewrite() -> None:
    assert delete_objects_keys(DELETE) == ["team2/a", "team1/b", "team2/c & d"]
    body = rewrite_delete_objects(DELETE, lambda k: "p/" + k)
    assert texts(body, "Key") == ["p/team2/a", "p/team1/b", "p/team2/c & d"]
    assert texts(body, "VersionId") == ["v2"] and texts(body, "Quiet") == ["true"]


def test_group_delete_objects_by_route() -> None:
    def target(key: str) -> tuple[str, str]:
        return ("minio", TEAM2.to_backend_key(key)) if key.startswith("team2/") else ("dflt", key)

    groups = group_delete_objects(DELETE, target)
    assert texts(groups["minio"], "Key") == ["data/team2/a", "data/team2/c & d"]
    assert texts(groups["dflt"], "Key") == ["team1/b"]
    assert texts(groups["dflt"], "VersionId") == ["v2"]
    assert all(texts(body, "Quiet") == ["true"] for body in groups.values())


def test_merge_delete_results_maps_back() -> None:
    minio = (
        b'<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<Deleted><Key>data/team2/a</Key></Deleted>"
        b"<Error><Key>data/team2/c</Key><Code>AccessDenied</Code><Message>no</Message></Error>"
        b"</DeleteResult>"
    )
    dflt = (
        b"<DeleteResult><Deleted><Key>team1/b</Key><VersionId>v2</VersionId></Deleted>"
        b"</DeleteResult>"
    )
    merged = merge_delete_results([(minio, TEAM2), (dflt, NameMapping.identity("example-bucket"))])
    parsed = botocore_parse("DeleteObjects", merged)
    assert [d["Key"] for d in parsed["Deleted"]] == ["team2/a", "team1/b"]
    assert parsed["Errors"][0]["Key"] == "team2/c"
    with pytest.raises(S3Error) as caught:
        merge_delete_results([(b"<Error><Code>SlowDown</Code></Error>", TEAM2)])
    assert caught.value.code == "SlowDown"


def test_delete_body_limits() -> None:
    with pytest.raises(S3Error) as caught:
        delete_objects_keys(b"<Delete>" + b"<Object><Key>k</Key></Object>" * 300_000 + b"</Delete>")
    assert caught.value.code == "MalformedXML"
    with pytest.raises(S3Error) as caught:
        delete_objects_keys(b"<Delete><Object>")
    assert caught.value.code == "MalformedXML"
    evil = b'<!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/passwd">]><Delete><Object><Key>&e;</Key></Object></Delete>'
    with pytest.raises(S3Error) as caught:  # never resolved: a DTD is refused outright
        delete_objects_keys(evil)
    assert caught.value.code == "MalformedXML"


def test_body_integrity_headers() -> None:
    from s3router_proxy.s3.checksums import body_integrity_headers

    body = b"<Delete><Object><Key>x</Key></Object></Delete>"
    headers = {
        "Content-MD5": "old",
        "x-amz-checksum-crc32": "old",
        "x-amz-checksum-sha256": "old",
        "x-amz-checksum-crc32c": "old",
        "x-amz-checksum-type": "FULL_OBJECT",
        "x-amz-sdk-checksum-algorithm": "CRC32",
    }
    out = body_integrity_headers(body, headers)
    assert out["content-md5"] == base64.b64encode(hashlib.md5(body).digest()).decode()
    assert (
        out["x-amz-checksum-crc32"]
        == base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
    )
    assert out["x-amz-checksum-sha256"] == base64.b64encode(hashlib.sha256(body).digest()).decode()
    from awscrt import checksums as crt

    crc32c = crt.crc32c(body, 0).to_bytes(4, "big")
    assert out["x-amz-checksum-crc32c"] == base64.b64encode(crc32c).decode()
    assert set(out) == {
        "content-md5",
        "x-amz-checksum-crc32",
        "x-amz-checksum-sha256",
        "x-amz-checksum-crc32c",
    }
    assert body_integrity_headers(body, {"content-type": "application/xml"}) == {}
