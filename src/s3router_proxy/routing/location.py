"""`Location` values in the client's names and at the proxy's address: a backend's Location
header (CreateBucket, redirects) and the Location a CompleteMultipartUpload answer carries."""

from __future__ import annotations

from urllib.parse import quote, unquote, urlsplit

from .names import NameMapping


def client_location(
    client_base_url: str, bucket: str, key: str = "", *, bucket_in_host: bool = False
) -> str:
    """A Location value for the client: `base/bucket[/key]`, path style, key URL-encoded; with
    `bucket_in_host` (a virtual-hosted request: the base's host names the bucket), `base/[key]`."""
    path = "" if bucket_in_host else "/" + quote(bucket, safe="")
    if key:
        path += "/" + quote(key, safe="/~")
    return client_base_url.rstrip("/") + (path or "/")


def rewrite_location_header(
    value: str,
    mapping: NameMapping,
    *,
    client_base_url: str = "",
    client_key: str = "",
    bucket_in_host: bool = False,
) -> str:
    """A backend's `Location` header (CreateBucket, redirects) in the client's names; for a
    virtual-hosted request (`bucket_in_host`) always absolute, as a path alone names no bucket."""
    parts = urlsplit(value)
    path = parts.path
    bucket = mapping.backend_bucket
    key = ""
    if path == f"/{bucket}" or path.startswith(f"/{bucket}/"):
        key = unquote(path[len(bucket) + 2 :])
    elif parts.hostname and parts.hostname.startswith(bucket + "."):
        key = unquote(path[1:])
    if client_key:
        key = client_key
    elif key:
        key = mapping.to_client_key(key) or ""
    base = client_base_url if parts.scheme or bucket_in_host else ""
    return client_location(base, mapping.client_bucket, key, bucket_in_host=bucket_in_host)
