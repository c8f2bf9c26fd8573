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
`x-amz-copy-source`, the keys of a DeleteObjects body (with its checksums recomputed) and the small
XML documents S3 answers with (listings, multipart results, DeleteObjects results, errors), parsed
with lxml under a size cap, namespace kept. All functions are pure: bytes and strings in and out.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import zlib
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus, unquote, unquote_plus, urlsplit

from lxml import etree

from .errors import S3Error

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
MAX_XML_BYTES = 16 * 1024 * 1024  # listings of 1000 keys of 1 KiB stay far below this
MAX_DELETE_OBJECTS_BYTES = 4 * 1024 * 1024  # 1000 keys of 1 KiB, escaped, with version ids


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
_PASSTHROUGH = frozenset(
    {
        "delimiter",
        "max-keys",
        "max-uploads",
        "encoding-type",
        "upload-id-marker",
        "version-id-marker",
        "list-type",
        "fetch-owner",
        "continuation-token",
        "versions",
        "uploads",
        "optional-object-attributes",
        "x-id",
    }
)


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


# -- XML plumbing ---------------------------------------------------------------------------------

_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_comments=True
)


def parse_xml(body: bytes, *, limit: int = MAX_XML_BYTES, request: bool = False) -> Any:
    """Parse a small S3 document; too big or malformed is an S3 error, never an exception."""
    if len(body) > limit:
        if request:
            raise S3Error("MalformedXML", "The XML document is larger than the proxy accepts.")
        raise S3Error("InternalError", "The backend's XML answer exceeds the proxy's size limit.")
    try:
        root = etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError:
        if request:
            raise S3Error("MalformedXML") from None
        raise S3Error("InternalError", "The backend sent XML the proxy cannot read.") from None
    if request and (
        root.getroottree().docinfo.doctype
        or any(isinstance(node, etree._Entity) for node in root.iter())
    ):
        # S3 request documents never need a DTD or entities; refusing them ends XML bombs.
        raise S3Error("MalformedXML", "Document type declarations and entities are not allowed.")
    return root


def serialize_xml(root: Any) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def local_name(element: Any) -> str:
    tag = element.tag
    if not isinstance(tag, str):
        return ""
    return tag.rpartition("}")[2]


def children(element: Any, name: str) -> list[Any]:
    return [child for child in element if local_name(child) == name]


def child(element: Any, name: str) -> Any | None:
    for item in element:
        if local_name(item) == name:
            return item
    return None


def child_text(element: Any, name: str) -> str | None:
    found = child(element, name)
    return None if found is None else (found.text or "")


# -- DeleteObjects request bodies -----------------------------------------------------------------


def delete_objects_keys(body: bytes) -> list[str]:
    """The keys a DeleteObjects body names, in order (to route them)."""
    root = _delete_document(body)
    return [child_text(obj, "Key") or "" for obj in children(root, "Object")]


MAX_DELETE_OBJECTS_KEYS = 1000


def _delete_document(body: bytes) -> Any:
    """A DeleteObjects body, parsed; more than 1000 keys is MalformedXML, as in S3."""
    root = parse_xml(body, limit=MAX_DELETE_OBJECTS_BYTES, request=True)
    if len(children(root, "Object")) > MAX_DELETE_OBJECTS_KEYS:
        raise S3Error("MalformedXML", "A DeleteObjects request names at most 1000 keys.")
    return root


def rewrite_delete_objects(body: bytes, backend_key: Callable[[str], str]) -> bytes:
    """The same DeleteObjects body with every `<Object><Key>` replaced by `backend_key(key)`."""
    root = _delete_document(body)
    for obj in children(root, "Object"):
        key_element = child(obj, "Key")
        if key_element is not None:
            key_element.text = backend_key(key_element.text or "")
    return serialize_xml(root)


def group_delete_objects(
    body: bytes, target: Callable[[str], tuple[Hashable, str]]
) -> dict[Hashable, bytes]:
    """Split a DeleteObjects body by route: `target(key)` → (route id, backend key).

    Each group gets its own body, in the original order, with `Quiet` and any other top-level
    element kept; send each to its backend and join the answers with `merge_delete_results`.
    """
    root = _delete_document(body)
    groups: dict[Hashable, Any] = {}
    for obj in children(root, "Object"):
        key_element = child(obj, "Key")
        key = "" if key_element is None else key_element.text or ""
        group, backend_key = target(key)
        if group not in groups:
            copy = etree.Element(root.tag, nsmap=root.nsmap)
            for other in root:
                if local_name(other) != "Object":
                    copy.append(_clone(other))
            groups[group] = copy
        clone = _clone(obj)
        clone_key = child(clone, "Key")
        if clone_key is not None:
            clone_key.text = backend_key
        groups[group].append(clone)
    return {group: serialize_xml(tree) for group, tree in groups.items()}


def _clone(element: Any) -> Any:
    return copy.deepcopy(element)


def merge_delete_results(results: Iterable[tuple[bytes, NameMapping]]) -> bytes:
    """One DeleteResult from several backends' answers, keys mapped back to the client's names."""
    out = etree.Element(f"{{{S3_NS}}}DeleteResult", nsmap={None: S3_NS})
    for body, mapping in results:
        root = parse_xml(body)
        if local_name(root) == "Error":
            raise S3Error(
                child_text(root, "Code") or "InternalError",
                child_text(root, "Message") or None,
                status=500,
            )
        _rewrite_delete_result(root, mapping)
        for item in root:
            if local_name(item) in ("Deleted", "Error"):
                out.append(_in_namespace(item))
    return serialize_xml(out)


def _in_namespace(element: Any) -> Any:
    """A copy of `element` with every element in the S3 namespace (backends differ)."""
    copy = etree.Element(f"{{{S3_NS}}}{local_name(element)}", nsmap={None: S3_NS})
    copy.text = element.text
    for item in element:
        if isinstance(item.tag, str):
            sub = _in_namespace(item)
            sub.tail = None
            copy.append(sub)
    return copy


def body_integrity_headers(body: bytes, headers: Mapping[str, str]) -> dict[str, str]:
    """New values for the integrity headers the client sent with a body the proxy rewrote.

    Covers `Content-MD5` and `x-amz-checksum-<alg>` (CRC32, CRC32C, CRC64NVME, SHA1, SHA256;
    CRC32C/CRC64NVME need `s3router_proxy.checksums`). Header names are returned lower-case;
    the caller also sets Content-Length and the payload hash it signs.
    """
    out: dict[str, str] = {}
    names = {name.lower() for name in headers}
    if "content-md5" in names:
        out["content-md5"] = base64.b64encode(hashlib.md5(body).digest()).decode("ascii")
    for name in sorted(names):
        if not name.startswith("x-amz-checksum-"):
            continue
        value = _checksum(name[len("x-amz-checksum-") :].upper(), body)
        if value is not None:
            out[name] = value
    return out


def _checksum(algorithm: str, body: bytes) -> str | None:
    try:
        from . import checksums
    except ImportError:  # pragma: no cover - checksums.py ships with the package
        checksums = None  # type: ignore[assignment]
    if checksums is not None and algorithm in getattr(checksums, "ALGORITHMS", ()):
        checksum = checksums.new_checksum(algorithm)
        checksum.update(body)
        return checksum.b64digest()
    if algorithm == "CRC32":
        return base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode("ascii")
    if algorithm in ("SHA1", "SHA256"):
        digest = hashlib.new(algorithm.lower(), body).digest()
        return base64.b64encode(digest).decode("ascii")
    return None


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
        _rewrite_delete_result(root, mapping)
    elif name == "Error":
        _rewrite_error(root, mapping, client_key, request_id)
    else:
        return body
    return serialize_xml(root)


def _set_text(element: Any, name: str, value: str) -> None:
    found = child(element, name)
    if found is not None:
        found.text = value


def _set_names(root: Any, mapping: NameMapping, client_key: str) -> None:
    _set_text(root, "Bucket", mapping.client_bucket)
    key_element = child(root, "Key")
    if key_element is not None:
        key_element.text = client_key or mapping.to_client_key(key_element.text or "") or ""


def _rewrite_delete_result(root: Any, mapping: NameMapping) -> None:
    for item in root:
        if local_name(item) in ("Deleted", "Error"):
            key_element = child(item, "Key")
            if key_element is not None:
                backend_key = key_element.text or ""
                client = mapping.to_client_key(backend_key)
                key_element.text = backend_key if client is None else client


def _rewrite_error(
    root: Any, mapping: NameMapping, client_key: str, request_id: str | None
) -> None:
    for name in ("BucketName", "Bucket"):
        _set_text(root, name, mapping.client_bucket)
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
        _set_text(root, "RequestId", request_id)
        _set_text(root, "HostId", request_id)


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
        _set_text(root, name, mapping.client_bucket)
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
    _set_text(root, "KeyCount", str(count))


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
