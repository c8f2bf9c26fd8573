"""Per-client authorization: may this client do this operation on this bucket and key?

A client's `allow:` entries name logical buckets (globs), optional keys (globs) and operations
(S3 names or the groups read, write, list, delete, admin); `deny:` entries have the same shape
and win over any allow. A client without `allow:` may do everything not denied (the proxy's
behaviour before policies existed). Anonymous requests are refused unless the `anonymous:`
section allows them. Everything is decided before a request reaches any backend.

Globs are the routing globs: case-sensitive, whole name, `*` crosses `/`. For listings, a key
glob restricts the `prefix` a client may list: it must lie inside the glob's literal prefix.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..routing.globs import compile_glob, literal_prefix
from ..s3.errors import S3Error
from ..s3.operations import GROUPS, OPERATIONS, UNKNOWN, operation_group
from ..s3.operationsets import KEY_LISTINGS, KEYS_IN_BODY


@dataclass(frozen=True, slots=True)
class Grant:
    """One allow or deny entry."""

    buckets: tuple[str, ...]
    keys: tuple[str, ...] | None  # None: every key
    operations: frozenset[str] | None  # operation names and groups; None: every operation

    def covers_operation(self, operation: str) -> bool:
        if self.operations is None:
            return True
        return operation in self.operations or operation_group(operation) in self.operations

    def covers_bucket(self, bucket: str) -> bool:
        return any(compile_glob(b).fullmatch(bucket) for b in self.buckets)

    def covers_key(self, operation: str, key: str, prefix: str) -> bool:
        if self.keys is None:
            return True
        if operation in KEY_LISTINGS:
            return any(prefix.startswith(literal_prefix(k)) for k in self.keys)
        if not key:
            return False  # a key-restricted grant does not reach bucket-level operations
        return any(compile_glob(k).fullmatch(key) for k in self.keys)

    def covers(self, operation: str, bucket: str, key: str, prefix: str) -> bool:
        return (
            self.covers_operation(operation)
            and self.covers_bucket(bucket)
            and self.covers_key(operation, key, prefix)
        )


@dataclass(frozen=True, slots=True)
class ClientPolicy:
    allow: tuple[Grant, ...] | None  # None: everything not denied
    deny: tuple[Grant, ...] = ()

    def permits(self, operation: str, bucket: str, key: str = "", prefix: str = "") -> bool:
        if any(g.covers(operation, bucket, key, prefix) for g in self.deny):
            return False
        if self.allow is None:
            return True
        return any(g.covers(operation, bucket, key, prefix) for g in self.allow)

    def may_name_keys(self, operation: str, bucket: str) -> bool:
        """Whether some key could pass `permits(operation, bucket, key)`: the check made before
        a body naming the keys is read."""
        if any(
            g.keys is None and g.covers_operation(operation) and g.covers_bucket(bucket)
            for g in self.deny
        ):
            return False
        if self.allow is None:
            return True
        return any(g.covers_operation(operation) and g.covers_bucket(bucket) for g in self.allow)

    def filters_keys(self, bucket: str) -> bool:
        """Whether listings of `bucket` must drop keys this client may not see."""
        grants = [g for g in (self.allow or ()) + self.deny if g.covers_bucket(bucket)]
        return any(g.keys is not None for g in grants)

    def lists_key(self, operation: str, bucket: str, key: str) -> bool:
        """Whether a listing (`operation`) of `bucket` may show `key` to this client."""

        def covers(grant: Grant) -> bool:
            return (
                grant.covers_operation(operation)
                and grant.covers_bucket(bucket)
                and (grant.keys is None or any(compile_glob(k).fullmatch(key) for k in grant.keys))
            )

        if any(covers(g) for g in self.deny):
            return False
        return self.allow is None or any(covers(g) for g in self.allow)

    def sees_bucket(self, bucket: str) -> bool:
        """Whether ListBuckets shows `bucket`: some read or list access to it is allowed."""
        if any(
            g.covers_bucket(bucket) and g.keys is None and g.operations is None for g in self.deny
        ):
            return False
        if self.allow is None:
            return True
        return any(
            g.covers_bucket(bucket)
            and (
                g.operations is None
                or g.operations & {"read", "list"}
                or g.operations & KEY_LISTINGS
            )
            for g in self.allow
        )


UNRESTRICTED = ClientPolicy(allow=None)
NOBODY = ClientPolicy(allow=())


def authorize(
    policy: ClientPolicy, client: str, operation: str, bucket: str, key: str, prefix: str = ""
) -> None:
    """Raise AccessDenied unless `policy` lets `client` do `operation` on bucket/key."""
    if operation in KEYS_IN_BODY and not key:
        allowed = policy.may_name_keys(operation, bucket)
    else:
        allowed = policy.permits(operation, bucket, key, prefix)
    if not allowed:
        raise _denied(client, operation, bucket, key)


def authorize_keys(
    policy: ClientPolicy, client: str, operation: str, bucket: str, keys: Iterable[str]
) -> None:
    """Authorize each key a request names in its body: one key refused refuses them all, so
    a DeleteObjects cannot reach past a key grant (or a deny) by naming the keys in its body."""
    for key in keys:
        if not policy.permits(operation, bucket, key):
            raise _denied(client, operation, bucket, key)


def _denied(client: str, operation: str, bucket: str, key: str) -> S3Error:
    target = f"{bucket}/{key}" if key else bucket or "the service"
    return S3Error("AccessDenied", f"Client {client!r} is not allowed to {operation} on {target}.")


# Headers stores act on that S3 does not define: MinIO's (`x-minio-force-delete` makes
# DeleteBucket delete every object in the bucket), lakeFS's and Ceph RGW's.
VENDOR_HEADER_PREFIXES = ("x-minio-", "x-lakefs-", "x-rgw-")


def authorize_vendor_headers(
    policy: ClientPolicy, client: str, bucket: str, headers: Iterable[str], signed: Iterable[str]
) -> None:
    """Raise AccessDenied unless every store-specific header is signed and the client is trusted
    with anything on `bucket`.

    The proxy cannot tell what such a header makes a store do (a DeleteBucket that empties the
    bucket past every key-level grant), so it asks what it asks of an operation it cannot name:
    an `admin` grant on the whole bucket. Unsigned, such a header could have been added on the
    way, like an unsigned `x-amz-*` header (and SigV2 and anonymous requests sign none)."""
    names = sorted(
        {lower for name in headers if (lower := name.lower()).startswith(VENDOR_HEADER_PREFIXES)}
    )
    if not names:
        return
    signed_names = {name.lower() for name in signed}
    unsigned = [name for name in names if name not in signed_names]
    if unsigned:
        raise S3Error(
            "AccessDenied",
            "There were headers present in the request which were not signed",
            details={"HeadersNotSigned": ", ".join(unsigned)},
        )
    if not policy.permits(UNKNOWN, bucket):
        raise S3Error(
            "AccessDenied",
            f"Client {client!r} may send {', '.join(names)} only with an admin grant on "
            f"{bucket or 'the service'}.",
        )


def validate_operations(entries: list[str]) -> tuple[frozenset[str], list[str]]:
    """(known entries, unknown entries) of a grant's `operations:` list."""
    known = {e for e in entries if e in GROUPS or e in OPERATIONS}
    return frozenset(known), [e for e in entries if e not in known]
