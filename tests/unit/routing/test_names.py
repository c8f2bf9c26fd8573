"""Name mapping both ways: keys, listing parameters, copy sources, DeleteObjects, S3 documents."""

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

from s3router_proxy.routing.location import client_location, rewrite_location_header
from s3router_proxy.routing.names import (
    NameMapping,
    format_copy_source,
    join_prefix,
    map_copy_source,
    map_list_query,
    parse_copy_source,
)
from s3router_proxy.routing.responsexml import ClientRequest, KeyFilter, rewrite_response_xml
from s3router_proxy.s3.deleteobjects import (
    delete_objects_keys,
    group_delete_objects,
    merge_delete_results,
    rewrite_delete_objects,
)
from s3router_proxy.s3.errors import S3Error
from s3router_proxy.s3.xml import parse_xml

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


# -- response documents ---------------------------------------------------------------------------

V2 = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    b"<Name>minio-bucket</Name><Prefix>data/team2/</Prefix><KeyCount>4</KeyCount>"
    b"<MaxKeys>1000</MaxKeys><Delimiter>/</Delimiter><IsTruncated>false</IsTruncated>"
    b"<StartAfter>data/team2/0</StartAfter>"
    b"<Contents><Key>data/team2/a</Key><Size>3</Size><ETag>&quot;e&quot;</ETag></Contents>"
    b"<Contents><Key>data/other</Key><Size>1</Size></Contents>"
    b"<Contents><Key>data/team2/z.tmp</Key><Size>1</Size></Contents>"
    b"<CommonPrefixes><Prefix>data/team2/sub/</Prefix></CommonPrefixes>"
    b"</ListBucketResult>"
)


def test_list_v2_rewritten_and_filtered() -> None:
    out = rewrite_response_xml(
        V2,
        TEAM2,
        ClientRequest(query={"prefix": "team2/", "start-after": "team2/0"}),
        keep=KeyFilter(keep_key=lambda k: not k.endswith(".tmp")),
    )
    parsed = botocore_parse("ListObjectsV2", out)
    assert parsed["Name"] == "example-bucket"
    assert parsed["Prefix"] == "team2/"
    assert parsed["StartAfter"] == "team2/0"
    assert [c["Key"] for c in parsed["Contents"]] == ["team2/a"]
    assert parsed["Contents"][0]["ETag"] == '"e"'
    assert [p["Prefix"] for p in parsed["CommonPrefixes"]] == ["team2/sub/"]
    assert parsed["KeyCount"] == 2
    assert out.startswith(b"<?xml") and b'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"' in out


def test_list_drops_the_object_named_by_the_mapped_prefix_itself() -> None:
    """A bucket mapped into `data/` of another: a backend object named exactly `data/` would be
    the empty client key, which no request can name (and a v1 marker of "" restarts a listing)."""
    mapping = NameMapping("lb", "store", "", "data/")
    body = (
        b'<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<Name>store</Name><Prefix>data/</Prefix><KeyCount>2</KeyCount>"
        b"<Contents><Key>data/</Key><Size>0</Size></Contents>"
        b"<Contents><Key>data/a</Key><Size>1</Size></Contents>"
        b"</ListBucketResult>"
    )
    out = rewrite_response_xml(body, mapping, ClientRequest(query={"list-type": "2"}))
    parsed = botocore_parse("ListObjectsV2", out)
    assert [c["Key"] for c in parsed["Contents"]] == ["a"]
    assert parsed["KeyCount"] == 1


def test_list_v2_url_encoded() -> None:
    body = (
        b'<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<Name>minio-bucket</Name><Prefix>data/team2/</Prefix><EncodingType>url</EncodingType>"
        b"<Contents><Key>data/team2/a%20b%2Bc</Key></Contents>"
        b"<CommonPrefixes><Prefix>data/team2/%C3%A9/</Prefix></CommonPrefixes>"
        b"</ListBucketResult>"
    )
    out = rewrite_response_xml(
        body, TEAM2, ClientRequest(query={"prefix": "team2/", "encoding-type": "url"})
    )
    assert texts(out, "Key") == ["team2/a+b%2Bc"]
    parsed = botocore_parse("ListObjectsV2", out, auto_encoding=True)
    assert parsed["Contents"][0]["Key"] == "team2/a b+c"
    assert parsed["CommonPrefixes"][0]["Prefix"] == "team2/é/"
    assert parsed["Prefix"] == "team2/"


def test_list_v1_markers() -> None:
    body = (
        b'<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<Name>minio-bucket</Name><Prefix>data/team2/</Prefix><Marker>data/team2/a</Marker>"
        b"<NextMarker>data/team2/c</NextMarker><IsTruncated>true</IsTruncated>"
        b"<Contents><Key>data/team2/b</Key></Contents><Contents><Key>data/team2/c</Key></Contents>"
        b"</ListBucketResult>"
    )
    out = rewrite_response_xml(body, TEAM2, ClientRequest(query={"marker": "team2/a"}))
    parsed = botocore_parse("ListObjects", out)
    assert parsed["Marker"] == "team2/a"
    assert parsed["NextMarker"] == "team2/c"
    assert parsed["Prefix"] == ""
    assert [c["Key"] for c in parsed["Contents"]] == ["team2/b", "team2/c"]


def test_list_versions_and_uploads() -> None:
    versions = (
        b'<ListVersionsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<Name>minio-bucket</Name><Prefix>data/team2/</Prefix><KeyMarker></KeyMarker>"
        b"<NextKeyMarker>data/team2/b</NextKeyMarker><IsTruncated>true</IsTruncated>"
        b"<Version><Key>data/team2/a</Key><VersionId>1</VersionId></Version>"
        b"<DeleteMarker><Key>data/team2/b</Key><VersionId>2</VersionId></DeleteMarker>"
        b"<Version><Key>data/elsewhere</Key><VersionId>3</VersionId></Version>"
        b"</ListVersionsResult>"
    )
    out = rewrite_response_xml(versions, TEAM2, ClientRequest(query={"prefix": "team2/"}))
    parsed = botocore_parse("ListObjectVersions", out)
    assert [v["Key"] for v in parsed["Versions"]] == ["team2/a"]
    assert [d["Key"] for d in parsed["DeleteMarkers"]] == ["team2/b"]
    assert parsed["NextKeyMarker"] == "team2/b"
    uploads = (
        b'<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<Bucket>minio-bucket</Bucket><KeyMarker>data/team2/a</KeyMarker>"
        b"<NextKeyMarker>data/team2/z</NextKeyMarker><UploadIdMarker>u</UploadIdMarker>"
        b"<Upload><Key>data/team2/z</Key><UploadId>u2</UploadId></Upload>"
        b"</ListMultipartUploadsResult>"
    )
    out = rewrite_response_xml(uploads, TEAM2, ClientRequest(query={"key-marker": "team2/a"}))
    parsed = botocore_parse("ListMultipartUploads", out)
    assert parsed["Bucket"] == "example-bucket"
    assert parsed["KeyMarker"] == "team2/a" and parsed["NextKeyMarker"] == "team2/z"
    assert parsed["Uploads"][0]["Key"] == "team2/z"
    assert parsed["UploadIdMarker"] == "u"


def test_multipart_results() -> None:
    initiate = (
        b'<InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<Bucket>minio-bucket</Bucket><Key>data/team2/big</Key><UploadId>u</UploadId>"
        b"</InitiateMultipartUploadResult>"
    )
    out = rewrite_response_xml(initiate, TEAM2, ClientRequest(key="team2/big"))
    parsed = botocore_parse("CreateMultipartUpload", out)
    assert (parsed["Bucket"], parsed["Key"], parsed["UploadId"]) == (
        "example-bucket",
        "team2/big",
        "u",
    )
    complete = (
        b'<CompleteMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<Location>http://127.0.0.1:9000/minio-bucket/data/team2/big%20x</Location>"
        b"<Bucket>minio-bucket</Bucket><Key>data/team2/big x</Key><ETag>&quot;e-2&quot;</ETag>"
        b"</CompleteMultipartUploadResult>"
    )
    out = rewrite_response_xml(
        complete, TEAM2, ClientRequest(key="team2/big x", base_url="http://proxy:8080")
    )
    parsed = botocore_parse("CompleteMultipartUpload", out)
    assert parsed["Location"] == "http://proxy:8080/example-bucket/team2/big%20x"
    assert (parsed["Bucket"], parsed["Key"], parsed["ETag"]) == (
        "example-bucket",
        "team2/big x",
        '"e-2"',
    )
    parts = (
        b"<ListPartsResult><Bucket>minio-bucket</Bucket><Key>data/team2/big</Key>"
        b"<Part><PartNumber>1</PartNumber></Part></ListPartsResult>"
    )
    out = rewrite_response_xml(parts, TEAM2, ClientRequest(key="team2/big"))
    assert xml(out).findtext("Bucket") == "example-bucket"
    assert xml(out).findtext("Key") == "team2/big"


def test_error_body() -> None:
    error = (
        b"<Error><Code>NoSuchKey</Code><Message>gone</Message><Key>data/team2/x</Key>"
        b"<BucketName>minio-bucket</BucketName><Resource>/minio-bucket/data/team2/x</Resource>"
        b"<Endpoint>minio.internal</Endpoint><RequestId>R</RequestId><HostId>H</HostId></Error>"
    )
    out = xml(rewrite_response_xml(error, TEAM2, ClientRequest(key="team2/x", request_id="ME")))
    assert out.findtext("Key") == "team2/x"
    assert out.findtext("BucketName") == "example-bucket"
    assert out.findtext("Resource") == "/example-bucket/team2/x"
    assert out.find("Endpoint") is None
    assert (out.findtext("RequestId"), out.findtext("HostId")) == ("ME", "ME")
    out = xml(rewrite_response_xml(error, TEAM2))
    assert out.findtext("Key") == "team2/x" and out.find("HostId") is None


def test_unrelated_documents_unchanged() -> None:
    copy = b"<CopyObjectResult><ETag>&quot;e&quot;</ETag></CopyObjectResult>"
    assert rewrite_response_xml(copy, TEAM2) is copy
    assert rewrite_response_xml(b"", TEAM2) == b""


def test_response_size_cap_and_garbage() -> None:
    with pytest.raises(S3Error) as caught:
        rewrite_response_xml(V2, TEAM2, limit=100)
    assert caught.value.code == "InternalError"
    with pytest.raises(S3Error) as caught:
        parse_xml(b"<not xml")
    assert caught.value.code == "InternalError"


def test_location_header() -> None:
    assert rewrite_location_header("/minio-bucket", TEAM2) == "/example-bucket"
    assert (
        rewrite_location_header(
            "http://minio:9000/minio-bucket/data/team2/k", TEAM2, client_base_url="http://p:1"
        )
        == "http://p:1/example-bucket/team2/k"
    )
    assert (
        rewrite_location_header(
            "https://minio-bucket.s3.amazonaws.com/data/team2/k", TEAM2, client_base_url="http://p"
        )
        == "http://p/example-bucket/team2/k"
    )
    assert client_location("", "b", "a b/c") == "/b/a%20b/c"
