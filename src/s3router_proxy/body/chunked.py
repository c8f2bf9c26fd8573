"""aws-chunked request bodies: decode and verify while streaming, encode for backends.

A client that sends `Content-Encoding: aws-chunked` frames its payload as
``hex(size)[;chunk-signature=sig]\\r\\n data \\r\\n`` … then a 0-size chunk, optional trailer
lines (``x-amz-checksum-crc32:…``, ``x-amz-trailer-signature:…``) and an empty line. Three
variants exist (`x-amz-content-sha256`): STREAMING-AWS4-HMAC-SHA256-PAYLOAD (every chunk signed,
chained from the request's seed signature), the same with -TRAILER (plus a signed trailer), and
STREAMING-UNSIGNED-PAYLOAD-TRAILER (no chunk signatures; the trailer checksum protects the data).

`decode_aws_chunked` is one state machine for all three. It yields decoded payload as it
arrives, hashing each chunk in passing and checking its HMAC at the chunk's end, and computes
the checksum of every announced `x-amz-checksum-*` trailer over the decoded bytes (the trailer
section itself is read and checked by `trailers.TrailerSection`). The newest
decoded piece is always held back: it goes out only after the final chunk's signature, the
trailer signature, the trailer checksums and the decoded length all checked out. A failure
raises `ChunkedBodyError` instead, so the upstream request is aborted before its last byte
and the backend, holding a short body, commits nothing. Memory is bounded by one input piece
plus at most 4 KiB of framing, whatever the size of the body or of its chunks.

Error codes (S3's own where it has one; see the research note, sections 1.5 and 3):

- chunk, final-chunk or trailer signature wrong or missing -> SignatureDoesNotMatch (403)
- trailer checksum differs from the decoded body -> BadDigest (400),
  "The CRC32 you specified did not match the calculated checksum."
- trailer checksum value not base64 of the right size -> InvalidRequest (400),
  "Value for x-amz-checksum-crc32 trailing header is invalid."
- body ends early, decoded total != x-amz-decoded-content-length, and malformed chunk
  framing (size not 1-16 hex digits, missing CRLF after data, size line > 4 KiB, chunk
  > 16 MiB, bytes after the end) -> IncompleteBody (400): the body is not the complete
  aws-chunked stream the signed headers announced; S3 has no separate code for bad framing.
- trailer section malformed or > 4 KiB, a trailer not announced in x-amz-trailer, an
  announced trailer missing, a trailer twice -> MalformedTrailerError (400), the code AWS lists
  for "trailing data that was not well-formed".

Trailers that are not checksums this proxy knows (`checksums.algorithm_for_header` is None,
e.g. x-amz-checksum-md5) are collected but not verified: a caller that cannot hand them to
a verifying backend should refuse such an `x-amz-trailer` before decoding.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from ..s3 import checksums
from ..s3.errors import S3Error
from .chunksigning import ChunkSigning
from .trailers import MAX_TRAILER, TrailerSection, malformed_trailer

MAX_LINE = 4096  # a chunk-size line, without its CRLF
MAX_CHUNK = 16 << 20  # as MinIO

_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_HEX_SIZE = re.compile(rb"[0-9a-fA-F]{1,8}")  # 8 digits already exceed MAX_CHUNK
_HEX_SIGNATURE = re.compile(rb"[0-9a-f]{64}")


@dataclass(slots=True)
class ChunkedResult:
    """What decoding found, filled in as it goes; read it after the body generator ends."""

    decoded_bytes: int = 0
    trailers: dict[str, str] = field(default_factory=dict)  # lower-case name -> value
    failure: S3Error | None = None
    complete: bool = False


class ChunkedBodyError(Exception):
    """Raised out of the body generator so the upstream request is aborted, not completed."""

    def __init__(self, error: S3Error) -> None:
        super().__init__(f"{error.code}: {error.message}")
        self.error = error


def _incomplete(message: str) -> S3Error:
    return S3Error("IncompleteBody", message)


def _malformed(why: str) -> S3Error:
    return _incomplete(f"The aws-chunked request body is malformed: {why}.")


def _bad_signature(what: str) -> S3Error:
    return S3Error(
        "SignatureDoesNotMatch",
        f"The {what} signature we calculated does not match the signature you provided. "
        "Check your key and signing method.",
    )


# Decoder states.
_SIZE_LINE, _DATA, _DATA_END, _TRAILERS, _DONE = range(5)


class _Decoder:
    """The synchronous state machine: `feed` raw pieces, get decoded bytes; `finish` at EOF.

    Raises S3Error on the first problem. Framing is found with `bytes.find` and data is cut
    with memoryview slices, so the per-byte work happens in C (hashing, one copy to join).
    """

    def __init__(
        self,
        *,
        signing: ChunkSigning | None,
        decoded_length: int | None,
        trailer_names: Sequence[str],
        trailer_signed: bool,
        result: ChunkedResult,
    ) -> None:
        if trailer_signed and signing is None:
            raise ValueError("a signed trailer needs the chunk signing context")
        self._signing = signing
        self._decoded_length = decoded_length
        announced = tuple(dict.fromkeys(name.strip().lower() for name in trailer_names))
        self._trailer_signed = trailer_signed
        self._result = result
        self._checksums = [
            checksums.new_checksum(algorithm)
            for algorithm in map(checksums.algorithm_for_header, announced)
            if algorithm is not None
        ]
        self._state = _SIZE_LINE
        self._pending = b""  # an unfinished line (or CRLF), never more than MAX_* bytes
        self._remaining = 0  # data bytes still due in the current chunk
        self._chunk_hash: hashlib._Hash | None = None
        self._chunk_signature = b""
        self._previous_signature = signing.seed_signature if signing is not None else ""
        self._trailers = TrailerSection(announced, trailer_signed, result.trailers)
        self._sts_prefix = (
            f"AWS4-HMAC-SHA256-PAYLOAD\n{signing.amz_date}\n{signing.scope}\n" if signing else ""
        )

    # -- feeding --------------------------------------------------------------------------

    def feed(self, piece: bytes) -> bytes:
        """Consume one raw piece; return the payload bytes it completed (maybe b"")."""
        if self._pending:
            piece = self._pending + piece
            self._pending = b""
        view = memoryview(piece)
        end = len(piece)
        pos = 0
        out: list[memoryview] = []
        while pos < end:
            state = self._state
            if state == _DATA:
                take = min(self._remaining, end - pos)
                segment = view[pos : pos + take]
                if self._chunk_hash is not None:
                    self._chunk_hash.update(segment)
                for checksum in self._checksums:
                    checksum.update(segment)
                out.append(segment)
                pos += take
                self._remaining -= take
                self._result.decoded_bytes += take
                if self._remaining == 0:
                    self._state = _DATA_END
            elif state == _DATA_END:
                if end - pos < 2:
                    self._pending = piece[pos:]
                    break
                if piece[pos : pos + 2] != b"\r\n":
                    raise _malformed("chunk data is not followed by CRLF")
                pos += 2
                self._end_chunk()
            elif state == _SIZE_LINE:
                stop = piece.find(b"\r\n", pos, pos + MAX_LINE + 2)
                if stop < 0:
                    if end - pos > MAX_LINE + 1:  # a line of MAX_LINE may still end in "\r"
                        raise _malformed(f"chunk-size line longer than {MAX_LINE} bytes")
                    self._pending = piece[pos:]
                    break
                self._size_line(piece[pos:stop])
                pos = stop + 2
            elif state == _TRAILERS:
                room = MAX_TRAILER - self._trailers.size
                stop = piece.find(b"\r\n", pos, pos + room)
                if stop < 0:
                    if end - pos >= room:
                        raise malformed_trailer(f"trailer section longer than {MAX_TRAILER} bytes")
                    self._pending = piece[pos:]
                    break
                self._trailers.size += stop + 2 - pos
                if self._trailers.line(piece[pos:stop]):
                    self._end_trailers()
                pos = stop + 2
            else:  # _DONE: some clients add CRLFs after the last line; anything else is wrong
                rest = piece[pos:]
                if rest.strip(b"\r\n"):
                    raise _malformed("data after the end of the aws-chunked body")
                break
        if not out:
            return b""
        if len(out) == 1 and len(out[0]) == len(piece):
            return piece  # the whole piece is payload: pass it on without a copy
        return b"".join(out)

    def finish(self) -> None:
        """The body ended: everything must have arrived and checked out."""
        if self._state != _DONE:
            if self._state == _TRAILERS and self._trailers.blank_seen and not self._pending:
                # "0\r\n\r\n" and EOF: the optional blank line came, the trailers never did.
                self._trailers.check_announced_present()
            raise _incomplete("The request body terminated unexpectedly.")

    # -- framing --------------------------------------------------------------------------

    def _size_line(self, line: bytes) -> None:
        size_text, _, extensions = line.partition(b";")
        size_text = size_text.strip(b" \t")
        if _HEX_SIZE.fullmatch(size_text) is None:
            raise _malformed("chunk size is not a hexadecimal number")
        size = int(size_text, 16)
        if size > MAX_CHUNK:
            raise _malformed(f"chunk larger than {MAX_CHUNK} bytes")
        signature = b""
        if extensions:
            for extension in extensions.split(b";"):
                name, _, value = extension.partition(b"=")
                if name.strip(b" \t") == b"chunk-signature":
                    signature = value.strip(b" \t")
        if self._signing is not None:
            if _HEX_SIGNATURE.fullmatch(signature) is None:
                raise _bad_signature("chunk")
            self._chunk_signature = signature
            self._chunk_hash = hashlib.sha256()
        decoded = self._result.decoded_bytes + size
        if self._decoded_length is not None and decoded > self._decoded_length:
            raise _incomplete(
                "The aws-chunked body carries more data than x-amz-decoded-content-length "
                f"({self._decoded_length})."
            )
        if size == 0:
            self._end_chunk()  # the final chunk is signed over empty data
            self._state = _TRAILERS
            return
        self._remaining = size
        self._state = _DATA

    def _end_chunk(self) -> None:
        """Check the signature of the chunk just read, which then chains to the next."""
        self._state = _SIZE_LINE
        if self._signing is None:
            return
        assert self._chunk_hash is not None
        data_hash = self._chunk_hash.hexdigest()
        string_to_sign = (
            f"{self._sts_prefix}{self._previous_signature}\n{_EMPTY_SHA256}\n{data_hash}"
        )
        expected = hmac.digest(self._signing.signing_key, string_to_sign.encode(), "sha256")
        if not hmac.compare_digest(expected.hex().encode(), self._chunk_signature):
            raise _bad_signature("chunk")
        self._previous_signature = self._chunk_signature.decode()
        self._chunk_hash = None

    # -- the end --------------------------------------------------------------------------

    def _end_trailers(self) -> None:
        trailers = self._trailers
        trailers.check_announced_present()
        if self._trailer_signed:
            assert self._signing is not None
            if not trailers.signature_matches(self._signing, self._previous_signature):
                raise _bad_signature("trailer")
        if self._decoded_length is not None and self._result.decoded_bytes != self._decoded_length:
            raise _incomplete(
                f"The aws-chunked body carries {self._result.decoded_bytes} bytes, "
                f"x-amz-decoded-content-length says {self._decoded_length}."
            )
        trailers.check_checksums(self._checksums)
        self._state = _DONE


async def decode_aws_chunked(
    source: AsyncIterator[bytes],
    *,
    signing: ChunkSigning | None,
    decoded_length: int | None,
    trailer_names: Sequence[str],
    trailer_signed: bool,
    result: ChunkedResult,
) -> AsyncIterator[bytes]:
    """Yield the decoded payload of an aws-chunked body, the last piece only once all verified.

    `source` is the raw body as it arrives (HTTP chunking already removed), in pieces of any
    size, as the front server's `Body.readany` returns them. `signing` is None for
    STREAMING-UNSIGNED-PAYLOAD-TRAILER; `trailer_signed` is True for
    STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER. Every check (chunk signatures, the final chunk's,
    the trailer signature, trailer checksums over the decoded bytes, the decoded length) has
    passed before the held-back last piece is yielded. On failure `result.failure` is set and
    ChunkedBodyError raised without yielding it, so the upstream request never completes.
    """
    decoder = _Decoder(
        signing=signing,
        decoded_length=decoded_length,
        trailer_names=trailer_names,
        trailer_signed=trailer_signed,
        result=result,
    )
    held = b""
    pieces = aiter(source)
    try:
        while True:
            try:
                piece = await anext(pieces)
            except StopAsyncIteration:
                break
            except Exception as exc:  # the client went away, or sent less than announced
                raise _incomplete("The request body terminated unexpectedly.") from exc
            data = decoder.feed(piece) if piece else b""
            if data:
                if held:
                    yield held
                held = data
        decoder.finish()
    except S3Error as error:
        result.failure = error
        raise ChunkedBodyError(error) from error
    if held:
        yield held
    result.complete = True


async def encode_unsigned_trailer(
    pieces: AsyncIterator[bytes], trailers: Callable[[], dict[str, str]]
) -> AsyncIterator[bytes]:
    """Frame `pieces` as a STREAMING-UNSIGNED-PAYLOAD-TRAILER body for a backend.

    Each piece becomes ``hex(len)\\r\\n data \\r\\n``; then ``0\\r\\n``, one ``name:value\\r\\n``
    per trailer and an empty line. `trailers()` is called only after `pieces` is exhausted, i.e.
    once the decoder upstream of it has verified them, so no terminator (and so no commit)
    can reach the backend before verification. Empty pieces are skipped: a zero-size chunk
    would end the body early.
    """
    async for piece in pieces:
        if piece:
            yield b"".join((b"%x\r\n" % len(piece), piece, b"\r\n"))
    lines = [b"0\r\n"]
    lines.extend(f"{name}:{value}\r\n".encode("ascii") for name, value in trailers().items())
    lines.append(b"\r\n")
    yield b"".join(lines)
