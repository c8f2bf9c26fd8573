"""Naming requests: one row per request shape, every operation name at least once.

The hand-written table says what each request shape must be called; a second test sends every
operation in botocore's S3 model through a real botocore client (captured before it reaches the
network) and checks the proxy names it as botocore does, in both addressing styles, so a new
S3 operation in a botocore upgrade fails here rather than silently becoming `Unknown`.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import botocore
import botocore.session
import pytest
from botocore.awsrequest import AWSPreparedRequest
from botocore.config import Config
from botocore.model import Shape
from multidict import CIMultiDict, CIMultiDictProxy

from s3router_proxy.routing.rules import compile_operations
from s3router_proxy.s3.operations import OPERATIONS, UNKNOWN, operation_group, operation_name
from s3router_proxy.s3.request import parse_request

COPY = {"x-amz-copy-source": "/src-bucket/src/key"}
FORM = {"Content-Type": "multipart/form-data; boundary=----x"}
LAMBDA = {"x-amz-request-route": "route-1", "x-amz-request-token": "token"}


def headers(extra: Mapping[str, str] | None = None) -> CIMultiDictProxy[str]:
    """Request headers as the server hands them over: case-insensitive, read-only."""
    return CIMultiDictProxy(CIMultiDict({"Host": "s3.local", **(extra or {})}))


def row(
    method: str,
    bucket: str,
    key: str,
    query: str,
    expected: str,
    extra: Mapping[str, str] | None = None,
    *,
    id: str | None = None,
) -> Any:
    """One table row; `query` is written as on the wire (`acl&versionId=1`)."""
    parsed = {}
    for part in query.split("&") if query else ():
        name, _, value = part.partition("=")
        parsed.setdefault(name, value)
    label = id or f"{method} /{bucket}{'/' + key if key else ''}{'?' + query if query else ''}"
    return pytest.param(method, bucket, key, parsed, dict(extra or {}), expected, id=label)


CASES = [
    # Service.
    row("GET", "", "", "", "ListBuckets"),
    row("GET", "", "", "max-buckets=10&prefix=a", "ListBuckets"),
    row("GET", "", "", "max-directory-buckets=10", "ListDirectoryBuckets"),
    row("GET", "", "", "x-id=ListDirectoryBuckets", "ListDirectoryBuckets"),
    # Buckets.
    row("PUT", "b", "", "", "CreateBucket"),
    row("DELETE", "b", "", "", "DeleteBucket"),
    row("HEAD", "b", "", "", "HeadBucket"),
    row("GET", "b", "", "", "ListObjects"),
    row("GET", "b", "", "prefix=a/&delimiter=/&marker=m", "ListObjects"),
    row("GET", "b", "", "list-type=2", "ListObjectsV2"),
    row("GET", "b", "", "list-type=2&continuation-token=t&start-after=a", "ListObjectsV2"),
    row("GET", "b", "", "list-type=1", "ListObjects"),
    row("GET", "b", "", "versions", "ListObjectVersions"),
    row("GET", "b", "", "versions&key-marker=k&version-id-marker=v", "ListObjectVersions"),
    row("GET", "b", "", "uploads", "ListMultipartUploads"),
    row("POST", "b", "", "delete", "DeleteObjects"),
    row("POST", "b", "", "", "PostObject", FORM),
    row("GET", "b", "", "session", "CreateSession"),
    row("GET", "b", "", "location", "GetBucketLocation"),
    row("GET", "b", "", "policyStatus", "GetBucketPolicyStatus"),
    row("GET", "b", "", "abac", "GetBucketAbac"),
    row("PUT", "b", "", "abac", "PutBucketAbac"),
    row("GET", "b", "", "accelerate", "GetBucketAccelerateConfiguration"),
    row("PUT", "b", "", "accelerate", "PutBucketAccelerateConfiguration"),
    row("GET", "b", "", "acl", "GetBucketAcl"),
    row("PUT", "b", "", "acl", "PutBucketAcl"),
    row("GET", "b", "", "cors", "GetBucketCors"),
    row("PUT", "b", "", "cors", "PutBucketCors"),
    row("DELETE", "b", "", "cors", "DeleteBucketCors"),
    row("GET", "b", "", "default-storage-class", "GetBucketDefaultStorageClass"),
    row("PUT", "b", "", "default-storage-class", "PutBucketDefaultStorageClass"),
    row("GET", "b", "", "encryption", "GetBucketEncryption"),
    row("PUT", "b", "", "encryption", "PutBucketEncryption"),
    row("DELETE", "b", "", "encryption", "DeleteBucketEncryption"),
    row("GET", "b", "", "lifecycle", "GetBucketLifecycleConfiguration"),
    row("PUT", "b", "", "lifecycle", "PutBucketLifecycleConfiguration"),
    row("DELETE", "b", "", "lifecycle", "DeleteBucketLifecycle"),
    row("GET", "b", "", "logging", "GetBucketLogging"),
    row("PUT", "b", "", "logging", "PutBucketLogging"),
    row("GET", "b", "", "notification", "GetBucketNotificationConfiguration"),
    row("PUT", "b", "", "notification", "PutBucketNotificationConfiguration"),
    row("GET", "b", "", "object-lock", "GetObjectLockConfiguration"),
    row("PUT", "b", "", "object-lock", "PutObjectLockConfiguration"),
    row("GET", "b", "", "ownershipControls", "GetBucketOwnershipControls"),
    row("PUT", "b", "", "ownershipControls", "PutBucketOwnershipControls"),
    row("DELETE", "b", "", "ownershipControls", "DeleteBucketOwnershipControls"),
    row("GET", "b", "", "policy", "GetBucketPolicy"),
    row("PUT", "b", "", "policy", "PutBucketPolicy"),
    row("DELETE", "b", "", "policy", "DeleteBucketPolicy"),
    row("GET", "b", "", "publicAccessBlock", "GetPublicAccessBlock"),
    row("PUT", "b", "", "publicAccessBlock", "PutPublicAccessBlock"),
    row("DELETE", "b", "", "publicAccessBlock", "DeletePublicAccessBlock"),
    row("GET", "b", "", "replication", "GetBucketReplication"),
    row("PUT", "b", "", "replication", "PutBucketReplication"),
    row("DELETE", "b", "", "replication", "DeleteBucketReplication"),
    row("GET", "b", "", "requestPayment", "GetBucketRequestPayment"),
    row("PUT", "b", "", "requestPayment", "PutBucketRequestPayment"),
    row("GET", "b", "", "tagging", "GetBucketTagging"),
    row("PUT", "b", "", "tagging", "PutBucketTagging"),
    row("DELETE", "b", "", "tagging", "DeleteBucketTagging"),
    row("GET", "b", "", "versioning", "GetBucketVersioning"),
    row("PUT", "b", "", "versioning", "PutBucketVersioning"),
    row("GET", "b", "", "website", "GetBucketWebsite"),
    row("PUT", "b", "", "website", "PutBucketWebsite"),
    row("DELETE", "b", "", "website", "DeleteBucketWebsite"),
    row("GET", "b", "", "analytics&id=a", "GetBucketAnalyticsConfiguration"),
    row("GET", "b", "", "analytics", "ListBucketAnalyticsConfigurations"),
    row("GET", "b", "", "analytics&continuation-token=t", "ListBucketAnalyticsConfigurations"),
    row("PUT", "b", "", "analytics&id=a", "PutBucketAnalyticsConfiguration"),
    row("DELETE", "b", "", "analytics&id=a", "DeleteBucketAnalyticsConfiguration"),
    row("GET", "b", "", "intelligent-tiering&id=a", "GetBucketIntelligentTieringConfiguration"),
    row("GET", "b", "", "intelligent-tiering", "ListBucketIntelligentTieringConfigurations"),
    row("PUT", "b", "", "intelligent-tiering&id=a", "PutBucketIntelligentTieringConfiguration"),
    row(
        "DELETE", "b", "", "intelligent-tiering&id=a", "DeleteBucketIntelligentTieringConfiguration"
    ),
    row("GET", "b", "", "inventory&id=a", "GetBucketInventoryConfiguration"),
    row("GET", "b", "", "inventory", "ListBucketInventoryConfigurations"),
    row("PUT", "b", "", "inventory&id=a", "PutBucketInventoryConfiguration"),
    row("DELETE", "b", "", "inventory&id=a", "DeleteBucketInventoryConfiguration"),
    row("GET", "b", "", "metrics&id=a", "GetBucketMetricsConfiguration"),
    row("GET", "b", "", "metrics", "ListBucketMetricsConfigurations"),
    row("PUT", "b", "", "metrics&id=a", "PutBucketMetricsConfiguration"),
    row("DELETE", "b", "", "metrics&id=a", "DeleteBucketMetricsConfiguration"),
    row("POST", "b", "", "metadataConfiguration", "CreateBucketMetadataConfiguration"),
    row("GET", "b", "", "metadataConfiguration", "GetBucketMetadataConfiguration"),
    row("DELETE", "b", "", "metadataConfiguration", "DeleteBucketMetadataConfiguration"),
    row("POST", "b", "", "metadataTable", "CreateBucketMetadataTableConfiguration"),
    row("GET", "b", "", "metadataTable", "GetBucketMetadataTableConfiguration"),
    row("DELETE", "b", "", "metadataTable", "DeleteBucketMetadataTableConfiguration"),
    row(
        "PUT",
        "b",
        "",
        "metadataAnnotationTable",
        "UpdateBucketMetadataAnnotationTableConfiguration",
    ),
    row(
        "PUT", "b", "", "metadataInventoryTable", "UpdateBucketMetadataInventoryTableConfiguration"
    ),
    row("PUT", "b", "", "metadataJournalTable", "UpdateBucketMetadataJournalTableConfiguration"),
    # Objects.
    row("GET", "b", "k", "", "GetObject"),
    row("GET", "b", "k", "versionId=v&partNumber=2", "GetObject"),
    row("GET", "b", "k", "response-content-type=text/plain", "GetObject"),
    row("HEAD", "b", "k", "", "HeadObject"),
    row("HEAD", "b", "k", "partNumber=1&versionId=v", "HeadObject"),
    row("PUT", "b", "k", "", "PutObject"),
    row("PUT", "b", "k", "", "CopyObject", COPY),
    row("PUT", "b", "k", "", "CopyObject", {"X-Amz-Copy-Source": "src/k?versionId=1"}),
    row("DELETE", "b", "k", "", "DeleteObject"),
    row("DELETE", "b", "k", "versionId=v", "DeleteObject"),
    row("POST", "b", "k", "uploads", "CreateMultipartUpload"),
    row("PUT", "b", "k", "partNumber=1&uploadId=u", "UploadPart"),
    row("PUT", "b", "k", "uploadId=u&partNumber=1", "UploadPart", id="UploadPart reordered"),
    row("PUT", "b", "k", "partNumber=1&uploadId=u", "UploadPartCopy", COPY),
    row("POST", "b", "k", "uploadId=u", "CompleteMultipartUpload"),
    row("DELETE", "b", "k", "uploadId=u", "AbortMultipartUpload"),
    row("GET", "b", "k", "uploadId=u", "ListParts"),
    row("GET", "b", "k", "uploadId=u&part-number-marker=2&max-parts=10", "ListParts"),
    row("GET", "b", "k", "part&uploadId=u&partNumber=1", "GetPart"),
    row("GET", "b", "k", "uploadId=u&partNumber=1&part", "GetPart", id="GetPart reordered"),
    row("GET", "b", "k", "acl", "GetObjectAcl"),
    row("PUT", "b", "k", "acl", "PutObjectAcl"),
    row("GET", "b", "k", "tagging", "GetObjectTagging"),
    row("GET", "b", "k", "tagging&versionId=v", "GetObjectTagging"),
    row("PUT", "b", "k", "tagging", "PutObjectTagging"),
    row("DELETE", "b", "k", "tagging", "DeleteObjectTagging"),
    row("GET", "b", "k", "retention", "GetObjectRetention"),
    row("PUT", "b", "k", "retention", "PutObjectRetention"),
    row("GET", "b", "k", "legal-hold", "GetObjectLegalHold"),
    row("PUT", "b", "k", "legal-hold", "PutObjectLegalHold"),
    row("GET", "b", "k", "attributes", "GetObjectAttributes"),
    row("GET", "b", "k", "torrent", "GetObjectTorrent"),
    row("POST", "b", "k", "restore", "RestoreObject"),
    row("POST", "b", "k", "select&select-type=2", "SelectObjectContent"),
    row("PUT", "b", "k", "renameObject", "RenameObject", {"x-amz-rename-source": "/b/old"}),
    row("PUT", "b", "k", "encryption", "UpdateObjectEncryption"),
    row("GET", "b", "k", "annotation&annotationName=n", "GetObjectAnnotation"),
    row("GET", "b", "k", "annotation", "ListObjectAnnotations"),
    row("PUT", "b", "k", "annotation&annotationName=n", "PutObjectAnnotation"),
    row("DELETE", "b", "k", "annotation&annotationName=n", "DeleteObjectAnnotation"),
    # Object Lambda's reply, path style (the name is the "bucket") and virtual-hosted (the key).
    row("POST", "WriteGetObjectResponse", "", "", "WriteGetObjectResponse", LAMBDA),
    row("POST", "route-1", "WriteGetObjectResponse", "", "WriteGetObjectResponse", LAMBDA),
    # CORS preflight, whatever the query it asks about.
    row("OPTIONS", "b", "", "", "OptionsPreflight"),
    row("OPTIONS", "b", "k", "", "OptionsPreflight"),
    row("OPTIONS", "b", "k", "uploads", "OptionsPreflight"),
    row("OPTIONS", "b", "k", "partNumber=1&uploadId=u", "OptionsPreflight"),
    row("OPTIONS", "b", "", "acl&policy", "OptionsPreflight"),
    # Sub-resources ride along with presigned-URL and SDK parameters that select nothing.
    row(
        "GET",
        "b",
        "k",
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=c&X-Amz-Date=d&X-Amz-Expires=60"
        "&X-Amz-SignedHeaders=host&X-Amz-Signature=s",
        "GetObject",
        id="presigned GetObject",
    ),
    row(
        "PUT",
        "b",
        "k",
        "partNumber=3&uploadId=u&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=s",
        "UploadPart",
        id="presigned UploadPart",
    ),
    # Not S3: a name we are not sure of must never pass a policy written for another operation.
    row("OPTIONS", "", "", "", "Unknown"),
    row("HEAD", "", "", "", "Unknown"),
    row("PUT", "", "", "", "Unknown"),
    row("GET", "", "", "acl", "Unknown"),
    row("GET", "", "k", "", "Unknown", id="key without bucket"),
    row("PATCH", "b", "k", "", "Unknown"),
    row("get", "b", "k", "", "Unknown", id="lower-case method"),
    row("POST", "b", "", "", "Unknown", id="bare POST without a form"),
    row("POST", "b", "", "", "Unknown", {"Content-Type": "application/xml"}),
    row("POST", "b", "k", "", "Unknown"),
    row("POST", "WriteGetObjectResponse", "", "", "Unknown", id="WGOR without its headers"),
    row("POST", "b", "", "", "Unknown", LAMBDA, id="Object Lambda headers on another name"),
    row("GET", "b", "k", "uploads", "Unknown"),
    row("GET", "b", "", "uploadId=u", "Unknown"),
    row("POST", "b", "", "uploads", "Unknown"),
    row("DELETE", "b", "", "acl", "Unknown"),
    row("HEAD", "b", "k", "acl", "Unknown"),
    row("PUT", "b", "", "acl&policy", "Unknown", id="two sub-resources"),
    row("GET", "b", "k", "tagging&uploadId=u", "Unknown", id="two object sub-resources"),
    row("PUT", "b", "k", "part&uploadId=u&partNumber=1", "Unknown", id="GetPart's shape as PUT"),
    row("GET", "b", "k", "part&uploadId=u&acl", "Unknown", id="GetPart with another sub-resource"),
    row("GET", "b", "", "ACL", "Unknown", id="sub-resources are case-sensitive"),
    # A copy source belongs in a header, where it names CopyObject; in the query it names nothing.
    row("PUT", "b", "k", "x-amz-copy-source=src/k", "Unknown", id="copy source in the query"),
    row(
        "PUT", "b", "k", "X-Amz-Copy-Source=src/k", "Unknown", id="copy source in the query (case)"
    ),
    # Arguments of one operation do not ride along with another.
    row("PUT", "b", "k", "versionId=v", "Unknown", id="PutObject takes no versionId"),
    row("GET", "b", "", "list-type=2&marker=m", "Unknown", id="marker is ListObjects' own"),
    row("GET", "b", "", "continuation-token=t", "Unknown", id="bare listing with a V2 argument"),
    row("GET", "b", "", "analytics&id=a&continuation-token=t", "Unknown"),
    row("GET", "", "", "max-keys=1", "Unknown", id="ListBuckets takes no max-keys"),
]

# A sub-resource this proxy does not know may be an operation of the next S3 release: it is never
# named as the plain operation of its method and level, only `Unknown` (which only `admin` may do).
FUTURE = "some-future-thing"
UNKNOWN_SUBRESOURCE_CASES = [
    row(method, "b", key, query, "Unknown", id=f"{method} {'key' if key else 'bucket'} ?{query}")
    for method in ("GET", "PUT", "DELETE", "POST", "HEAD")
    for key in ("", "k")
    for query in (FUTURE, f"{FUTURE}=1", f"prefix=a&{FUTURE}", f"{FUTURE}&versionId=v")
] + [
    row("GET", "", "", FUTURE, "Unknown", id="service ?some-future-thing"),
    row("POST", "b", "", FUTURE, "Unknown", FORM, id="form upload ?some-future-thing"),
    row("PUT", "b", "k", FUTURE, "Unknown", COPY, id="copy ?some-future-thing"),
    row("PUT", "b", "k", f"partNumber=1&uploadId=u&{FUTURE}", "Unknown", id="part ?future"),
    row("GET", "b", "", f"acl&{FUTURE}", "Unknown", id="known sub-resource and a future one"),
    row("GET", "b", "", f"list-type=2&{FUTURE}", "Unknown", id="ListObjectsV2 ?future"),
]

# Parameters every request may carry: SDK hints, presigned-URL auth (SigV4 and SigV2) and
# x-amz-* headers an SDK hoisted into a presigned URL.
ANY_REQUEST_CASES = [
    row(
        "PUT",
        "b",
        "k",
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=c&X-Amz-Date=d&X-Amz-Expires=60"
        "&X-Amz-SignedHeaders=host&X-Amz-Signature=s&X-Amz-Security-Token=t"
        "&x-amz-checksum-crc32=AAAAAA%3D%3D&x-amz-sdk-checksum-algorithm=CRC32&x-amz-acl=private",
        "PutObject",
        id="presigned PutObject with hoisted headers",
    ),
    row(
        "GET",
        "b",
        "k",
        "AWSAccessKeyId=AKID&Expires=1&Signature=s&x-amz-security-token=t",
        "GetObject",
        id="SigV2 presigned GetObject",
    ),
    row("GET", "b", "", "location&x-id=GetBucketLocation", "GetBucketLocation"),
    row("HEAD", "b", "", "x-id=HeadBucket", "HeadBucket"),
]

# Newer (Smithy-generated) SDKs append `x-id=<Operation>` to shapes that are otherwise bare.
X_ID_CASES = [
    row("GET", "", "", "x-id=ListBuckets", "ListBuckets"),
    row("GET", "b", "", "x-id=ListObjects", "ListObjects"),
    row("GET", "b", "k", "x-id=GetObject", "GetObject"),
    row("PUT", "b", "k", "x-id=PutObject", "PutObject"),
    row("PUT", "b", "k", "x-id=CopyObject", "CopyObject", COPY),
    row("DELETE", "b", "k", "x-id=DeleteObject", "DeleteObject"),
    row("PUT", "b", "k", "partNumber=1&uploadId=u&x-id=UploadPart", "UploadPart"),
    row("PUT", "b", "k", "partNumber=1&uploadId=u&x-id=UploadPartCopy", "UploadPartCopy", COPY),
    row("DELETE", "b", "k", "uploadId=u&x-id=AbortMultipartUpload", "AbortMultipartUpload"),
    row("GET", "b", "k", "uploadId=u&x-id=ListParts", "ListParts"),
    row(
        "GET",
        "b",
        "",
        "analytics&id=a&x-id=GetBucketAnalyticsConfiguration",
        "GetBucketAnalyticsConfiguration",
    ),
    # The hint picks between operations identical on the wire…
    row("GET", "b", "", "lifecycle&x-id=GetBucketLifecycle", "GetBucketLifecycle"),
    row("PUT", "b", "", "lifecycle&x-id=PutBucketLifecycle", "PutBucketLifecycle"),
    row("GET", "b", "", "notification&x-id=GetBucketNotification", "GetBucketNotification"),
    row("PUT", "b", "", "notification&x-id=PutBucketNotification", "PutBucketNotification"),
    # …and never overrides what the request itself says.
    row("DELETE", "b", "k", "x-id=GetObject", "DeleteObject", id="x-id cannot rename a DELETE"),
    row("PUT", "b", "k", "x-id=CopyObject", "PutObject", id="x-id without copy source"),
    row("PUT", "b", "k", "x-id=PutObject", "CopyObject", COPY, id="copy source beats x-id"),
    row("PUT", "b", "k", "partNumber=1&uploadId=u&x-id=UploadPartCopy", "UploadPart"),
    row("GET", "b", "", "lifecycle&x-id=GetBucketPolicy", "GetBucketLifecycleConfiguration"),
    row(
        "GET",
        "b",
        "",
        "analytics&x-id=GetBucketAnalyticsConfiguration",
        "ListBucketAnalyticsConfigurations",
        id="x-id cannot invent an id",
    ),
    row("GET", "b", "", "x-id=DeleteBucket", "ListObjects"),
    row("GET", "", "", "x-id=CreateBucket", "ListBuckets"),
]


@pytest.mark.parametrize(("method", "bucket", "key", "query", "extra", "expected"), CASES)
def test_operation_name(
    method: str, bucket: str, key: str, query: dict[str, str], extra: dict[str, str], expected: str
) -> None:
    assert operation_name(method, bucket, key, query, headers(extra)) == expected


@pytest.mark.parametrize(("method", "bucket", "key", "query", "extra", "expected"), X_ID_CASES)
def test_x_id_is_only_a_hint(
    method: str, bucket: str, key: str, query: dict[str, str], extra: dict[str, str], expected: str
) -> None:
    assert operation_name(method, bucket, key, query, headers(extra)) == expected


@pytest.mark.parametrize(
    ("method", "bucket", "key", "query", "extra", "expected"), UNKNOWN_SUBRESOURCE_CASES
)
def test_an_unknown_sub_resource_is_never_a_known_operation(
    method: str, bucket: str, key: str, query: dict[str, str], extra: dict[str, str], expected: str
) -> None:
    assert operation_name(method, bucket, key, query, headers(extra)) == expected
    assert operation_group(expected) == "admin"


@pytest.mark.parametrize(
    ("method", "bucket", "key", "query", "extra", "expected"), ANY_REQUEST_CASES
)
def test_parameters_any_request_may_carry(
    method: str, bucket: str, key: str, query: dict[str, str], extra: dict[str, str], expected: str
) -> None:
    assert operation_name(method, bucket, key, query, headers(extra)) == expected


def test_routing_rules_treat_an_unknown_operation_as_admin() -> None:
    """Rules by group agree with policies: what the proxy cannot name is `admin`, never `read`."""
    name = operation_name("GET", "b", "", {FUTURE: ""}, headers())
    assert name == UNKNOWN
    assert not compile_operations(["read", "list", "write", "delete"]).matches("GET", name)
    assert compile_operations(["admin"]).matches("GET", name)
    assert compile_operations(["GET"]).matches("GET", name)  # a rule by method matches methods


def test_the_table_covers_every_operation() -> None:
    covered = {case.values[-1] for case in CASES + X_ID_CASES}
    assert covered == OPERATIONS


def test_plain_dict_headers_with_lower_case_names() -> None:
    assert operation_name("PUT", "b", "k", {}, {"x-amz-copy-source": "/s/k"}) == "CopyObject"
    assert operation_name("POST", "b", "", {}, {"content-type": "multipart/form-data"}) == (
        "PostObject"
    )


def test_duplicate_query_names_in_a_multidict_are_one_sub_resource() -> None:
    query = CIMultiDict([("acl", ""), ("acl", "")])
    assert operation_name("GET", "b", "", query, headers()) == "GetBucketAcl"


# -- groups ---------------------------------------------------------------------------------------

READ = {
    "GetObject",
    "HeadObject",
    "GetObjectAttributes",
    "GetObjectAcl",
    "GetObjectTagging",
    "GetObjectRetention",
    "GetObjectLegalHold",
    "GetObjectTorrent",
    "GetObjectAnnotation",
    "SelectObjectContent",
    "GetPart",
    "HeadBucket",
    "GetBucketLocation",
    "OptionsPreflight",
}
LIST = {
    "ListBuckets",
    "ListDirectoryBuckets",
    "ListObjects",
    "ListObjectsV2",
    "ListObjectVersions",
    "ListMultipartUploads",
    "ListParts",
    "ListObjectAnnotations",
}
WRITE = {
    "PutObject",
    "CopyObject",
    "CreateMultipartUpload",
    "UploadPart",
    "UploadPartCopy",
    "CompleteMultipartUpload",
    "PutObjectAcl",
    "PutObjectTagging",
    "PutObjectRetention",
    "PutObjectLegalHold",
    "PutObjectAnnotation",
    "RestoreObject",
    "PostObject",
    "RenameObject",
    "UpdateObjectEncryption",
    "WriteGetObjectResponse",
}
DELETE = {
    "DeleteObject",
    "DeleteObjects",
    "DeleteObjectTagging",
    "DeleteObjectAnnotation",
    "AbortMultipartUpload",
}


def expected_group(operation: str) -> str:
    """The documented grouping; everything about a bucket itself (and Unknown) is admin."""
    for group, names in (("read", READ), ("list", LIST), ("write", WRITE), ("delete", DELETE)):
        if operation in names:
            return group
    return "admin"


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_operation_group(operation: str) -> None:
    assert operation_group(operation) == expected_group(operation)


def test_group_lists_name_real_operations() -> None:
    assert READ | LIST | WRITE | DELETE <= OPERATIONS


def test_admin_is_bucket_configuration() -> None:
    """Every admin operation is a bucket-level request (or one we could not name)."""
    admin = {op for op in OPERATIONS if operation_group(op) == "admin"}
    bucket_level = {
        case.values[-1] for case in CASES + X_ID_CASES if case.values[1] and not case.values[2]
    }
    assert admin - {"Unknown"} <= bucket_level
    assert {"CreateBucket", "DeleteBucket", "PutBucketPolicy", "CreateSession"} <= admin


@pytest.mark.parametrize("name", ["getobject", "", "Get Object", "s3:GetObject"])
def test_operation_group_rejects_names_that_are_not_operations(name: str) -> None:
    with pytest.raises(ValueError, match="not an S3 operation name"):
        operation_group(name)


# -- botocore as the reference --------------------------------------------------------------------

# Deprecated operations botocore still sends, byte for byte the same as their replacements; only
# an `x-id` hint (which botocore does not send) can tell them apart.
WIRE_ALIASES = {
    "GetBucketLifecycle": "GetBucketLifecycleConfiguration",
    "PutBucketLifecycle": "PutBucketLifecycleConfiguration",
    "GetBucketNotification": "GetBucketNotificationConfiguration",
    "PutBucketNotification": "PutBucketNotificationConfiguration",
}
# Optional parameters without which an operation looks exactly like another one.
EXTRA_PARAMS: dict[str, dict[str, Any]] = {"ListDirectoryBuckets": {"MaxDirectoryBuckets": 10}}


class _Captured(Exception):
    """Raised from botocore's before-send hook to stop a request at the wire."""

    def __init__(self, request: AWSPreparedRequest) -> None:
        super().__init__("captured")
        self.request = request


def _example(shape: Shape) -> Any:
    """A minimal valid value for a botocore shape: required members only."""
    kind = shape.type_name
    if kind == "structure":
        members = shape.members  # type: ignore[attr-defined]
        if shape.metadata.get("union"):
            first = next(iter(members))
            return {first: _example(members[first])}
        return {name: _example(members[name]) for name in shape.required_members}  # type: ignore[attr-defined]
    if kind == "list":
        return [_example(shape.member)]  # type: ignore[attr-defined]
    if kind == "map":
        return {"k": _example(shape.value)}  # type: ignore[attr-defined]
    if kind == "string":
        enum = shape.enum  # type: ignore[attr-defined]
        return enum[0] if enum else "x" * max(1, shape.metadata.get("min", 1))
    if kind in ("integer", "long"):
        return 1
    if kind == "boolean":
        return True
    if kind == "timestamp":
        return datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
    if kind == "blob":
        return b"x"
    raise AssertionError(f"no example for shape type {kind}")


def _query_arguments(shape: Shape | None) -> dict[str, Any]:
    """An example of every optional query-string argument of an operation."""
    if shape is None:
        return {}
    members = shape.members  # type: ignore[attr-defined]
    return {
        name: _example(member)
        for name, member in members.items()
        if member.serialization.get("location") == "querystring"
    }


def _botocore_requests(
    addressing: str, *, every_argument: bool = False
) -> Iterator[tuple[str, AWSPreparedRequest]]:
    """Every S3 operation botocore knows, as the request it would send to the proxy; with
    `every_argument`, with every query-string argument the operation takes."""
    client = botocore.session.get_session().create_client(
        "s3",
        region_name="us-east-1",
        endpoint_url="http://s3.local:8080",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        config=Config(
            s3={"addressing_style": addressing},
            inject_host_prefix=False,
            retries={"max_attempts": 0},
        ),
    )

    def capture(request: AWSPreparedRequest, **_: Any) -> None:
        raise _Captured(request)

    client.meta.events.register("before-send.s3", capture)
    model = client.meta.service_model
    for name in model.operation_names:
        shape = model.operation_model(name).input_shape
        params = _example(shape) if shape is not None else {}
        params.update(EXTRA_PARAMS.get(name, {}))
        if every_argument:
            params.update(_query_arguments(shape))
        if "Bucket" in params:
            params["Bucket"] = "bucket"
        if "Key" in params:
            params["Key"] = "dir/my key+1"
        try:
            getattr(client, botocore.xform_name(name))(**params)
        except _Captured as captured:
            yield name, captured.request
        else:  # pragma: no cover
            raise AssertionError(f"{name} was not captured")


def _names(addressing: str, *, every_argument: bool) -> dict[str, tuple[str, str, str, str]]:
    """Per botocore operation: (expected name, method, request target, name the proxy gave)."""
    named = {}
    for name, request in _botocore_requests(addressing, every_argument=every_argument):
        url = urlsplit(request.url)
        target = url.path + ("?" + url.query if url.query else "")
        raw = CIMultiDict(
            (k, v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()
        )
        raw["Host"] = url.netloc
        parsed = parse_request(
            request.method, target, CIMultiDictProxy(raw), base_domains=("s3.local",)
        )
        assert parsed.key in ("", "dir/my key+1", "WriteGetObjectResponse"), name
        named[name] = (WIRE_ALIASES.get(name, name), request.method, target, parsed.operation)
    return named


def _pinned_botocore() -> str:
    """The botocore release constraints.txt pins (what CI and the README install)."""
    constraints = Path(__file__).resolve().parents[3] / "constraints.txt"
    for line in constraints.read_text().splitlines():
        if line.startswith("botocore=="):
            return line.partition("==")[2].strip()
    raise AssertionError("constraints.txt pins no botocore")


@pytest.mark.parametrize("every_argument", [False, True], ids=["required", "every-argument"])
@pytest.mark.parametrize("addressing", ["path", "virtual"])
def test_every_botocore_operation_is_named_as_botocore_names_it(
    addressing: str, every_argument: bool
) -> None:
    """Whatever botocore is installed: named right, or refused as `Unknown` (an operation newer
    than this proxy), never named as another operation a policy could allow."""
    named = _names(addressing, every_argument=every_argument)
    wrong = {
        name: (method, target, got)
        for name, (expected, method, target, got) in named.items()
        if got not in (expected, UNKNOWN)
    }
    assert wrong == {}


@pytest.mark.parametrize("every_argument", [False, True], ids=["required", "every-argument"])
@pytest.mark.parametrize("addressing", ["path", "virtual"])
def test_the_pinned_botocore_has_no_operation_the_proxy_cannot_name(
    addressing: str, every_argument: bool
) -> None:
    """With the pinned botocore, every operation and argument is known (none is `Unknown`).

    With another release this is skipped, naming what the proxy does not know yet: the list to
    work through before constraints.txt moves (docs/operations.md, "Testing against the newest
    releases")."""
    named = _names(addressing, every_argument=every_argument)
    refused = {
        name: (method, target)
        for name, (expected, method, target, got) in named.items()
        if got == UNKNOWN
    }
    pinned = _pinned_botocore()
    if botocore.__version__ != pinned:
        pytest.skip(
            f"botocore {botocore.__version__} is not the pinned {pinned}; operations the proxy "
            f"refuses as Unknown: {refused or 'none'}"
        )
    assert refused == {}
    assert set(named) - {"ListDirectoryBuckets", *WIRE_ALIASES} <= OPERATIONS
