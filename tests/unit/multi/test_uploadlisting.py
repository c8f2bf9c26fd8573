"""The merged ListMultipartUploads document: the first max-uploads entries in key order, common
prefixes among them, and markers that name the last entry the client was shown."""

from __future__ import annotations

from lxml import etree

from s3router_proxy.multi.uploadlisting import _upload_listing_xml
from s3router_proxy.s3.request import parse_request
from s3router_proxy.s3.xml import S3_NS

NS = f"{{{S3_NS}}}"


def upload(key: str, upload_id: str) -> etree._Element:
    item = etree.Element(f"{NS}Upload")
    etree.SubElement(item, f"{NS}Key").text = key
    etree.SubElement(item, f"{NS}UploadId").text = upload_id
    return item


def listing(query: str, entries: list, limit: int, truncated: bool) -> etree._Element:
    request = parse_request("GET", f"/split?uploads&{query}", {"Host": "h"})
    return etree.fromstring(_upload_listing_xml(request, entries, limit, truncated))


def text(root: etree._Element, name: str) -> str | None:
    found = root.find(f"{NS}{name}")
    return None if found is None else found.text


def test_cut_at_max_uploads_with_markers_naming_the_last_shown() -> None:
    entries = [("a", 0, upload("a", "id-a")), ("b/", -1, None), ("c", 1, upload("c", "id-c"))]
    root = listing("max-uploads=2&delimiter=/", entries, 2, truncated=False)
    assert text(root, "IsTruncated") == "true"
    assert text(root, "NextKeyMarker") == "b/"  # a common prefix: no upload id marker
    assert text(root, "NextUploadIdMarker") is None
    assert [e.text for e in root.iter(f"{NS}Key")] == ["a"]
    assert [e.text for e in root.iter(f"{NS}Prefix") if e.getparent().tag.endswith("Prefixes")] == [
        "b/"
    ]
    assert text(root, "MaxUploads") == "2" and text(root, "Delimiter") == "/"


def test_a_part_still_truncated_keeps_the_listing_truncated() -> None:
    root = listing("max-uploads=5", [("a", 0, upload("a", "id-a"))], 5, truncated=True)
    assert text(root, "IsTruncated") == "true"
    assert (text(root, "NextKeyMarker"), text(root, "NextUploadIdMarker")) == ("a", "id-a")
    whole = listing("", [("a", 0, upload("a", "id-a"))], 1000, truncated=False)
    assert text(whole, "IsTruncated") == "false" and text(whole, "NextKeyMarker") is None
