"""The S3 flexible checksums (`x-amz-checksum-*`) and Content-MD5, computed as the body streams.

S3 names the algorithms a client may attach to an upload, as a header or as an aws-chunked
trailer: CRC32, CRC32C, CRC64NVME, SHA1, SHA256, and the newer SHA512, XXHASH64, XXHASH3 and
XXHASH128 (botocore and the AWS Common Runtime's S3 client send those too). The value on the
wire is the base64 of the big-endian checksum (4 bytes for the CRC32s, 8 for CRC64NVME and the
64-bit xxhashes, 16 for XXHASH128) or of the digest bytes (the SHAs). The proxy recomputes a
checksum itself only where no backend will: when an aws-chunked trailer cannot be passed on,
it must be verified before the body's last byte goes upstream.

Speed matters because every byte of a large upload goes through here: CRC32 is zlib's (about
4 GB/s), CRC32C, CRC64NVME and the xxhashes come from the AWS Common Runtime
(`awscrt.checksums`, the very functions botocore uses for them, well above 10 GB/s with SIMD),
the SHAs from hashlib. S3's MD5 checksum algorithm, which botocore does not compute, is not
verified here: `algorithm_for_header` returns None for it so callers can decide to pass it
through to a backend that checks it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import zlib
from collections.abc import Callable, Mapping

from .errors import S3Error

HEADER_PREFIX = "x-amz-checksum-"

# Raw digest size of each algorithm: also how a well-formed header value is recognised.
DIGEST_SIZES: dict[str, int] = {
    "CRC32": 4,
    "CRC32C": 4,
    "CRC64NVME": 8,
    "SHA1": 20,
    "SHA256": 32,
    "SHA512": 64,
    "XXHASH64": 8,
    "XXHASH3": 8,
    "XXHASH128": 16,
}

ALGORITHMS = tuple(DIGEST_SIZES)

_HEADERS: dict[str, str] = {HEADER_PREFIX + name.lower(): name for name in ALGORITHMS}


def _crc_function(algorithm: str) -> Callable[[bytes | memoryview, int], int]:
    """The running CRC of `algorithm`; awscrt (several MiB of native code) loads on first use,
    so a proxy whose clients never send CRC32C/CRC64NVME never maps it."""
    if algorithm == "CRC32":
        return zlib.crc32
    from awscrt import checksums as crt

    return crt.crc32c if algorithm == "CRC32C" else crt.crc64nvme


_HASH_NAMES = {"SHA1": "sha1", "SHA256": "sha256", "SHA512": "sha512"}


def _known(algorithm: str) -> str | None:
    name = algorithm.strip().upper()
    return name if name in DIGEST_SIZES else None


def header_for(algorithm: str) -> str:
    """The header (and trailer) name carrying `algorithm`: CRC32 -> x-amz-checksum-crc32."""
    name = _known(algorithm)
    if name is None:
        raise _unknown(algorithm)
    return HEADER_PREFIX + name.lower()


def algorithm_for_header(name: str) -> str | None:
    """The algorithm a header or trailer name carries (CRC32, …), None if not one we verify."""
    return _HEADERS.get(name.strip().lower())


def valid_value(algorithm: str, value: str) -> bool:
    """Whether `value` is well-formed for `algorithm`: strict base64 of the right length.

    A malformed value is a client error of its own (S3: InvalidRequest "Value for
    x-amz-checksum-crc32 header is invalid."), distinct from a well-formed one that mismatches.
    """
    name = _known(algorithm)
    if name is None:
        return False
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    return len(raw) == DIGEST_SIZES[name]


class Checksum:
    """A running checksum: feed it the body with `update`, read it with `b64digest`."""

    __slots__ = ("algorithm",)

    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Add the next piece of the body."""
        raise NotImplementedError

    def digest(self) -> bytes:
        """The checksum so far as raw bytes (big-endian for the CRCs)."""
        raise NotImplementedError

    def b64digest(self) -> str:
        """The checksum so far as S3 writes it in `x-amz-checksum-*`."""
        return base64.b64encode(self.digest()).decode("ascii")

    @property
    def header(self) -> str:
        """The header/trailer name this checksum travels in."""
        return HEADER_PREFIX + self.algorithm.lower()


class _CrcChecksum(Checksum):
    """A CRC kept as an int; each update continues it (`crc(data, previous)`), no copying."""

    __slots__ = ("_crc", "_function", "_size")

    def __init__(self, algorithm: str) -> None:
        super().__init__(algorithm)
        self._function = _crc_function(algorithm)
        self._size = DIGEST_SIZES[algorithm]
        self._crc = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._crc = self._function(data, self._crc)

    def digest(self) -> bytes:
        return self._crc.to_bytes(self._size, "big")


class _HashChecksum(Checksum):
    __slots__ = ("_hash",)

    def __init__(self, algorithm: str) -> None:
        super().__init__(algorithm)
        self._hash = hashlib.new(_HASH_NAMES[algorithm])

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._hash.update(data)

    def digest(self) -> bytes:
        return self._hash.digest()


class _XxhashChecksum(Checksum):
    """An xxhash from awscrt, loaded on first use like the CRCs above."""

    __slots__ = ("_hash",)

    def __init__(self, algorithm: str) -> None:
        super().__init__(algorithm)
        from awscrt.checksums import XXHash

        new = {
            "XXHASH64": XXHash.new_xxhash64,
            "XXHASH3": XXHash.new_xxhash3_64,
            "XXHASH128": XXHash.new_xxhash3_128,
        }[algorithm]
        self._hash = new()

    def update(self, data: bytes | bytearray | memoryview) -> None:
        # awscrt's binding takes bytes only, not the memoryview slices the decoder hands on.
        self._hash.update(data if isinstance(data, bytes) else bytes(data))

    def digest(self) -> bytes:
        return self._hash.finalize()  # leaves the state as it was: callable again


def new_checksum(algorithm: str) -> Checksum:
    """A fresh running checksum for `algorithm` (any case); unknown -> S3Error InvalidRequest."""
    name = _known(algorithm)
    if name is None:
        raise _unknown(algorithm)
    if name.startswith("CRC"):
        return _CrcChecksum(name)
    if name.startswith("XXHASH"):
        return _XxhashChecksum(name)
    return _HashChecksum(name)


def content_md5(data: bytes | bytearray | memoryview) -> str:
    """The base64 MD5 of `data`, as in a Content-MD5 header (for small rewritten bodies)."""
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode("ascii")


def body_integrity_headers(body: bytes, headers: Mapping[str, str]) -> dict[str, str]:
    """New values for the integrity headers the client sent with a body the proxy rewrote.

    Covers `Content-MD5` and `x-amz-checksum-<alg>` for the algorithms above; any other
    `x-amz-checksum-*` header is left out. Header names are returned lower-case; the caller also
    sets Content-Length and the payload hash it signs.
    """
    out: dict[str, str] = {}
    names = {name.lower() for name in headers}
    if "content-md5" in names:
        out["content-md5"] = content_md5(body)
    for name in sorted(names):
        if not name.startswith(HEADER_PREFIX):
            continue
        algorithm = name[len(HEADER_PREFIX) :].upper()
        if algorithm in ALGORITHMS:
            checksum = new_checksum(algorithm)
            checksum.update(body)
            out[name] = checksum.b64digest()
    return out


def _unknown(algorithm: str) -> S3Error:
    shown = "".join(c for c in algorithm[:32] if c.isprintable())
    return S3Error(
        "InvalidRequest",
        f"Checksum algorithm {shown!r} is not supported; use one of {', '.join(ALGORITHMS)}.",
    )
