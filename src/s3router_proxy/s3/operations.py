"""Which S3 API operation a request is, by name, as the S3 API reference spells it.

Policies and routing rules speak in operation names (`GetObject`, `PutBucketPolicy`, …), so every
request is named once, from its shape alone: the HTTP method, whether the path names a bucket and
a key, the one sub-resource query parameter (`?acl`, `?uploads`, `?uploadId=…`, …) and, where S3
itself decides that way, a header (`x-amz-copy-source` turns PutObject into CopyObject and
UploadPart into UploadPartCopy). The table covers every REST operation of the "Amazon S3" section
of the API reference, i.e. every operation in botocore's `s3` service model, which the unit tests
check request by request.

How a name is chosen, and why:

- `_TABLE` maps `(method, level, sub-resource)` to a name, or to a small function for the few
  slots where S3 looks further (an `id`, an `annotationName`, a header). It is one dict lookup on
  the per-request hot path, built once at import.
- Two different sub-resources in one request (`PUT /b?acl&policy`) give `Unknown`: S3
  implementations disagree about which one wins, and a name we are not sure of must never pass a
  policy written for another operation. The one exception is a sub-resource that the other takes
  as an argument (`GET /b/k?part&uploadId=…` is GetPart, not ListParts).
- Every other query parameter must be an argument of the operation so named (as botocore's
  model lists them: `prefix`, `max-keys`, `versionId`, `partNumber`, `response-*`, …) or one any
  request may carry (`x-id`, presigned-URL authentication, `x-amz-*` headers an SDK moved into a
  presigned URL). Anything else gives `Unknown`: S3 grows by adding sub-resources
  (`?default-storage-class` was once new), and a parameter we do not know may be one, which a
  backend would perform as an operation other than the one a policy was asked about. A copy
  source in the query (`?x-amz-copy-source=`) is `Unknown` for the same reason: in a header it
  turns PutObject into CopyObject.
- `x-id` (sent by newer SDKs) is only a hint. It picks between operations that are identical on
  the wire (the deprecated `GetBucketLifecycle` and `GetBucketLifecycleConfiguration`, …) and is
  otherwise ignored, so a client cannot rename a DELETE into a GET by adding `?x-id=GetObject`.
  Requests without it are named exactly the same.
- `OPTIONS` on a bucket or a key is a browser's CORS preflight; S3 has no operation name for it,
  so it is called `OptionsPreflight` whatever its query.
- `POST /bucket` without a sub-resource is the browser form upload `PostObject` only when its
  body is `multipart/form-data`; anything else S3 rejects, and so it is `Unknown`.
- Anything else is `Unknown`. Nothing here raises: naming is not validating, the backend answers
  a malformed request with its own S3 error.

Groups (`operation_group`), the coarse verbs routing and policy rules may use instead of names:

- `read`: reads one object or its metadata (GetObject, HeadObject, GetObjectAttributes,
  GetObjectAcl/Tagging/Retention/LegalHold/Torrent/Annotation, SelectObjectContent), a part of
  an upload in progress (GetPart), plus the
  bucket probes every SDK sends before a read (HeadBucket, GetBucketLocation) and the CORS
  preflight.
- `list`: enumerates buckets, objects, versions, uploads, parts or annotations.
- `write`: creates or changes an object or its metadata: PutObject, CopyObject, the multipart
  upload steps except abort, PutObjectAcl/Tagging/Retention/LegalHold/Annotation, RestoreObject,
  PostObject, RenameObject, UpdateObjectEncryption, WriteGetObjectResponse.
- `delete`: removes an object or object data: DeleteObject(s), DeleteObjectTagging,
  DeleteObjectAnnotation and AbortMultipartUpload (it throws away uploaded parts, and a client
  allowed to write but not delete must not be able to cancel another writer's upload).
- `admin`: everything about a bucket itself: CreateBucket, DeleteBucket and every bucket
  configuration get/put/delete/list (ACL, policy, CORS, lifecycle, tagging, versioning, …),
  CreateSession (it mints credentials) and `Unknown`, so that a request we cannot name only
  passes a rule that trusts the client with everything.

Callers pass the method upper-case as it arrives on the wire, the decoded query as a mapping of
first values, and headers as a case-insensitive mapping (the request's `CIMultiDictProxy`;
a plain dict must use lower-case names).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final, Literal, get_args

__all__ = ["GROUPS", "OPERATIONS", "UNKNOWN", "Group", "operation_group", "operation_name"]

Group = Literal["read", "write", "list", "delete", "admin"]
# The group names a rule or grant may use in place of operation names.
GROUPS: Final[frozenset[str]] = frozenset(get_args(Group))
UNKNOWN: Final = "Unknown"
OPTIONS_PREFLIGHT: Final = "OptionsPreflight"

# Levels of a request path: "/" is the service, "/b" a bucket, "/b/k" an object.
_SERVICE: Final = 0
_BUCKET: Final = 1
_OBJECT: Final = 2

_Refine = Callable[[Mapping[str, str], Mapping[str, str]], str]
_Slot = tuple[str, int, str]

# Names only a refinement (below) or the slow path returns; each is added next to its code, so
# `OPERATIONS` is assembled from the same place that produces the names.
_REFINED: set[str] = {OPTIONS_PREFLIGHT, UNKNOWN}


# -- refinements: the few slots where S3 looks past method, level and sub-resource -------------


def _copy_or(plain: str, copy: str) -> _Refine:
    """PutObject/UploadPart become their Copy variant when the request names a copy source."""
    _REFINED.update((plain, copy))

    def refine(query: Mapping[str, str], headers: Mapping[str, str]) -> str:
        return copy if "x-amz-copy-source" in headers else plain

    return refine


def _get_or_list(get: str, listing: str, selector: str) -> _Refine:
    """Analytics/inventory/metrics/… configurations: `?id=` reads one, no id lists them all."""
    _REFINED.update((get, listing))

    def refine(query: Mapping[str, str], headers: Mapping[str, str]) -> str:
        return get if selector in query else listing

    return refine


def _hinted(default: str, *aliases: str) -> _Refine:
    """Operations identical on the wire: trust `x-id` only to pick among them."""
    allowed = frozenset(aliases)
    _REFINED.update((default, *aliases))

    def refine(query: Mapping[str, str], headers: Mapping[str, str]) -> str:
        hint = query.get("x-id")
        return hint if hint is not None and hint in allowed else default

    return refine


_REFINED.update(("ListBuckets", "ListDirectoryBuckets"))


def _list_buckets(query: Mapping[str, str], headers: Mapping[str, str]) -> str:
    """`GET /` is ListBuckets, or ListDirectoryBuckets when it pages by directory bucket."""
    if "max-directory-buckets" in query or query.get("x-id") == "ListDirectoryBuckets":
        return "ListDirectoryBuckets"
    return "ListBuckets"


_REFINED.update(("ListObjects", "ListObjectsV2"))


def _list_objects(query: Mapping[str, str], headers: Mapping[str, str]) -> str:
    """`list-type=2` selects ListObjectsV2; any other value is the original ListObjects."""
    return "ListObjectsV2" if query.get("list-type") == "2" else "ListObjects"


_REFINED.update(("PostObject", "WriteGetObjectResponse"))


def _is_write_get_object_response(name: str, headers: Mapping[str, str]) -> bool:
    """Object Lambda's reply: `POST /WriteGetObjectResponse` with the route and token headers."""
    return (
        name == "WriteGetObjectResponse"
        and "x-amz-request-route" in headers
        and "x-amz-request-token" in headers
    )


def _post_bucket(bucket: str, headers: Mapping[str, str]) -> str:
    """A bare POST on a bucket: a browser form upload, or Object Lambda's reply (path style)."""
    if headers.get("content-type", "").lower().startswith("multipart/form-data"):
        return "PostObject"
    if _is_write_get_object_response(bucket, headers):
        return "WriteGetObjectResponse"
    return UNKNOWN


# -- the table ----------------------------------------------------------------------------------

_ROWS: tuple[tuple[str, int, str, str | _Refine], ...] = (
    # Service.
    ("GET", _SERVICE, "", _list_buckets),
    # Buckets.
    ("PUT", _BUCKET, "", "CreateBucket"),
    ("DELETE", _BUCKET, "", "DeleteBucket"),
    ("HEAD", _BUCKET, "", "HeadBucket"),
    ("GET", _BUCKET, "", "ListObjects"),
    ("GET", _BUCKET, "list-type", _list_objects),
    ("GET", _BUCKET, "versions", "ListObjectVersions"),
    ("GET", _BUCKET, "uploads", "ListMultipartUploads"),
    ("POST", _BUCKET, "delete", "DeleteObjects"),
    ("GET", _BUCKET, "session", "CreateSession"),
    ("GET", _BUCKET, "location", "GetBucketLocation"),
    ("GET", _BUCKET, "policyStatus", "GetBucketPolicyStatus"),
    ("GET", _BUCKET, "abac", "GetBucketAbac"),
    ("PUT", _BUCKET, "abac", "PutBucketAbac"),
    ("GET", _BUCKET, "accelerate", "GetBucketAccelerateConfiguration"),
    ("PUT", _BUCKET, "accelerate", "PutBucketAccelerateConfiguration"),
    ("GET", _BUCKET, "acl", "GetBucketAcl"),
    ("PUT", _BUCKET, "acl", "PutBucketAcl"),
    ("GET", _BUCKET, "cors", "GetBucketCors"),
    ("PUT", _BUCKET, "cors", "PutBucketCors"),
    ("DELETE", _BUCKET, "cors", "DeleteBucketCors"),
    ("GET", _BUCKET, "default-storage-class", "GetBucketDefaultStorageClass"),
    ("PUT", _BUCKET, "default-storage-class", "PutBucketDefaultStorageClass"),
    ("GET", _BUCKET, "encryption", "GetBucketEncryption"),
    ("PUT", _BUCKET, "encryption", "PutBucketEncryption"),
    ("DELETE", _BUCKET, "encryption", "DeleteBucketEncryption"),
    ("GET", _BUCKET, "lifecycle", _hinted("GetBucketLifecycleConfiguration", "GetBucketLifecycle")),
    ("PUT", _BUCKET, "lifecycle", _hinted("PutBucketLifecycleConfiguration", "PutBucketLifecycle")),
    ("DELETE", _BUCKET, "lifecycle", "DeleteBucketLifecycle"),
    ("GET", _BUCKET, "logging", "GetBucketLogging"),
    ("PUT", _BUCKET, "logging", "PutBucketLogging"),
    (
        "GET",
        _BUCKET,
        "notification",
        _hinted("GetBucketNotificationConfiguration", "GetBucketNotification"),
    ),
    (
        "PUT",
        _BUCKET,
        "notification",
        _hinted("PutBucketNotificationConfiguration", "PutBucketNotification"),
    ),
    ("GET", _BUCKET, "object-lock", "GetObjectLockConfiguration"),
    ("PUT", _BUCKET, "object-lock", "PutObjectLockConfiguration"),
    ("GET", _BUCKET, "ownershipControls", "GetBucketOwnershipControls"),
    ("PUT", _BUCKET, "ownershipControls", "PutBucketOwnershipControls"),
    ("DELETE", _BUCKET, "ownershipControls", "DeleteBucketOwnershipControls"),
    ("GET", _BUCKET, "policy", "GetBucketPolicy"),
    ("PUT", _BUCKET, "policy", "PutBucketPolicy"),
    ("DELETE", _BUCKET, "policy", "DeleteBucketPolicy"),
    ("GET", _BUCKET, "publicAccessBlock", "GetPublicAccessBlock"),
    ("PUT", _BUCKET, "publicAccessBlock", "PutPublicAccessBlock"),
    ("DELETE", _BUCKET, "publicAccessBlock", "DeletePublicAccessBlock"),
    ("GET", _BUCKET, "replication", "GetBucketReplication"),
    ("PUT", _BUCKET, "replication", "PutBucketReplication"),
    ("DELETE", _BUCKET, "replication", "DeleteBucketReplication"),
    ("GET", _BUCKET, "requestPayment", "GetBucketRequestPayment"),
    ("PUT", _BUCKET, "requestPayment", "PutBucketRequestPayment"),
    ("GET", _BUCKET, "tagging", "GetBucketTagging"),
    ("PUT", _BUCKET, "tagging", "PutBucketTagging"),
    ("DELETE", _BUCKET, "tagging", "DeleteBucketTagging"),
    ("GET", _BUCKET, "versioning", "GetBucketVersioning"),
    ("PUT", _BUCKET, "versioning", "PutBucketVersioning"),
    ("GET", _BUCKET, "website", "GetBucketWebsite"),
    ("PUT", _BUCKET, "website", "PutBucketWebsite"),
    ("DELETE", _BUCKET, "website", "DeleteBucketWebsite"),
    (
        "GET",
        _BUCKET,
        "analytics",
        _get_or_list("GetBucketAnalyticsConfiguration", "ListBucketAnalyticsConfigurations", "id"),
    ),
    ("PUT", _BUCKET, "analytics", "PutBucketAnalyticsConfiguration"),
    ("DELETE", _BUCKET, "analytics", "DeleteBucketAnalyticsConfiguration"),
    (
        "GET",
        _BUCKET,
        "intelligent-tiering",
        _get_or_list(
            "GetBucketIntelligentTieringConfiguration",
            "ListBucketIntelligentTieringConfigurations",
            "id",
        ),
    ),
    ("PUT", _BUCKET, "intelligent-tiering", "PutBucketIntelligentTieringConfiguration"),
    ("DELETE", _BUCKET, "intelligent-tiering", "DeleteBucketIntelligentTieringConfiguration"),
    (
        "GET",
        _BUCKET,
        "inventory",
        _get_or_list("GetBucketInventoryConfiguration", "ListBucketInventoryConfigurations", "id"),
    ),
    ("PUT", _BUCKET, "inventory", "PutBucketInventoryConfiguration"),
    ("DELETE", _BUCKET, "inventory", "DeleteBucketInventoryConfiguration"),
    (
        "GET",
        _BUCKET,
        "metrics",
        _get_or_list("GetBucketMetricsConfiguration", "ListBucketMetricsConfigurations", "id"),
    ),
    ("PUT", _BUCKET, "metrics", "PutBucketMetricsConfiguration"),
    ("DELETE", _BUCKET, "metrics", "DeleteBucketMetricsConfiguration"),
    ("POST", _BUCKET, "metadataConfiguration", "CreateBucketMetadataConfiguration"),
    ("GET", _BUCKET, "metadataConfiguration", "GetBucketMetadataConfiguration"),
    ("DELETE", _BUCKET, "metadataConfiguration", "DeleteBucketMetadataConfiguration"),
    ("POST", _BUCKET, "metadataTable", "CreateBucketMetadataTableConfiguration"),
    ("GET", _BUCKET, "metadataTable", "GetBucketMetadataTableConfiguration"),
    ("DELETE", _BUCKET, "metadataTable", "DeleteBucketMetadataTableConfiguration"),
    (
        "PUT",
        _BUCKET,
        "metadataAnnotationTable",
        "UpdateBucketMetadataAnnotationTableConfiguration",
    ),
    (
        "PUT",
        _BUCKET,
        "metadataInventoryTable",
        "UpdateBucketMetadataInventoryTableConfiguration",
    ),
    ("PUT", _BUCKET, "metadataJournalTable", "UpdateBucketMetadataJournalTableConfiguration"),
    # Objects.
    ("GET", _OBJECT, "", "GetObject"),
    ("HEAD", _OBJECT, "", "HeadObject"),
    ("PUT", _OBJECT, "", _copy_or("PutObject", "CopyObject")),
    ("DELETE", _OBJECT, "", "DeleteObject"),
    ("POST", _OBJECT, "uploads", "CreateMultipartUpload"),
    ("PUT", _OBJECT, "uploadId", _copy_or("UploadPart", "UploadPartCopy")),
    ("POST", _OBJECT, "uploadId", "CompleteMultipartUpload"),
    ("DELETE", _OBJECT, "uploadId", "AbortMultipartUpload"),
    ("GET", _OBJECT, "uploadId", "ListParts"),
    ("GET", _OBJECT, "part", "GetPart"),
    ("GET", _OBJECT, "acl", "GetObjectAcl"),
    ("PUT", _OBJECT, "acl", "PutObjectAcl"),
    ("GET", _OBJECT, "tagging", "GetObjectTagging"),
    ("PUT", _OBJECT, "tagging", "PutObjectTagging"),
    ("DELETE", _OBJECT, "tagging", "DeleteObjectTagging"),
    ("GET", _OBJECT, "retention", "GetObjectRetention"),
    ("PUT", _OBJECT, "retention", "PutObjectRetention"),
    ("GET", _OBJECT, "legal-hold", "GetObjectLegalHold"),
    ("PUT", _OBJECT, "legal-hold", "PutObjectLegalHold"),
    ("GET", _OBJECT, "attributes", "GetObjectAttributes"),
    ("GET", _OBJECT, "torrent", "GetObjectTorrent"),
    ("POST", _OBJECT, "restore", "RestoreObject"),
    ("POST", _OBJECT, "select", "SelectObjectContent"),
    ("PUT", _OBJECT, "renameObject", "RenameObject"),
    ("PUT", _OBJECT, "encryption", "UpdateObjectEncryption"),
    (
        "GET",
        _OBJECT,
        "annotation",
        _get_or_list("GetObjectAnnotation", "ListObjectAnnotations", "annotationName"),
    ),
    ("PUT", _OBJECT, "annotation", "PutObjectAnnotation"),
    ("DELETE", _OBJECT, "annotation", "DeleteObjectAnnotation"),
)

_TABLE: Final[dict[_Slot, str | _Refine]] = {(m, lvl, sub): op for m, lvl, sub, op in _ROWS}
if len(_TABLE) != len(_ROWS):  # pragma: no cover - a typo in the rows above
    raise RuntimeError("operations: duplicate (method, level, sub-resource) row")

# The query parameters that select an operation.
_SUBRESOURCES: Final = frozenset(sub for _, _, sub, _ in _ROWS if sub)

# -- arguments: the other query parameters each operation takes (botocore's `querystring` members)

_RESPONSE_OVERRIDES = (
    "response-cache-control response-content-disposition response-content-encoding "
    "response-content-language response-content-type response-expires"
)
_CONFIGURATIONS = ("Analytics", "IntelligentTiering", "Inventory", "Metrics")
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
        for kind in _CONFIGURATIONS
    ),
    *((f"ListBucket{kind}Configurations", "continuation-token") for kind in _CONFIGURATIONS),
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
_ARGUMENTS: Final[dict[str, frozenset[str]]] = {
    name: frozenset(names.split()) for name, names in _ARGUMENT_ROWS
}
_NO_ARGUMENTS: Final[frozenset[str]] = frozenset()
# Parameters any request may carry: the SDK's hint and SigV2 presigned-URL authentication.
# (SigV4's `X-Amz-*` ones are headers in the query, below.)
_ANY_REQUEST: Final = frozenset({"x-id", "AWSAccessKeyId", "Signature", "Expires"})
# Headers that name an operation; as query parameters they could name another one at a backend.
_NAMING_HEADERS: Final = frozenset({"x-amz-copy-source"})


def _takes(operation: str, sub: str, query: Mapping[str, str]) -> bool:
    """Whether every query parameter is the sub-resource or an argument of `operation`."""
    arguments = _ARGUMENTS.get(operation, _NO_ARGUMENTS)
    for name in query:
        if name == sub or name in arguments or name in _ANY_REQUEST:
            continue
        lower = name.lower()
        if lower.startswith("x-amz-") and lower not in _NAMING_HEADERS:
            continue  # presigned-URL auth, or a header an SDK hoisted into the query
        return False
    return True


def _sub_resource(method: str, level: int, subs: set[str]) -> str | None:
    """Of several sub-resources, the one whose operation takes all the others as arguments
    (`?part&uploadId=…`), if exactly one does."""
    found = None
    for sub in subs:
        entry = _TABLE.get((method, level, sub))
        if isinstance(entry, str) and subs - {sub} <= _ARGUMENTS.get(entry, _NO_ARGUMENTS):
            if found is not None:
                return None
            found = sub
    return found


def operation_name(
    method: str,
    bucket: str,
    key: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
) -> str:
    """The S3 operation name of a request, `OptionsPreflight` for CORS, else `Unknown`."""
    if bucket:
        level = _OBJECT if key else _BUCKET
    elif key:
        return UNKNOWN  # a key without a bucket names nothing S3 serves
    else:
        level = _SERVICE
    if method == "OPTIONS":
        return OPTIONS_PREFLIGHT if level != _SERVICE else UNKNOWN
    if not query:
        entry = _TABLE.get((method, level, ""))
        if isinstance(entry, str):
            return entry
        if entry is None:
            return _unmatched(method, level, "", bucket, key, headers)
        return entry(query, headers)
    sub = ""
    subs = {name for name in query if name in _SUBRESOURCES}
    if len(subs) == 1:
        sub = subs.pop()
    elif subs:
        found = _sub_resource(method, level, subs)
        if found is None:
            return UNKNOWN
        sub = found
    entry = _TABLE.get((method, level, sub))
    if entry is None:
        name = _unmatched(method, level, sub, bucket, key, headers)
    elif isinstance(entry, str):
        name = entry
    else:
        name = entry(query, headers)
    return name if _takes(name, sub, query) else UNKNOWN


def _unmatched(
    method: str, level: int, sub: str, bucket: str, key: str, headers: Mapping[str, str]
) -> str:
    """The slow path: form uploads, Object Lambda replies; otherwise `Unknown`."""
    if method == "POST" and not sub:
        if level == _BUCKET:
            return _post_bucket(bucket, headers)
        # Virtual-hosted Object Lambda: the route is the "bucket", the path is the key.
        if level == _OBJECT and _is_write_get_object_response(key, headers):
            return "WriteGetObjectResponse"
    return UNKNOWN


# -- groups ---------------------------------------------------------------------------------------

_READ = (
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
    OPTIONS_PREFLIGHT,
)
_LIST = (
    "ListBuckets",
    "ListDirectoryBuckets",
    "ListObjects",
    "ListObjectsV2",
    "ListObjectVersions",
    "ListMultipartUploads",
    "ListParts",
    "ListObjectAnnotations",
)
_WRITE = (
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
)
_DELETE = (
    "DeleteObject",
    "DeleteObjects",
    "DeleteObjectTagging",
    "DeleteObjectAnnotation",
    "AbortMultipartUpload",
)


_GROUPS: Final[dict[str, Group]] = {
    name: "admin" for name in (*(op for op in _TABLE.values() if isinstance(op, str)), *_REFINED)
}
_GROUPED: tuple[tuple[Group, tuple[str, ...]], ...] = (
    ("read", _READ),
    ("list", _LIST),
    ("write", _WRITE),
    ("delete", _DELETE),
)
for _group, _names in _GROUPED:
    for _name in _names:
        if _name not in _GROUPS:  # pragma: no cover - a typo in the groups above
            raise RuntimeError(f"operations: {_name} is grouped but never named")
        _GROUPS[_name] = _group
del _group, _names, _name

OPERATIONS: Final[frozenset[str]] = frozenset(_GROUPS)
"""Every name `operation_name` can return, `OptionsPreflight` and `Unknown` included."""


def operation_group(operation: str) -> Group:
    """The coarse group of an operation name (see the module docstring for the rules).

    Raises `ValueError` for a name not in `OPERATIONS`, so a misspelt name in a config file is
    caught when the config loads rather than silently matching nothing.
    """
    try:
        return _GROUPS[operation]
    except KeyError:
        raise ValueError(f"not an S3 operation name: {operation!r}") from None
