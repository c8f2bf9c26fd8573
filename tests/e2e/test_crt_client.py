"""The AWS Common Runtime's S3 client (`awscrt.s3.S3Client`) through the proxy.

aws-cli v2 and s3transfer's fast path use it, and it talks to S3 unlike boto3: it splits a large
upload (or a stream of unknown length) into parts sent in parallel, sends flexible checksums
(the CRCs, the SHAs, the xxhashes) as an unsigned aws-chunked trailer or as a header, and
downloads with parallel ranged GETs, which it can check against a whole-object checksum. It is
pointed at the proxy the way s3transfer does it for an `endpoint_url` with a port: plain HTTP
(or HTTPS, trusting the proxy's CA) and a `Host: 127.0.0.1:PORT` header. Behind the proxy is
moto with signature checks on, twice: `lake` takes checksum trailers as sent
(`checksum_trailers: true`), `store` plain bodies.

Where moto differs from S3, the tests say so: moto stores an object whose `x-amz-checksum-*`
header does not match (S3 answers BadDigest, as the proxy does), and it returns stored checksums
on GET only for `x-amz-checksum-mode: ENABLED` in upper case while the CRT sends `enabled`, so
the CRT's `validate_response` never gets to validate against moto, directly or through the proxy.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
from awscrt.auth import AwsCredentialsProvider
from awscrt.http import HttpHeaders, HttpRequest
from awscrt.io import (
    ClientBootstrap,
    ClientTlsContext,
    DefaultHostResolver,
    EventLoopGroup,
    TlsContextOptions,
)
from awscrt.s3 import (
    S3ChecksumAlgorithm,
    S3ChecksumConfig,
    S3ChecksumLocation,
    S3Client,
    S3RequestTlsMode,
    S3RequestType,
)
from botocore.exceptions import ClientError
from harness import LOOPBACK, REGION, MotoBackend, ProxyProcess, unique_bucket_name, write_config

from s3router_proxy.s3.checksums import new_checksum

KEY, SECRET = "AKIACRTCLIENT", "crt-client-secret"
MIB = 1024 * 1024
PART_SIZE = 5 * MIB
BIG = 17 * MIB + 12345  # four parts, the last one short
TIMEOUT = 60.0
A = S3ChecksumAlgorithm
TRAILER, HEADER = S3ChecksumLocation.TRAILER, S3ChecksumLocation.HEADER
# The logical bucket of the name-mapping rule; its `raw/` keys live in MAPPED under `main/`.
LOGICAL, MAPPED = unique_bucket_name("crt-logical"), unique_bucket_name("crt-mapped")


@dataclass(frozen=True, slots=True)
class Done:
    """How a CRT request ended: status, error (and its body), whether a checksum was checked."""

    status: int | None
    error: BaseException | None
    error_body: bytes
    validated: bool


@dataclass(frozen=True, slots=True)
class Crt:
    """A CRT S3 client and the port it is pointed at."""

    client: S3Client
    port: int

    def request(
        self,
        kind: S3RequestType,
        method: str,
        path: str,
        *,
        headers: tuple[tuple[str, str], ...] = (),
        body: bytes | None = None,
        **options: Any,
    ) -> Done:
        """Send one request (split into parts by the CRT as it sees fit) and wait for its end."""
        out: dict[str, Any] = {}

        def on_done(**kwargs: Any) -> None:
            out.update(kwargs)

        head = HttpHeaders([("Host", f"{LOOPBACK}:{self.port}"), *headers])
        request = HttpRequest(
            method, path, headers=head, body_stream=None if body is None else io.BytesIO(body)
        )
        started = self.client.make_request(type=kind, request=request, on_done=on_done, **options)
        try:
            started.finished_future.result(TIMEOUT)
        except Exception as err:  # the CRT's own error types; on_done has the details
            out.setdefault("error", err)
        return Done(
            status=out.get("status_code"),
            error=out.get("error"),
            error_body=out.get("error_body") or b"",
            validated=bool(out.get("did_validate_checksum")),
        )

    def put_file(self, bucket: str, key: str, path: Path, **options: Any) -> Done:
        length = str(path.stat().st_size)
        return self.request(
            S3RequestType.PUT_OBJECT,
            "PUT",
            f"/{bucket}/{key}",
            headers=(("Content-Length", length),),
            send_filepath=str(path),
            **options,
        )

    def get_file(
        self, bucket: str, key: str, path: Path, checksum: S3ChecksumConfig | None = None
    ) -> Done:
        return self.request(
            S3RequestType.GET_OBJECT,
            "GET",
            f"/{bucket}/{key}",
            recv_filepath=str(path),
            checksum_config=checksum or S3ChecksumConfig(validate_response=True),
        )


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stored_sha256(backend: MotoBackend, bucket: str, key: str) -> str:
    body = backend.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    return hashlib.sha256(body).hexdigest()


def wrong_checksum(algorithm: str, data: bytes) -> str:
    """A well-formed value of `algorithm` that is not the checksum of `data`."""
    checksum = new_checksum(algorithm)
    checksum.update(data)
    right = checksum.digest()
    return base64.b64encode(bytes([right[0] ^ 1]) + right[1:]).decode()


def error_code(done: Done) -> str:
    start, end = done.error_body.find(b"<Code>"), done.error_body.find(b"</Code>")
    return done.error_body[start + len(b"<Code>") : end].decode() if start >= 0 else ""


def exists(backend: MotoBackend, bucket: str, key: str) -> bool:
    try:
        backend.client().head_object(Bucket=bucket, Key=key)
    except ClientError as err:
        if err.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
            return False
        raise
    return True


def start_proxy(directory: Path, moto: MotoBackend, router: str = "") -> ProxyProcess:
    """The proxy in front of `moto`, under its two names; `router` is a one-line section."""
    keys = moto.config_keys()
    config = write_config(
        directory,
        f"""
        {router}
        backends:
          lake: {{{keys}, checksum_trailers: true}}
          store: {{{keys}}}
        clients:
          - {{name: crt, access_key_id: "{KEY}", secret_access_key: "{SECRET}"}}
        routing:
          rules:
            - pattern: "{LOGICAL}"
              key_pattern: "raw/*"
              target: lake
              mapped_bucket: "{MAPPED}"
              mapped_prefix: "main"
            - {{pattern: "trail-*", target: lake}}
          default_target: store
        """,
    )
    return ProxyProcess(config, directory, log_level="info").start()


@pytest.fixture(scope="module")
def proxy(
    moto_auth: MotoBackend, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    process = start_proxy(tmp_path_factory.mktemp("crt-proxy"), moto_auth)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def tls_proxy(
    moto_auth: MotoBackend, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ProxyProcess, Path]]:
    """The proxy over HTTPS (aws-cli v2's default), and the CA file its certificate is from."""
    directory = tmp_path_factory.mktemp("crt-tls-proxy")
    ca = trustme.CA()
    cert = ca.issue_cert(LOOPBACK, "localhost")
    chain, key, ca_file = directory / "chain.pem", directory / "key.pem", directory / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(chain))
    cert.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    tls = f'router: {{tls: {{cert_file: "{chain}", key_file: "{key}"}}}}'
    process = start_proxy(directory, moto_auth, tls)
    yield process, ca_file
    process.stop()


@pytest.fixture(scope="module")
def bootstrap() -> ClientBootstrap:
    loops = EventLoopGroup(2)
    return ClientBootstrap(loops, DefaultHostResolver(loops))


@pytest.fixture(scope="module")
def crt(proxy: ProxyProcess, bootstrap: ClientBootstrap) -> Crt:
    client = S3Client(
        bootstrap=bootstrap,
        region=REGION,
        tls_mode=S3RequestTlsMode.DISABLED,
        credential_provider=AwsCredentialsProvider.new_static(KEY, SECRET),
        part_size=PART_SIZE,
        multipart_upload_threshold=8 * MIB,
    )
    return Crt(client, proxy.port)


@pytest.fixture(scope="module")
def tls_crt(tls_proxy: tuple[ProxyProcess, Path], bootstrap: ClientBootstrap) -> Crt:
    process, ca_file = tls_proxy
    options = TlsContextOptions()
    options.override_default_trust_store_from_path(ca_filepath=str(ca_file))
    client = S3Client(
        bootstrap=bootstrap,
        region=REGION,
        tls_mode=S3RequestTlsMode.ENABLED,
        tls_connection_options=ClientTlsContext(options).new_connection_options(),
        credential_provider=AwsCredentialsProvider.new_static(KEY, SECRET),
        part_size=PART_SIZE,
        multipart_upload_threshold=8 * MIB,
    )
    return Crt(client, process.port)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("crt-files")
    out = {"small": directory / "small.bin", "big": directory / "big.bin"}
    out["small"].write_bytes(os.urandom(MIB))
    out["big"].write_bytes(os.urandom(BIG))
    return out


@pytest.fixture(params=["trail", "plain"])
def bucket(request: pytest.FixtureRequest, moto_auth: MotoBackend) -> str:
    """A bucket on the backend that takes checksum trailers (`trail-*`), or on the other."""
    name = unique_bucket_name(request.param)
    moto_auth.client().create_bucket(Bucket=name)
    return name


def operations(backend: MotoBackend, mark: int, bucket: str) -> list[str]:
    """What the backend was asked for in `bucket` since `mark`, in S3's names, in order."""
    names = []
    for entry in backend.requests_since(mark):
        if not entry.path.startswith(f"/{bucket}/"):
            continue
        query = entry.query
        if entry.method == "POST":
            names.append("CreateMultipartUpload" if "uploads" in query else "Complete")
        elif entry.method == "PUT":
            names.append("UploadPart" if "partNumber=" in query else "PutObject")
        else:
            names.append(f"{entry.method}Object")
    return names


def checksum(algorithm: S3ChecksumAlgorithm, location: S3ChecksumLocation) -> Any:
    config = S3ChecksumConfig(algorithm=algorithm, location=location)
    return pytest.param(config, id=f"{algorithm.name}-{location.name}")


@pytest.mark.parametrize(
    "config",
    [
        *(checksum(algorithm, TRAILER) for algorithm in (A.CRC32, A.CRC32C, A.CRC64NVME)),
        *(checksum(algorithm, TRAILER) for algorithm in (A.SHA1, A.SHA256, A.SHA512)),
        *(checksum(algorithm, TRAILER) for algorithm in (A.XXHASH64, A.XXHASH3, A.XXHASH128)),
        checksum(A.CRC32, HEADER),
        checksum(A.SHA256, HEADER),
    ],
)
def test_single_put_with_checksum(
    crt: Crt,
    moto_auth: MotoBackend,
    bucket: str,
    files: dict[str, Path],
    config: S3ChecksumConfig,
) -> None:
    mark = moto_auth.request_count()
    done = crt.put_file(bucket, "one.bin", files["small"], checksum_config=config)
    assert (done.status, done.error) == (200, None), done.error_body
    assert operations(moto_auth, mark, bucket) == ["PutObject"]
    assert stored_sha256(moto_auth, bucket, "one.bin") == sha256_file(files["small"])


@pytest.mark.parametrize(
    "config",
    [
        pytest.param(None, id="none"),
        checksum(A.CRC32, TRAILER),
        checksum(A.CRC64NVME, TRAILER),
        checksum(A.XXHASH64, TRAILER),
        checksum(A.CRC32C, HEADER),
    ],
)
def test_multipart_upload_in_parallel_parts(
    crt: Crt,
    moto_auth: MotoBackend,
    bucket: str,
    files: dict[str, Path],
    tmp_path: Path,
    config: S3ChecksumConfig | None,
) -> None:
    mark = moto_auth.request_count()
    done = crt.put_file(bucket, "dir/big.bin", files["big"], checksum_config=config)
    assert (done.status, done.error) == (200, None), done.error_body
    # The parts and the completion name the upload by the id the proxy gave the CRT (sealed,
    # carrying its route); each reached the backend's upload, or moto would not have found it.
    assert operations(moto_auth, mark, bucket) == [
        "CreateMultipartUpload",
        *["UploadPart"] * 4,
        "Complete",
    ]
    assert stored_sha256(moto_auth, bucket, "dir/big.bin") == sha256_file(files["big"])
    assert moto_auth.client().list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    back = tmp_path / "back.bin"
    done = crt.get_file(bucket, "dir/big.bin", back)
    assert (done.status, done.error) == (200, None), done.error_body
    assert sha256_file(back) == sha256_file(files["big"])


@pytest.mark.parametrize(
    ("algorithm", "config"),
    [
        pytest.param("crc32", None, id="CRC32"),
        pytest.param("crc64nvme", None, id="CRC64NVME"),
        pytest.param(
            "crc64nvme",
            S3ChecksumConfig(algorithm=A.CRC64NVME, location=TRAILER),
            id="CRC64NVME-and-part-trailers",
        ),
    ],
)
def test_multipart_upload_with_a_full_object_checksum(
    crt: Crt,
    moto_auth: MotoBackend,
    bucket: str,
    files: dict[str, Path],
    algorithm: str,
    config: S3ChecksumConfig | None,
) -> None:
    """The whole file's checksum given up front, as s3transfer passes a ChecksumCRC32 argument:
    the CRT sends it on CompleteMultipartUpload with `x-amz-checksum-type: full_object`, as
    the object's checksum, not the completion document's."""
    whole = new_checksum(algorithm)
    whole.update(files["big"].read_bytes())
    done = crt.request(
        S3RequestType.PUT_OBJECT,
        "PUT",
        f"/{bucket}/whole.bin",
        headers=(
            ("Content-Length", str(BIG)),
            (f"x-amz-checksum-{algorithm}", whole.b64digest()),
        ),
        send_filepath=str(files["big"]),
        checksum_config=config,
    )
    assert (done.status, done.error) == (200, None), done.error_body
    assert stored_sha256(moto_auth, bucket, "whole.bin") == sha256_file(files["big"])


@pytest.mark.parametrize("size", [MIB, BIG], ids=["small", "big"])
def test_upload_of_unknown_length(
    crt: Crt, moto_auth: MotoBackend, bucket: str, files: dict[str, Path], size: int
) -> None:
    """A stream without Content-Length: the CRT reads it part by part, uploading each."""
    data = files["big"].read_bytes()[:size]
    config = S3ChecksumConfig(algorithm=A.CRC32, location=TRAILER)
    done = crt.request(
        S3RequestType.PUT_OBJECT, "PUT", f"/{bucket}/stream.bin", body=data, checksum_config=config
    )
    assert (done.status, done.error) == (200, None), done.error_body
    assert stored_sha256(moto_auth, bucket, "stream.bin") == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("validate", [True, False], ids=["validate", "no-validate"])
def test_download_in_parallel_ranges(
    crt: Crt,
    moto_auth: MotoBackend,
    bucket: str,
    files: dict[str, Path],
    tmp_path: Path,
    validate: bool,
) -> None:
    data = files["big"].read_bytes()
    moto_auth.client().put_object(
        Bucket=bucket, Key="big.bin", Body=data, ChecksumAlgorithm="CRC32"
    )
    mark = moto_auth.request_count()
    back = tmp_path / "back.bin"
    done = crt.get_file(bucket, "big.bin", back, S3ChecksumConfig(validate_response=validate))
    assert (done.status, done.error) == (200, None), done.error_body
    assert sha256_file(back) == hashlib.sha256(data).hexdigest()
    asked = operations(moto_auth, mark, bucket)
    assert asked.count("GETObject") == 4, asked  # one ranged GET per part
    assert not done.validated  # moto never answers the CRT's checksum mode (module docstring)


def test_download_checked_against_the_whole_object_checksum(
    crt: Crt, moto_auth: MotoBackend, bucket: str, files: dict[str, Path], tmp_path: Path
) -> None:
    """The CRT combines the parts' CRCs and compares the whole download with a given value."""
    data = files["big"].read_bytes()
    moto_auth.client().put_object(Bucket=bucket, Key="big.bin", Body=data)
    back = tmp_path / "back.bin"
    right = new_checksum("CRC64NVME")
    right.update(data)
    expected = S3ChecksumConfig(
        expected_checksum=right.b64digest(), expected_checksum_algorithm=A.CRC64NVME
    )
    done = crt.get_file(bucket, "big.bin", back, expected)
    assert (done.status, done.error, done.validated) == (200, None, True), done.error_body
    assert sha256_file(back) == hashlib.sha256(data).hexdigest()
    # The check is real: a value one bit off fails the download.
    wrong = S3ChecksumConfig(
        expected_checksum=wrong_checksum("CRC64NVME", data), expected_checksum_algorithm=A.CRC64NVME
    )
    done = crt.get_file(bucket, "big.bin", tmp_path / "wrong.bin", wrong)
    assert done.error is not None
    assert "CHECKSUM_MISMATCH" in getattr(done.error, "name", repr(done.error))


@pytest.mark.parametrize("algorithm", ["crc32", "sha256", "sha512", "xxhash3"])
def test_wrong_checksum_is_bad_digest(
    crt: Crt, moto_auth: MotoBackend, bucket: str, algorithm: str
) -> None:
    data = os.urandom(MIB)
    done = crt.request(
        S3RequestType.DEFAULT,
        "PUT",
        f"/{bucket}/bad.bin",
        headers=(
            ("Content-Length", str(len(data))),
            (f"x-amz-checksum-{algorithm}", wrong_checksum(algorithm, data)),
        ),
        body=data,
        operation_name="PutObject",
    )
    assert done.status == 400, done.error_body
    assert error_code(done) == "BadDigest"
    assert not exists(moto_auth, bucket, "bad.bin")


def test_multipart_upload_through_name_mapping(
    crt: Crt, moto_auth: MotoBackend, files: dict[str, Path], tmp_path: Path
) -> None:
    moto_auth.client().create_bucket(Bucket=MAPPED)
    config = S3ChecksumConfig(algorithm=A.CRC32, location=TRAILER)
    done = crt.put_file(LOGICAL, "raw/2026/big.bin", files["big"], checksum_config=config)
    assert (done.status, done.error) == (200, None), done.error_body
    assert stored_sha256(moto_auth, MAPPED, "main/2026/big.bin") == sha256_file(files["big"])
    back = tmp_path / "back.bin"
    done = crt.get_file(LOGICAL, "raw/2026/big.bin", back)
    assert (done.status, done.error) == (200, None), done.error_body
    assert sha256_file(back) == sha256_file(files["big"])


def test_errors_reach_the_crt_as_s3_errors(
    crt: Crt, proxy: ProxyProcess, bootstrap: ClientBootstrap, bucket: str, tmp_path: Path
) -> None:
    """What the CRT reports for a failed request is the S3 error the proxy answered."""
    done = crt.get_file(bucket, "missing.bin", tmp_path / "missing.bin", S3ChecksumConfig())
    assert (done.status, error_code(done)) == (404, "NoSuchKey")
    wrong_secret = S3Client(
        bootstrap=bootstrap,
        region=REGION,
        tls_mode=S3RequestTlsMode.DISABLED,
        credential_provider=AwsCredentialsProvider.new_static(KEY, "not-the-secret"),
    )
    done = Crt(wrong_secret, proxy.port).request(
        S3RequestType.DEFAULT,
        "PUT",
        f"/{bucket}/denied.bin",
        headers=(("Content-Length", "5"),),
        body=b"hello",
        operation_name="PutObject",
    )
    assert (done.status, error_code(done)) == (403, "SignatureDoesNotMatch")


@pytest.mark.parametrize("config", [pytest.param(None, id="none"), checksum(A.CRC32, TRAILER)])
def test_over_https(
    tls_crt: Crt,
    moto_auth: MotoBackend,
    bucket: str,
    files: dict[str, Path],
    tmp_path: Path,
    config: S3ChecksumConfig | None,
) -> None:
    """Over TLS no body is moved by the kernel: every part streams through the proxy."""
    done = tls_crt.put_file(bucket, "tls.bin", files["big"], checksum_config=config)
    assert (done.status, done.error) == (200, None), done.error_body
    assert stored_sha256(moto_auth, bucket, "tls.bin") == sha256_file(files["big"])
    whole = new_checksum("CRC64NVME")
    whole.update(files["big"].read_bytes())
    expected = S3ChecksumConfig(
        expected_checksum=whole.b64digest(), expected_checksum_algorithm=A.CRC64NVME
    )
    done = tls_crt.get_file(bucket, "tls.bin", tmp_path / "back.bin", expected)
    assert (done.status, done.error, done.validated) == (200, None, True), done.error_body
