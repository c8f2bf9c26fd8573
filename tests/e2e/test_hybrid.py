"""Hybrid workflows through the real proxy: reads that fall back to the old store during a
migration, and objects copied between stores."""

from __future__ import annotations

import contextlib
import json

import pytest
from botocore.exceptions import ClientError
from harness import (
    PLAIN_ACCESS_KEY_ID,
    PLAIN_SECRET_ACCESS_KEY,
    MotoBackend,
    ProxyProcess,
    StartProxy,
    free_port,
    unique_bucket_name,
)

KEY, SECRET = "AKIAHYBRID", "hybrid-secret"
BUCKET = unique_bucket_name("migrating")


@pytest.fixture
def proxy(start_proxy: StartProxy, moto_auth: MotoBackend, moto_plain: MotoBackend) -> ProxyProcess:
    for store in (moto_auth, moto_plain):
        with contextlib.suppress(ClientError):
            store.client().create_bucket(Bucket=BUCKET)
    return start_proxy(
        f"""
        router:
          log_format: json
        backends:
          new:
            endpoint: "{moto_auth.endpoint}"
            access_key_id: "{moto_auth.access_key_id}"
            secret_access_key: "{moto_auth.secret_access_key}"
          old:
            endpoint: "{moto_plain.endpoint}"
            access_key_id: "{PLAIN_ACCESS_KEY_ID}"
            secret_access_key: "{PLAIN_SECRET_ACCESS_KEY}"
          gone:
            endpoint: "http://127.0.0.1:{free_port()}"
            access_key_id: "x"
            secret_access_key: "y"
            connect_timeout: 1
        clients:
          - {{name: app, access_key_id: "{KEY}", secret_access_key: "{SECRET}"}}
        routing:
          rules:
            - {{pattern: "migrating-*", target: new, fallback: [old]}}
            - {{pattern: "failing-*", target: gone, fallback: [old], failover_on_error: true}}
            - {{pattern: "strict-*", target: gone, fallback: [old]}}
          default_target: old
        """
    )


def served_by(proxy: ProxyProcess, key: str) -> list[str]:
    backends = []
    for line in proxy.log_text().splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if entry.get("key") == key and entry.get("operation") in ("GetObject", "HeadObject"):
                backends.append(entry["backend"])
    return backends


def test_reads_fall_back_to_the_old_store(
    proxy: ProxyProcess, moto_auth: MotoBackend, moto_plain: MotoBackend
) -> None:
    client = proxy.client(KEY, SECRET)
    moto_plain.client().put_object(Bucket=BUCKET, Key="only-old", Body=b"from the old store")
    moto_plain.client().put_object(Bucket=BUCKET, Key="both", Body=b"stale copy")
    moto_auth.client().put_object(Bucket=BUCKET, Key="both", Body=b"migrated copy")
    assert client.get_object(Bucket=BUCKET, Key="only-old")["Body"].read() == b"from the old store"
    assert client.head_object(Bucket=BUCKET, Key="only-old")["ContentLength"] == 18
    assert client.get_object(Bucket=BUCKET, Key="both")["Body"].read() == b"migrated copy"
    with pytest.raises(ClientError) as caught:
        client.get_object(Bucket=BUCKET, Key="nowhere")
    assert caught.value.response["Error"]["Code"] == "NoSuchKey"
    assert served_by(proxy, "only-old") == ["old", "old"]
    assert served_by(proxy, "both") == ["new"]
    # Writes never fall back: they go to the new store only.
    client.put_object(Bucket=BUCKET, Key="written", Body=b"new data")
    assert moto_auth.client().get_object(Bucket=BUCKET, Key="written")["Body"].read() == b"new data"
    with pytest.raises(ClientError):
        moto_plain.client().head_object(Bucket=BUCKET, Key="written")


def test_failover_on_error_only_where_configured(
    proxy: ProxyProcess, moto_plain: MotoBackend
) -> None:
    client = proxy.client(KEY, SECRET)
    for bucket in ("failing-b", "strict-b"):
        with contextlib.suppress(ClientError):
            moto_plain.client().create_bucket(Bucket=bucket)
        moto_plain.client().put_object(Bucket=bucket, Key="k", Body=b"safe")
    assert client.get_object(Bucket="failing-b", Key="k")["Body"].read() == b"safe"
    with pytest.raises(ClientError) as caught:
        client.get_object(Bucket="strict-b", Key="k")
    assert caught.value.response["Error"]["Code"] == "ServiceUnavailable"
    with pytest.raises(ClientError) as caught:  # never for writes
        client.put_object(Bucket="failing-b", Key="w", Body=b"x")
    assert caught.value.response["Error"]["Code"] == "ServiceUnavailable"
