"""The small XML documents S3 speaks: parsed safely under a size cap, read and written by name.

S3 puts its elements in one namespace, but backends differ in whether they send it, so elements
are found by local name. Documents are parsed with lxml, entities unresolved, no DTD, no
network, comments dropped: a hostile body (a request's, or a compromised backend's answer) is
at worst an S3 error, never an exception, an XML bomb or a fetch. Request documents may not
carry a doctype or entities at all, as S3 itself never needs them.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from .errors import S3Error

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
MAX_XML_BYTES = 16 * 1024 * 1024  # listings of 1000 keys of 1 KiB stay far below this

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


def set_child_text(element: Any, name: str, value: str) -> None:
    """Replace the text of `element`'s child `name`, if it has one (absent stays absent)."""
    found = child(element, name)
    if found is not None:
        found.text = value


def in_s3_namespace(element: Any) -> Any:
    """A copy of `element` with every element in the S3 namespace (backends differ)."""
    copy = etree.Element(f"{{{S3_NS}}}{local_name(element)}", nsmap={None: S3_NS})
    copy.text = element.text
    for item in element:
        if isinstance(item.tag, str):
            copy.append(in_s3_namespace(item))
    return copy
