"""The small XML documents a backend answers with, rewritten to name only the client's bucket
and keys: listings, multipart results, DeleteObjects results and errors (read with `s3/xml.py`,
namespace kept). Pure: bytes in and out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..s3.deleteobjects import map_delete_result
from ..s3.errors import S3Error
from ..s3.xml import (
    MAX_XML_BYTES,
    child,
    child_text,
    local_name,
    parse_xml,
    serialize_xml,
    set_child_text,
)
from .location import client_location
from .names import NameMapping, decode_url_value, encode_url_value

_LISTINGS = ("ListBucketResult", "ListVersionsResult", "ListMultipartUploadsResult")
# A listing's entries and the element that names each: the entries a rewrite maps or drops.
_ENTRIES = {
    "Contents": "Key",
    "Version": "Key",
    "DeleteMarker": "Key",
    "Upload": "Key",
    "CommonPrefixes": "Prefix",
}


@dataclass(frozen=True, slots=True)
class ClientRequest:
    """What the client asked, which a rewritten answer echoes.

    `key` names the object of a single-object answer; `query` is the client's decoded query
    (echoed listing parameters are restored from it); with `base_url` (e.g.
    "http://127.0.0.1:8080") Location elements point at the proxy, and with `bucket_in_host`
    (virtual-hosted: the base's host names the bucket) their path is the key alone;
    `request_id` replaces an error's RequestId/HostId.
    """

    key: str = ""
    query: Mapping[str, str] | None = None
    base_url: str | None = None
    request_id: str | None = None
    bucket_in_host: bool = False


@dataclass(frozen=True, slots=True)
class KeyFilter:
    """Which listed client keys and common prefixes a part of a split bucket owns (None: all)."""

    keep_key: Callable[[str], bool] | None = None
    keep_prefix: Callable[[str], bool] | None = None


def rewrite_response_xml(
    body: bytes,
    mapping: NameMapping,
    client: ClientRequest = ClientRequest(),
    *,
    keep: KeyFilter = KeyFilter(),
    limit: int = MAX_XML_BYTES,
) -> bytes:
    """Rewrite a backend's XML answer so it names only the client's bucket and keys.

    Dispatches on the root element: ListBucketResult (v1 and v2), ListVersionsResult,
    ListMultipartUploadsResult, ListPartsResult, Initiate/CompleteMultipartUploadResult,
    DeleteResult, Error; anything else (CopyObjectResult, CopyPartResult, …) carries no name and
    comes back unchanged. Listing entries whose backend key has no client name, or that `keep`
    rejects (keys this rule does not own), are dropped and KeyCount is recomputed. `client`
    says what is echoed back (see `ClientRequest`).
    """
    if not body.strip():
        return body
    root = parse_xml(body, limit=limit)
    try:
        return _rewrite_root(root, body, mapping, client, keep)
    except ValueError:  # a name with a character XML 1.0 cannot carry
        raise S3Error(
            "InternalError", "A name in the backend's answer cannot be written in XML."
        ) from None


def _rewrite_root(
    root: Any, body: bytes, mapping: NameMapping, client: ClientRequest, keep: KeyFilter
) -> bytes:
    name = local_name(root)
    if name in _LISTINGS:
        _rewrite_listing(root, mapping, client.query or {}, keep)
    elif name in ("ListPartsResult", "InitiateMultipartUploadResult"):
        _set_names(root, mapping, client.key)
    elif name == "CompleteMultipartUploadResult":
        _set_names(root, mapping, client.key)
        location = child(root, "Location")
        if location is not None:
            location.text = client_location(
                client.base_url or "",
                mapping.client_bucket,
                client.key,
                bucket_in_host=client.bucket_in_host,
            )
    elif name == "DeleteResult":
        map_delete_result(root, mapping)
    elif name == "Error":
        _rewrite_error(root, mapping, client.key, client.request_id)
    else:
        return body
    return serialize_xml(root)


def _set_names(root: Any, mapping: NameMapping, client_key: str) -> None:
    set_child_text(root, "Bucket", mapping.client_bucket)
    _set_key(root, mapping, client_key)


def _set_key(root: Any, mapping: NameMapping, client_key: str) -> None:
    key_element = child(root, "Key")
    if key_element is not None:
        key_element.text = client_key or mapping.to_client_key(key_element.text or "") or ""


def _rewrite_error(
    root: Any, mapping: NameMapping, client_key: str, request_id: str | None
) -> None:
    for name in ("BucketName", "Bucket"):
        set_child_text(root, name, mapping.client_bucket)
    _set_key(root, mapping, client_key)
    resource = child(root, "Resource")
    if resource is not None:
        resource.text = "/" + mapping.client_bucket + (f"/{client_key}" if client_key else "")
    for name in ("Endpoint", "HostId") if request_id is None else ("Endpoint",):
        found = child(root, name)
        if found is not None:
            root.remove(found)
    if request_id is not None:
        set_child_text(root, "RequestId", request_id)
        set_child_text(root, "HostId", request_id)


def _rewrite_listing(
    root: Any, mapping: NameMapping, client_query: Mapping[str, str], keep: KeyFilter
) -> None:
    encoded = (child_text(root, "EncodingType") or "") == "url"

    def decode(value: str) -> str:
        return decode_url_value(value) if encoded else value

    def encode(value: str) -> str:
        return encode_url_value(value) if encoded else value

    for name in ("Name", "Bucket"):
        set_child_text(root, name, mapping.client_bucket)
    echoes = {
        "Prefix": "prefix",
        "Marker": "marker",
        "StartAfter": "start-after",
        "KeyMarker": "key-marker",
        "ContinuationToken": "continuation-token",
    }
    for element_name, parameter in echoes.items():
        element = child(root, element_name)
        if element is None:
            continue
        value = client_query.get(parameter, "")
        element.text = value if element_name == "ContinuationToken" else encode(value)
    for element_name in ("NextMarker", "NextKeyMarker"):
        element = child(root, element_name)
        if element is not None:
            client = mapping.to_client_key(decode(element.text or ""))
            if client is None:
                root.remove(element)
            else:
                element.text = encode(client)
    count = 0
    for item in list(root):
        item_name = local_name(item)
        element_name = _ENTRIES.get(item_name)
        if element_name is None:
            continue
        wanted = keep.keep_prefix if item_name == "CommonPrefixes" else keep.keep_key
        element = child(item, element_name)
        client = mapping.to_client_key(decode("" if element is None else element.text or ""))
        if client is None or (wanted is not None and not wanted(client)):
            root.remove(item)
            continue
        if element is not None:
            element.text = encode(client)
        count += 1
    set_child_text(root, "KeyCount", str(count))
