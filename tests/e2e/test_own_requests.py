"""The requests the proxy makes itself (copies across backends, readiness probes) take the same
client as forwarded ones: the same strict answer framing, and TLS verified the same way.

The TLS backend is a second proxy process serving HTTPS with a certificate from a private CA
(trustme) in front of moto; the first proxy trusts that CA only through `SSL_CERT_FILE`, as a
deployment would. The framing case uses `RawBackend`, which answers exactly the bytes scripted.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from botocore.exceptions import ClientError
from harness import (
    LOOPBACK,
    PLAIN_ACCESS_KEY_ID,
    PLAIN_SECRET_ACCESS_KEY,
    MotoBackend,
    ProxyProcess,
    RawBackend,
    StartProxy,
    unique_bucket_name,
    write_config,
)

KEY, SECRET = "AKIAOWNREQUESTS", "own-requests-secret"
HOP_KEY, HOP_SECRET = "AKIATLSHOP", "tls-hop-secret"  # the first proxy's keys at the TLS one
MiB = 1024 * 1024


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def ready(proxy: ProxyProcess) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection(LOOPBACK, proxy.admin_port, timeout=15)
    try:
        conn.request("GET", "/ready")
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


@pytest.fixture(scope="module")
def ca_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, Path]]:
    directory = tmp_path_factory.mktemp("own-tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    chain, key, ca_pem = directory / "chain.pem", directory / "key.pem", directory / "ca.pem"
    cert.private_key_pem.write_to_path(str(key))
    cert.cert_chain_pems[0].write_to_path(str(chain))
    ca.cert_pem.write_to_path(str(ca_pem))
    yield chain, key, ca_pem


@pytest.fixture(scope="module")
def tls_store(
    moto_plain: MotoBackend,
    ca_file: tuple[Path, Path, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ProxyProcess]:
    """HTTPS in front of moto_plain, with the private CA's certificate."""
    chain, key, _ = ca_file
    directory = tmp_path_factory.mktemp("tls-store")
    config = write_config(
        directory,
        f"""
        router:
          tls: {{cert_file: "{chain}", key_file: "{key}"}}
        backends:
          store:
            endpoint: "{moto_plain.endpoint}"
            access_key_id: "{PLAIN_ACCESS_KEY_ID}"
            secret_access_key: "{PLAIN_SECRET_ACCESS_KEY}"
        clients:
          - {{name: hop, access_key_id: "{HOP_KEY}", secret_access_key: "{HOP_SECRET}"}}
        routing:
          default_target: store
        """,
    )
    with ProxyProcess(config, directory, log_level="info", name="tls-store") as process:
        yield process


def tls_config(moto_plain: MotoBackend, tls_store: ProxyProcess) -> str:
    """`secure-*` buckets on the HTTPS store, every other one on moto_plain directly."""
    return f"""
        backends:
          plain:
            endpoint: "{moto_plain.endpoint}"
            access_key_id: "{PLAIN_ACCESS_KEY_ID}"
            secret_access_key: "{PLAIN_SECRET_ACCESS_KEY}"
          secure:
            endpoint: "https://127.0.0.1:{tls_store.port}"
            access_key_id: "{HOP_KEY}"
            secret_access_key: "{HOP_SECRET}"
        clients:
          - {{name: own, access_key_id: "{KEY}", secret_access_key: "{SECRET}"}}
        routing:
          rules:
            - {{pattern: "secure-*", target: secure}}
          default_target: plain
        """


def test_copies_and_probes_reach_a_tls_backend_trusted_by_ssl_cert_file(
    start_proxy: StartProxy,
    moto_plain: MotoBackend,
    tls_store: ProxyProcess,
    ca_file: tuple[Path, Path, Path],
) -> None:
    proxy = start_proxy(tls_config(moto_plain, tls_store), env={"SSL_CERT_FILE": str(ca_file[2])})
    status, report = ready(proxy)
    assert (status, report["backends"]) == (200, {"plain": "ok", "secure": "ok"}), report
    source, dest = unique_bucket_name("own-src"), unique_bucket_name("secure-own")
    direct = moto_plain.client()
    direct.create_bucket(Bucket=source)
    direct.create_bucket(Bucket=dest)
    client = proxy.client(KEY, SECRET)
    body = os.urandom(3 * MiB + 17)
    client.put_object(Bucket=source, Key="big", Body=body)
    client.copy_object(Bucket=dest, Key="copied", CopySource={"Bucket": source, "Key": "big"})
    # Streamed from moto through the first proxy's GET, into a PUT over TLS to the second one.
    stored = direct.get_object(Bucket=dest, Key="copied")["Body"].read()
    assert sha256(stored) == sha256(body)
    assert sha256(client.get_object(Bucket=dest, Key="copied")["Body"].read()) == sha256(body)


def test_without_the_ca_a_tls_backend_is_neither_ready_nor_written(
    start_proxy: StartProxy, moto_plain: MotoBackend, tls_store: ProxyProcess
) -> None:
    proxy = start_proxy(tls_config(moto_plain, tls_store), env={"SSL_CERT_FILE": None})
    status, report = ready(proxy)
    assert status == 503, report
    assert report["backends"]["plain"] == "ok"
    assert report["backends"]["secure"] == "ConnectFailed"  # the certificate was refused
    source, dest = unique_bucket_name("own-src"), unique_bucket_name("secure-own")
    direct = moto_plain.client()
    direct.create_bucket(Bucket=source)
    direct.create_bucket(Bucket=dest)
    client = proxy.client(KEY, SECRET)
    client.put_object(Bucket=source, Key="k", Body=b"never over an unverified connection")
    with pytest.raises(ClientError) as refused:
        client.copy_object(Bucket=dest, Key="k", CopySource={"Bucket": source, "Key": "k"})
    assert refused.value.response["Error"]["Code"] == "ServiceUnavailable"
    assert direct.list_objects_v2(Bucket=dest).get("KeyCount") == 0


SMUGGLED = b"HTTP/1.1 200 OK\r\nX-Smuggled: yes\r\nContent-Length: 7\r\n\r\nSMUGGLE"


def source_answer(body: bytes) -> bytes:
    return (
        b'HTTP/1.1 200 OK\r\nContent-Length: %d\r\nETag: "%s"\r\n\r\n'
        % (len(body), hashlib.md5(body).hexdigest().encode())
        + body
    )


@pytest.fixture
def raw_source(tmp_path: Path) -> Iterator[RawBackend]:
    with RawBackend(tmp_path) as backend:
        yield backend


@pytest.mark.parametrize("smuggle", [False, True], ids=["clean", "bytes-after-answer"])
def test_a_copy_source_answer_is_framed_as_strictly_as_a_forwarded_one(
    start_proxy: StartProxy, moto_plain: MotoBackend, raw_source: RawBackend, smuggle: bool
) -> None:
    """A copy source that sends bytes after its answer is out of step with its requests: the
    copy fails and the destination holds nothing, as a forwarded GET would fail. The clean
    answer, copied whole, shows the scripted source itself is fine."""
    body = b"copy me " * 4096
    raw_source.script({"*": [{"send": source_answer(body) + (SMUGGLED if smuggle else b"")}]})
    proxy = start_proxy(
        f"""
        backends:
          raw:
            endpoint: "{raw_source.endpoint}"
            access_key_id: "raw"
            secret_access_key: "raw-secret"
          plain:
            endpoint: "{moto_plain.endpoint}"
            access_key_id: "{PLAIN_ACCESS_KEY_ID}"
            secret_access_key: "{PLAIN_SECRET_ACCESS_KEY}"
        clients:
          - {{name: own, access_key_id: "{KEY}", secret_access_key: "{SECRET}"}}
        routing:
          rules:
            - {{pattern: "raw-*", target: raw}}
          default_target: plain
        """
    )
    dest = unique_bucket_name("own-dest")
    direct = moto_plain.client()
    direct.create_bucket(Bucket=dest)
    client = proxy.client(KEY, SECRET)
    copy = {"Bucket": dest, "Key": "k", "CopySource": {"Bucket": "raw-src", "Key": "obj"}}
    if smuggle:
        with pytest.raises(ClientError) as failed:
            client.copy_object(**copy)
        assert failed.value.response["Error"]["Code"] == "ServiceUnavailable"
        assert direct.list_objects_v2(Bucket=dest).get("KeyCount") == 0
    else:
        client.copy_object(**copy)
        stored = direct.get_object(Bucket=dest, Key="k")["Body"].read()
        assert sha256(stored) == sha256(body)
    seen = [r for r in raw_source.requests() if "error" not in r]
    assert [(r["method"], r["target"]) for r in seen] == [("GET", "/raw-src/obj")]
