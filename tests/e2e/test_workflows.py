"""The reference migration workflows, run unchanged against the proxy with boto3 alone.

Rules send `s3-*` buckets to one store and the lakeFS repositories to another (on lakeFS a key
starts with its branch, `main/`). The scripts are the ones the lakeFS and AWS docs show: a
paginator over an S3 bucket with `copy_object` into the repository's `main/` branch, then a
count of both sides; and a sync between two repositories with `head_object` + `copy_object`.
Nothing here knows about the proxy's internals: only its endpoint.
"""

from __future__ import annotations

import hashlib
import http.client
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from harness import (
    LOOPBACK,
    PLAIN_ACCESS_KEY_ID,
    PLAIN_SECRET_ACCESS_KEY,
    MotoBackend,
    ProxyProcess,
    StartProxy,
    unique_bucket_name,
)

KEY, SECRET = "AKIAWORKFLOW", "workflow-secret"
COUNT = 1100  # more than one 1000-key page, so the paginator really pages


def body_of(index: int) -> bytes:
    return f"record {index}\n".encode() * (1 + index % 7)


@pytest.fixture
def setup(
    start_proxy: StartProxy, moto_plain: MotoBackend, moto_auth: MotoBackend
) -> tuple[ProxyProcess, str]:
    """The proxy, and an empty S3 bucket on its store (`seed` fills it)."""
    bucket = unique_bucket_name("s3-data")
    moto_plain.client().create_bucket(Bucket=bucket)
    repo, mirror = unique_bucket_name("repo"), unique_bucket_name("mirror")
    for name in (repo, mirror):
        moto_auth.client().create_bucket(Bucket=name)
    proxy = start_proxy(
        f"""
        backends:
          s3:
            endpoint: "{moto_plain.endpoint}"
            access_key_id: "{PLAIN_ACCESS_KEY_ID}"
            secret_access_key: "{PLAIN_SECRET_ACCESS_KEY}"
          lakefs:
            endpoint: "{moto_auth.endpoint}"
            access_key_id: "{moto_auth.access_key_id}"
            secret_access_key: "{moto_auth.secret_access_key}"
        clients:
          - {{name: app, access_key_id: "{KEY}", secret_access_key: "{SECRET}"}}
        routing:
          rules:
            - {{pattern: "s3-*", target: s3}}
            - {{pattern: "lakefs-repo", target: lakefs, mapped_bucket: "{repo}"}}
            - {{pattern: "lakefs-mirror", target: lakefs, mapped_bucket: "{mirror}"}}
        """
    )
    return proxy, bucket


def seed(store: MotoBackend, bucket: str, count: int) -> None:
    local = threading.local()

    def put(index: int) -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection(LOOPBACK, store.port, timeout=30)
        conn.request("PUT", f"/{bucket}/data/{index:05d}.txt", body=body_of(index))
        response = conn.getresponse()
        response.read()
        assert response.status == 200

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(put, range(count)))


def all_keys(s3: BaseClient, bucket: str, prefix: str = "") -> list[str]:
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return keys


def sha256(s3: BaseClient, bucket: str, key: str) -> str:
    return hashlib.sha256(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).hexdigest()


def test_copy_an_s3_bucket_into_a_lakefs_branch(
    setup: tuple[ProxyProcess, str], moto_plain: MotoBackend
) -> None:
    proxy, bucket = setup
    seed(moto_plain, bucket, COUNT)
    s3 = proxy.client(KEY, SECRET)

    # The workflow as the docs write it.
    pages = 0
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket):
        pages += 1
        for obj in page.get("Contents", []):
            s3.copy_object(
                Bucket="lakefs-repo",
                Key=f"main/{obj['Key']}",
                CopySource={"Bucket": bucket, "Key": obj["Key"]},
            )
    source_keys = all_keys(s3, bucket)
    repo_keys = all_keys(s3, "lakefs-repo", "main/")

    assert pages == 2
    assert len(source_keys) == len(repo_keys) == COUNT
    assert repo_keys == [f"main/{key}" for key in source_keys]
    for index in (0, 1, 999, 1000, COUNT - 1):
        key = f"data/{index:05d}.txt"
        expected = hashlib.sha256(body_of(index)).hexdigest()
        assert sha256(s3, bucket, key) == sha256(s3, "lakefs-repo", f"main/{key}") == expected


def sync(s3: BaseClient, source: str, dest: str, prefix: str) -> list[str]:
    """Copy what the destination lacks or holds differently; the keys copied."""
    copied = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=source, Prefix=prefix):
        for obj in page.get("Contents", []):
            try:
                head = s3.head_object(Bucket=dest, Key=obj["Key"])
                if head["ETag"] == obj["ETag"] and head["ContentLength"] == obj["Size"]:
                    continue
            except ClientError as error:
                if error.response["Error"]["Code"] != "404":
                    raise
            s3.copy_object(
                Bucket=dest, Key=obj["Key"], CopySource={"Bucket": source, "Key": obj["Key"]}
            )
            copied.append(obj["Key"])
    return copied


def test_sync_two_repositories_with_head_and_copy(
    setup: tuple[ProxyProcess, str], moto_plain: MotoBackend
) -> None:
    proxy, bucket = setup
    seed(moto_plain, bucket, 50)
    s3 = proxy.client(KEY, SECRET)
    for index in range(50):
        key = f"data/{index:05d}.txt"
        s3.copy_object(
            Bucket="lakefs-repo", Key=f"main/{key}", CopySource={"Bucket": bucket, "Key": key}
        )
    everything = all_keys(s3, "lakefs-repo", "main/")

    assert sync(s3, "lakefs-repo", "lakefs-mirror", "main/") == everything
    assert sync(s3, "lakefs-repo", "lakefs-mirror", "main/") == []  # nothing changed

    s3.put_object(Bucket="lakefs-repo", Key="main/data/00007.txt", Body=b"changed on main")
    s3.delete_object(Bucket="lakefs-mirror", Key="main/data/00011.txt")
    assert sync(s3, "lakefs-repo", "lakefs-mirror", "main/") == [
        "main/data/00007.txt",
        "main/data/00011.txt",
    ]
    assert all_keys(s3, "lakefs-mirror", "main/") == everything
    changed = s3.get_object(Bucket="lakefs-mirror", Key="main/data/00007.txt")["Body"].read()
    assert changed == b"changed on main"
