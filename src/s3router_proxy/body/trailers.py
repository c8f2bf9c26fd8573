"""The trailer section of an aws-chunked body: the lines after the 0-size chunk, checked.

Each line is checked as it arrives (`name:value`, announced in `x-amz-trailer`, sent once, none
after the trailer signature); once the section ends, every announced trailer must be there,
the trailer signature (STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER) must match the canonical
lines chained from the final chunk's signature, and each checksum trailer must equal the
checksum of the decoded bytes. Error codes are S3's: MalformedTrailerError for the section's
shape, SignatureDoesNotMatch (raised by the decoder), InvalidRequest and BadDigest for checksums.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from ..s3 import checksums
from ..s3.errors import S3Error
from .chunksigning import ChunkSigning

MAX_TRAILER = 4096  # the whole trailer section after the 0-size chunk line

TRAILER_SIGNATURE = "x-amz-trailer-signature"

_MALFORMED_TRAILER = (
    "The request contained trailing data that was not well-formed or did not conform to our "
    "published schema."
)


def malformed_trailer(why: str) -> S3Error:
    return S3Error("MalformedTrailerError", f"{_MALFORMED_TRAILER} ({why})", status=400)


class TrailerSection:
    """The trailers of one body, filled in line by line into `found` (lower-case name -> value)."""

    __slots__ = ("announced", "blank_seen", "found", "lines", "signature", "signed", "size")

    def __init__(self, announced: tuple[str, ...], signed: bool, found: dict[str, str]) -> None:
        self.announced = announced
        self.signed = signed
        self.found = found
        self.size = 0  # bytes of the section so far, line ends included
        self.lines: list[str] = []  # canonical "name:value\n", the trailer STS input
        self.signature: str | None = None
        self.blank_seen = False

    def line(self, line: bytes) -> bool:
        """Take one line (without its CRLF); True when it was the empty line that ends them."""
        if not line:
            if not self.lines and not self.blank_seen and self.announced:
                self.blank_seen = True  # an optional blank line before the trailers
                return False
            return True
        name_bytes, colon, value_bytes = line.partition(b":")
        try:
            name = name_bytes.decode("ascii").strip().lower()
            value = value_bytes.decode("ascii").strip()
        except UnicodeDecodeError:
            raise malformed_trailer("trailer is not ASCII") from None
        if not colon or not name or any(c in name for c in " \t"):
            raise malformed_trailer("trailer line is not name:value")
        if self.signature is not None:
            raise malformed_trailer("trailer after the trailer signature")
        if name == TRAILER_SIGNATURE:
            if not self.signed:
                raise malformed_trailer("trailer signature on an unsigned trailer")
            self.signature = value
            return False
        if name not in self.announced:
            raise malformed_trailer(f"trailer {name} was not announced in x-amz-trailer")
        if name in self.found:
            raise malformed_trailer(f"trailer {name} sent twice")
        self.found[name] = value
        self.lines.append(f"{name}:{value}\n")
        return False

    def check_announced_present(self) -> None:
        for name in self.announced:
            if name not in self.found:
                raise malformed_trailer(f"announced trailer {name} is missing")

    def signature_matches(self, signing: ChunkSigning, previous_signature: str) -> bool:
        """Whether the trailer signature is there and signs these lines after the final chunk."""
        if self.signature is None:
            return False
        trailer_hash = hashlib.sha256("".join(self.lines).encode()).hexdigest()
        string_to_sign = (
            f"AWS4-HMAC-SHA256-TRAILER\n{signing.amz_date}\n{signing.scope}\n"
            f"{previous_signature}\n{trailer_hash}"
        )
        expected = hmac.digest(signing.signing_key, string_to_sign.encode(), "sha256")
        return hmac.compare_digest(expected.hex(), self.signature.lower())

    def check_checksums(self, computed: Sequence[checksums.Checksum]) -> None:
        """Each checksum trailer against the checksum of the decoded bytes."""
        for checksum in computed:
            header = checksum.header
            provided = self.found[header]
            if not checksums.valid_value(checksum.algorithm, provided):
                raise S3Error("InvalidRequest", f"Value for {header} trailing header is invalid.")
            if checksum.b64digest() != provided:
                raise S3Error(
                    "BadDigest",
                    f"The {checksum.algorithm} you specified did not match the calculated "
                    "checksum.",
                )
