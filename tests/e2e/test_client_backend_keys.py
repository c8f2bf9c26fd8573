"""Clients acting as their own accounts on a store (`backend_keys`).

Each moto checks signatures and holds three accounts (s3-tests' main, alt and tenant users):
`moto` as the s3-tests run it, `sealed` also refusing one account's requests to another's
buckets (MOTO_S3_ALLOW_CROSSACCOUNT_ACCESS=false), so the account that signed shows in the
answers. The backend sections hold main's keys; `alice` acts as alt, `bob` as tenant, `plain`
has no keys of its own and acts as main. The `strict` backend is `moto` again, behind
`require_client_keys`.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from harness import (
    LOOPBACK,
    ProxyProcess,
    StartProxy,
    boto3_client,
    free_port,
    isolated_aws_env,
    unique_bucket_name,
    write_config,
)
from lxml import etree
from rawclient import sign

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "conformance"))
from s3tests_accounts import MotoAccounts

ALICE = ("AKIAALICE", "alice-proxy-secret")
BOB = ("AKIABOB", "bob-proxy-secret")
PLAIN = ("AKIAPLAIN", "plain-proxy-secret")


class SeparateAccounts(MotoAccounts):
    """moto's three accounts, each refused the others' buckets."""

    def _env(self) -> dict[str, str]:
        return {**super()._env(), "MOTO_S3_ALLOW_CROSSACCOUNT_ACCESS": "false"}


def config_text(moto: MotoAccounts, sealed: MotoAccounts) -> str:
    keys = moto.keys
    return textwrap.dedent(
        f"""\
        backends:
          moto:
            endpoint: "{moto.endpoint}"
            access_key_id: "{keys["main"][0]}"
            secret_access_key: "{keys["main"][1]}"
          strict:
            endpoint: "{moto.endpoint}"
            access_key_id: "{keys["main"][0]}"
            secret_access_key: "{keys["main"][1]}"
            require_client_keys: true
          sealed:
            endpoint: "{sealed.endpoint}"
            access_key_id: "{sealed.keys["main"][0]}"
            secret_access_key: "{sealed.keys["main"][1]}"
        clients:
          - name: alice
            access_key_id: "{ALICE[0]}"
            secret_access_key: "{ALICE[1]}"
            backend_keys:
              moto:
                access_key_id: "{keys["alt"][0]}"
                secret_access_key: ${{ALICE_MOTO_SECRET}}
              strict:
                access_key_id: "{keys["alt"][0]}"
                secret_access_key: ${{ALICE_MOTO_SECRET}}
              sealed:
                access_key_id: "{sealed.keys["alt"][0]}"
                secret_access_key: "{sealed.keys["alt"][1]}"
          - name: bob
            access_key_id: "{BOB[0]}"
            secret_access_key: "{BOB[1]}"
            backend_keys:
              moto:
                access_key_id: "{keys["tenant"][0]}"
                secret_access_key: "{keys["tenant"][1]}"
              sealed:
                access_key_id: "{sealed.keys["tenant"][0]}"
                secret_access_key: "{sealed.keys["tenant"][1]}"
          - {{name: plain, access_key_id: "{PLAIN[0]}", secret_access_key: "{PLAIN[1]}"}}
        router:
          s3_health_paths: true
        routing:
          rules:
            - {{pattern: "strict-*", target: strict}}
            - {{pattern: "sealed-*", target: sealed}}
          default_target: moto
        """
    )


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoAccounts]:
    with MotoAccounts(tmp_path_factory.mktemp("accounts"), name="moto-accounts") as backend:
        yield backend


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeparateAccounts]:
    with SeparateAccounts(tmp_path_factory.mktemp("sealed"), name="moto-sealed") as backend:
        yield backend


@pytest.fixture(scope="module")
def config(
    moto: MotoAccounts, sealed: SeparateAccounts, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    return write_config(tmp_path_factory.mktemp("config"), config_text(moto, sealed))


@pytest.fixture(scope="module")
def proxy(
    config: Path, moto: MotoAccounts, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    env = {"ALICE_MOTO_SECRET": moto.keys["alt"][1]}
    with ProxyProcess(config, tmp_path_factory.mktemp("proxy"), env=env) as running:
        yield running


def direct(moto: MotoAccounts, account: str) -> BaseClient:
    return boto3_client(moto.endpoint, *moto.keys[account])


def bucket_names(client: BaseClient) -> set[str]:
    return {b["Name"] for b in client.list_buckets()["Buckets"]}


def error_of(call: Callable[[], object]) -> ClientError:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value


def test_a_bucket_one_client_created_is_another_accounts_to_the_next(
    proxy: ProxyProcess, moto: MotoAccounts
) -> None:
    alice, bob = proxy.client(*ALICE), proxy.client(*BOB)
    bucket = unique_bucket_name("alices")
    alice.create_bucket(Bucket=bucket)
    refused = error_of(lambda: bob.create_bucket(Bucket=bucket))
    assert refused.response["Error"]["Code"] == "BucketAlreadyExists"
    assert refused.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    # The store itself says whose it is: alt's account lists it, main's and tenant's do not.
    assert bucket in bucket_names(direct(moto, "alt"))
    assert bucket not in bucket_names(direct(moto, "main"))
    assert bucket not in bucket_names(direct(moto, "tenant"))


def test_each_client_lists_and_reads_only_its_own_accounts_buckets(
    proxy: ProxyProcess, moto: MotoAccounts, sealed: SeparateAccounts
) -> None:
    alice, bob, plain = proxy.client(*ALICE), proxy.client(*BOB), proxy.client(*PLAIN)
    alices, bobs, plains = (unique_bucket_name(p) for p in ("alices", "bobs", "plains"))
    alice.create_bucket(Bucket=alices)
    bob.create_bucket(Bucket=bobs)
    plain.create_bucket(Bucket=plains)
    seen = {name: bucket_names(c) for name, c in (("a", alice), ("b", bob), ("p", plain))}
    assert alices in seen["a"] and not {bobs, plains} & seen["a"]
    assert bobs in seen["b"] and not {alices, plains} & seen["b"]
    assert plains in seen["p"] and not {alices, bobs} & seen["p"]
    # plain has no backend_keys: it acts with the backend section's keys, main's account.
    assert plains in bucket_names(direct(moto, "main"))
    # bob's object on the sealed store is tenant's: alt (alice) and main (plain) are refused it.
    bobs = unique_bucket_name("sealed")
    bob.create_bucket(Bucket=bobs)
    bob.put_object(Bucket=bobs, Key="k", Body=b"bob's bytes")
    assert bob.get_object(Bucket=bobs, Key="k")["Body"].read() == b"bob's bytes"
    for other in (alice, plain):
        denied = error_of(lambda c=other: c.get_object(Bucket=bobs, Key="k"))
        assert denied.response["Error"]["Code"] == "AccessDenied"
    stored = direct(sealed, "tenant").get_object(Bucket=bobs, Key="k")
    assert stored["Body"].read() == b"bob's bytes"
    assert bobs in bucket_names(direct(sealed, "tenant"))


def test_a_copy_the_proxy_makes_itself_is_made_as_the_client(
    proxy: ProxyProcess, moto: MotoAccounts
) -> None:
    """A copy from `moto` to `strict` (another backend, the same store) is read and written by
    the proxy: both as alice (alt), whose bucket main's account could not read."""
    alice = proxy.client(*ALICE)
    source, destination = unique_bucket_name("alices"), unique_bucket_name("strict")
    alice.create_bucket(Bucket=source)
    alice.create_bucket(Bucket=destination)
    alice.put_object(Bucket=source, Key="src", Body=b"copied as alt")
    alice.copy_object(Bucket=destination, Key="dst", CopySource={"Bucket": source, "Key": "src"})
    got = direct(moto, "alt").get_object(Bucket=destination, Key="dst")
    assert got["Body"].read() == b"copied as alt"
    assert destination not in bucket_names(direct(moto, "main"))


def test_a_store_that_requires_client_keys_refuses_a_client_without_them(
    proxy: ProxyProcess, moto: MotoAccounts
) -> None:
    plain, bob = proxy.client(*PLAIN), proxy.client(*BOB)
    bucket = unique_bucket_name("strict")
    for client in (plain, bob):
        refused = error_of(lambda c=client: c.create_bucket(Bucket=bucket))
        assert refused.response["Error"]["Code"] == "AccessDenied"
        assert "has none for it" in refused.response["Error"]["Message"]
    assert bucket not in bucket_names(direct(moto, "main"))
    # ListBuckets leaves out the store a client has no keys for, and shows the rest.
    plains = unique_bucket_name("plains")
    plain.create_bucket(Bucket=plains)
    assert plains in bucket_names(plain)


def test_a_mirror_journal_is_written_with_the_stores_own_keys(
    start_proxy: StartProxy, sealed: SeparateAccounts
) -> None:
    """alice's mirrored write misses its (down) mirror; the journal entry goes to main's bucket
    on the sealed store, which alice's own account could not write to."""
    journal, bucket = unique_bucket_name("journal"), unique_bucket_name("mirrored")
    direct(sealed, "main").create_bucket(Bucket=journal)
    direct(sealed, "alt").create_bucket(Bucket=bucket)
    main, alt = sealed.keys["main"], sealed.keys["alt"]
    proxy = start_proxy(
        f"""
        router:
          mirror_journal: "s3://sealed/{journal}/entries/"
        backends:
          sealed:
            endpoint: "{sealed.endpoint}"
            access_key_id: "{main[0]}"
            secret_access_key: "{main[1]}"
          down:
            endpoint: "http://{LOOPBACK}:{free_port()}"
            access_key_id: "{main[0]}"
            secret_access_key: "{main[1]}"
        clients:
          - name: alice
            access_key_id: "{ALICE[0]}"
            secret_access_key: "{ALICE[1]}"
            backend_keys:
              sealed: {{access_key_id: "{alt[0]}", secret_access_key: "{alt[1]}"}}
        routing:
          rules:
            - {{pattern: "mirrored-*", target: sealed, mirror: [down], mirror_mode: best_effort}}
          default_target: sealed
        """
    )
    proxy.client(*ALICE).put_object(Bucket=bucket, Key="k", Body=b"as alt")
    assert direct(sealed, "alt").get_object(Bucket=bucket, Key="k")["Body"].read() == b"as alt"
    entries = direct(sealed, "main").list_objects_v2(Bucket=journal, Prefix="entries/")
    (entry,) = entries["Contents"]
    body = direct(sealed, "main").get_object(Bucket=journal, Key=entry["Key"])["Body"].read()
    assert b'"mirror": "down"' in body and alt[1].encode() not in body


HEALTH = b"GET /minio/health/ready HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n"


def raw_list_buckets(key: str, secret: str, endpoint: str) -> bytes:
    headers = sign("GET", f"{endpoint}/", key, secret)
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"GET / HTTP/1.1\r\nHost: {endpoint.removeprefix('http://')}\r\n{head}\r\n".encode()


def listed(body: bytes) -> set[str]:
    root = etree.fromstring(body)
    return {e.text or "" for e in root.iter("{*}Name")}


class _OneFile:
    """A socket whose `makefile` is always the same buffered reader, kept open when an answer
    ends, so that answers read one after another take up where the last one ended."""

    def __init__(self, reader: BinaryIO) -> None:
        self.reader = reader

    def makefile(self, *_args: object, **_kwargs: object) -> _OneFile:
        return self

    def __getattr__(self, name: str) -> object:
        return getattr(self.reader, name)

    def close(self) -> None:
        """The next answer is read from the same reader."""


def test_clients_alternating_on_one_connection_each_act_as_themselves(
    proxy: ProxyProcess,
) -> None:
    alice, bob = proxy.client(*ALICE), proxy.client(*BOB)
    alices, bobs = unique_bucket_name("alices"), unique_bucket_name("bobs")
    alice.create_bucket(Bucket=alices)
    bob.create_bucket(Bucket=bobs)
    turns = [ALICE, BOB, ALICE, PLAIN, BOB]
    # One request at a time, on one kept-alive connection.
    conn = http.client.HTTPConnection(LOOPBACK, proxy.port, timeout=30)
    try:
        first_socket = None
        for key, secret in turns:
            headers = sign("GET", f"{proxy.endpoint}/", key, secret)
            conn.request("GET", "/", headers=headers)
            response = conn.getresponse()
            names = listed(response.read())
            assert response.status == 200
            first_socket = first_socket or conn.sock
            assert conn.sock is first_socket, "the proxy closed the kept-alive connection"
            assert (alices in names, bobs in names) == (key == ALICE[0], key == BOB[0])
    finally:
        conn.close()
    # All at once (pipelined): each answer is served by a task the one before it started.
    with socket.create_connection((LOOPBACK, proxy.port), timeout=30) as raw:
        raw.sendall(b"".join(raw_list_buckets(*turn, proxy.endpoint) for turn in turns))
        reader = raw.makefile("rb")
        for key, _ in turns:
            response = http.client.HTTPResponse(_OneFile(reader))  # type: ignore[arg-type]
            response.begin()
            names = listed(response.read())
            assert response.status == 200
            assert (alices in names, bobs in names) == (key == ALICE[0], key == BOB[0])
        # A health probe behind bob's request asks the stores with their own keys; with bob's
        # (none for `strict`, which requires them) the probe would fail.
        raw.sendall(raw_list_buckets(*BOB, proxy.endpoint) + HEALTH % proxy.port)
        for expected in ("bob", "health"):
            response = http.client.HTTPResponse(_OneFile(reader))  # type: ignore[arg-type]
            response.begin()
            response.read()
            assert response.status == 200, expected


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "s3router_proxy", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**isolated_aws_env(os.environ, Path("/nonexistent")), **env},
        check=False,
    )


def test_no_secret_of_a_client_reaches_check_explain_logs_or_error_bodies(
    proxy: ProxyProcess, moto: MotoAccounts, config: Path
) -> None:
    secrets = [moto.keys["alt"][1], moto.keys["tenant"][1], ALICE[1], BOB[1]]
    env = {"ALICE_MOTO_SECRET": moto.keys["alt"][1]}
    checked = run_cli("check", "--config", str(config), env=env)
    explained = run_cli("explain", "--config", str(config), "PUT", "s3://strict-x/k", env=env)
    assert checked.returncode == 0 and explained.returncode == 0, checked.stderr + explained.stderr
    plain = proxy.client(*PLAIN)
    error = error_of(lambda: plain.put_object(Bucket="strict-x", Key="k", Body=b"x"))
    body = str(error.response)
    outputs = checked.stdout + checked.stderr + explained.stdout + explained.stderr
    for secret in secrets:
        assert secret not in outputs
        assert secret not in body
        assert secret not in proxy.log_text()


@pytest.mark.parametrize(
    ("keys", "line", "fragment"),
    [
        ("{elsewhere: {access_key_id: K, secret_access_key: the-secret}}", 8, "no backend"),
        ("{moto: {access_key_id: K}}", 8, "needs access_key_id and secret_access_key"),
    ],
)
def test_a_bad_backend_keys_entry_is_refused_with_its_file_and_line(
    tmp_path: Path, keys: str, line: int, fragment: str
) -> None:
    path = write_config(
        tmp_path,
        textwrap.dedent(
            f"""\
            backends:
              moto:
                endpoint: "http://127.0.0.1:9"
            clients:
              - name: alice
                access_key_id: A
                secret_access_key: S
                backend_keys: {keys}
            """
        ),
    )
    result = run_cli("check", "--config", str(path), env={})
    assert result.returncode != 0
    assert f"{path}:{line}: clients[0].backend_keys" in result.stderr
    assert fragment in result.stderr
    assert "the-secret" not in result.stderr + result.stdout
