"""Uploads sent with Transfer-Encoding: chunked and no length, per backend's `chunked_uploads`.

`refuse` answers S3's 411 MissingContentLength before the backend hears of the request (and
before `Expect: 100-continue` is answered); `forward` streams the body on, chunked again by the
proxy's own client, with the client's payload hash (or UNSIGNED-PAYLOAD) and every check still
made as it streams: a failed one leaves the backend a body without its end, so nothing is
written. Requests are hand-made on raw sockets and signed with botocore's signer; what moto
stored is read from moto, and what reached a backend from a `RawBackend`'s log.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import uuid
from collections.abc import Iterator, Sequence
from urllib.parse import quote

import pytest
from botocore.exceptions import ClientError
from frontkit import Answer, backend_requests, exchange, read_answer, wire_from
from harness import (
    LOOPBACK,
    PLAIN_ACCESS_KEY_ID,
    PLAIN_SECRET_ACCESS_KEY,
    MotoBackend,
    ProxyProcess,
    RawBackend,
    unique_bucket_name,
    write_config,
)
from rawclient import sign

KEY, SECRET = "AKIACHUNKED", "chunked-secret"
UNSIGNED = "UNSIGNED-PAYLOAD"
CHUNKED = {"Transfer-Encoding": "chunked"}


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RawBackend]:
    with RawBackend(tmp_path_factory.mktemp("chunked-raw")) as backend:
        yield backend


@pytest.fixture(scope="module")
def proxy(
    raw: RawBackend,
    moto_plain: MotoBackend,
    moto_auth: MotoBackend,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ProxyProcess]:
    """`moto` takes chunked uploads, and as `moto-refuse` (buckets `refuse-*`) it does not (the
    default); the RawBackend is `raw-forward` (takes them) and `raw-refuse`; buckets `capped-*`
    hold bodies to 1 KiB; buckets `checked-*` are on a moto that checks every signature;
    `mirrored-*` go to both motos, `half-*` to one that takes them and one that does not."""
    directory = tmp_path_factory.mktemp("chunked-proxy")
    keys = f'access_key_id: "{PLAIN_ACCESS_KEY_ID}", secret_access_key: "{PLAIN_SECRET_ACCESS_KEY}"'
    config = write_config(
        directory,
        f"""
backends:
  moto: {{endpoint: "{moto_plain.endpoint}", {keys}, chunked_uploads: forward}}
  raw-forward: {{endpoint: "{raw.endpoint}", {keys}, chunked_uploads: forward, read_timeout: 10}}
  raw-refuse: {{endpoint: "{raw.endpoint}", {keys}, read_timeout: 10}}
  moto-refuse: {{endpoint: "{moto_plain.endpoint}", {keys}}}
  checked:
    endpoint: "{moto_auth.endpoint}"
    access_key_id: "{moto_auth.access_key_id}"
    secret_access_key: "{moto_auth.secret_access_key}"
    chunked_uploads: forward
clients:
  - {{name: tester, access_key_id: "{KEY}", secret_access_key: "{SECRET}"}}
routing:
  rules:
    - {{pattern: "raw-forward", target: raw-forward}}
    - {{pattern: "raw-refuse", target: raw-refuse}}
    - {{pattern: "refuse-*", target: moto-refuse}}
    - {{pattern: "capped-*", target: moto, max_body_size: 1KiB}}
    - {{pattern: "checked-*", target: checked}}
    - {{pattern: "mirrored-*", target: moto, mirror: [checked], mirror_mode: strict}}
    - {{pattern: "half-*", target: moto, mirror: [moto-refuse], mirror_mode: strict}}
  default_target: moto
""",
    )
    with ProxyProcess(config, directory) as process:
        yield process


def chunked_head(
    proxy: ProxyProcess,
    target: str,
    payload_hash: str,
    headers: dict[str, str] | None = None,
    *,
    method: str = "PUT",
) -> bytes:
    """A signed request head for `target`, its body framed Transfer-Encoding: chunked."""
    host = f"{LOOPBACK}:{proxy.port}"
    signed = sign(
        method,
        f"http://{host}{target}",
        KEY,
        SECRET,
        headers={**CHUNKED, **(headers or {})},
        payload_hash=payload_hash,
    )
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in signed.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chunks(pieces: Sequence[bytes]) -> bytes:
    framed = b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in pieces if p)
    return framed + b"0\r\n\r\n"


def put(
    proxy: ProxyProcess,
    target: str,
    pieces: Sequence[bytes],
    *,
    payload_hash: str = UNSIGNED,
    headers: dict[str, str] | None = None,
) -> Answer:
    answers = exchange(
        proxy.port, chunked_head(proxy, target, payload_hash, headers) + chunks(pieces)
    )
    assert answers, "the proxy closed without an answer"
    return answers[0]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pieces_of(size: int, piece: int = 64 * 1024) -> list[bytes]:
    data = uuid.uuid4().bytes * (size // 16 + 1)
    data = data[:size]
    return [data[i : i + piece] for i in range(0, size, piece)]


def stored(moto: MotoBackend, bucket: str, key: str) -> bytes | None:
    try:
        return moto.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "NoSuchKey"
        return None


@pytest.fixture
def bucket(moto_plain: MotoBackend) -> str:
    name = unique_bucket_name("chunked")
    moto_plain.client().create_bucket(Bucket=name)
    return name


# -- forward: the object is stored whole ---------------------------------------------------------


@pytest.mark.parametrize("signed_payload", [False, True], ids=["unsigned", "sha256"])
def test_a_chunked_put_object_is_stored_whole(
    proxy: ProxyProcess, moto_plain: MotoBackend, bucket: str, signed_payload: bool
) -> None:
    pieces = pieces_of(300 * 1024 + 7, piece=50_000)
    data = b"".join(pieces)
    answer = put(
        proxy,
        f"/{bucket}/dir/a%20b",
        pieces,
        payload_hash=sha256(data) if signed_payload else UNSIGNED,
    )
    assert answer.status == 200, answer
    back = stored(moto_plain, bucket, "dir/a b")
    assert back is not None and sha256(back) == sha256(data)


@pytest.mark.parametrize("signed_payload", [False, True], ids=["unsigned", "sha256"])
def test_a_backend_that_checks_signatures_takes_the_re_signed_upload(
    proxy: ProxyProcess, moto_auth: MotoBackend, signed_payload: bool
) -> None:
    bucket = unique_bucket_name("checked")
    moto_auth.client().create_bucket(Bucket=bucket)
    pieces = pieces_of(100 * 1024)
    data = b"".join(pieces)
    payload_hash = sha256(data) if signed_payload else UNSIGNED
    assert put(proxy, f"/{bucket}/k", pieces, payload_hash=payload_hash).status == 200
    back = moto_auth.client().get_object(Bucket=bucket, Key="k")["Body"].read()
    assert sha256(back) == sha256(data)


def test_a_chunked_upload_part_completes_the_upload(
    proxy: ProxyProcess, moto_plain: MotoBackend, bucket: str
) -> None:
    client = proxy.client(KEY, SECRET)
    upload_id = client.create_multipart_upload(Bucket=bucket, Key="big")["UploadId"]
    pieces = pieces_of(200 * 1024)
    data = b"".join(pieces)
    target = f"/{bucket}/big?partNumber=1&uploadId={quote(upload_id, safe='')}"
    answer = put(proxy, target, pieces, payload_hash=sha256(data))
    assert answer.status == 200, answer
    etag = answer.headers["etag"]
    assert etag.strip('"') == hashlib.md5(data).hexdigest()
    parts = client.list_parts(Bucket=bucket, Key="big", UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in parts] == [(1, len(data))]
    client.complete_multipart_upload(
        Bucket=bucket,
        Key="big",
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]},
    )
    back = stored(moto_plain, bucket, "big")
    assert back is not None and sha256(back) == sha256(data)


def test_an_empty_chunked_body_is_an_empty_object(
    proxy: ProxyProcess, moto_plain: MotoBackend, bucket: str
) -> None:
    assert put(proxy, f"/{bucket}/empty", [], payload_hash=sha256(b"")).status == 200
    assert stored(moto_plain, bucket, "empty") == b""


def test_the_backend_gets_the_body_chunked_again(proxy: ProxyProcess, raw: RawBackend) -> None:
    mark = uuid.uuid4().hex[:12]
    data = b"hello chunked world" * 100
    answer = put(
        proxy, f"/raw-forward/{mark}", [data[:1000], data[1000:]], payload_hash=sha256(data)
    )
    assert answer.status == 200, answer
    (seen,) = backend_requests(raw, mark)
    headers = {name.lower(): value for name, value in seen["headers"]}
    assert headers["transfer-encoding"] == "chunked"
    assert "content-length" not in headers
    # The client's hash signs the backend request too: the backend can check the body again.
    assert headers["x-amz-content-sha256"] == sha256(data)
    assert (seen["body_len"], seen["body_sha256"]) == (len(data), sha256(data))
    wire = raw.received()
    request = wire[wire.index(f"PUT /raw-forward/{mark}".encode()) :]
    body = request[request.index(b"\r\n\r\n") + 4 :]
    assert body.endswith(b"\r\n0\r\n\r\n")
    assert b"".join(_dechunk(body)) == data


def test_an_unsigned_body_goes_on_unsigned(proxy: ProxyProcess, raw: RawBackend) -> None:
    mark = uuid.uuid4().hex[:12]
    assert put(proxy, f"/raw-forward/{mark}", [b"abc"]).status == 200
    (seen,) = backend_requests(raw, mark)
    headers = {name.lower(): value for name, value in seen["headers"]}
    assert (headers["x-amz-content-sha256"], headers["transfer-encoding"]) == (UNSIGNED, "chunked")
    assert seen["body_sha256"] == sha256(b"abc")


def _dechunk(body: bytes) -> Iterator[bytes]:
    """The chunks of a chunked body, read strictly (sizes in hex, CRLF after each)."""
    while True:
        line, _, body = body.partition(b"\r\n")
        size = int(line, 16)
        if size == 0:
            assert body == b"\r\n"
            return
        assert body[size : size + 2] == b"\r\n"
        yield body[:size]
        body = body[size + 2 :]


# -- refuse: S3's 411, and the backend never hears of it ------------------------------------------


def test_a_refusing_backend_never_sees_the_upload(proxy: ProxyProcess, raw: RawBackend) -> None:
    mark = uuid.uuid4().hex[:12]
    answer = put(proxy, f"/raw-refuse/{mark}", [b"x" * 100], payload_hash=sha256(b"x" * 100))
    assert (answer.status, answer.code) == (411, "MissingContentLength")
    assert mark.encode() not in raw.received()


def test_a_chunked_upload_part_is_refused_before_the_backend_hears_of_it(
    proxy: ProxyProcess, moto_plain: MotoBackend
) -> None:
    bucket = unique_bucket_name("refuse")
    moto_plain.client().create_bucket(Bucket=bucket)
    client = proxy.client(KEY, SECRET)
    upload_id = client.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    served = moto_plain.request_count()
    target = f"/{bucket}/k?partNumber=1&uploadId={quote(upload_id, safe='')}"
    answer = put(proxy, target, [b"x" * 100])
    assert (answer.status, answer.code) == (411, "MissingContentLength")
    assert moto_plain.requests_since(served) == []
    assert client.list_parts(Bucket=bucket, Key="k", UploadId=upload_id).get("Parts", []) == []


def test_the_refusal_comes_instead_of_100_continue(proxy: ProxyProcess, raw: RawBackend) -> None:
    mark = uuid.uuid4().hex[:12]
    head = chunked_head(proxy, f"/raw-refuse/{mark}", UNSIGNED, {"Expect": "100-continue"})
    with socket.create_connection((LOOPBACK, proxy.port), timeout=10) as sock:
        sock.sendall(head)
        stream = sock.makefile("rb")
        assert stream.readline().startswith(b"HTTP/1.1 411 ")
    assert mark.encode() not in raw.received()
    # Where the backend takes chunked uploads, the client is told to go on.
    head = chunked_head(proxy, f"/raw-forward/{mark}", UNSIGNED, {"Expect": "100-continue"})
    with socket.create_connection((LOOPBACK, proxy.port), timeout=10) as sock:
        sock.sendall(head)
        stream = sock.makefile("rb")
        assert stream.readline().startswith(b"HTTP/1.1 100 ")
        assert stream.readline() == b"\r\n"
        sock.sendall(chunks([b"go on"]))
        answer = read_answer(stream)
    assert answer is not None and answer.status == 200
    assert [r["body_sha256"] for r in backend_requests(raw, mark)] == [sha256(b"go on")]


# -- a failed check or a cap: nothing written -----------------------------------------------------


def test_a_payload_hash_mismatch_writes_nothing(
    proxy: ProxyProcess, moto_plain: MotoBackend, raw: RawBackend, bucket: str
) -> None:
    pieces = pieces_of(200 * 1024)
    answer = put(proxy, f"/{bucket}/k", pieces, payload_hash=sha256(b"something else"))
    assert (answer.status, answer.code) == (400, "XAmzContentSHA256Mismatch")
    assert stored(moto_plain, bucket, "k") is None
    # What the backend saw: the head and some of the body, never the chunked body's end.
    mark = uuid.uuid4().hex[:12]
    answer = put(proxy, f"/raw-forward/{mark}", pieces, payload_hash=sha256(b"something else"))
    assert answer.code == "XAmzContentSHA256Mismatch"
    request = wire_from(raw, f"PUT /raw-forward/{mark}".encode())
    assert b"\r\n0\r\n\r\n" not in request
    assert backend_requests(raw, mark) == []


def test_a_content_md5_mismatch_writes_nothing(
    proxy: ProxyProcess, moto_plain: MotoBackend, bucket: str
) -> None:
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    answer = put(proxy, f"/{bucket}/k", pieces_of(100 * 1024), headers={"Content-MD5": wrong})
    assert (answer.status, answer.code) == (400, "BadDigest")
    assert stored(moto_plain, bucket, "k") is None


def test_a_capped_rule_stops_a_stream_at_its_cap(
    proxy: ProxyProcess, moto_plain: MotoBackend
) -> None:
    bucket = unique_bucket_name("capped")
    moto_plain.client().create_bucket(Bucket=bucket)
    assert put(proxy, f"/{bucket}/fits", [b"x" * 512, b"y" * 512]).status == 200
    assert stored(moto_plain, bucket, "fits") == b"x" * 512 + b"y" * 512
    answer = put(proxy, f"/{bucket}/big", [b"x" * 512, b"y" * 512, b"z"])
    assert (answer.status, answer.code) == (400, "EntityTooLarge")
    assert stored(moto_plain, bucket, "big") is None
    answer = put(proxy, f"/{bucket}/huge", pieces_of(2 * 1024 * 1024))
    assert answer.code == "EntityTooLarge"
    assert stored(moto_plain, bucket, "huge") is None


# -- framing the front server refuses whatever the backend takes --------------------------------


@pytest.mark.parametrize(
    "framing",
    [
        "Transfer-Encoding: chunked, chunked",
        "Transfer-Encoding: gzip, chunked",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
        "Content-Length: 5\r\nTransfer-Encoding: chunked",
        "Transfer-Encoding: chunked\r\nContent-Length: 5",
    ],
    ids=["chunked-chunked", "gzip-chunked", "two-lines", "cl-te", "te-cl"],
)
def test_an_upload_framed_two_ways_is_refused_before_anything_is_sent(
    proxy: ProxyProcess, raw: RawBackend, framing: str
) -> None:
    mark = uuid.uuid4().hex[:12]
    head = chunked_head(proxy, f"/raw-forward/{mark}", UNSIGNED)
    head = head.replace(b"Transfer-Encoding: chunked\r\n", framing.encode() + b"\r\n")
    answers = exchange(proxy.port, head + chunks([b"hello"]))
    assert len(answers) <= 1
    if answers:
        assert answers[0].status in (400, 501), answers[0]
        assert answers[0].headers["connection"] == "close"
    assert mark.encode() not in raw.received()


@pytest.mark.parametrize(
    "body",
    [
        b"zz\r\nhello\r\n0\r\n\r\n",
        b"fffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
        b"0x5\r\nhello\r\n0\r\n\r\n",
        b"-5\r\nhello\r\n0\r\n\r\n",
        b"5\r\nhello\r\n2\r\nabXY\r\n0\r\n\r\n",
    ],
    ids=["bad-hex", "size-overflow", "size-0x", "size-negative", "data-too-long"],
)
def test_a_chunk_framed_badly_is_bad_request_and_never_completes_at_the_backend(
    proxy: ProxyProcess, raw: RawBackend, body: bytes
) -> None:
    mark = uuid.uuid4().hex[:12]
    answers = exchange(proxy.port, chunked_head(proxy, f"/raw-forward/{mark}", UNSIGNED) + body)
    assert [a.status for a in answers] == [400], answers
    assert answers[0].headers["connection"] == "close"
    assert backend_requests(raw, mark) == []


def test_a_mirrored_chunked_upload_reaches_every_store(
    proxy: ProxyProcess, moto_plain: MotoBackend, moto_auth: MotoBackend
) -> None:
    bucket = unique_bucket_name("mirrored")
    moto_plain.client().create_bucket(Bucket=bucket)
    moto_auth.client().create_bucket(Bucket=bucket)
    pieces = pieces_of(300 * 1024)
    data = b"".join(pieces)
    assert put(proxy, f"/{bucket}/k", pieces, payload_hash=sha256(data)).status == 200
    assert sha256(stored(moto_plain, bucket, "k") or b"") == sha256(data)
    back = moto_auth.client().get_object(Bucket=bucket, Key="k")["Body"].read()
    assert sha256(back) == sha256(data)
    # A failed check leaves both without it.
    answer = put(proxy, f"/{bucket}/bad", pieces, payload_hash=sha256(b"other"))
    assert answer.code == "XAmzContentSHA256Mismatch"
    assert stored(moto_plain, bucket, "bad") is None
    with pytest.raises(ClientError):
        moto_auth.client().head_object(Bucket=bucket, Key="bad")


def test_a_mirror_that_refuses_refuses_the_whole_write(
    proxy: ProxyProcess, moto_plain: MotoBackend
) -> None:
    bucket = unique_bucket_name("half")
    moto_plain.client().create_bucket(Bucket=bucket)
    served = moto_plain.request_count()
    answer = put(proxy, f"/{bucket}/k", [b"x" * 100])
    assert (answer.status, answer.code) == (411, "MissingContentLength")
    assert moto_plain.requests_since(served) == []
