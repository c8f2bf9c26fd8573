"""The operation table: the S3 operation each request slot names, and the arguments each takes.

A slot is `(method, level, sub-resource)`: the HTTP method, whether the path names the service,
a bucket or a key, and the one sub-resource query parameter (or ""). `TABLE` maps each slot to
an operation name, or to a small function for the few slots where S3 looks further (an `id`, an
`annotationName`, a header). `ARGUMENTS` lists the other query parameters each operation takes,
as botocore's model names them. How the table is used, and why, is `operations.py`'s docstring.
Pure data, built once at import.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

# Levels of a request path: "/" is the service, "/b" a bucket, "/b/k" an object.
SERVICE: Final = 0
BUCKET: Final = 1
OBJECT: Final = 2

Refine = Callable[[Mapping[str, str], Mapping[str, str]], str]
_Slot = tuple[str, int, str]

# Names only a refinement (below) returns; each is added next to its code, so the set of
# every operation name is assembled from the same place that produces the names.
REFINED: set[str] = set()

# The configuration families S3 defines alike, by sub-resource.
_CONFIGURATIONS = {
    "analytics": "Analytics",
    "intelligent-tiering": "IntelligentTiering",
    "inventory": "Inventory",
    "metrics": "Metrics",
}

# -- refinements: the few slots where S3 looks past method, level and sub-resource -------------


def _copy_or(plain: str, copy: str) -> Refine:
    """PutObject/UploadPart become their Copy variant when the request names a copy source."""
    REFINED.update((plain, copy))

    def refine(query: Mapping[str, str], headers: Mapping[str, str]) -> str:
        return copy if "x-amz-copy-source" in headers else plain

    return refine


def _get_or_list(get: str, listing: str, selector: str) -> Refine:
    """Analytics/inventory/metrics/… configurations: `?id=` reads one, no id lists them all."""
    REFINED.update((get, listing))

    def refine(query: Mapping[str, str], headers: Mapping[str, str]) -> str:
        return get if selector in query else listing

    return refine


def _hinted(default: str, *aliases: str) -> Refine:
    """Operations identical on the wire: trust `x-id` only to pick among them."""
    allowed = frozenset(aliases)
    REFINED.update((default, *aliases))

    def refine(query: Mapping[str, str], headers: Mapping[str, str]) -> str:
        hint = query.get("x-id")
        return hint if hint is not None and hint in allowed else default

    return refine


REFINED.update(("ListBuckets", "ListDirectoryBuckets"))


def _list_buckets(query: Mapping[str, str], headers: Mapping[str, str]) -> str:
    """`GET /` is ListBuckets, or ListDirectoryBuckets when it pages by directory bucket."""
    if "max-directory-buckets" in query or query.get("x-id") == "ListDirectoryBuckets":
        return "ListDirectoryBuckets"
    return "ListBuckets"


REFINED.update(("ListObjects", "ListObjectsV2"))


def _list_objects(query: Mapping[str, str], headers: Mapping[str, str]) -> str:
    """`list-type=2` selects ListObjectsV2; any other value is the original ListObjects."""
    return "ListObjectsV2" if query.get("list-type") == "2" else "ListObjects"


# -- the table ----------------------------------------------------------------------------------

ROWS: tuple[tuple[str, int, str, str | Refine], ...] = (
    # Service.
    ("GET", SERVICE, "", _list_buckets),
    # Buckets.
    ("PUT", BUCKET, "", "CreateBucket"),
    ("DELETE", BUCKET, "", "DeleteBucket"),
    ("HEAD", BUCKET, "", "HeadBucket"),
    ("GET", BUCKET, "", "ListObjects"),
    ("GET", BUCKET, "list-type", _list_objects),
    ("GET", BUCKET, "versions", "ListObjectVersions"),
    ("GET", BUCKET, "uploads", "ListMultipartUploads"),
    ("POST", BUCKET, "delete", "DeleteObjects"),
    ("GET", BUCKET, "session", "CreateSession"),
    ("GET", BUCKET, "location", "GetBucketLocation"),
    ("GET", BUCKET, "policyStatus", "GetBucketPolicyStatus"),
    ("GET", BUCKET, "abac", "GetBucketAbac"),
    ("PUT", BUCKET, "abac", "PutBucketAbac"),
    ("GET", BUCKET, "accelerate", "GetBucketAccelerateConfiguration"),
    ("PUT", BUCKET, "accelerate", "PutBucketAccelerateConfiguration"),
    ("GET", BUCKET, "acl", "GetBucketAcl"),
    ("PUT", BUCKET, "acl", "PutBucketAcl"),
    ("GET", BUCKET, "cors", "GetBucketCors"),
    ("PUT", BUCKET, "cors", "PutBucketCors"),
    ("DELETE", BUCKET, "cors", "DeleteBucketCors"),
    ("GET", BUCKET, "default-storage-class", "GetBucketDefaultStorageClass"),
    ("PUT", BUCKET, "default-storage-class", "PutBucketDefaultStorageClass"),
    ("GET", BUCKET, "encryption", "GetBucketEncryption"),
    ("PUT", BUCKET, "encryption", "PutBucketEncryption"),
    ("DELETE", BUCKET, "encryption", "DeleteBucketEncryption"),
    ("GET", BUCKET, "lifecycle", _hinted("GetBucketLifecycleConfiguration", "GetBucketLifecycle")),
    ("PUT", BUCKET, "lifecycle", _hinted("PutBucketLifecycleConfiguration", "PutBucketLifecycle")),
    ("DELETE", BUCKET, "lifecycle", "DeleteBucketLifecycle"),
    ("GET", BUCKET, "logging", "GetBucketLogging"),
    ("PUT", BUCKET, "logging", "PutBucketLogging"),
    (
        "GET",
        BUCKET,
        "notification",
        _hinted("GetBucketNotificationConfiguration", "GetBucketNotification"),
    ),
    (
        "PUT",
        BUCKET,
        "notification",
        _hinted("PutBucketNotificationConfiguration", "PutBucketNotification"),
    ),
    ("GET", BUCKET, "object-lock", "GetObjectLockConfiguration"),
    ("PUT", BUCKET, "object-lock", "PutObjectLockConfiguration"),
    ("GET", BUCKET, "ownershipControls", "GetBucketOwnershipControls"),
    ("PUT", BUCKET, "ownershipControls", "PutBucketOwnershipControls"),
    ("DELETE", BUCKET, "ownershipControls", "DeleteBucketOwnershipControls"),
    ("GET", BUCKET, "policy", "GetBucketPolicy"),
    ("PUT", BUCKET, "policy", "PutBucketPolicy"),
    ("DELETE", BUCKET, "policy", "DeleteBucketPolicy"),
    ("GET", BUCKET, "publicAccessBlock", "GetPublicAccessBlock"),
    ("PUT", BUCKET, "publicAccessBlock", "PutPublicAccessBlock"),
    ("DELETE", BUCKET, "publicAccessBlock", "DeletePublicAccessBlock"),
    ("GET", BUCKET, "replication", "GetBucketReplication"),
    ("PUT", BUCKET, "replication", "PutBucketReplication"),
    ("DELETE", BUCKET, "replication", "DeleteBucketReplication"),
    ("GET", BUCKET, "requestPayment", "GetBucketRequestPayment"),
    ("PUT", BUCKET, "requestPayment", "PutBucketRequestPayment"),
    ("GET", BUCKET, "tagging", "GetBucketTagging"),
    ("PUT", BUCKET, "tagging", "PutBucketTagging"),
    ("DELETE", BUCKET, "tagging", "DeleteBucketTagging"),
    ("GET", BUCKET, "versioning", "GetBucketVersioning"),
    ("PUT", BUCKET, "versioning", "PutBucketVersioning"),
    ("GET", BUCKET, "website", "GetBucketWebsite"),
    ("PUT", BUCKET, "website", "PutBucketWebsite"),
    ("DELETE", BUCKET, "website", "DeleteBucketWebsite"),
    # The four configuration families S3 defines alike: `?id=` names one configuration.
    *(
        row
        for sub, kind in _CONFIGURATIONS.items()
        for row in (
            (
                "GET",
                BUCKET,
                sub,
                _get_or_list(
                    f"GetBucket{kind}Configuration", f"ListBucket{kind}Configurations", "id"
                ),
            ),
            ("PUT", BUCKET, sub, f"PutBucket{kind}Configuration"),
            ("DELETE", BUCKET, sub, f"DeleteBucket{kind}Configuration"),
        )
    ),
    ("POST", BUCKET, "metadataConfiguration", "CreateBucketMetadataConfiguration"),
    ("GET", BUCKET, "metadataConfiguration", "GetBucketMetadataConfiguration"),
    ("DELETE", BUCKET, "metadataConfiguration", "DeleteBucketMetadataConfiguration"),
    ("POST", BUCKET, "metadataTable", "CreateBucketMetadataTableConfiguration"),
    ("GET", BUCKET, "metadataTable", "GetBucketMetadataTableConfiguration"),
    ("DELETE", BUCKET, "metadataTable", "DeleteBucketMetadataTableConfiguration"),
    (
        "PUT",
        BUCKET,
        "metadataAnnotationTable",
        "UpdateBucketMetadataAnnotationTableConfiguration",
    ),
    (
        "PUT",
        BUCKET,
        "metadataInventoryTable",
        "UpdateBucketMetadataInventoryTableConfiguration",
    ),
    ("PUT", BUCKET, "metadataJournalTable", "UpdateBucketMetadataJournalTableConfiguration"),
    # Objects.
    ("GET", OBJECT, "", "GetObject"),
    ("HEAD", OBJECT, "", "HeadObject"),
    ("PUT", OBJECT, "", _copy_or("PutObject", "CopyObject")),
    ("DELETE", OBJECT, "", "DeleteObject"),
    ("POST", OBJECT, "uploads", "CreateMultipartUpload"),
    ("PUT", OBJECT, "uploadId", _copy_or("UploadPart", "UploadPartCopy")),
    ("POST", OBJECT, "uploadId", "CompleteMultipartUpload"),
    ("DELETE", OBJECT, "uploadId", "AbortMultipartUpload"),
    ("GET", OBJECT, "uploadId", "ListParts"),
    ("GET", OBJECT, "part", "GetPart"),
    ("GET", OBJECT, "acl", "GetObjectAcl"),
    ("PUT", OBJECT, "acl", "PutObjectAcl"),
    ("GET", OBJECT, "tagging", "GetObjectTagging"),
    ("PUT", OBJECT, "tagging", "PutObjectTagging"),
    ("DELETE", OBJECT, "tagging", "DeleteObjectTagging"),
    ("GET", OBJECT, "retention", "GetObjectRetention"),
    ("PUT", OBJECT, "retention", "PutObjectRetention"),
    ("GET", OBJECT, "legal-hold", "GetObjectLegalHold"),
    ("PUT", OBJECT, "legal-hold", "PutObjectLegalHold"),
    ("GET", OBJECT, "attributes", "GetObjectAttributes"),
    ("GET", OBJECT, "torrent", "GetObjectTorrent"),
    ("POST", OBJECT, "restore", "RestoreObject"),
    ("POST", OBJECT, "select", "SelectObjectContent"),
    ("PUT", OBJECT, "renameObject", "RenameObject"),
    ("PUT", OBJECT, "encryption", "UpdateObjectEncryption"),
    (
        "GET",
        OBJECT,
        "annotation",
        _get_or_list("GetObjectAnnotation", "ListObjectAnnotations", "annotationName"),
    ),
    ("PUT", OBJECT, "annotation", "PutObjectAnnotation"),
    ("DELETE", OBJECT, "annotation", "DeleteObjectAnnotation"),
)

TABLE: Final[dict[_Slot, str | Refine]] = {(m, lvl, sub): op for m, lvl, sub, op in ROWS}
if len(TABLE) != len(ROWS):  # pragma: no cover - a typo in the rows above
    raise RuntimeError("operationtable: duplicate (method, level, sub-resource) row")

# The query parameters that select an operation.
SUBRESOURCES: Final = frozenset(sub for _, _, sub, _ in ROWS if sub)

# -- arguments: the other query parameters each operation takes (botocore's `querystring` members)

_RESPONSE_OVERRIDES = (
    "response-cache-control response-content-disposition response-content-encoding "
    "response-content-language response-content-type response-expires"
)
_ARGUMENT_ROWS: tuple[tuple[str, str], ...] = (
    ("ListBuckets", "bucket-region continuation-token max-buckets prefix"),
    ("ListDirectoryBuckets", "continuation-token max-directory-buckets"),
    ("ListObjects", "delimiter encoding-type marker max-keys prefix"),
    (
        "ListObjectsV2",
        "continuation-token delimiter encoding-type fetch-owner max-keys prefix start-after",
    ),
    ("ListObjectVersions", "delimiter encoding-type key-marker max-keys prefix version-id-marker"),
    (
        "ListMultipartUploads",
        "delimiter encoding-type key-marker max-uploads prefix upload-id-marker",
    ),
    *(
        (f"{verb}Bucket{kind}Configuration", "id")
        for verb in ("Get", "Put", "Delete")
        for kind in _CONFIGURATIONS.values()
    ),
    *(
        (f"ListBucket{kind}Configurations", "continuation-token")
        for kind in _CONFIGURATIONS.values()
    ),
    ("GetObject", f"{_RESPONSE_OVERRIDES} partNumber versionId"),
    ("HeadObject", f"{_RESPONSE_OVERRIDES} partNumber versionId"),
    *(
        (name, "versionId")
        for name in (
            "DeleteObject",
            "GetObjectAcl",
            "PutObjectAcl",
            "GetObjectAttributes",
            "GetObjectLegalHold",
            "PutObjectLegalHold",
            "GetObjectRetention",
            "PutObjectRetention",
            "GetObjectTagging",
            "PutObjectTagging",
            "DeleteObjectTagging",
            "RestoreObject",
            "UpdateObjectEncryption",
        )
    ),
    *(
        (name, "annotationName versionId")
        for name in ("GetObjectAnnotation", "PutObjectAnnotation", "DeleteObjectAnnotation")
    ),
    (
        "ListObjectAnnotations",
        "annotation-prefix continuation-token max-annotation-results versionId",
    ),
    ("UploadPart", "partNumber uploadId"),
    ("UploadPartCopy", "partNumber uploadId"),
    ("GetPart", "partNumber uploadId"),
    ("ListParts", "max-parts part-number-marker uploadId"),
    ("AbortMultipartUpload", "uploadId"),
    ("CompleteMultipartUpload", "uploadId"),
    ("SelectObjectContent", "select-type"),
)
ARGUMENTS: Final[dict[str, frozenset[str]]] = {
    name: frozenset(names.split()) for name, names in _ARGUMENT_ROWS
}
NO_ARGUMENTS: Final[frozenset[str]] = frozenset()
