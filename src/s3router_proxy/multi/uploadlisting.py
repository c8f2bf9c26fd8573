"""ListMultipartUploads of a bucket split over stores: every part asked, its upload ids sealed
with where they live and its names the client's, merged in key order and cut at max-uploads."""

from __future__ import annotations

from lxml import etree

from ..backends.call import backend_exchange
from ..routing import uploadid
from ..routing.bucketparts import Part
from ..routing.names import map_list_query
from ..routing.responsexml import ClientRequest, KeyFilter, rewrite_response_xml
from ..routing.uploadid import UploadPin
from ..s3.request import S3Request
from ..s3.xml import S3_NS, child_text, local_name, parse_xml, serialize_xml
from .splitbucket import SplitListing, backend_error


async def merged_upload_listing(listing: SplitListing) -> bytes:
    """ListMultipartUploads of a split bucket: every part asked, ids sealed, names mapped,
    keys a part does not own (or `keep` rejects) dropped, merged in key order and cut at
    max-uploads, so the markers name only uploads the client was shown."""
    request = listing.request
    query = request.query
    limit = int(query["max-uploads"]) if query.get("max-uploads", "").isdigit() else 1000
    limit = max(1, min(limit, 1000))
    marker_pin: UploadPin | None = None
    if query.get("upload-id-marker") and query.get("key-marker"):
        marker_pin = uploadid.unwrap(
            listing.keys, query["upload-id-marker"], bucket=request.bucket, key=query["key-marker"]
        )
    uploads: list[tuple[str, int, etree._Element]] = []
    prefixes: set[str] = set()
    truncated = False
    for order, part in enumerate(listing.parts):
        root = await _part_upload_listing(listing, part, marker_pin)
        if root is None:
            continue
        truncated = truncated or (child_text(root, "IsTruncated") == "true")
        for item in root:
            name = local_name(item)
            if name == "Upload":
                uploads.append((child_text(item, "Key") or "", order, item))
            elif name == "CommonPrefixes":
                prefixes.add(child_text(item, "Prefix") or "")
    entries = sorted(
        [(key, order, item) for key, order, item in uploads]
        + [(prefix, -1, None) for prefix in prefixes],
        key=lambda entry: (entry[0], entry[1]),
    )
    return _upload_listing_xml(request, entries, limit, truncated)


async def _part_upload_listing(
    listing: SplitListing, part: Part, marker_pin: UploadPin | None
) -> etree._Element | None:
    """One part's ListMultipartUploads answer with ids sealed and names the client's; None when
    the part's bucket is missing or the prefix lies outside it."""
    request = listing.request
    items = [(n, v) for n, v in request.query_items if n != "upload-id-marker"]
    if marker_pin is not None and (marker_pin.backend, marker_pin.bucket) == (
        part.backend,
        part.bucket,
    ):
        items.append(("upload-id-marker", marker_pin.upload_id))
    mapped = map_list_query(items, part.mapping)
    if mapped.query is None:
        return None
    status, _, body = await backend_exchange(
        listing.backends[part.backend], "GET", part.bucket, "", mapped.query
    )
    if status == 404:
        return None
    if status != 200:
        raise backend_error(status, body)
    body = uploadid.wrap_in_upload_listing(
        body,
        listing.keys[0],
        backend=part.backend,
        backend_bucket=part.bucket,
        bucket=request.bucket,
        logical_key=lambda k, m=part.mapping: m.to_client_key(k) or k,
    )
    keep = listing.keep
    body = rewrite_response_xml(
        body,
        part.mapping,
        ClientRequest(query=request.query),
        keep=KeyFilter(
            part.owns if keep is None else lambda k: part.owns(k) and keep(k),
            lambda p: part.region(p) != "none",
        ),
    )
    return parse_xml(body)


def _upload_listing_xml(
    request: S3Request,
    entries: list[tuple[str, int, etree._Element | None]],
    limit: int,
    truncated: bool,
) -> bytes:
    """The merged ListMultipartUploadsResult: the first `limit` entries (uploads, and common
    prefixes with no item), with markers naming the last one shown."""
    query = request.query
    shown, rest = entries[:limit], entries[limit:]
    out = etree.Element(f"{{{S3_NS}}}ListMultipartUploadsResult", nsmap={None: S3_NS})

    def add(name: str, text: str) -> None:
        etree.SubElement(out, f"{{{S3_NS}}}{name}").text = text

    add("Bucket", request.bucket)
    add("KeyMarker", query.get("key-marker", ""))
    add("UploadIdMarker", query.get("upload-id-marker", ""))
    if shown and (rest or truncated):
        last_key, _, last_item = shown[-1]
        add("NextKeyMarker", last_key)
        if last_item is not None:
            add("NextUploadIdMarker", child_text(last_item, "UploadId") or "")
    if query.get("delimiter"):
        add("Delimiter", query["delimiter"])
    add("Prefix", query.get("prefix", ""))
    add("MaxUploads", str(limit))
    add("IsTruncated", "true" if rest or truncated else "false")
    for key, _, item in shown:
        if item is None:
            holder = etree.SubElement(out, f"{{{S3_NS}}}CommonPrefixes")
            etree.SubElement(holder, f"{{{S3_NS}}}Prefix").text = key
        else:
            out.append(_in_namespace_copy(item))
    return serialize_xml(out)


def _in_namespace_copy(item: etree._Element) -> etree._Element:
    """An element (and its children) moved into the S3 namespace, for a new document."""
    copy = etree.Element(f"{{{S3_NS}}}{local_name(item)}")
    copy.text = item.text
    for sub in item:
        copy.append(_in_namespace_copy(sub))
    return copy
