"""The backend's XML answers rewritten to name only the client's bucket and keys: listings,
multipart results, errors; checked against botocore's own parser."""

from __future__ import annotations

import botocore.session
import pytest
from botocore import handlers
from botocore.parsers import RestXMLParser
from lxml import etree

from s3router_proxy.routing.names import (
    NameMapping,
)
from s3router_proxy.routing.responsexml import ClientRequest, KeyFilter, rewrite_response_xml
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
    virtual = ClientRequest(
        key="team2/big x", base_url="http://example-bucket.s3.local:8080", bucket_in_host=True
    )
    assert (
        botocore_parse("CompleteMultipartUpload", rewrite_response_xml(complete, TEAM2, virtual))[
            "Location"
        ]
        == "http://example-bucket.s3.local:8080/team2/big%20x"
    )
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
