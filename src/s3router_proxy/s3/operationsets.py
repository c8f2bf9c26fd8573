"""How the proxy treats S3 operations, as sets of operation names (`operations.py` names them).

Each set answers one question a layer asks about a request's operation; it lives here, once,
so two layers never disagree about which operations are listings, which carry keys in their
body or which a mirror receives. Every name is checked against `OPERATIONS` at import, so a
misspelt name fails loudly instead of silently matching nothing.
"""

from __future__ import annotations

from typing import Final

from .operations import OPERATIONS

# Listings of a bucket's objects or versions, paged by key: the prefix of the request is what
# a rule or grant is matched with, and a bucket split over backends is listed by merging them.
OBJECT_LISTINGS: Final = frozenset({"ListObjects", "ListObjectsV2", "ListObjectVersions"})

# Listings whose entries are keys (objects, versions, uploads): a client granted only some
# keys sees only those, so the proxy builds these listings itself for such a client.
KEY_LISTINGS: Final = OBJECT_LISTINGS | {"ListMultipartUploads"}

# Bucket-level requests that name their keys in the body: each key is authorized once the body
# is read; before that, only whether the client may name any key there.
KEYS_IN_BODY: Final = frozenset({"DeleteObjects"})

# Uploads whose request body is the object, so its size is the object's size (`min_size`,
# `max_size` rule conditions).
SIZED_OPERATIONS: Final = frozenset({"PutObject", "UploadPart", "PostObject"})

# Uploads refused without a length, as S3 does (a length is part of their contract).
NEEDS_LENGTH: Final = frozenset({"PutObject", "UploadPart"})

# Where an `x-amz-checksum-*` header is the checksum of the whole object being completed (with
# `x-amz-checksum-type: FULL_OBJECT`, as the AWS CRT client sends it), not of the request's
# own body: the backend checks it against the parts it holds.
OBJECT_CHECKSUM_HEADERS: Final = frozenset({"CompleteMultipartUpload"})

# Bucket-level writes that do not change the bucket's configuration, or that act part by part
# with names mapped: allowed on a bucket that is only a prefix of a backend bucket.
NOT_CONFIGURATION: Final = frozenset({"CreateBucket", "DeleteBucket", "DeleteObjects"})

# Bucket-level requests that act on every part of a bucket split (or renamed) by rules.
SPLIT_BUCKET_OPERATIONS: Final = frozenset(
    {"DeleteObjects", "CreateBucket", "DeleteBucket", "HeadBucket", "ListMultipartUploads"}
)

# Answers that are XML documents naming the bucket or keys, rewritten into the client's names.
XML_ANSWERS: Final = frozenset(
    {
        "CreateMultipartUpload",
        "CompleteMultipartUpload",
        "ListParts",
        "ListMultipartUploads",
        "DeleteObjects",
        "CopyObject",
        "UploadPartCopy",
    }
)

# Reads a rule's `fallback:` backends may answer (migrations: new store first, old one next).
FALLBACK_OPERATIONS: Final = frozenset({"GetObject", "HeadObject", "GetObjectAttributes"})

# Operations whose bodies S3-compatible stores may insist carry a Content-MD5.
CONTENT_MD5_OPERATIONS: Final = frozenset(
    {
        "DeleteObjects",
        "PutBucketCors",
        "PutBucketLifecycle",
        "PutBucketLifecycleConfiguration",
        "PutBucketPolicy",
        "PutBucketReplication",
        "PutBucketTagging",
        "PutObjectLockConfiguration",
        "PutObjectRetention",
        "PutObjectLegalHold",
        "PutObjectTagging",
    }
)

# The writes a mirror receives; every other request goes to the target alone.
MIRRORED_OPERATIONS: Final = frozenset(
    {
        "PutObject",
        "CreateMultipartUpload",
        "UploadPart",
        "UploadPartCopy",
        "CompleteMultipartUpload",
        "AbortMultipartUpload",
        "CopyObject",
        "DeleteObject",
    }
)

# Steps of a multipart upload already created: they follow that upload's mirrors (sealed in its
# UploadId), never the mirrors a rule has now.
UPLOAD_STEPS: Final = frozenset(
    {"UploadPart", "UploadPartCopy", "CompleteMultipartUpload", "AbortMultipartUpload"}
)

# What a store without multipart uploads or versions (`kind: redis`) answers NotImplemented.
MULTIPART_OPERATIONS: Final = UPLOAD_STEPS | {
    "CreateMultipartUpload",
    "ListMultipartUploads",
    "ListParts",
}
VERSION_OPERATIONS: Final = frozenset({"ListObjectVersions", "PutBucketVersioning"})

# Operations the proxy refuses whatever the client may do, and why.
NOT_PROXIED: Final[dict[str, str]] = {
    # The answer holds credentials minted from the backend's own keys: a client holding them
    # would talk to the backend directly, past every rule, grant and name mapping.
    "CreateSession": "CreateSession is not supported by this proxy: it would hand out the "
    "backend's credentials.",
    # The source key is in x-amz-rename-source, which no grant or name mapping would see, and
    # a rename deletes it.
    "RenameObject": "RenameObject is not supported by this proxy; copy and delete instead.",
}

_ALL: Final = (
    OBJECT_LISTINGS,
    KEY_LISTINGS,
    KEYS_IN_BODY,
    SIZED_OPERATIONS,
    NEEDS_LENGTH,
    OBJECT_CHECKSUM_HEADERS,
    NOT_CONFIGURATION,
    SPLIT_BUCKET_OPERATIONS,
    XML_ANSWERS,
    FALLBACK_OPERATIONS,
    CONTENT_MD5_OPERATIONS,
    MIRRORED_OPERATIONS,
    UPLOAD_STEPS,
    MULTIPART_OPERATIONS,
    VERSION_OPERATIONS,
    frozenset(NOT_PROXIED),
)
for _names in _ALL:
    if not _names <= OPERATIONS:  # pragma: no cover - a typo in the sets above
        raise RuntimeError(f"operationsets: not operation names: {sorted(_names - OPERATIONS)}")
del _names
