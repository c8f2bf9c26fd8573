"""Name mapping: client bucket and key ↔ the backend's, and every S3 document that carries them.

A rule that maps names turns the client's `bucket/key` into the backend's `bucket'/key'`:

- the bucket is replaced by the rule's `mapped_bucket` (unchanged when it has none);
- the key's *literal prefix* C (the rule's `key_pattern` up to its first `*`, `?` or `[`; empty
  without a key pattern) is replaced by the backend prefix P: `key' = P + key[len(C):]`.
  P is the rule's `mapped_prefix`, with a `/` appended when the prefix ends at a path boundary
  (C is empty or ends with `/`) and the mapped prefix does not already end with one. So
  `key_pattern: team2/*` + `mapped_prefix: data/team2` stores `team2/obj2` as `data/team2/obj2`,
  and a whole-bucket rule with `mapped_prefix: main` stores `a/b` as `main/a/b`. Without a
  `mapped_prefix` keys are not rewritten (P = C).
- The inverse strips P and puts C back; a backend key outside P has no client name and is never
  shown. Within one rule both directions preserve S3's (UTF-8 byte) order.

Everything else here applies a `NameMapping` to what S3 sends around names: listing parameters,
`x-amz-copy-source`, `Location` headers and the small XML documents S3 answers with (listings,
multipart results, DeleteObjects results, errors; read with `s3/xml.py`, namespace kept). The
DeleteObjects request body is `s3/deleteobjects.py`. All functions are pure: bytes and strings in
and out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus, unquote, unquote_plus, urlsplit

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

# -- the mapping ----------------------------------------------------------------------------------


def join_prefix(literal_prefix: str, mapped_prefix: str | None) -> str:
    """The backend prefix P that replaces a rule's literal key prefix C (see module docstring)."""
    if mapped_prefix is None:
        return literal_prefix
    at_boundary = literal_prefix == "" or literal_prefix.endswith("/")
    if mapped_prefix and at_boundary and not mapped_prefix.endswith("/"):
        return mapped_prefix + "/"
    return mapped_prefix


@dataclass(frozen=True, slots=True)
class NameMapping:
    """How one rule renames one client bucket: bucket → backend bucket, prefix C → prefix P."""

    client_bucket: str
    backend_bucket: str
    client_prefix: str = ""  # C
    backend_prefix: str = ""  # P

    @classmethod
    def identity(cls, bucket: str) -> NameMapping:
        return cls(bucket, bucket)

    @property
    def is_identity(self) -> bool:
        return (
            self.client_bucket == self.backend_bucket and self.client_prefix == self.backend_prefix
        )

    @property
    def renames_keys(self) -> bool:
        return self.client_prefix != self.backend_prefix

    def to_backend_key(self, key: str) -> str:
        """The backend key of a client key; the key must lie under the literal prefix C."""
        if not key:
            return ""
        if not key.startswith(self.client_prefix):
            raise ValueError(f"key {key!r} is outside prefix {self.client_prefix!r}")
        return self.backend_prefix + key[len(self.client_prefix) :]

    def to_client_key(self, backend_key: str) -> str | None:
        """The client key of a backend key, None when the backend key is outside P.

        Also None for the object named exactly by the backend prefix when the client prefix is
        empty: its client key would be "", which no request can name (and which, as a listing
        marker, would restart the listing).
        """
        if not backend_key.startswith(self.backend_prefix):
            return None
        return self.client_prefix + backend_key[len(self.backend_prefix) :] or None

    def to_backend_position(self, key: str) -> tuple[str, str | None]:
        """Where a listing that resumes after client key `key` resumes in the backend.

        Returns ("after", backend key) to resume after that backend key, ("start", None) when
        every mapped key sorts after `key`, ("end", None) when none does. Order is preserved
        because the mapping only swaps a common prefix.
        """
        if not key:
            return "start", None
        if key.startswith(self.client_prefix):
            return "after", self.backend_prefix + key[len(self.client_prefix) :]
        if key < self.client_prefix:
            return "start", None
        return "end", None


# -- URL-encoded listing values (encoding-type=url) -----------------------------------------------


def encode_url_value(value: str) -> str:
    """How S3 encodes key names for `encoding-type=url`; botocore decodes with `unquote_plus`."""
    return quote_plus(value, safe="/")


def decode_url_value(value: str) -> str:
    return unquote_plus(value)


# -- listing request parameters -------------------------------------------------------------------

_KEY_POSITIONS = ("marker", "start-after", "key-marker")
_COMPANIONS = {"key-marker": ("version-id-marker", "upload-id-marker")}


@dataclass(frozen=True, slots=True)
class BackendListQuery:
    """A client listing's parameters translated for one mapped backend.

    `query` is None when the answer is known to be empty without asking the backend. When
    `collapse` is set, every key the backend lists falls under that one client common prefix:
    answer with just `<CommonPrefixes><Prefix>collapse</Prefix></CommonPrefixes>` if the backend
    listing (`query`, e.g. with max-keys=1) is non-empty, else with an empty listing.
    """

    query: list[tuple[str, str]] | None
    collapse: str | None = None


def map_list_query(
    query_items: Iterable[tuple[str, str]], mapping: NameMapping
) -> BackendListQuery:
    """Translate a listing's query (ListObjects v1/v2, Versions, MultipartUploads) for a backend.

    - `prefix` R: under C → `P + R[len(C):]`; a prefix of C (shorter, e.g. "") → P, and when the
      delimiter occurs in `C[len(R):]` every key collapses into one common prefix; otherwise the
      rule holds no key under R and the answer is empty.
    - `marker`, `start-after`, `key-marker`: mapped when under C, dropped when every mapped key
      sorts after them (with `key-marker`'s companions `version-id-marker`/`upload-id-marker`),
      empty answer when every mapped key sorts before them.
    - everything else passes unchanged (`delimiter`, `max-keys`, `encoding-type`, tokens, …).
    """
    items = list(query_items)
    values = {name: value for name, value in reversed(items)}
    c, p = mapping.client_prefix, mapping.backend_prefix
    prefix = values.get("prefix", "")
    delimiter = values.get("delimiter", "")
    collapse: str | None = None
    if prefix.startswith(c):
        backend_prefix = p + prefix[len(c) :]
    elif c.startswith(prefix):
        backend_prefix = p
        gap = c[len(prefix) :]
        if delimiter and delimiter in gap:
            collapse = prefix + gap[: gap.index(delimiter) + len(delimiter)]
    else:
        return BackendListQuery(None)

    dropped: set[str] = set()
    out: list[tuple[str, str]] = []
    for name, value in items:
        if name in dropped:
            continue
        if name == "prefix":
            if backend_prefix:
                out.append((name, backend_prefix))
        elif name in _KEY_POSITIONS:
            where, backend_key = mapping.to_backend_position(value)
            if where == "end":
                return BackendListQuery(None)
            if where == "start":
                dropped.update(_COMPANIONS.get(name, ()))
                out = [(n, v) for n, v in out if n not in dropped]
                continue
            if collapse is not None and value >= collapse:
                return BackendListQuery(None)
            out.append((name, backend_key or ""))
        else:
            out.append((name, value))
    if "prefix" not in values and backend_prefix:
        out.append(("prefix", backend_prefix))
    return BackendListQuery(out, collapse)


# -- x-amz-copy-source ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CopySource:
    bucket: str
    key: str
    version_id: str | None = None


def parse_copy_source(value: str) -> CopySource:
    """`[/]bucket/key[?versionId=id]`, percent-decoded once (`+` stays `+`)."""
    text = value.strip()
    text = text.removeprefix("/")
    version_id: str | None = None
    cut = text.rfind("?versionId=")
    if cut >= 0:
        text, version_id = text[:cut], text[cut + len("?versionId=") :]
    try:
        decoded = unquote(text, errors="strict")
    except UnicodeDecodeError:
        raise S3Error("InvalidArgument", "Invalid copy source encoding.") from None
    if decoded.startswith("arn:"):
        raise S3Error(
            "NotImplemented", "Access point and Outposts ARNs as copy sources are not supported."
        )
    bucket, _, key = decoded.partition("/")
    if not bucket or not key:
        raise S3Error(
            "InvalidArgument",
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey.",
            details={"ArgumentName": "x-amz-copy-source", "ArgumentValue": value},
        )
    return CopySource(bucket, key, version_id or None)


def format_copy_source(bucket: str, key: str, version_id: str | None = None) -> str:
    """The header value botocore would send for this source (safe `-._~/`, version id raw)."""
    encoded = quote(f"{bucket}/{key}", safe="-._~/")
    return f"{encoded}?versionId={version_id}" if version_id else encoded


def map_copy_source(value: str, mapping: NameMapping) -> str:
    """Rewrite a copy source whose bucket/key the caller routed to `mapping`."""
    source = parse_copy_source(value)
    if source.bucket != mapping.client_bucket:
        raise ValueError("copy source bucket does not belong to this mapping")
    return format_copy_source(
        mapping.backend_bucket, mapping.to_backend_key(source.key), source.version_id
    )


# -- response documents ---------------------------------------------------------------------------

_LISTINGS = ("ListBucketResult", "ListVersionsResult", "ListMultipartUploadsResult")
_ENTRY_KEYS = {"Contents": "Key", "Version": "Key", "DeleteMarker": "Key", "Upload": "Key"}


def rewrite_response_xml(
    body: bytes,
    mapping: NameMapping,
    *,
    client_key: str = "",
    client_query: Mapping[str, str] | None = None,
    keep_key: Callable[[str], bool] | None = None,
    keep_prefix: Callable[[str], bool] | None = None,
    client_base_url: str | None = None,
    request_id: str | None = None,
    limit: int = MAX_XML_BYTES,
) -> bytes:
    """Rewrite a backend's XML answer so it names only the client's bucket and keys.

    Dispatches on the root element: ListBucketResult (v1 and v2), ListVersionsResult,
    ListMultipartUploadsResult, ListPartsResult, Initiate/CompleteMultipartUploadResult,
    DeleteResult, Error; anything else (CopyObjectResult, CopyPartResult, …) carries no name and
    comes back unchanged. Listing entries whose backend key has no client name, or that
    `keep_key` / `keep_prefix` reject (keys this rule does not own), are dropped and KeyCount is
    recomputed. `client_query` is the client's decoded query: echoed parameters (Prefix, Marker,
    StartAfter, KeyMarker, …) are restored from it. `client_key` names the object of a
    single-object answer. With `client_base_url` (e.g. "http://127.0.0.1:8080") Location elements
    point at the proxy; `request_id` replaces an error's RequestId/HostId.
    """
    if not body.strip():
        return body
    root = parse_xml(body, limit=limit)
    try:
        return _rewrite_root(
            root,
            body,
            mapping,
            client_key,
            client_query,
            keep_key,
            keep_prefix,
            client_base_url,
            request_id,
        )
    except ValueError:  # a name with a character XML 1.0 cannot carry
        raise S3Error(
            "InternalError", "A name in the backend's answer cannot be written in XML."
        ) from None


def _rewrite_root(
    root: Any,
    body: bytes,
    mapping: NameMapping,
    client_key: str,
    client_query: Mapping[str, str] | None,
    keep_key: Callable[[str], bool] | None,
    keep_prefix: Callable[[str], bool] | None,
    client_base_url: str | None,
    request_id: str | None,
) -> bytes:
    name = local_name(root)
    if name in _LISTINGS:
        _rewrite_listing(root, mapping, client_query or {}, keep_key, keep_prefix)
    elif name in ("ListPartsResult", "InitiateMultipartUploadResult"):
        _set_names(root, mapping, client_key)
    elif name == "CompleteMultipartUploadResult":
        _set_names(root, mapping, client_key)
        location = child(root, "Location")
        if location is not None:
            location.text = client_location(
                client_base_url or "", mapping.client_bucket, client_key
            )
    elif name == "DeleteResult":
        map_delete_result(root, mapping)
    elif name == "Error":
        _rewrite_error(root, mapping, client_key, request_id)
    else:
        return body
    return serialize_xml(root)


def _set_names(root: Any, mapping: NameMapping, client_key: str) -> None:
    set_child_text(root, "Bucket", mapping.client_bucket)
    key_element = child(root, "Key")
    if key_element is not None:
        key_element.text = client_key or mapping.to_client_key(key_element.text or "") or ""


def _rewrite_error(
    root: Any, mapping: NameMapping, client_key: str, request_id: str | None
) -> None:
    for name in ("BucketName", "Bucket"):
        set_child_text(root, name, mapping.client_bucket)
    key_element = child(root, "Key")
    if key_element is not None:
        key_element.text = client_key or mapping.to_client_key(key_element.text or "") or ""
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
    root: Any,
    mapping: NameMapping,
    client_query: Mapping[str, str],
    keep_key: Callable[[str], bool] | None,
    keep_prefix: Callable[[str], bool] | None,
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
        if item_name in _ENTRY_KEYS:
            key_element = child(item, "Key")
            backend_key = decode("" if key_element is None else key_element.text or "")
            client = mapping.to_client_key(backend_key)
            if client is None or (keep_key is not None and not keep_key(client)):
                root.remove(item)
                continue
            if key_element is not None:
                key_element.text = encode(client)
            count += 1
        elif item_name == "CommonPrefixes":
            prefix_element = child(item, "Prefix")
            backend_prefix = decode("" if prefix_element is None else prefix_element.text or "")
            client = mapping.to_client_key(backend_prefix)
            if client is None or (keep_prefix is not None and not keep_prefix(client)):
                root.remove(item)
                continue
            if prefix_element is not None:
                prefix_element.text = encode(client)
            count += 1
    set_child_text(root, "KeyCount", str(count))


def client_location(client_base_url: str, bucket: str, key: str = "") -> str:
    """A Location value for the client: `base/bucket[/key]`, path style, key URL-encoded."""
    path = "/" + quote(bucket, safe="")
    if key:
        path += "/" + quote(key, safe="/~")
    return client_base_url.rstrip("/") + path


def rewrite_location_header(
    value: str, mapping: NameMapping, *, client_base_url: str = "", client_key: str = ""
) -> str:
    """A backend's `Location` header (CreateBucket, redirects) in the client's names."""
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
    base = client_base_url if parts.scheme else ""
    return client_location(base, mapping.client_bucket, key)
