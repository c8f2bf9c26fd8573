"""The form parser over raw bytes, delivered in pieces of every size."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable

import pytest

from s3router_proxy.body import formdata
from s3router_proxy.body.formdata import Form, FormReader, form_boundary, part_name
from s3router_proxy.body.payload import BodyAborted, BodyCheck, BodyOutcome
from s3router_proxy.s3.errors import S3Error

B = "b0UnD"


def body(fields: dict[str, str], file: bytes, *, tail: bytes | None = None) -> bytes:
    out = b""
    for name, value in fields.items():
        out += f'--{B}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    out += f'--{B}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n'.encode()
    out += b"Content-Type: text/plain\r\n\r\n" + file
    return out + (f"\r\n--{B}--\r\n".encode() if tail is None else tail)


def reader_of(data: bytes, piece: int) -> Callable[[], Awaitable[bytes]]:
    pieces = [data[i : i + piece] for i in range(0, len(data), piece)]

    async def read() -> bytes:
        return pieces.pop(0) if pieces else b""

    return read


async def _read_all(
    data: bytes, piece: int, checks: tuple[BodyCheck, ...] = ()
) -> tuple[Form, bytes, BodyOutcome]:
    reader = FormReader(reader_of(data, piece), B.encode(), len(data))
    form = await reader.read_fields()
    if form.file_size == 0:
        await reader.check_empty_file()
    outcome = BodyOutcome()
    got = b"".join([p async for p in reader.file_body(outcome, checks)])
    return form, got, outcome


def read_all(
    data: bytes, piece: int, checks: tuple[BodyCheck, ...] = ()
) -> tuple[Form, bytes, BodyOutcome]:
    return asyncio.run(_read_all(data, piece, checks))


def failure(data: bytes, piece: int = 7) -> S3Error:
    try:
        read_all(data, piece)
    except S3Error as error:
        return error
    except BodyAborted as aborted:
        assert isinstance(aborted.__cause__, S3Error)
        return aborted.__cause__
    raise AssertionError("the form was accepted")


@pytest.mark.parametrize("piece", [1, 2, 5, 13, 64, 1 << 20])
@pytest.mark.parametrize(
    "file", [b"", b"x", b"--b0UnD", b"\r\n--b0Un", b"\r\n" * 50, bytes(range(256))]
)
def test_fields_and_file_in_any_pieces(piece: int, file: bytes) -> None:
    form, got, outcome = read_all(body({"Key": "k/${filename}", "policy": "p"}, file), piece)
    assert form.fields == {"key": "k/${filename}", "policy": "p"}
    assert form.filename == "a.txt"
    assert form.file_size == len(file)
    assert got == file
    assert outcome.complete and outcome.sent == len(file)


def test_the_last_piece_waits_for_the_closing_boundary() -> None:
    data = body({}, b"A" * 1000, tail=f"\r\n--{B}\r\n".encode() + b"x" * 4)
    reader = FormReader(reader_of(data, 100), B.encode(), len(data))

    async def run() -> tuple[int, list[bytes], BaseException | None]:
        form = await reader.read_fields()
        outcome, seen = BodyOutcome(), []
        try:
            async for piece in reader.file_body(outcome):
                seen.append(piece)
        except BodyAborted as error:
            return form.file_size, seen, error
        return form.file_size, seen, None

    size, seen, error = asyncio.run(run())
    assert error is not None
    assert sum(map(len, seen)) < size  # the backend never had all the bytes it was promised


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (body({}, b"abc\r\n--b0UnD" + b"rest"), "MalformedPOSTRequest"),  # boundary in the file
        (body({}, b"abc", tail=b"\r\n--b0UnD--"), "MalformedPOSTRequest"),  # no final CRLF
        (body({}, b"abc", tail=b"\r\n--b0UnD--\r\nepilogue"), "MalformedPOSTRequest"),
        (
            body(
                {},
                b"abc",
                tail=b"\r\n--b0UnD\r\nContent-Disposition: form-data; name=x\r\n\r\n"
                b"y\r\n--b0UnD--\r\n",
            ),
            "MalformedPOSTRequest",
        ),  # a field after the file
        (b"preamble\r\n" + body({}, b"abc"), "MalformedPOSTRequest"),
        (
            body({"a": "1"}, b"").split(b'--b0UnD\r\nContent-Disposition: form-data; name="file"')[
                0
            ]
            + b"--b0UnD--\r\n",
            "IncorrectNumberOfFilesInPostRequest",
        ),
        (body({"a": "x" * (formdata.MAX_FIELD_BYTES + 1)}, b"f"), "MaxPostPreDataLengthExceeded"),
        (body({f"f{i}": "x" * 10_000 for i in range(8)}, b"f"), "MaxPostPreDataLengthExceeded"),
        (body({f"f{i}": "" for i in range(formdata.MAX_FIELDS + 1)}, b"f"), "MalformedPOSTRequest"),
        (body({"a": "1", "A": "2"}, b"f"), "MalformedPOSTRequest"),  # the same field twice
        (body({}, b"f").replace(b"a.txt", b'a"b'), "MalformedPOSTRequest"),
        (body({}, b"f").replace(b"a.txt", b"a\r\nb"), "MalformedPOSTRequest"),
        (body({}, b"f").replace(b'; name="file"', b""), "MalformedPOSTRequest"),
        (
            body({}, b"f").replace(
                b"Content-Disposition: form-data", b"Content-Disposition: inline"
            ),
            "MalformedPOSTRequest",
        ),
        (
            body({}, b"f").replace(b"Content-Type: text/plain", b"no colon here"),
            "MalformedPOSTRequest",
        ),
        (body({"a": "1"}, b"f").replace(b'name="a"', b'name="\xff"'), "MalformedPOSTRequest"),
    ],
)
@pytest.mark.parametrize("piece", [1, 3, 7, 64, 1 << 20])
def test_broken_forms_are_refused(data: bytes, code: str, piece: int) -> None:
    error = failure(data, piece)
    assert (error.code, error.status) == (code, 400)


def test_a_body_that_ends_early_is_incomplete() -> None:
    data = body({}, b"A" * 100)
    reader = FormReader(reader_of(data[:-30], 9), B.encode(), len(data))

    async def run() -> S3Error:
        await reader.read_fields()
        outcome = BodyOutcome()
        with pytest.raises(BodyAborted):
            async for _ in reader.file_body(outcome):
                pass
        assert outcome.failure is not None
        return outcome.failure

    assert asyncio.run(run()).code in ("IncompleteBody", "MalformedPOSTRequest")


def test_a_check_failing_holds_the_last_piece() -> None:
    digest = hashlib.sha256()
    check = BodyCheck(digest, lambda: False, lambda: S3Error("BadDigest"))
    with pytest.raises(BodyAborted) as caught:
        read_all(body({}, b"payload"), 3, (check,))
    assert isinstance(caught.value.__cause__, S3Error)
    assert caught.value.__cause__.code == "BadDigest"
    assert digest.digest() == hashlib.sha256(b"payload").digest()


@pytest.mark.parametrize(
    ("header", "boundary"),
    [
        ("multipart/form-data; boundary=abc", b"abc"),
        ('multipart/form-data; boundary="a b:c"', b"a b:c"),
        ("Multipart/Form-Data;boundary=----WebKitFormBoundaryX", b"----WebKitFormBoundaryX"),
    ],
)
def test_boundaries(header: str, boundary: bytes) -> None:
    assert form_boundary(header) == boundary


@pytest.mark.parametrize(
    "header",
    [
        "multipart/form-data",
        "multipart/mixed; boundary=abc",
        "multipart/form-data; boundary=",
        "multipart/form-data; boundary=" + "a" * 71,
        'multipart/form-data; boundary="ends with space "',
        "multipart/form-data; boundary=a; boundary=b",
        'multipart/form-data; boundary="a\r\nb"',
    ],
)
def test_bad_boundaries(header: str) -> None:
    with pytest.raises(S3Error) as caught:
        form_boundary(header)
    assert caught.value.code == "MalformedPOSTRequest"


def test_part_names_unescape_quoted_strings() -> None:
    head = b'Content-Disposition: form-data; name="file"; filename="a\\"b.txt"'
    assert part_name(head) == ("file", 'a"b.txt')
    assert part_name(b"content-disposition: form-data; name=key") == ("key", None)
