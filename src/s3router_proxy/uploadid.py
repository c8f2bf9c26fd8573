"""Multipart uploads pinned to their backend, with no state in the proxy.

The `UploadId` a client receives wraps the backend's id together with where the upload lives
(backend, backend bucket, backend key), sealed with an HMAC that also covers the client's own
bucket and key. Every later call on the upload (UploadPart, UploadPartCopy, ListParts,
Complete, Abort) is routed by the id alone, so it reaches the same backend after a config
reload, on any replica, or when a size or time condition would now route elsewhere. An id
that was altered, forged, or used for another bucket or key is `NoSuchUpload`.

Format: ``<base64url(JSON [backend, bucket, key, upload id])>.<base64url(HMAC-SHA256)[:24]>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass

from lxml import etree

from .errors import S3Error

_MAC_CHARS = 24  # 144 bits of HMAC-SHA256


@dataclass(frozen=True, slots=True)
class UploadPin:
    backend: str
    bucket: str  # backend bucket
    key: str  # backend key
    upload_id: str  # the backend's own id


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, payload: str, bucket: str, key: str) -> str:
    message = f"{payload}\0{bucket}\0{key}".encode("utf-8", "surrogatepass")
    return _b64(hmac.new(secret, message, hashlib.sha256).digest())[:_MAC_CHARS]


def wrap(secret: bytes, pin: UploadPin, *, bucket: str, key: str) -> str:
    """The id the client sees for `pin`, valid only for its logical `bucket` and `key`."""
    payload = _b64(
        json.dumps([pin.backend, pin.bucket, pin.key, pin.upload_id], ensure_ascii=False).encode(
            "utf-8", "surrogatepass"
        )
    )
    return f"{payload}.{_mac(secret, payload, bucket, key)}"


def unwrap(secret: bytes, upload_id: str, *, bucket: str, key: str) -> UploadPin:
    """The pin inside a client's upload id, or `NoSuchUpload` if it is not one we issued."""
    payload, _, mac = upload_id.partition(".")
    if not payload or not hmac.compare_digest(
        mac.encode(), _mac(secret, payload, bucket, key).encode()
    ):
        raise S3Error(
            "NoSuchUpload",
            "The specified multipart upload does not exist. The upload ID may be invalid, or "
            "the upload may have been aborted or completed.",
        )
    try:
        backend, backend_bucket, backend_key, inner = json.loads(_unb64(payload))
    except (ValueError, binascii.Error, TypeError):  # pragma: no cover - the MAC held
        raise S3Error("NoSuchUpload") from None
    return UploadPin(backend, backend_bucket, backend_key, inner)


_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
MAX_XML = 16 * 1024 * 1024


def _parse(body: bytes) -> etree._Element:
    if len(body) > MAX_XML:
        raise S3Error("InternalError", "A backend listing was larger than the proxy handles.")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    return etree.fromstring(body, parser)


def _find(element: etree._Element, name: str) -> etree._Element | None:
    found = element.find(f"{_NS}{name}")
    return found if found is not None else element.find(name)


def _serialize(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def wrap_in_response(
    body: bytes,
    secret: bytes,
    *,
    backend: str,
    backend_bucket: str,
    backend_key: str,
    bucket: str,
    key: str,
) -> bytes:
    """InitiateMultipartUpload / ListParts result with its UploadId wrapped."""
    root = _parse(body)
    element = _find(root, "UploadId")
    if element is not None and element.text:
        pin = UploadPin(backend, backend_bucket, backend_key, element.text)
        element.text = wrap(secret, pin, bucket=bucket, key=key)
    return _serialize(root)


def wrap_in_upload_listing(
    body: bytes,
    secret: bytes,
    *,
    backend: str,
    backend_bucket: str,
    bucket: str,
    logical_key: object,
) -> bytes:
    """ListMultipartUploads result with every UploadId (and the markers) wrapped.

    `logical_key(backend_key) -> str` gives the client's name for a backend key.
    """
    root = _parse(body)
    for upload in list(root.iter(f"{_NS}Upload", "Upload")):
        key_element = _find(upload, "Key")
        id_element = _find(upload, "UploadId")
        if key_element is None or id_element is None or not id_element.text:
            continue
        backend_key = key_element.text or ""
        pin = UploadPin(backend, backend_bucket, backend_key, id_element.text)
        id_element.text = wrap(secret, pin, bucket=bucket, key=logical_key(backend_key))  # type: ignore[operator]
    for marker, key_marker in (
        ("NextUploadIdMarker", "NextKeyMarker"),
        ("UploadIdMarker", "KeyMarker"),
    ):
        element = _find(root, marker)
        key_element = _find(root, key_marker)
        if element is not None and element.text and key_element is not None:
            backend_key = key_element.text or ""
            pin = UploadPin(backend, backend_bucket, backend_key, element.text)
            element.text = wrap(secret, pin, bucket=bucket, key=logical_key(backend_key))  # type: ignore[operator]
    return _serialize(root)
