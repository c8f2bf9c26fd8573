"""One listing across backends: a logical bucket split by key rules, listed as if it were one.

Each `routing.Part` of the bucket is read through a `partcursor.PartCursor`. The cursors are
merged in S3 order (UTF-8 byte order = code point order), common prefixes are de-duplicated
across parts, and a page ends after `max-keys` entries (keys, versions, delete markers and
common prefixes count alike); a truncated page carries a continuation token or marker that
resumes after the last name it showed (`listparams`). A backend that answers NoSuchBucket
contributes nothing, unless every part does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from lxml import etree

from ..routing.names import encode_url_value
from ..s3.errors import S3Error
from ..s3.xml import S3_NS, child, in_s3_namespace, local_name, serialize_xml
from .listparams import MAX_KEYS, ListParams, encode_token, parse_list_params
from .partcursor import Entry, ListingSource, PartCursor


async def merged_list(
    operation: str,
    bucket: str,
    query: Mapping[str, str],
    source: ListingSource,
    token_keys: Sequence[bytes],
) -> bytes:
    """The client's listing of logical `bucket`, merged from every part, as S3 XML.

    `operation` is ListObjects, ListObjectsV2 or ListObjectVersions; `query` the client's decoded
    query (first value per name). `source.parts` come from `routing.routes_for_bucket` with the
    client's prefix. With `source.keep`, markers and tokens only ever name an entry the client
    was shown. `token_keys[0]` signs the continuation token it hands out; any of them opens one.
    """
    params = parse_list_params(operation, bucket, query, token_keys)
    if not source.parts:
        raise S3Error("NoSuchBucket", details={"BucketName": bucket})
    size = source.page_size or min(MAX_KEYS, params.limit + 1)
    cursors = [PartCursor(part, params, source, size) for part in source.parts]
    if params.limit > 0:
        await asyncio.gather(*(cursor.head() for cursor in cursors))
    shown: list[Entry] = []
    while len(shown) < params.limit:
        best: Entry | None = None
        for cursor in cursors:
            entry = await cursor.head()
            if entry is not None and (best is None or entry.name < best.name):
                best = entry
        if best is None:
            break
        for cursor in cursors:
            entry = await cursor.head()
            if entry is best or (
                entry is not None and best.is_prefix and entry.is_prefix and entry.name == best.name
            ):
                cursor.pop()
        shown.append(best)
    truncated = False
    if params.limit > 0:
        for cursor in cursors:
            if await cursor.head() is not None:
                truncated = True
                break
    requested = [c for c in cursors if c.requested]
    if requested and all(c.missing for c in requested):
        raise S3Error("NoSuchBucket", details={"BucketName": bucket})
    try:
        return _render(params, shown, truncated, token_keys[0])
    except ValueError:  # a key with a character XML 1.0 cannot carry
        raise S3Error(
            "InvalidArgument",
            "A key in this listing cannot be written in XML; list with encoding-type=url.",
            details={"ArgumentName": "encoding-type"},
        ) from None


# -- the answer -----------------------------------------------------------------------------------


def _render(params: ListParams, shown: list[Entry], truncated: bool, secret: bytes) -> bytes:
    root_name = "ListVersionsResult" if params.kind == "versions" else "ListBucketResult"
    root = etree.Element(f"{{{S3_NS}}}{root_name}", nsmap={None: S3_NS})

    def add(name: str, text: str) -> None:
        etree.SubElement(root, f"{{{S3_NS}}}{name}").text = text

    def enc(value: str) -> str:
        return encode_url_value(value) if params.encode else value

    last = shown[-1] if shown else None
    add("Name", params.bucket)
    add("Prefix", enc(params.prefix))
    if params.kind == "v1":
        add("Marker", enc(params.after))
        if truncated and last is not None and params.delimiter:
            add("NextMarker", enc(last.name))
    elif params.kind == "versions":
        add("KeyMarker", enc(params.after))
        add("VersionIdMarker", params.after_version or "")
        if truncated and last is not None:
            add("NextKeyMarker", enc(last.name))
            if not last.is_prefix and last.version_id:
                add("NextVersionIdMarker", last.version_id)
    else:
        add("KeyCount", str(len(shown)))
    add("MaxKeys", str(params.max_keys))
    if params.delimiter:
        add("Delimiter", enc(params.delimiter))
    if params.encode:
        add("EncodingType", "url")
    add("IsTruncated", "true" if truncated else "false")
    if params.kind == "v2":
        token = params.query.get("continuation-token")
        if token is not None:
            add("ContinuationToken", token)
        elif params.query.get("start-after") is not None:
            add("StartAfter", enc(params.query["start-after"]))
        if truncated and last is not None:
            add("NextContinuationToken", encode_token(secret, params, last.name))
    for entry in shown:
        if not entry.is_prefix:
            root.append(_entry_element(entry, enc(entry.name)))
    for entry in shown:
        if entry.is_prefix:
            common = etree.SubElement(root, f"{{{S3_NS}}}CommonPrefixes")
            etree.SubElement(common, f"{{{S3_NS}}}Prefix").text = enc(entry.name)
    return serialize_xml(root)


def _entry_element(entry: Entry, key_text: str) -> Any:
    source = entry.element
    element = etree.Element(f"{{{S3_NS}}}{local_name(source)}", nsmap={None: S3_NS})
    for item in source:
        if not isinstance(item.tag, str):
            continue
        element.append(in_s3_namespace(item))
    key_element = child(element, "Key")
    if key_element is None:  # pragma: no cover - S3 always sends Key
        key_element = etree.SubElement(element, f"{{{S3_NS}}}Key")
    key_element.text = key_text
    return element
