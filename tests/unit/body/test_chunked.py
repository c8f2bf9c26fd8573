"""aws-chunked decoding: the S3 documentation vectors, boto3's framing, and every way to fail.

Signed bodies for random data are built by `signed_body`, a few lines of hmac/hashlib that
share no code with the decoder, and checked against the published signatures first.
Every failure test also asserts the property the decoder exists for: the last decoded piece
was never yielded, so a backend receiving the stream never saw the whole body.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import zlib
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s3router_proxy.auth.signingkey import signing_key
from s3router_proxy.body.chunked import (
    MAX_CHUNK,
    ChunkedBodyError,
    ChunkedResult,
    decode_aws_chunked,
    encode_unsigned_trailer,
)
from s3router_proxy.body.chunksigning import ChunkSigning

# S3 documentation: sigv4-streaming and sigv4-streaming-trailers.
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AMZ_DATE = "20130524T000000Z"
SCOPE = "20130524/us-east-1/s3/aws4_request"
KEY = signing_key(SECRET, "20130524", "us-east-1")
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

DOC_DATA = b"a" * 66560
DOC_CHUNKS = [DOC_DATA[:65536], DOC_DATA[65536:]]
DOC_SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
DOC_SIGNATURES = [
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
]
TRAILER_SEED = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"
TRAILER_SIGNATURES = [
    "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
    "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
    "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
]
TRAILER_SIGNATURE = "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435"
CRC32C_TRAILER = {"x-amz-checksum-crc32c": "sOO8/Q=="}

# What boto3 sends for put_object(Body=b"hello world") over HTTPS (research note, 3.1).
BOTO3_BODY = b"b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n"
BOTO3_TRAILERS = {"x-amz-checksum-crc32": "DUoRhQ=="}


# ---------------------------------------------------------------------------------------------
# An independent encoder


def _hmac_hex(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def chunk_signature(previous: str, data: bytes, key: bytes = KEY) -> str:
    sha = hashlib.sha256(data).hexdigest()
    text = f"AWS4-HMAC-SHA256-PAYLOAD\n{AMZ_DATE}\n{SCOPE}\n{previous}\n{EMPTY_SHA256}\n{sha}"
    return _hmac_hex(key, text)


def trailer_signature(previous: str, trailers: dict[str, str], key: bytes = KEY) -> str:
    lines = "".join(f"{name}:{value}\n" for name, value in trailers.items())
    sha = hashlib.sha256(lines.encode()).hexdigest()
    return _hmac_hex(key, f"AWS4-HMAC-SHA256-TRAILER\n{AMZ_DATE}\n{SCOPE}\n{previous}\n{sha}")


def signed_body(
    chunks: Sequence[bytes], seed: str, trailers: dict[str, str] | None = None
) -> tuple[bytes, list[str]]:
    """A signed aws-chunked body (with a signed trailer if `trailers`), and its chunk signatures."""
    parts: list[bytes] = []
    signatures: list[str] = []
    previous = seed
    for data in [*chunks, b""]:
        previous = chunk_signature(previous, data)
        signatures.append(previous)
        parts.append(b"%x;chunk-signature=%s\r\n" % (len(data), previous.encode()))
        if data:
            parts.append(data + b"\r\n")
    if trailers is not None:
        parts.extend(f"{name}:{value}\r\n".encode() for name, value in trailers.items())
        signature = trailer_signature(previous, trailers)
        parts.append(f"x-amz-trailer-signature:{signature}\r\n".encode())
    parts.append(b"\r\n")
    return b"".join(parts), signatures


def unsigned_body(chunks: Sequence[bytes], trailers: dict[str, str]) -> bytes:
    parts = [b"%x\r\n%s\r\n" % (len(data), data) for data in chunks if data]
    parts.append(b"0\r\n")
    parts.extend(f"{name}:{value}\r\n".encode() for name, value in trailers.items())
    parts.append(b"\r\n")
    return b"".join(parts)


def crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def signing(seed: str) -> ChunkSigning:
    return ChunkSigning(signing_key=KEY, amz_date=AMZ_DATE, scope=SCOPE, seed_signature=seed)


# ---------------------------------------------------------------------------------------------
# Running the decoder


@dataclass
class Outcome:
    data: bytes
    result: ChunkedResult
    error: ChunkedBodyError | None

    @property
    def code(self) -> str | None:
        return self.result.failure.code if self.result.failure else None


def split(body: bytes, cuts: Iterable[int]) -> list[bytes]:
    bounds = [0, *sorted({min(max(cut, 0), len(body)) for cut in cuts}), len(body)]
    return [body[a:b] for a, b in itertools.pairwise(bounds)]


async def pieces_of(pieces: Iterable[bytes]) -> AsyncIterator[bytes]:
    for piece in pieces:
        await asyncio.sleep(0)
        yield piece


async def _decode(source: AsyncIterator[bytes], **options: object) -> Outcome:
    result = ChunkedResult()
    received: list[bytes] = []
    error = None
    try:
        async for piece in decode_aws_chunked(source, result=result, **options):  # type: ignore[arg-type]
            assert piece, "the decoder never yields empty pieces"
            received.append(piece)
    except ChunkedBodyError as exc:
        error = exc
    return Outcome(b"".join(received), result, error)


def decode(
    body: bytes,
    cuts: Iterable[int] = (),
    *,
    signing: ChunkSigning | None = None,
    decoded_length: int | None = None,
    trailer_names: Sequence[str] = (),
    trailer_signed: bool = False,
) -> Outcome:
    return asyncio.run(
        _decode(
            pieces_of(split(body, cuts)),
            signing=signing,
            decoded_length=decoded_length,
            trailer_names=trailer_names,
            trailer_signed=trailer_signed,
        )
    )


def assert_ok(outcome: Outcome, data: bytes, trailers: dict[str, str] | None = None) -> None:
    assert outcome.error is None, outcome.result.failure
    assert outcome.data == data
    assert outcome.result.complete
    assert outcome.result.failure is None
    assert outcome.result.decoded_bytes == len(data)
    assert outcome.result.trailers == (trailers or {})


def assert_refused(outcome: Outcome, code: str, full_length: int) -> None:
    """Refused with `code`, and the body's last piece never went out."""
    assert outcome.error is not None, "the body was accepted"
    assert outcome.code == code, outcome.result.failure
    assert outcome.error.error is outcome.result.failure
    assert not outcome.result.complete
    assert len(outcome.data) < full_length


cuts_strategy = st.lists(st.integers(min_value=0, max_value=70000), max_size=12)
hypothesis_settings = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# ---------------------------------------------------------------------------------------------
# The published vectors


def doc_body() -> bytes:
    body, signatures = signed_body(DOC_CHUNKS, DOC_SEED)
    assert signatures == DOC_SIGNATURES  # the helper reproduces the S3 documentation
    return body


def doc_trailer_body() -> bytes:
    body, signatures = signed_body(DOC_CHUNKS, TRAILER_SEED, CRC32C_TRAILER)
    assert signatures == TRAILER_SIGNATURES
    assert trailer_signature(signatures[-1], CRC32C_TRAILER) == TRAILER_SIGNATURE
    return body


def test_doc_vectors_are_what_the_helper_builds() -> None:
    body = doc_body()
    assert len(body) == 66824  # the example's Content-Length
    assert body.startswith(b"10000;chunk-signature=" + DOC_SIGNATURES[0].encode() + b"\r\naaa")
    assert body.endswith(b"0;chunk-signature=" + DOC_SIGNATURES[2].encode() + b"\r\n\r\n")
    trailer = doc_trailer_body()
    assert trailer.endswith(
        b"0;chunk-signature=" + TRAILER_SIGNATURES[2].encode() + b"\r\n"
        b"x-amz-checksum-crc32c:sOO8/Q==\r\n"
        b"x-amz-trailer-signature:" + TRAILER_SIGNATURE.encode() + b"\r\n\r\n"
    )


@hypothesis_settings
@given(cuts=cuts_strategy)
def test_doc_signed_body(cuts: list[int]) -> None:
    outcome = decode(doc_body(), cuts, signing=signing(DOC_SEED), decoded_length=66560)
    assert_ok(outcome, DOC_DATA)


@hypothesis_settings
@given(cuts=cuts_strategy)
def test_doc_signed_trailer_body(cuts: list[int]) -> None:
    outcome = decode(
        doc_trailer_body(),
        cuts,
        signing=signing(TRAILER_SEED),
        decoded_length=66560,
        trailer_names=["x-amz-checksum-crc32c"],
        trailer_signed=True,
    )
    assert_ok(outcome, DOC_DATA, CRC32C_TRAILER)


def test_doc_signed_body_in_single_bytes() -> None:
    body = doc_body()
    outcome = decode(body, range(len(body)), signing=signing(DOC_SEED), decoded_length=66560)
    assert_ok(outcome, DOC_DATA)


@pytest.mark.parametrize("first", range(len(BOTO3_BODY) + 1))
def test_boto3_unsigned_trailer_any_split(first: int) -> None:
    for second in range(first, len(BOTO3_BODY) + 1, 3):
        outcome = decode(
            BOTO3_BODY,
            [first, second],
            decoded_length=11,
            trailer_names=["x-amz-checksum-crc32"],
        )
        assert_ok(outcome, b"hello world", BOTO3_TRAILERS)


@pytest.mark.parametrize(
    "body",
    [
        # upper- and lower-case hex, unknown chunk extensions, whitespace before ";"
        b"B;foo=bar\r\nhello world\r\n0;x=1\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n",
        b"5\r\nhello\r\n6 ;ext\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n",
        # an optional blank line before the trailers
        b"b\r\nhello world\r\n0\r\n\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n",
        # trailer name case and blanks around the value; an extra CRLF after the end
        b"b\r\nhello world\r\n0\r\nX-Amz-Checksum-CRC32: DUoRhQ== \r\n\r\n\r\n",
        # a chunk-signature on an unsigned body is just another extension
        b"b;chunk-signature=" + b"0" * 64 + b"\r\nhello world\r\n0\r\n"
        b"x-amz-checksum-crc32:DUoRhQ==\r\n\r\n",
    ],
)
def test_tolerated_variants(body: bytes) -> None:
    for cuts in ([], range(len(body))):
        outcome = decode(body, cuts, decoded_length=11, trailer_names=["x-amz-checksum-crc32"])
        assert_ok(outcome, b"hello world", BOTO3_TRAILERS)


def test_no_decoded_length_and_no_trailer() -> None:
    outcome = decode(b"3\r\nabc\r\n0\r\n\r\n")
    assert_ok(outcome, b"abc")


def test_empty_body() -> None:
    body, _ = signed_body([], DOC_SEED)
    outcome = decode(body, signing=signing(DOC_SEED), decoded_length=0)
    assert_ok(outcome, b"")
    empty_crc = {"x-amz-checksum-crc32": crc32_b64(b"")}
    outcome = decode(
        unsigned_body([], empty_crc), decoded_length=0, trailer_names=["x-amz-checksum-crc32"]
    )
    assert_ok(outcome, b"", empty_crc)


@pytest.mark.parametrize("algorithm", ["crc32", "crc32c", "crc64nvme", "sha1", "sha256"])
def test_every_checksum_trailer(algorithm: str) -> None:
    from s3router_proxy.s3.checksums import new_checksum

    data = bytes(range(256)) * 300
    checksum = new_checksum(algorithm)
    checksum.update(data)
    trailers = {f"x-amz-checksum-{algorithm}": checksum.b64digest()}
    body = unsigned_body([data[:1000], data[1000:]], trailers)
    outcome = decode(body, [1500, 40000], decoded_length=len(data), trailer_names=list(trailers))
    assert_ok(outcome, data, trailers)


def test_unknown_announced_trailer_is_collected_not_verified() -> None:
    trailers = {"x-amz-checksum-md5": "not-checked-here"}
    outcome = decode(unsigned_body([b"abc"], trailers), trailer_names=list(trailers))
    assert_ok(outcome, b"abc", trailers)


# ---------------------------------------------------------------------------------------------
# Random data, signed and unsigned, and the encoder round trip

chunks_strategy = st.lists(st.binary(min_size=1, max_size=3000), max_size=8)


@hypothesis_settings
@given(chunks=chunks_strategy, cuts=cuts_strategy, with_trailer=st.booleans())
def test_random_signed_bodies(chunks: list[bytes], cuts: list[int], with_trailer: bool) -> None:
    data = b"".join(chunks)
    trailers = {"x-amz-checksum-crc32": crc32_b64(data)} if with_trailer else None
    body, _ = signed_body(chunks, DOC_SEED, trailers)
    outcome = decode(
        body,
        [cut % (len(body) + 1) for cut in cuts],
        signing=signing(DOC_SEED),
        decoded_length=len(data),
        trailer_names=list(trailers or ()),
        trailer_signed=with_trailer,
    )
    assert_ok(outcome, data, trailers)


@hypothesis_settings
@given(pieces=st.lists(st.binary(max_size=3000), max_size=8), cuts=cuts_strategy)
def test_encode_then_decode_round_trip(pieces: list[bytes], cuts: list[int]) -> None:
    data = b"".join(pieces)
    trailers = {"x-amz-checksum-crc32": crc32_b64(data)}

    async def run() -> tuple[bytes, Outcome]:
        encoded = b"".join(
            [part async for part in encode_unsigned_trailer(pieces_of(pieces), lambda: trailers)]
        )
        source = pieces_of(split(encoded, [cut % (len(encoded) + 1) for cut in cuts]))
        outcome = await _decode(
            source,
            signing=None,
            decoded_length=len(data),
            trailer_names=list(trailers),
            trailer_signed=False,
        )
        return encoded, outcome

    encoded, outcome = asyncio.run(run())
    assert encoded == unsigned_body(pieces, trailers)
    assert_ok(outcome, data, trailers)


def test_encoder_frames_like_boto3() -> None:
    async def run() -> bytes:
        parts = encode_unsigned_trailer(pieces_of([b"hello world"]), lambda: BOTO3_TRAILERS)
        return b"".join([part async for part in parts])

    assert asyncio.run(run()) == BOTO3_BODY


def test_encoder_asks_for_trailers_only_after_the_pieces() -> None:
    consumed: list[bytes] = []

    async def source() -> AsyncIterator[bytes]:
        for piece in (b"ab", b"", b"c"):
            consumed.append(piece)
            yield piece

    def trailers() -> dict[str, str]:
        assert len(consumed) == 3
        return {"x-amz-checksum-crc32": crc32_b64(b"abc")}

    async def run() -> bytes:
        return b"".join([part async for part in encode_unsigned_trailer(source(), trailers)])

    assert asyncio.run(run()) == b"2\r\nab\r\n1\r\nc\r\n0\r\nx-amz-checksum-crc32:NSRBwg==\r\n\r\n"


def test_last_piece_leaves_only_after_the_source_is_exhausted() -> None:
    """Every piece but the last may leave early; the last only once the body fully arrived."""
    body = doc_trailer_body()
    pieces = split(body, range(0, len(body), 4000))
    delivered = 0

    async def source() -> AsyncIterator[bytes]:
        nonlocal delivered
        for piece in pieces:
            delivered += 1
            yield piece

    async def run() -> None:
        result = ChunkedResult()
        total = 0
        streamed_early = False
        async for piece in decode_aws_chunked(
            source(),
            signing=signing(TRAILER_SEED),
            decoded_length=66560,
            trailer_names=["x-amz-checksum-crc32c"],
            trailer_signed=True,
            result=result,
        ):
            total += len(piece)
            streamed_early = streamed_early or delivered < len(pieces)
            if total == len(DOC_DATA):  # the last piece: the whole body is in and checked
                assert delivered == len(pieces)
                assert result.trailers == CRC32C_TRAILER

        assert streamed_early  # data does stream before the body ends
        assert total == len(DOC_DATA)
        assert result.complete

    asyncio.run(run())


# ---------------------------------------------------------------------------------------------
# Failures: the right code, and the last piece never yielded


def test_flipped_data_byte_in_first_and_last_chunk() -> None:
    body = bytearray(doc_body())
    for index in (100, len(body) - 200):  # inside chunk 1, inside chunk 2
        broken = bytearray(body)
        broken[index] ^= 0x01
        outcome = decode(bytes(broken), signing=signing(DOC_SEED), decoded_length=66560)
        assert_refused(outcome, "SignatureDoesNotMatch", len(DOC_DATA))
        assert outcome.result.failure is not None
        assert outcome.result.failure.status == 403


@pytest.mark.parametrize("which", range(3))
def test_flipped_signature(which: int) -> None:
    good = DOC_SIGNATURES[which].encode()
    bad = good[:10] + (b"0" if good[10:11] != b"0" else b"1") + good[11:]
    body = doc_body().replace(good, bad)
    outcome = decode(body, [5000], signing=signing(DOC_SEED), decoded_length=66560)
    assert_refused(outcome, "SignatureDoesNotMatch", len(DOC_DATA))


def test_wrong_seed_or_key() -> None:
    outcome = decode(doc_body(), signing=signing(TRAILER_SEED), decoded_length=66560)
    assert_refused(outcome, "SignatureDoesNotMatch", len(DOC_DATA))
    other = ChunkSigning(signing_key(SECRET, "20130525", "us-east-1"), AMZ_DATE, SCOPE, DOC_SEED)
    outcome = decode(doc_body(), signing=other, decoded_length=66560)
    assert_refused(outcome, "SignatureDoesNotMatch", len(DOC_DATA))


def test_missing_chunk_signature() -> None:
    body = b"b\r\nhello world\r\n0\r\n\r\n"
    outcome = decode(body, signing=signing(DOC_SEED), decoded_length=11)
    assert_refused(outcome, "SignatureDoesNotMatch", 11)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"sOO8/Q==", b"AAAAAA=="),  # the checksum, now not what was signed
        (TRAILER_SIGNATURE.encode(), b"0" * 64),  # the trailer signature
        (b"x-amz-trailer-signature:" + TRAILER_SIGNATURE.encode() + b"\r\n", b""),  # dropped
    ],
)
def test_signed_trailer_tampered(old: bytes, new: bytes) -> None:
    body = doc_trailer_body()
    assert old in body
    outcome = decode(
        body.replace(old, new),
        [66000],
        signing=signing(TRAILER_SEED),
        decoded_length=66560,
        trailer_names=["x-amz-checksum-crc32c"],
        trailer_signed=True,
    )
    assert_refused(outcome, "SignatureDoesNotMatch", len(DOC_DATA))


def test_signed_trailer_over_wrong_checksum_is_bad_digest() -> None:
    """Correctly signed, but the signed checksum does not match the data: BadDigest."""
    wrong = {"x-amz-checksum-crc32c": "AAAAAA=="}
    body, _ = signed_body(DOC_CHUNKS, TRAILER_SEED, wrong)
    outcome = decode(
        body,
        signing=signing(TRAILER_SEED),
        decoded_length=66560,
        trailer_names=list(wrong),
        trailer_signed=True,
    )
    assert_refused(outcome, "BadDigest", len(DOC_DATA))
    assert outcome.result.failure is not None
    assert outcome.result.failure.message == (
        "The CRC32C you specified did not match the calculated checksum."
    )


@hypothesis_settings
@given(cuts=st.lists(st.integers(min_value=0, max_value=len(BOTO3_BODY)), max_size=4))
def test_unsigned_trailer_mismatch_is_bad_digest(cuts: list[int]) -> None:
    body = BOTO3_BODY.replace(b"DUoRhQ==", crc32_b64(b"hello worle").encode())
    outcome = decode(body, cuts, decoded_length=11, trailer_names=["x-amz-checksum-crc32"])
    assert_refused(outcome, "BadDigest", 11)
    assert b"hello world".startswith(outcome.data)
    if not cuts:
        assert outcome.data == b""  # one piece, and it is the last one
    assert outcome.result.failure is not None
    assert outcome.result.failure.status == 400
    assert outcome.result.failure.message == (
        "The CRC32 you specified did not match the calculated checksum."
    )


@pytest.mark.parametrize("value", [b"DUoRhQ", b"DUoRhQ==AA", b"%%%%%%%%", b""])
def test_malformed_checksum_value(value: bytes) -> None:
    body = BOTO3_BODY.replace(b"DUoRhQ==", value)
    outcome = decode(body, decoded_length=11, trailer_names=["x-amz-checksum-crc32"])
    assert_refused(outcome, "InvalidRequest", 11)


@hypothesis_settings
@given(
    index=st.integers(min_value=0, max_value=66823), flip=st.integers(1, 255), cuts=cuts_strategy
)
def test_any_flipped_byte_is_refused(index: int, flip: int, cuts: list[int]) -> None:
    body = bytearray(doc_body())
    body[index] ^= flip
    outcome = decode(bytes(body), cuts, signing=signing(DOC_SEED), decoded_length=66560)
    assert outcome.code in {"SignatureDoesNotMatch", "IncompleteBody"}
    assert_refused(outcome, outcome.code or "", len(DOC_DATA))


@hypothesis_settings
@given(length=st.integers(min_value=0, max_value=66823), cuts=cuts_strategy)
def test_truncated_signed_body(length: int, cuts: list[int]) -> None:
    outcome = decode(doc_body()[:length], cuts, signing=signing(DOC_SEED), decoded_length=66560)
    assert_refused(outcome, "IncompleteBody", len(DOC_DATA))


@pytest.mark.parametrize("length", range(len(BOTO3_BODY)))
def test_truncated_unsigned_body(length: int) -> None:
    outcome = decode(BOTO3_BODY[:length], decoded_length=11, trailer_names=["x-amz-checksum-crc32"])
    assert_refused(outcome, "IncompleteBody", 11)


@pytest.mark.parametrize("declared", [0, 1, 66559, 66561, 10**9])
def test_wrong_decoded_length(declared: int) -> None:
    outcome = decode(doc_body(), [30000], signing=signing(DOC_SEED), decoded_length=declared)
    assert_refused(outcome, "IncompleteBody", len(DOC_DATA))


def test_source_failure_is_incomplete_body() -> None:
    async def source() -> AsyncIterator[bytes]:
        yield BOTO3_BODY[:20]
        raise ConnectionResetError("client went away")

    outcome = asyncio.run(
        _decode(
            source(),
            signing=None,
            decoded_length=11,
            trailer_names=["x-amz-checksum-crc32"],
            trailer_signed=False,
        )
    )
    assert_refused(outcome, "IncompleteBody", 11)
    assert isinstance(outcome.error.__cause__.__cause__, ConnectionResetError)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "body",
    [
        b"b;" + b"x" * 5000 + b"\r\nhello world\r\n0\r\n\r\n",  # chunk-size line > 4 KiB
        b"b" + b" " * 5000,  # ... even before its end arrives
        b"%x\r\n" % (MAX_CHUNK + 1) + b"x" * 100,  # chunk > 16 MiB
        b"zz\r\nhello world\r\n0\r\n\r\n",  # not hex
        b"0xb\r\nhello world\r\n0\r\n\r\n",
        b"-b\r\nhello world\r\n0\r\n\r\n",
        b"\r\nhello world\r\n0\r\n\r\n",  # empty size
        b"b\r\nhello worldXY0\r\n\r\n",  # no CRLF after the data
        b"c\r\nhello world\r\n0\r\n\r\n",  # size says more than there is
        b"b\r\nhello world\r\n0\r\n\r\nmore",  # data after the end
        b"b\nhello world\n0\n\n",  # bare LF framing
    ],
)
def test_malformed_framing(body: bytes) -> None:
    for cuts in ([], range(0, len(body), 7)):
        outcome = decode(body, cuts)
        assert_refused(outcome, "IncompleteBody", 11)


def test_size_line_of_exactly_the_limit_is_accepted() -> None:
    line = b"b;" + b"x" * (4096 - 2)
    body = line + b"\r\nhello world\r\n0\r\n\r\n"
    for cuts in ([], [len(line) + 1], [len(line)], range(0, len(body), 1000)):
        assert_ok(decode(body, cuts), b"hello world")


@pytest.mark.parametrize(
    ("body", "announced"),
    [
        (b"b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n", []),  # unannounced
        (b"b\r\nhello world\r\n0\r\nx-amz-meta-a:b\r\n\r\n", ["x-amz-checksum-crc32"]),
        (b"b\r\nhello world\r\n0\r\n\r\n", ["x-amz-checksum-crc32"]),  # announced, missing
        (b"b\r\nhello world\r\n0\r\n\r\n\r\n", ["x-amz-checksum-crc32"]),
        (
            b"b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n"
            b"x-amz-checksum-crc32:DUoRhQ==\r\n\r\n",
            ["x-amz-checksum-crc32"],
        ),  # twice
        (b"b\r\nhello world\r\n0\r\nno colon here\r\n\r\n", ["x-amz-checksum-crc32"]),
        (b"b\r\nhello world\r\n0\r\n: DUoRhQ==\r\n\r\n", ["x-amz-checksum-crc32"]),
        (
            b"b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:\xffDUoRhQ==\r\n\r\n",
            ["x-amz-checksum-crc32"],
        ),  # not ASCII
        (
            b"b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:" + b"A" * 5000 + b"\r\n\r\n",
            ["x-amz-checksum-crc32"],
        ),  # trailer section > 4 KiB
        (
            b"b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n"
            b"x-amz-trailer-signature:" + b"0" * 64 + b"\r\n\r\n",
            ["x-amz-checksum-crc32"],
        ),  # a signature on an unsigned trailer
    ],
)
def test_malformed_trailers(body: bytes, announced: list[str]) -> None:
    for cuts in ([], range(0, len(body), 5)):
        outcome = decode(body, cuts, decoded_length=11, trailer_names=announced)
        assert_refused(outcome, "MalformedTrailerError", 11)
        assert outcome.result.failure is not None
        assert outcome.result.failure.status == 400


def test_signed_trailer_requires_signing() -> None:
    with pytest.raises(ValueError):
        decode(BOTO3_BODY, trailer_names=["x-amz-checksum-crc32"], trailer_signed=True)


def test_trailer_after_the_trailer_signature() -> None:
    checksum_line = b"x-amz-checksum-crc32c:sOO8/Q==\r\n"
    body = doc_trailer_body().replace(checksum_line, b"")
    body = body[:-2] + checksum_line + b"\r\n"  # moved behind the signature line
    outcome = decode(
        body,
        signing=signing(TRAILER_SEED),
        decoded_length=66560,
        trailer_names=["x-amz-checksum-crc32c"],
        trailer_signed=True,
    )
    assert_refused(outcome, "MalformedTrailerError", len(DOC_DATA))
