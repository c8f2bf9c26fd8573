"""The harness itself: real moto_server processes, their signature checks, request counting,
the clients, and the proxy process wrapper (once the proxy's CLI exists).

The `test_moto_auth_does_not_check_*` tests pin down what moto's IAM mode does NOT verify, so no
end-to-end test relies on moto to catch those mistakes: the proxy's own tests must.
"""

from __future__ import annotations

import hashlib
import http.client
import importlib.util
import os
import socket
import sys
from pathlib import Path

import harness
import pytest
from botocore import UNSIGNED
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from harness import (
    LOOPBACK,
    MotoBackend,
    ProxyProcess,
    ServerStartError,
    StartProxy,
    aws_cli,
    boto3_client,
    free_port,
    parse_access_line,
    unique_bucket_name,
    write_config,
)

REPO = Path(__file__).resolve().parents[2]


def error_code(err: pytest.ExceptionInfo[ClientError]) -> str:
    return str(err.value.response["Error"].get("Code"))


def http_status(err: pytest.ExceptionInfo[ClientError]) -> int:
    return int(err.value.response["ResponseMetadata"]["HTTPStatusCode"])


class _ClaimedPayload(S3SigV4Auth):
    """botocore's S3 signer, signing whatever payload hash we claim instead of the real one."""

    def __init__(self, credentials: Credentials, claimed: str) -> None:
        super().__init__(credentials, "s3", "us-east-1")
        self.claimed = claimed

    def payload(self, request: AWSRequest) -> str:
        return self.claimed


def send_signed(
    backend: MotoBackend,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    headers: dict[str, str] | None = None,
    claimed_payload: str | None = None,
    send_path: str | None = None,
    send_host: str | None = None,
) -> tuple[int, bytes]:
    """Sign a request with the backend's key; send it raw, optionally with another path or Host."""
    request = AWSRequest(method=method, url=backend.endpoint + path, data=body, headers=headers)
    credentials = Credentials(backend.access_key_id, backend.secret_access_key)
    claimed = claimed_payload or hashlib.sha256(body).hexdigest()
    _ClaimedPayload(credentials, claimed).add_auth(request)
    conn = http.client.HTTPConnection(LOOPBACK, backend.port, timeout=10)
    try:
        sent = dict(request.headers.items())
        if send_host is not None:
            sent["Host"] = send_host
        conn.request(method, send_path or path, body=body, headers=sent)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind((LOOPBACK, port))


def test_access_line_parsing() -> None:
    entry = parse_access_line(
        "127.0.0.1 - - [22/Nov/2026 00:57:55] "
        '"\x1b[33mGET /b/k?list-type=2 HTTP/1.1\x1b[0m" 404 -\n'
    )
    assert entry is not None
    assert (entry.method, entry.path, entry.query, entry.status) == (
        "GET",
        "/b/k",
        "list-type=2",
        404,
    )
    assert parse_access_line("Traceback (most recent call last):") is None


# --- moto without auth -------------------------------------------------------------------------


def test_plain_backend_accepts_any_key(moto_plain: MotoBackend) -> None:
    bucket = unique_bucket_name()
    moto_plain.client().create_bucket(Bucket=bucket)
    stranger = boto3_client(moto_plain.endpoint, "AKIASOMEONEELSE", "whatever")
    stranger.put_object(Bucket=bucket, Key="k", Body=b"hello")
    assert moto_plain.client().get_object(Bucket=bucket, Key="k")["Body"].read() == b"hello"


# --- moto with signature checks ----------------------------------------------------------------


def test_auth_backend_right_key_round_trip(moto_auth: MotoBackend) -> None:
    assert moto_auth.access_key_id.startswith("AKIA")
    client = moto_auth.client()
    bucket = unique_bucket_name()
    client.create_bucket(Bucket=bucket)
    data = os.urandom(1 << 20)
    client.put_object(Bucket=bucket, Key="dir/obj", Body=data)
    got = client.get_object(Bucket=bucket, Key="dir/obj")["Body"].read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    assert client.head_object(Bucket=bucket, Key="dir/obj")["ContentLength"] == len(data)
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["dir/obj"]
    assert bucket in [b["Name"] for b in client.list_buckets()["Buckets"]]


@pytest.mark.parametrize(
    "key",
    ["a b", "a+b", "a//b", "a/../b", "./x", "a%2Fb", "ü/é", "q?x=1&y", "t~!*'()$@=;:,"],
)
def test_auth_backend_checks_the_raw_path_of_odd_keys(moto_auth: MotoBackend, key: str) -> None:
    """moto canonicalises the raw path as botocore does, so odd keys need exact re-signing."""
    client = moto_auth.client()
    bucket = unique_bucket_name()
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key=key, Body=b"v")
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == b"v"
    assert [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]] == [key]


def test_auth_backend_rejects_wrong_secret(moto_auth: MotoBackend) -> None:
    bucket = unique_bucket_name()
    moto_auth.client().create_bucket(Bucket=bucket)
    moto_auth.client().put_object(Bucket=bucket, Key="k", Body=b"x")
    wrong = boto3_client(moto_auth.endpoint, moto_auth.access_key_id, "wrong-secret")
    calls = {
        "ListBuckets": lambda: wrong.list_buckets(),
        "CreateBucket": lambda: wrong.create_bucket(Bucket=unique_bucket_name()),
        "ListObjectsV2": lambda: wrong.list_objects_v2(Bucket=bucket),
        "PutObject": lambda: wrong.put_object(Bucket=bucket, Key="k2", Body=b"y"),
        "GetObject": lambda: wrong.get_object(Bucket=bucket, Key="k"),
        "DeleteObject": lambda: wrong.delete_object(Bucket=bucket, Key="k"),
        "CreateMultipartUpload": lambda: wrong.create_multipart_upload(Bucket=bucket, Key="m"),
        "DeleteObjects": lambda: wrong.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": "k"}]}
        ),
    }
    for name, call in calls.items():
        with pytest.raises(ClientError) as err:
            call()
        assert (name, error_code(err), http_status(err)) == (name, "SignatureDoesNotMatch", 403)
    # HEAD responses have no body, so only the status tells.
    for head in (
        lambda: wrong.head_object(Bucket=bucket, Key="k"),
        lambda: wrong.head_bucket(Bucket=bucket),
    ):
        with pytest.raises(ClientError) as err:
            head()
        assert http_status(err) == 403
    assert moto_auth.client().get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"


def test_auth_backend_rejects_unknown_key(moto_auth: MotoBackend) -> None:
    unknown = boto3_client(moto_auth.endpoint, "AKIAUNKNOWNKEY000000", moto_auth.secret_access_key)
    for call in (unknown.list_buckets, lambda: unknown.list_objects_v2(Bucket="no-such-bucket")):
        with pytest.raises(ClientError) as err:
            call()
        assert (error_code(err), http_status(err)) == ("InvalidAccessKeyId", 403)


def test_auth_backend_checks_path_query_and_host(moto_auth: MotoBackend) -> None:
    bucket = unique_bucket_name()
    moto_auth.client().create_bucket(Bucket=bucket)
    moto_auth.client().put_object(Bucket=bucket, Key="k", Body=b"x")
    assert send_signed(moto_auth, "GET", f"/{bucket}/k")[0] == 200
    status, body = send_signed(moto_auth, "GET", f"/{bucket}/k", send_path=f"/{bucket}/other")
    assert (status, b"<Code>SignatureDoesNotMatch</Code>" in body) == (403, True)
    status, body = send_signed(
        moto_auth, "GET", f"/{bucket}?list-type=2", send_path=f"/{bucket}?list-type=2&prefix=z"
    )
    assert (status, b"<Code>SignatureDoesNotMatch</Code>" in body) == (403, True)
    # The Host header as received is what moto checks: any Host works if it was the one signed.
    assert send_signed(moto_auth, "GET", f"/{bucket}/k", headers={"Host": "other:1"})[0] == 200
    status, body = send_signed(
        moto_auth, "GET", f"/{bucket}/k", headers={"Host": "other:1"}, send_host="elsewhere:9"
    )
    assert (status, b"<Code>SignatureDoesNotMatch</Code>" in body) == (403, True)


def test_moto_auth_does_not_check_the_payload(moto_auth: MotoBackend) -> None:
    """moto trusts x-amz-content-sha256 as signed and never hashes the body it received."""
    bucket = unique_bucket_name()
    moto_auth.client().create_bucket(Bucket=bucket)
    lie = hashlib.sha256(b"some other body").hexdigest()
    assert send_signed(moto_auth, "PUT", f"/{bucket}/lie", b"real", claimed_payload=lie)[0] == 200
    status, _ = send_signed(
        moto_auth, "PUT", f"/{bucket}/unsigned", b"real", claimed_payload="UNSIGNED-PAYLOAD"
    )
    assert status == 200
    # Signed aws-chunked with garbage chunk signatures: decoded and stored, signatures unchecked.
    chunked = (
        b"4;chunk-signature="
        + b"0" * 64
        + b"\r\nreal\r\n0;chunk-signature="
        + b"1" * 64
        + b"\r\n\r\n"
    )
    status, _ = send_signed(
        moto_auth,
        "PUT",
        f"/{bucket}/chunked",
        chunked,
        headers={"Content-Encoding": "aws-chunked", "X-Amz-Decoded-Content-Length": "4"},
        claimed_payload="STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    )
    assert status == 200
    client = moto_auth.client()
    for key in ("lie", "unsigned", "chunked"):
        assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == b"real"


def test_moto_auth_does_not_check_checksums_on_write(moto_auth: MotoBackend) -> None:
    """A wrong x-amz-checksum-* is stored as given; boto3 then fails the GET, not moto the PUT."""
    bucket = unique_bucket_name()
    moto_auth.client().create_bucket(Bucket=bucket)
    status, _ = send_signed(
        moto_auth,
        "PUT",
        f"/{bucket}/crc",
        b"real",
        headers={"x-amz-sdk-checksum-algorithm": "CRC32", "x-amz-checksum-crc32": "AAAAAA=="},
    )
    assert status == 200
    with pytest.raises(Exception, match="Expected checksum AAAAAA== did not match"):
        moto_auth.client().get_object(Bucket=bucket, Key="crc")["Body"].read()


def test_moto_auth_cannot_serve_presigned_or_anonymous_requests(moto_auth: MotoBackend) -> None:
    """moto's IAM mode needs an Authorization header: query-signed requests get an HTML 500.

    So presigned URLs can be tested only through the proxy (which signs its own request toward
    the backend with a header) or against moto_plain, never straight to moto_auth.
    """
    bucket = unique_bucket_name()
    client = moto_auth.client(signature_version="s3v4")
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="k", Body=b"x")
    url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"})
    assert "X-Amz-Signature=" in url
    conn = http.client.HTTPConnection(LOOPBACK, moto_auth.port, timeout=10)
    conn.request("GET", url.removeprefix(moto_auth.endpoint))
    assert conn.getresponse().status == 500
    conn.close()


# --- request counting --------------------------------------------------------------------------


def test_request_count_is_one_per_call(moto_plain: MotoBackend) -> None:
    client = moto_plain.client()
    bucket = unique_bucket_name()
    calls = [
        ("PUT", 200, lambda: client.create_bucket(Bucket=bucket)),
        ("PUT", 200, lambda: client.put_object(Bucket=bucket, Key="k", Body=b"x")),
        ("HEAD", 200, lambda: client.head_object(Bucket=bucket, Key="k")),
        ("GET", 200, lambda: client.get_object(Bucket=bucket, Key="k")["Body"].read()),
        ("GET", 200, lambda: client.list_objects_v2(Bucket=bucket)),
        ("HEAD", 404, lambda: client.head_object(Bucket=bucket, Key="missing")),
        ("GET", 404, lambda: client.get_object(Bucket=bucket, Key="missing")),
        ("DELETE", 409, lambda: client.delete_bucket(Bucket=bucket)),  # not empty
        ("DELETE", 204, lambda: client.delete_object(Bucket=bucket, Key="k")),
    ]
    for method, status, call in calls:
        mark = moto_plain.request_count()
        try:
            call()
        except ClientError as err:
            assert err.response["ResponseMetadata"]["HTTPStatusCode"] == status
        seen = moto_plain.requests_since(mark)
        assert [(e.method, e.status) for e in seen] == [(method, status)]
        assert seen[0].path.startswith(f"/{bucket}")


def test_request_count_sees_rejected_and_failed_requests(moto_auth: MotoBackend) -> None:
    mark = moto_auth.request_count()
    wrong = boto3_client(moto_auth.endpoint, moto_auth.access_key_id, "wrong-secret")
    with pytest.raises(ClientError):
        wrong.list_buckets()
    # An unsigned request makes moto's IAM mode fail with a 500, which botocore would retry:
    # exactly one request proves the harness's clients do not retry.
    anonymous = boto3_client(moto_auth.endpoint, "x", "y", signature_version=UNSIGNED)
    with pytest.raises(ClientError) as err:
        anonymous.list_objects_v2(Bucket="no-such-bucket")
    assert http_status(err) == 500
    assert [(e.method, e.status) for e in moto_auth.requests_since(mark)] == [
        ("GET", 403),
        ("GET", 500),
    ]


def test_request_count_is_unchanged_without_requests(moto_plain: MotoBackend) -> None:
    mark = moto_plain.request_count()
    assert moto_plain.requests_since(mark) == []
    assert moto_plain.request_count() == mark


# --- aws-cli -----------------------------------------------------------------------------------


def test_aws_cli_mb_cp_ls(moto_auth: MotoBackend, tmp_path: Path) -> None:
    bucket = unique_bucket_name()
    source = tmp_path / "file.bin"
    data = os.urandom(300_000)
    source.write_bytes(data)

    def cli(*args: str) -> str:
        done = aws_cli(
            moto_auth.endpoint, moto_auth.access_key_id, moto_auth.secret_access_key, *args
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    mark = moto_auth.request_count()
    cli("s3", "mb", f"s3://{bucket}")
    cli("s3", "cp", str(source), f"s3://{bucket}/dir/file.bin")
    assert "file.bin" in cli("s3", "ls", f"s3://{bucket}/dir/")
    got = moto_auth.client().get_object(Bucket=bucket, Key="dir/file.bin")["Body"].read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    # Path-style: every request aws-cli made names the bucket in the path.
    assert all(e.path.startswith(f"/{bucket}") for e in moto_auth.requests_since(mark))

    wrong = aws_cli(
        moto_auth.endpoint, moto_auth.access_key_id, "wrong", "s3", "ls", f"s3://{bucket}"
    )
    assert wrong.returncode != 0
    assert "SignatureDoesNotMatch" in wrong.stderr


# --- process handling --------------------------------------------------------------------------


def test_start_retries_a_port_taken_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as squatter:
        squatter.bind((LOOPBACK, 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        ports = iter([taken])
        monkeypatch.setattr(harness, "free_port", lambda: next(ports, None) or free_port())
        with MotoBackend(tmp_path) as backend:
            assert backend.port != taken
            assert backend.listens_on(backend.port)
            assert not backend.listens_on(taken)
            backend.client().list_buckets()


class _DyingMoto(MotoBackend):
    def _argv(self) -> list[str]:
        return [sys.executable, "-c", "import sys; print('no luck today'); sys.exit(3)"]


def test_start_failure_reports_the_log_tail(tmp_path: Path) -> None:
    backend = _DyingMoto(tmp_path)
    with pytest.raises(ServerStartError, match=r"(?s)exited with 3.*no luck today"):
        backend.start()
    assert backend.returncode == 3


def test_stop_reaps_the_server(tmp_path: Path) -> None:
    with MotoBackend(tmp_path) as backend:
        assert backend.running()
        assert backend.peak_rss_mib() > 10
        pid = backend.pid
    assert not backend.running()
    assert backend.returncode is not None
    assert (
        not Path(f"/proc/{pid}").exists() or "zombie" not in Path(f"/proc/{pid}/status").read_text()
    )
    with pytest.raises(RuntimeError, match="not running"):
        backend.peak_rss_mib()


def test_write_config_dedents(tmp_path: Path) -> None:
    path = write_config(tmp_path, "\n    a:\n      b: 1\n")
    assert path.read_text() == "a:\n  b: 1\n"


# --- the proxy process (runs once `python -m s3router_proxy` exists) --------------------------


def _require_proxy_cli() -> None:
    pytest.importorskip("s3router_proxy.cli")
    if importlib.util.find_spec("s3router_proxy.__main__") is None:
        pytest.skip("s3router_proxy has no __main__ yet")


def test_proxy_process_starts_answers_and_stops(tmp_path: Path) -> None:
    _require_proxy_cli()
    config = REPO / "config" / "s3-router-config.yaml"
    if not config.exists():
        pytest.skip("no reference config yet")
    proxy = ProxyProcess(config, tmp_path)
    with proxy:
        conn = http.client.HTTPConnection(LOOPBACK, proxy.port, timeout=10)
        conn.request("GET", "/")
        response = conn.getresponse()
        assert 200 <= response.status < 600
        response.read()
        conn.close()
        assert 1 < proxy.peak_rss_mib() < 1024
    assert proxy.returncode == 0, proxy.log_tail()


def test_proxy_between_real_backends(
    moto_plain: MotoBackend, moto_auth: MotoBackend, start_proxy: StartProxy
) -> None:
    """The whole harness at once: a proxy process routing to both moto processes."""
    _require_proxy_cli()
    proxy = start_proxy(
        f"""
        backends:
          plain:
            endpoint: "{moto_plain.endpoint}"
            access_key_id: "{moto_plain.access_key_id}"
            secret_access_key: "{moto_plain.secret_access_key}"
          checked:
            endpoint: "{moto_auth.endpoint}"
            access_key_id: "{moto_auth.access_key_id}"
            secret_access_key: "{moto_auth.secret_access_key}"
        clients:
          - name: "tester"
            access_key_id: "client-key"
            secret_access_key: "client-secret"
        routing:
          rules:
            - pattern: "checked-*"
              target: "checked"
          default_target: "plain"
        """
    )
    client = proxy.client("client-key", "client-secret")
    data = os.urandom(3 << 20)
    for backend, prefix in ((moto_auth, "checked"), (moto_plain, "plain")):
        bucket = unique_bucket_name(prefix)
        mark = backend.request_count()
        client.create_bucket(Bucket=bucket)
        client.put_object(Bucket=bucket, Key="a b/ü", Body=data)
        got = client.get_object(Bucket=bucket, Key="a b/ü")["Body"].read()
        assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
        assert [e.method for e in backend.requests_since(mark)] == ["PUT", "PUT", "GET"]

    marks = moto_plain.request_count(), moto_auth.request_count()
    wrong = proxy.client("client-key", "wrong-secret")
    with pytest.raises(ClientError) as err:
        wrong.put_object(Bucket=unique_bucket_name("checked"), Key="k", Body=b"x")
    assert error_code(err) == "SignatureDoesNotMatch"
    assert moto_plain.requests_since(marks[0]) == []
    assert moto_auth.requests_since(marks[1]) == []


def test_proxy_process_bad_config_fails_to_start(tmp_path: Path) -> None:
    _require_proxy_cli()
    proxy = ProxyProcess(write_config(tmp_path, "backends: [unclosed\n"), tmp_path)
    with pytest.raises(ServerStartError, match="exited with"):
        proxy.start()
    assert proxy.returncode not in (None, 0)
