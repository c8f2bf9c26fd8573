"""The command line: bad configs never start, the demo config works with nothing else installed,
virtual-hosted style and `Expect: 100-continue` behave as S3 clients expect."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
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
    free_port,
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
    # tmp-* buckets go to an embedded Redis store when redis-server is installed.
    scratch = "redis://127.0.0.1:" if shutil.which("redis-server") else "http://127.0.0.1:"
    assert f"backend scratch: {scratch}" in log
    cli("s3", "mb", "s3://tmp-scratch")
    cli("s3", "cp", str(source), "s3://tmp-scratch/hello.txt")
    assert "hello.txt" in cli("s3", "ls", "s3://tmp-scratch")


def test_without_redis_server_an_s3_store_stands_in_for_the_demos_redis(
    start_proxy: StartProxy,
) -> None:
    proxy = start_proxy(REPO / "config" / "demo.yaml", env={"PATH": "/nonexistent"})
    log = proxy.log_text()
    assert "backend scratch: redis-server is not installed; an S3 store stands in" in log
    assert "backend scratch: http://127.0.0.1:" in log
    client = proxy.client(DEMO_KEY, DEMO_SECRET)
    client.create_bucket(Bucket="tmp-stand-in")
    client.put_object(Bucket="tmp-stand-in", Key="k", Body=b"kept")
    assert client.get_object(Bucket="tmp-stand-in", Key="k")["Body"].read() == b"kept"


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


# ---------------------------------------------------------------------------------------------
# The command line shows what it can do, and refuses what it cannot mean

REFERENCE = REPO / "config" / "s3-router-config.yaml"
EVERY_COMMAND = ("serve", "explain", "check", "migrate", "repair")


def test_help_lists_every_command_with_one_line() -> None:
    from s3router_proxy.commands.registry import COMMANDS

    assert {"serve", *COMMANDS} == set(EVERY_COMMAND)  # a new command must be listed here too
    result = run_cli("--help", env=cli_env())
    assert result.returncode == 0
    listed = result.stdout.split("commands:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert [line.split()[0] for line in listed] == list(EVERY_COMMAND)
    assert all(len(line.split()) > 3 for line in listed)  # each with its summary
    assert "--config FILE" in result.stdout
    assert run_cli("help", env=cli_env()).stdout == result.stdout


@pytest.mark.parametrize(
    ("word", "message"),
    [
        ("migrat", "lakefs-s3-router: unknown command 'migrat' — did you mean 'migrate'?"),
        ("explian", "lakefs-s3-router: unknown command 'explian' — did you mean 'explain'?"),
        ("router.yaml", "unknown command 'router.yaml' — did you mean --config router.yaml?"),
        ("frobnicate", "commands: serve, explain, check, migrate, repair"),
    ],
)
def test_a_mistyped_command_is_refused_with_a_suggestion(word: str, message: str) -> None:
    result = run_cli(word, "--config", str(REFERENCE), env=cli_env())
    assert result.returncode == 2
    assert message in result.stderr
    assert "listening" not in result.stdout


@pytest.mark.parametrize("command", EVERY_COMMAND)
def test_each_command_help_ends_with_examples(command: str) -> None:
    result = run_cli(command, "--help", env=cli_env())
    assert result.returncode == 0, result.stderr
    examples = result.stdout.split("\nexample", 1)[1].splitlines()[1:]
    runs = [line.strip() for line in examples if line.strip().startswith("lakefs-s3-router")]
    assert runs, result.stdout
    own = "lakefs-s3-router --config" if command == "serve" else f"lakefs-s3-router {command} "
    assert runs[0].startswith(own)
    assert all(len(line) <= 100 for line in examples)


def test_explain_example_lines_are_printed_as_written() -> None:
    result = run_cli("explain", "--help", env=cli_env())
    assert "\n      -H 'Content-Type: image/png' -H 'Content-Length: 1048576'\n" in result.stdout


def test_serve_is_the_command_without_a_name(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("backends:\n  a: {endpoint: 'ftp://h'}\n")
    named = run_cli("serve", "--config", str(path), env=cli_env())
    plain = run_cli("--config", str(path), env=cli_env())
    assert (named.returncode, named.stderr) == (plain.returncode, plain.stderr) == (2, named.stderr)
    assert "is not an http(s) URL" in named.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("FETCH", "s3://lakefs-x/k"), "'FETCH' is not an HTTP method S3 uses"),
        (("GTE", "s3://lakefs-x/k"), "did you mean 'GET'?"),
        (("GET", "http://127.0.0.1:8080/lakefs-x/k"), "is an HTTP URL"),
        (("GET", "https://s3.amazonaws.com/b/k"), "is an HTTP URL"),
        (("GET", "gs://bucket/k"), "'gs://bucket/k' is not s3://BUCKET/KEY"),
        (("GET", "s3:/lakefs-x/k"), "'s3:' is not a bucket name"),
        (("GET", "s3:///k"), "names no bucket"),
        (("GET", "s3://"), "ListBuckets goes to every backend"),
        (("GET", "s3://lakefs x/k"), "'lakefs x' is not a bucket name"),
        (("GET", ""), "the URL is empty"),
        (("GET", "s3://b/k", "--operation", "GetObjekt"), "did you mean 'GetObject'?"),
    ],
)
def test_explain_refuses_what_no_client_could_send(args: tuple[str, ...], message: str) -> None:
    result = run_cli("explain", "--config", str(REFERENCE), *args, env=cli_env())
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_explain_takes_any_case_of_a_method_and_bucket_key_urls() -> None:
    for args in (("get", "s3://lakefs-x/a/b"), ("HEAD", "lakefs-x/a/b")):
        result = run_cli("explain", "--config", str(REFERENCE), *args, env=cli_env())
        assert result.returncode == 0, result.stderr
        assert "backend: lakefs" in result.stdout
        assert "backend key: a/b" in result.stdout


def test_commands_read_the_config_from_s3_router_config() -> None:
    result = run_cli("check", env=cli_env(S3_ROUTER_CONFIG=str(REFERENCE)))
    assert result.returncode == 0, result.stderr
    assert f"{REFERENCE}: valid" in result.stdout
    missing = run_cli("check", env=cli_env())
    assert missing.returncode == 2
    assert "pass --config FILE (or set S3_ROUTER_CONFIG)" in missing.stderr


def repair_config(tmp_path: Path, journal: str) -> Path:
    path = tmp_path / "mirrored.yaml"
    path.write_text(
        f"router: {{mirror_journal: {journal!r}}}\n"
        "backends:\n  a: {endpoint: 'http://127.0.0.1:9'}\n  b: {endpoint: 'http://127.0.0.1:8'}\n"
        "routing:\n  rules:\n"
        "    - {pattern: '*', target: a, mirror: [b], mirror_mode: best_effort}\n"
    )
    return path


def test_repair_refuses_a_journal_that_does_not_exist(tmp_path: Path) -> None:
    config = repair_config(tmp_path, "journal.jsonl")
    typo = tmp_path / "jounral.jsonl"
    result = run_cli("repair", "--config", str(config), "--journal", str(typo), env=cli_env())
    assert result.returncode == 2
    assert f"no journal at {typo}" in result.stderr
    assert "entries" not in result.stderr

    elsewhere = repair_config(tmp_path, "no-such-dir/journal.jsonl")
    result = run_cli("repair", "--config", str(elsewhere), env=cli_env())
    assert result.returncode == 2
    assert f"its directory {tmp_path / 'no-such-dir'} does not exist" in result.stderr


def test_repair_with_the_configs_journal_not_yet_written_has_nothing_to_do(tmp_path: Path) -> None:
    config = repair_config(tmp_path, "journal.jsonl")
    result = run_cli("repair", "--config", str(config), env=cli_env())
    assert result.returncode == 0, result.stderr
    assert f"nothing to repair: {tmp_path / 'journal.jsonl'} does not exist yet" in result.stderr
    assert "0 entries" in result.stderr  # as after a repair that emptied the journal


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("S3_ROUTER_WORKERS", "two", "'two' is not a number of processes"),
        ("S3_ROUTER_WORKERS", "0", "'0' is not a number of processes"),
        ("S3_ROUTER_LOG_LEVEL", "verbose", "S3_ROUTER_LOG_LEVEL='verbose' is not one of"),
    ],
)
def test_bad_command_line_variables_are_usage_errors(
    variable: str, value: str, message: str
) -> None:
    result = run_cli("--config", str(REFERENCE), env=cli_env(**{variable: value}))
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------------------------------------
# --workers N: one banner, and a start that cannot work stops


def test_workers_print_the_banner_once(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "workers.log"
    argv = [sys.executable, "-m", "s3router_proxy", "--config", str(REFERENCE)]
    argv += ["--listen", f"127.0.0.1:{port}", "--admin", "off", "--workers", "3"]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=cli_env())
    try:
        deadline = time.monotonic() + 60
        while "listening on" not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.2)
        # The banner comes once every worker listens: each one accepts now.
        for _ in range(6):
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                pass
        time.sleep(2)  # time enough for a second banner, were there one
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    text = log.read_text()
    assert text.count("listening on") == 1, text
    assert f"listening on http://127.0.0.1:{port} (3 worker processes)" in text
    assert text.count("routing rule(s)") == 1
    assert proc.returncode == 0


def test_workers_that_cannot_listen_stop_the_start(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(
            "--config",
            str(REFERENCE),
            "--listen",
            f"127.0.0.1:{port}",
            "--admin",
            "off",
            "--workers",
            "2",
            env=cli_env(),
        )
    assert result.returncode == 1
    assert "cannot listen" in result.stderr
    assert "before it could serve; stopping" in result.stderr
    assert "listening on" not in result.stdout
