"""Which S3 API operation a request is, by name, as the S3 API reference spells it.

Policies and routing rules speak in operation names (`GetObject`, `PutBucketPolicy`, …), so every
request is named once, from its shape alone: the HTTP method, whether the path names a bucket and
a key, the one sub-resource query parameter (`?acl`, `?uploads`, `?uploadId=…`, …) and, where S3
itself decides that way, a header (`x-amz-copy-source` turns PutObject into CopyObject and
UploadPart into UploadPartCopy). The table covers every REST operation of the "Amazon S3" section
of the API reference, i.e. every operation in botocore's `s3` service model, which the unit tests
check request by request.

How a name is chosen, and why:

- `operationtable.TABLE` maps `(method, level, sub-resource)` to a name, or to a small function
  for the few slots where S3 looks further (an `id`, an `annotationName`, a header). It is one
  dict lookup on the per-request hot path, built once at import.
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

from collections.abc import Mapping
from typing import Final, Literal, get_args

from .operationtable import (
    ARGUMENTS,
    BUCKET,
    NO_ARGUMENTS,
    OBJECT,
    REFINED,
    SERVICE,
    SUBRESOURCES,
    TABLE,
)

__all__ = ["GROUPS", "OPERATIONS", "UNKNOWN", "Group", "operation_group", "operation_name"]

Group = Literal["read", "write", "list", "delete", "admin"]
# The group names a rule or grant may use in place of operation names.
GROUPS: Final[frozenset[str]] = frozenset(get_args(Group))
UNKNOWN: Final = "Unknown"
OPTIONS_PREFLIGHT: Final = "OptionsPreflight"


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


# Parameters any request may carry: the SDK's hint and SigV2 presigned-URL authentication.
# (SigV4's `X-Amz-*` ones are headers in the query, below.)
_ANY_REQUEST: Final = frozenset({"x-id", "AWSAccessKeyId", "Signature", "Expires"})
# Headers that name an operation; as query parameters they could name another one at a backend.
_NAMING_HEADERS: Final = frozenset({"x-amz-copy-source"})


def _takes(operation: str, sub: str, query: Mapping[str, str]) -> bool:
    """Whether every query parameter is the sub-resource or an argument of `operation`."""
    arguments = ARGUMENTS.get(operation, NO_ARGUMENTS)
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
        entry = TABLE.get((method, level, sub))
        if isinstance(entry, str) and subs - {sub} <= ARGUMENTS.get(entry, NO_ARGUMENTS):
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
        level = OBJECT if key else BUCKET
    elif key:
        return UNKNOWN  # a key without a bucket names nothing S3 serves
    else:
        level = SERVICE
    if method == "OPTIONS":
        return OPTIONS_PREFLIGHT if level != SERVICE else UNKNOWN
    if not query:
        entry = TABLE.get((method, level, ""))
        if isinstance(entry, str):
            return entry
        if entry is None:
            return _unmatched(method, level, "", bucket, key, headers)
        return entry(query, headers)
    sub = ""
    subs = {name for name in query if name in SUBRESOURCES}
    if len(subs) == 1:
        sub = subs.pop()
    elif subs:
        found = _sub_resource(method, level, subs)
        if found is None:
            return UNKNOWN
        sub = found
    entry = TABLE.get((method, level, sub))
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
        if level == BUCKET:
            return _post_bucket(bucket, headers)
        # Virtual-hosted Object Lambda: the route is the "bucket", the path is the key.
        if level == OBJECT and _is_write_get_object_response(key, headers):
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


# Names the table holds, those only its refinements return, and those only the slow path
# (`_unmatched`) or `operation_name` itself returns.
_NAMED = (
    *(op for op in TABLE.values() if isinstance(op, str)),
    *REFINED,
    "PostObject",
    "WriteGetObjectResponse",
    OPTIONS_PREFLIGHT,
    UNKNOWN,
)
_GROUPS: Final[dict[str, Group]] = {name: "admin" for name in _NAMED}
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
