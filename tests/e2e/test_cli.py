"""The command line: bad configs never start, the demo config works with nothing else installed,
virtual-hosted style and `Expect: 100-continue` behave as S3 clients expect."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from harness import (
    PLAIN_ACCESS_KEY_ID,
    PLAIN_SECRET_ACCESS_KEY,
    MotoBackend,
    ProxyProcess,
    StartProxy,
    aws_cli,
    isolated_aws_env,
    unique_bucket_name,
)
from rawclient import send, sign

REPO = Path(__file__).resolve().parents[2]
DEMO_KEY, DEMO_SECRET = "demo-access-key", "demo-secret-key"


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "s3router_proxy", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env or isolated_aws_env(os.environ, Path("/nonexistent")),
        check=False,
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (
            "backends:\n  a: {endpoint: 'http://h:1'}\nrouting:\n  default_target: b\n",
            ":4: routing.default_target: unknown backend 'b'; known backends: a",
        ),
        ("backends: [\n", "invalid YAML"),
        ("backends:\n  a: {endpoint: '${ROUTER_TEST_UNSET}'}\n", "ROUTER_TEST_UNSET is not set"),
    ],
)
def test_bad_config_exits_non_zero_with_one_line(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = run_cli("--config", str(path))
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"lakefs-s3-router: {path}")
    assert fragment in lines[0]


def test_missing_config_and_bad_listen_are_refused(tmp_path: Path) -> None:
    assert run_cli().returncode == 2
    result = run_cli("--config", str(REPO / "config" / "s3-router-config.yaml"), "--listen", "x")
    assert result.returncode == 2
    assert "--listen" in result.stderr


def test_listen_flag_overrides_config(start_proxy: StartProxy) -> None:
    proxy = start_proxy(REPO / "config" / "s3-router-config.yaml")
    assert f"listening on http://127.0.0.1:{proxy.port}" in proxy.log_text()
    assert "no `clients:` section" in proxy.log_text()  # the recommended-clients warning
    assert "EXAMPLEKEY" not in proxy.log_text()


def test_demo_config_works_with_nothing_else(start_proxy: StartProxy, tmp_path: Path) -> None:
    proxy = start_proxy(REPO / "config" / "demo.yaml")
    log = proxy.log_text()
    assert "backend lakefs: http://127.0.0.1:" in log
    assert "backend s3: http://127.0.0.1:" in log
    source = tmp_path / "hello.txt"
    source.write_bytes(b"hello demo\n")

    def cli(*args: str) -> str:
        result = aws_cli(proxy.endpoint, DEMO_KEY, DEMO_SECRET, *args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        return result.stdout

    cli("s3", "mb", "s3://lakefs-demo")
    cli("s3", "mb", "s3://analytics")
    cli("s3", "cp", str(source), "s3://lakefs-demo/main/hello.txt")
    assert "hello.txt" in cli("s3", "ls", "s3://lakefs-demo/main/")
    cli("s3", "cp", "s3://lakefs-demo/main/hello.txt", str(tmp_path / "back.txt"))
    assert (tmp_path / "back.txt").read_bytes() == b"hello demo\n"
    # The two buckets live in different stores; ListBuckets shows the client both, once.
    client = proxy.client(DEMO_KEY, DEMO_SECRET)
    assert [b["Name"] for b in client.list_buckets()["Buckets"]] == ["analytics", "lakefs-demo"]


@pytest.fixture
def vhost_proxy(start_proxy: StartProxy, moto_plain: MotoBackend) -> ProxyProcess:
    return start_proxy(
        f"""
        router:
          virtual_host_domains: ["s3.local"]
        backends:
          store:
            endpoint: "{moto_plain.endpoint}"
            access_key_id: "{PLAIN_ACCESS_KEY_ID}"
            secret_access_key: "{PLAIN_SECRET_ACCESS_KEY}"
        clients:
          - {{name: t, access_key_id: "AKIAVHOST", secret_access_key: "vhost-secret"}}
        routing:
          default_target: store
        """
    )


def test_virtual_hosted_style(vhost_proxy: ProxyProcess, moto_plain: MotoBackend) -> None:
    bucket = unique_bucket_name("vhost")
    moto_plain.client().create_bucket(Bucket=bucket)
    host = f"{bucket}.s3.local:{vhost_proxy.port}"
    body = b"virtual hosted body"
    key = "dir/a b+c.txt"
    signed = sign("PUT", f"http://{host}/dir/a%20b%2Bc.txt", "AKIAVHOST", "vhost-secret", body=body)
    response = send(
        "PUT",
        f"{vhost_proxy.endpoint}/dir/a%20b%2Bc.txt",
        headers={**signed, "Host": host},
        body=body,
    )
    assert response.status == 200, response.body
    stored = moto_plain.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    assert hashlib.sha256(stored).digest() == hashlib.sha256(body).digest()
    # Path style keeps working on the same proxy.
    client = vhost_proxy.client("AKIAVHOST", "vhost-secret")
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == body


def _raw_exchange(port: int, head: bytes, timeout: float = 3.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head)
        return sock.recv(65536)


def test_expect_continue_only_after_authentication(
    vhost_proxy: ProxyProcess, moto_plain: MotoBackend
) -> None:
    bucket = unique_bucket_name("expect")
    moto_plain.client().create_bucket(Bucket=bucket)
    url = f"http://127.0.0.1:{vhost_proxy.port}/{bucket}/k"
    body = b"x" * 1000

    def head_for(secret: str) -> bytes:
        headers = sign(
            "PUT",
            url,
            "AKIAVHOST",
            secret,
            body=body,
            headers={"Content-Length": str(len(body)), "Expect": "100-continue"},
        )
        lines = [f"PUT /{bucket}/k HTTP/1.1", f"Host: 127.0.0.1:{vhost_proxy.port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    refused = _raw_exchange(vhost_proxy.port, head_for("wrong-secret"))
    assert refused.startswith(b"HTTP/1.1 403"), refused[:100]
    assert b"SignatureDoesNotMatch" in refused

    with socket.create_connection(("127.0.0.1", vhost_proxy.port), timeout=5) as sock:
        sock.sendall(head_for("vhost-secret"))
        assert sock.recv(1024).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(body)
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert moto_plain.client().get_object(Bucket=bucket, Key="k")["Body"].read() == body


def test_client_error_codes_from_boto3(vhost_proxy: ProxyProcess) -> None:
    client = vhost_proxy.client("AKIAVHOST", "wrong")
    with pytest.raises(ClientError) as caught:
        client.head_bucket(Bucket="anything")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_environment_flag_selects_the_document(start_proxy: StartProxy, tmp_path: Path) -> None:
    text = """
routing:
  environment: production
  default_target: a
backends:
  a: {endpoint: "http://127.0.0.1:9"}
---
routing:
  environment: development
  default_target: a
backends:
  a: {endpoint: "http://127.0.0.1:8"}
"""
    path = tmp_path / "envs.yaml"
    path.write_text(text)
    missing = run_cli("--config", str(path), "--environment", "staging")
    assert missing.returncode == 2
    assert "no document for environment 'staging'" in missing.stderr
    proxy = start_proxy(path, extra_args=["--environment", "development"])
    assert "backend a: http://127.0.0.1:8 " in proxy.log_text()


ENVIRONMENTS = """
routing: {environment: production, default_target: prod}
backends:
  prod: {endpoint: "http://127.0.0.1:9"}
---
routing: {environment: development, default_target: dev}
backends:
  dev: {endpoint: "http://127.0.0.1:8"}
"""


def cli_env(**variables: str) -> dict[str, str]:
    env = isolated_aws_env(os.environ, Path("/nonexistent"))
    for name in ("S3_ROUTER_ENVIRONMENT", "ENVIRONMENT", "S3_ROUTER_CONFIG"):
        env.pop(name, None)
    return {**env, **variables}


def test_s3_router_environment_picks_the_document_environment_is_a_careful_fallback(
    tmp_path: Path,
) -> None:
    path = tmp_path / "envs.yaml"
    path.write_text(ENVIRONMENTS)
    explain = ("explain", "--config", str(path), "GET", "s3://any/key")

    chosen = run_cli(*explain, env=cli_env(S3_ROUTER_ENVIRONMENT="development", ENVIRONMENT="x"))
    assert chosen.returncode == 0, chosen.stderr
    assert "backend: dev" in chosen.stdout
    fallback = run_cli(*explain, env=cli_env(ENVIRONMENT="production"))
    assert fallback.returncode == 0, fallback.stderr
    assert "backend: prod" in fallback.stdout
    flag = run_cli(*explain, "--environment", "production", env=cli_env(ENVIRONMENT="dev"))
    assert "backend: prod" in flag.stdout

    # A platform's own ENVIRONMENT that names no document chooses nothing: an error...
    platform = run_cli(*explain, env=cli_env(ENVIRONMENT="prod-eu"))
    assert platform.returncode == 2
    assert "no document for environment 'prod-eu' (from $ENVIRONMENT" in platform.stderr
    assert "S3_ROUTER_ENVIRONMENT" in platform.stderr
    # ...or, for a file of one document, that document with a warning.
    single = tmp_path / "single.yaml"
    single.write_text(ENVIRONMENTS.split("---")[0])
    check = run_cli("check", "--config", str(single), env=cli_env(ENVIRONMENT="prod-eu"))
    assert check.returncode == 0, check.stderr
    assert "$ENVIRONMENT is 'prod-eu'" in check.stderr
    assert "valid; 1 backend(s)" in check.stdout
    # The variable of its own is a real choice: a name no document has is an error.
    strict = run_cli("check", "--config", str(single), env=cli_env(S3_ROUTER_ENVIRONMENT="x"))
    assert strict.returncode == 2
    assert "no document for environment 'x' (from $S3_ROUTER_ENVIRONMENT)" in strict.stderr
