"""Multipart uploads pinned to their backend, with no state in the proxy.

The `UploadId` a client receives is the backend's id together with where the upload lives
(backend, backend bucket, backend key), encrypted and authenticated with AES-GCM under a key
derived from the proxy secret, with the client's own bucket and key as associated data. Every
later call on the upload (UploadPart, UploadPartCopy, ListParts, Complete, Abort) is routed by
the id alone, so it reaches the same backend after a config reload, on any replica, or when a
size or time condition would now route elsewhere. The client learns nothing of the backend's
names; an id that was altered, forged, or used for another bucket or key is `NoSuchUpload`.

Format: ``base64url(nonce[12] || ciphertext || tag[16])`` of JSON [backend, bucket, key, id]
(a mirrored upload adds [[mirror, its id, its bucket, its key], ...] and the mirror mode);
the nonce is an HMAC of the message, so one upload always has one id.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import functools
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..s3.errors import S3Error

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from ..s3.xml import child, children, parse_xml, serialize_xml

_CONTEXT = b"s3router upload id v2\0"


@dataclass(frozen=True, slots=True)
class UploadPin:
    backend: str
    bucket: str  # backend bucket
    key: str  # backend key
    upload_id: str  # the backend's own id
    # A mirrored upload: (backend, its upload id, its bucket, its key) for each mirror, and the
    # rule's mirror mode.
    mirrors: tuple[tuple[str, str, str, str], ...] = ()
    mirror_mode: str = "strict"


@functools.lru_cache(maxsize=8)
def _cipher(secret: bytes) -> AESGCM:
    # Imported on first use: cryptography is several MiB that only multipart uploads need.
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(hashlib.sha256(_CONTEXT + secret).digest())


@functools.lru_cache(maxsize=8)
def _cipher_key(secret: bytes) -> bytes:
    return hashlib.sha256(b"nonce\0" + _CONTEXT + secret).digest()


def _InvalidTag() -> type[Exception]:
    from cryptography.exceptions import InvalidTag

    return InvalidTag


def _aad(bucket: str, key: str) -> bytes:
    return f"{bucket}\0{key}".encode("utf-8", "surrogatepass")


def wrap(secret: bytes, pin: UploadPin, *, bucket: str, key: str) -> str:
    """The id the client sees for `pin`, valid only for its logical `bucket` and `key`."""
    fields: list[object] = [pin.backend, pin.bucket, pin.key, pin.upload_id]
    if pin.mirrors:
        fields += [[list(m) for m in pin.mirrors], pin.mirror_mode]
    plain = json.dumps(fields, ensure_ascii=False).encode("utf-8", "surrogatepass")
    aad = _aad(bucket, key)
    # A synthetic nonce (HMAC of the message): the same upload always gets the same id, as in
    # S3, and different uploads get different nonces.
    nonce = hmac.new(_cipher_key(secret), plain + b"\0" + aad, hashlib.sha256).digest()[:12]
    sealed = nonce + _cipher(secret).encrypt(nonce, plain, aad)
    return base64.urlsafe_b64encode(sealed).decode().rstrip("=")


def unwrap(keys: Sequence[bytes], upload_id: str, *, bucket: str, key: str) -> UploadPin:
    """The pin inside a client's upload id, or `NoSuchUpload` if it is not one we issued.

    `keys` are the sealing keys that may have sealed it: the current secret first, then the
    previous ones still accepted (a rotation keeps uploads in flight working)."""
    try:
        sealed = base64.urlsafe_b64decode(upload_id + "=" * (-len(upload_id) % 4))
        if len(sealed) < 12 + 16:
            raise ValueError("too short")
        plain = _open(keys, sealed, _aad(bucket, key))
        backend, backend_bucket, backend_key, inner, *mirrored = json.loads(plain)
        mirrors = tuple(
            (str(m[0]), str(m[1]), str(m[2]), str(m[3])) for m in (mirrored[0] if mirrored else ())
        )
        mode = str(mirrored[1]) if mirrored else "strict"
    except (ValueError, binascii.Error, _InvalidTag(), TypeError, UnicodeDecodeError):
        raise S3Error(
            "NoSuchUpload",
            "The specified multipart upload does not exist. The upload ID may be invalid, or "
            "the upload may have been aborted or completed.",
        ) from None
    return UploadPin(backend, backend_bucket, backend_key, inner, mirrors, mode)


def _open(keys: Sequence[bytes], sealed: bytes, aad: bytes) -> bytes:
    """The message sealed under one of `keys` (InvalidTag when under none)."""
    for secret in keys[:-1]:
        with contextlib.suppress(_InvalidTag()):
            return _cipher(secret).decrypt(sealed[:12], sealed[12:], aad)
    return _cipher(keys[-1]).decrypt(sealed[:12], sealed[12:], aad)


def wrap_in_response(body: bytes, secret: bytes, pin: UploadPin, *, bucket: str, key: str) -> bytes:
    """InitiateMultipartUpload / ListParts result with its UploadId wrapped.

    `pin` says where the upload lives; its `upload_id` is taken from the answer."""
    root = parse_xml(body)
    element = child(root, "UploadId")
    if element is not None and element.text:
        pinned = dataclasses.replace(pin, upload_id=element.text)
        element.text = wrap(secret, pinned, bucket=bucket, key=key)
    return serialize_xml(root)


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
    root = parse_xml(body)
    for upload in children(root, "Upload"):
        key_element = child(upload, "Key")
        id_element = child(upload, "UploadId")
        if key_element is None or id_element is None or not id_element.text:
            continue
        backend_key = key_element.text or ""
        pin = UploadPin(backend, backend_bucket, backend_key, id_element.text)
        id_element.text = wrap(secret, pin, bucket=bucket, key=logical_key(backend_key))  # type: ignore[operator]
    for marker, key_marker in (
        ("NextUploadIdMarker", "NextKeyMarker"),
        ("UploadIdMarker", "KeyMarker"),
    ):
        element = child(root, marker)
        key_element = child(root, key_marker)
        if element is not None and element.text and key_element is not None:
            backend_key = key_element.text or ""
            pin = UploadPin(backend, backend_bucket, backend_key, element.text)
            element.text = wrap(secret, pin, bucket=bucket, key=logical_key(backend_key))  # type: ignore[operator]
    return serialize_xml(root)
