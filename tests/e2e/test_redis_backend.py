"""A `kind: redis` backend through the real proxy: a real redis-server process, a moto_server
beside it, boto3 and aws-cli as clients.

The differential tests run the same client calls against a Redis-backed bucket and a
moto-backed one and compare what a client sees: status, error Code, the headers that matter,
the bytes, and listings page by page. The rest checks what only the store does (EntityTooLarge
with nothing written, NotImplemented for multipart, TTL expiry) and what sits above the
backend seam (a split bucket, a size condition, copies across stores), reading Redis directly
where the claim is about what it holds.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import itertools
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
import trustme
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError
from harness import (
    PLAIN_ACCESS_KEY_ID,
    PLAIN_SECRET_ACCESS_KEY,
    MotoBackend,
    ProxyProcess,
    StartProxy,
    aws_cli,
    unique_bucket_name,
)
from redisserver import MISSING, REDIS_SERVER, RedisServer

pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason=MISSING)

KEY, SECRET = "AKIAREDIS", "redis-client-secret"
LIMIT = 256 * 1024
TTL = 1.5


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def proxy(start_proxy: StartProxy, redis: RedisServer, moto_plain: MotoBackend) -> ProxyProcess:
    return start_proxy(
        f"""
        router:
          log_format: json
        backends:
          scratch:
            kind: redis
            url: "{redis.url}"
            max_object_size: {LIMIT}
          expiring:
            kind: redis
            url: "{redis.url[:-1]}1"
            ttl: {TTL}
          moto:
            endpoint: "{moto_plain.endpoint}"
            access_key_id: "{PLAIN_ACCESS_KEY_ID}"
            secret_access_key: "{PLAIN_SECRET_ACCESS_KEY}"
        clients:
          - {{name: app, access_key_id: "{KEY}", secret_access_key: "{SECRET}"}}
        routing:
          rules:
            - {{pattern: "tmp-*", target: scratch}}
            - {{pattern: "ttl-*", target: expiring}}
            - {{pattern: "split-*", key_pattern: "tmp/*", target: scratch}}
            - {{pattern: "split-*", target: moto}}
            - {{pattern: "small-*", operations: [CreateBucket], target: scratch}}
            - pattern: "small-*"
              operations: [write]
              conditions: {{max_size: 64KiB}}
              target: scratch
            - {{pattern: "small-*", target: moto, fallback: [scratch]}}
          default_target: moto
        """
    )


@pytest.fixture
def client(proxy: ProxyProcess) -> BaseClient:
    return proxy.client(KEY, SECRET)


def outcome(call: Callable[[], dict[str, Any]]) -> tuple[Any, ...]:
    """(status, what matters of the answer) or (status, error Code)."""
    try:
        answer = call()
    except ClientError as exc:
        error = exc.response["Error"]
        return exc.response["ResponseMetadata"]["HTTPStatusCode"], error.get("Code")
    answer.pop("ResponseMetadata")
    if "Body" in answer:
        answer["Body"] = answer["Body"].read()
    # When, to the second or the millisecond: S3 itself answers ".000Z" where moto gives none.
    answer.get("CopyObjectResult", {}).pop("LastModified", None)
    for name in (
        "LastModified",
        "ChecksumCRC64NVME",
        "ChecksumType",
        "Expiration",
    ):
        answer.pop(name, None)
    return 200, answer


def both(client: BaseClient, call: Callable[[str], dict[str, Any]]) -> tuple[Any, Any]:
    """The outcome of `call(bucket)` on the Redis bucket and on the moto bucket, the bucket
    names made equal."""
    found = []
    for bucket in ("tmp-diff", "cmp-diff"):
        result = outcome(lambda bucket=bucket: call(bucket))
        found.append(json.loads(json.dumps(result, default=str).replace(bucket, "BUCKET")))
    return found[0], found[1]


@pytest.fixture
def diff_buckets(client: BaseClient) -> Iterator[None]:
    for bucket in ("tmp-diff", "cmp-diff"):
        client.create_bucket(Bucket=bucket)
    yield
    for bucket in ("tmp-diff", "cmp-diff"):
        with contextlib.suppress(ClientError):
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                for item in page.get("Contents", []):
                    client.delete_object(Bucket=bucket, Key=item["Key"])
            client.delete_bucket(Bucket=bucket)


OBJECT_CALLS: dict[str, Callable[[BaseClient, str], dict[str, Any]]] = {
    "put": lambda c, b: c.put_object(
        Bucket=b,
        Key="dir/obj.txt",
        Body=b"0123456789" * 10,
        ContentType="text/plain",
        CacheControl="max-age=60",
        ContentDisposition="attachment",
        Metadata={"colour": "blue", "n": "1"},
    ),
    "get": lambda c, b: c.get_object(Bucket=b, Key="dir/obj.txt"),
    "head": lambda c, b: c.head_object(Bucket=b, Key="dir/obj.txt"),
    "range": lambda c, b: c.get_object(Bucket=b, Key="dir/obj.txt", Range="bytes=2-5"),
    "suffix range": lambda c, b: c.get_object(Bucket=b, Key="dir/obj.txt", Range="bytes=-3"),
    "open range": lambda c, b: c.get_object(Bucket=b, Key="dir/obj.txt", Range="bytes=95-"),
    "range past the end": lambda c, b: c.get_object(
        Bucket=b, Key="dir/obj.txt", Range="bytes=100-200"
    ),
    "if-none-match": lambda c, b: c.get_object(
        Bucket=b,
        Key="dir/obj.txt",
        IfNoneMatch='"' + hashlib.md5(b"0123456789" * 10).hexdigest() + '"',
    ),
    "if-match wrong": lambda c, b: c.get_object(Bucket=b, Key="dir/obj.txt", IfMatch='"abc"'),
    "if-match right": lambda c, b: c.head_object(
        Bucket=b, Key="dir/obj.txt", IfMatch=f'"{hashlib.md5(b"0123456789" * 10).hexdigest()}"'
    ),
    "if-modified-since later": lambda c, b: c.get_object(
        Bucket=b, Key="dir/obj.txt", IfModifiedSince=dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
    ),
    "if-unmodified-since earlier": lambda c, b: c.get_object(
        Bucket=b, Key="dir/obj.txt", IfUnmodifiedSince=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    ),
    "if-modified-since earlier": lambda c, b: c.head_object(
        Bucket=b, Key="dir/obj.txt", IfModifiedSince=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    ),
    "response overrides": lambda c, b: c.get_object(
        Bucket=b, Key="dir/obj.txt", ResponseContentType="application/json"
    ),
    "missing key": lambda c, b: c.get_object(Bucket=b, Key="nothing-here"),
    "missing key head": lambda c, b: c.head_object(Bucket=b, Key="nothing-here"),
    "put without type": lambda c, b: c.put_object(Bucket=b, Key="plain", Body=b"x"),
    "get without type": lambda c, b: c.get_object(Bucket=b, Key="plain"),
    "empty object": lambda c, b: c.put_object(Bucket=b, Key="empty", Body=b""),
    "get empty": lambda c, b: c.get_object(Bucket=b, Key="empty"),
    "put if absent, present": lambda c, b: c.put_object(
        Bucket=b, Key="plain", Body=b"y", IfNoneMatch="*"
    ),
    "copy": lambda c, b: c.copy_object(
        Bucket=b, Key="copied", CopySource={"Bucket": b, "Key": "dir/obj.txt"}
    ),
    "get copy": lambda c, b: c.get_object(Bucket=b, Key="copied"),
    "copy replacing metadata": lambda c, b: c.copy_object(
        Bucket=b,
        Key="copied",
        CopySource={"Bucket": b, "Key": "dir/obj.txt"},
        MetadataDirective="REPLACE",
        ContentType="text/csv",
        Metadata={"new": "yes"},
    ),
    "head replaced": lambda c, b: c.head_object(Bucket=b, Key="copied"),
    "copy onto itself": lambda c, b: c.copy_object(
        Bucket=b, Key="plain", CopySource={"Bucket": b, "Key": "plain"}
    ),
    "copy of a missing key": lambda c, b: c.copy_object(
        Bucket=b, Key="x", CopySource={"Bucket": b, "Key": "nothing-here"}
    ),
    "delete": lambda c, b: c.delete_object(Bucket=b, Key="copied"),
    "delete missing": lambda c, b: c.delete_object(Bucket=b, Key="nothing-here"),
    "get deleted": lambda c, b: c.get_object(Bucket=b, Key="copied"),
    "head bucket": lambda c, b: c.head_bucket(Bucket=b),
    "delete a full bucket": lambda c, b: c.delete_bucket(Bucket=b),
    "location": lambda c, b: c.get_bucket_location(Bucket=b),
    "versioning": lambda c, b: c.get_bucket_versioning(Bucket=b),
    "delete objects": lambda c, b: c.delete_objects(
        Bucket=b, Delete={"Objects": [{"Key": "plain"}, {"Key": "never-was"}]}
    ),
    "get a deleted one": lambda c, b: c.get_object(Bucket=b, Key="plain"),
}


@pytest.mark.usefixtures("diff_buckets")
def test_objects_answer_as_an_s3_store_does(client: BaseClient) -> None:
    different = {}
    for name, call in OBJECT_CALLS.items():
        redis_side, moto_side = both(client, lambda b, call=call: call(client, b))
        if redis_side != moto_side:
            different[name] = {"redis": redis_side, "moto": moto_side}
    assert not different, json.dumps(different, indent=1, default=str)


def _pages(client: BaseClient, bucket: str, v2: bool, **args: Any) -> list[dict[str, Any]]:
    operation = "list_objects_v2" if v2 else "list_objects"
    pages = []
    for page in client.get_paginator(operation).paginate(Bucket=bucket, **args):
        pages.append(
            {
                "keys": [(o["Key"], o["Size"], o["ETag"]) for o in page.get("Contents", [])],
                "prefixes": [p["Prefix"] for p in page.get("CommonPrefixes", [])],
                "truncated": page["IsTruncated"],
                "count": page.get("KeyCount"),
            }
        )
    return pages


LISTED_KEYS = [
    "a",
    "a/1",
    "a/2",
    "a/b/1",
    "b",
    "b/c",
    "c d/é",
    "c d/~x",
    "logs/2026/01",
    "logs/2026/02",
    "logs/2027/01",
    "z",
]


@pytest.mark.usefixtures("diff_buckets")
@pytest.mark.parametrize("v2", [True, False], ids=["v2", "v1"])
@pytest.mark.parametrize(
    "args",
    [
        {},
        {"PaginationConfig": {"PageSize": 2}},
        {"Delimiter": "/", "PaginationConfig": {"PageSize": 2}},
        {"Prefix": "logs/", "Delimiter": "/"},
        {"Prefix": "logs/2026", "PaginationConfig": {"PageSize": 1}},
        {"Prefix": "a/", "Delimiter": "/", "PaginationConfig": {"PageSize": 1}},
        {"Prefix": "nothing"},
    ],
)
def test_listings_page_as_an_s3_store_does(
    client: BaseClient, v2: bool, args: dict[str, Any]
) -> None:
    for bucket in ("tmp-diff", "cmp-diff"):
        for key in LISTED_KEYS:
            client.put_object(Bucket=bucket, Key=key, Body=key.encode())
    redis_pages = _pages(client, "tmp-diff", v2, **args)
    moto_pages = _pages(client, "cmp-diff", v2, **args)
    if v2 or not args.get("Delimiter"):
        assert redis_pages == moto_pages
    else:
        # moto's V1 does not count common prefixes against MaxKeys (S3 does: "each rolled-up
        # result counts as only one return") and repeats them on later pages, so only what the
        # pages add up to compares, and that S3's rule holds here.
        assert all(len(p["keys"]) + len(p["prefixes"]) <= 2 for p in redis_pages)
        for part in ("keys", "prefixes"):
            ours = list(itertools.chain.from_iterable(p[part] for p in redis_pages))
            theirs = list(itertools.chain.from_iterable(p[part] for p in moto_pages))
            assert ours == sorted(set(theirs))


def test_start_after_and_bucket_errors(client: BaseClient) -> None:
    bucket = unique_bucket_name("tmp")
    client.create_bucket(Bucket=bucket)
    for key in ("a", "b", "c"):
        client.put_object(Bucket=bucket, Key=key, Body=b"1")
    listed = client.list_objects_v2(Bucket=bucket, StartAfter="a")
    assert [o["Key"] for o in listed["Contents"]] == ["b", "c"]
    for call in (
        lambda: client.list_objects_v2(Bucket="tmp-never-made"),
        lambda: client.put_object(Bucket="tmp-never-made", Key="k", Body=b"1"),
        lambda: client.get_object(Bucket="tmp-never-made", Key="k"),
    ):
        with pytest.raises(ClientError) as caught:
            call()
        assert caught.value.response["Error"]["Code"] == "NoSuchBucket"
    with pytest.raises(ClientError) as caught:
        client.create_bucket(Bucket="tmp-Not_Valid")
    assert caught.value.response["Error"]["Code"] == "InvalidBucketName"


def test_a_put_over_the_limit_is_refused_and_nothing_is_written(
    client: BaseClient, redis: RedisServer
) -> None:
    bucket = unique_bucket_name("tmp")
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="big", Body=b"old")
    with pytest.raises(ClientError) as caught:
        client.put_object(Bucket=bucket, Key="big", Body=os.urandom(LIMIT + 1))
    assert caught.value.response["Error"]["Code"] == "EntityTooLarge"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert client.get_object(Bucket=bucket, Key="big")["Body"].read() == b"old"
    assert redis.command("GET", f"s3r:o:{bucket}/big") == b"$3\r\nold\r\n"
    exact = os.urandom(LIMIT)
    client.put_object(Bucket=bucket, Key="exact", Body=exact)
    assert client.get_object(Bucket=bucket, Key="exact")["Body"].read() == exact


def test_a_body_that_fails_its_checksum_is_not_stored(
    proxy: ProxyProcess, redis: RedisServer
) -> None:
    client = proxy.client(KEY, SECRET)
    bucket = unique_bucket_name("tmp")
    client.create_bucket(Bucket=bucket)
    with pytest.raises(ClientError) as caught:
        client.put_object(
            Bucket=bucket, Key="k", Body=b"body", ContentMD5="1B2M2Y8AsgTpgAmY7PhCfg=="
        )
    assert caught.value.response["Error"]["Code"] == "BadDigest"
    assert redis.command("EXISTS", f"s3r:o:{bucket}/k") == b":0\r\n"


def test_multipart_and_versions_answer_not_implemented(client: BaseClient) -> None:
    bucket = unique_bucket_name("tmp")
    client.create_bucket(Bucket=bucket)
    for call in (
        lambda: client.create_multipart_upload(Bucket=bucket, Key="k"),
        lambda: client.list_object_versions(Bucket=bucket),
        lambda: client.put_bucket_versioning(
            Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
        ),
        lambda: client.get_object(Bucket=bucket, Key="k", VersionId="v1"),
        lambda: client.put_bucket_tagging(
            Bucket=bucket, Tagging={"TagSet": [{"Key": "a", "Value": "b"}]}
        ),
    ):
        with pytest.raises(ClientError) as caught:
            call()
        assert caught.value.response["Error"]["Code"] == "NotImplemented"
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501


def test_expired_objects_leave_reads_and_listings(client: BaseClient, redis: RedisServer) -> None:
    bucket = unique_bucket_name("ttl")
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="early", Body=b"1")
    time.sleep(TTL / 2)
    client.put_object(Bucket=bucket, Key="late", Body=b"2")
    listed = client.list_objects_v2(Bucket=bucket)
    assert [o["Key"] for o in listed["Contents"]] == ["early", "late"]
    time.sleep(TTL / 2 + 0.2)
    with pytest.raises(ClientError) as caught:
        client.get_object(Bucket=bucket, Key="early")
    assert caught.value.response["Error"]["Code"] == "NoSuchKey"
    assert [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]] == ["late"]
    assert client.get_object(Bucket=bucket, Key="late")["Body"].read() == b"2"
    time.sleep(TTL / 2 + 0.2)
    assert "Contents" not in client.list_objects(Bucket=bucket)
    # The index holds nothing dead: the bucket can go.
    client.delete_bucket(Bucket=bucket)


def test_a_split_bucket_lists_its_redis_part_and_its_s3_part_as_one(
    client: BaseClient, redis: RedisServer, moto_plain: MotoBackend
) -> None:
    bucket = unique_bucket_name("split")
    client.create_bucket(Bucket=bucket)
    for key in ("tmp/1", "tmp/2", "a", "tmp0", "z/1"):
        client.put_object(Bucket=bucket, Key=key, Body=key.encode())
    assert redis.command("EXISTS", f"s3r:o:{bucket}/tmp/1") == b":1\r\n"
    moto_keys = [o["Key"] for o in moto_plain.client().list_objects_v2(Bucket=bucket)["Contents"]]
    assert moto_keys == ["a", "tmp0", "z/1"]
    keys = [
        o["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, PaginationConfig={"PageSize": 2}
        )
        for o in page.get("Contents", [])
    ]
    assert keys == ["a", "tmp/1", "tmp/2", "tmp0", "z/1"]
    listed = client.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in listed["CommonPrefixes"]] == ["tmp/", "z/"]
    buckets = [b["Name"] for b in client.list_buckets()["Buckets"]]
    assert buckets.count(bucket) == 1
    client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "tmp/1"}, {"Key": "a"}]})
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["tmp/2", "tmp0", "z/1"]


def test_a_size_condition_sends_small_objects_to_redis(
    client: BaseClient, redis: RedisServer, moto_plain: MotoBackend
) -> None:
    bucket = unique_bucket_name("small")
    moto_plain.client().create_bucket(Bucket=bucket)
    client.create_bucket(Bucket=bucket)  # a rule of its own: the Redis store's bucket
    small, big = os.urandom(1024), os.urandom(100 * 1024)
    client.put_object(Bucket=bucket, Key="small", Body=small)
    client.put_object(Bucket=bucket, Key="big", Body=big)
    assert redis.command("EXISTS", f"s3r:o:{bucket}/small") == b":1\r\n"
    assert redis.command("EXISTS", f"s3r:o:{bucket}/big") == b":0\r\n"
    assert moto_plain.client().get_object(Bucket=bucket, Key="big")["Body"].read() == big
    assert client.get_object(Bucket=bucket, Key="small")["Body"].read() == small
    assert client.get_object(Bucket=bucket, Key="big")["Body"].read() == big


def test_copies_across_redis_and_s3_keep_the_bytes(
    client: BaseClient, moto_plain: MotoBackend
) -> None:
    scratch, lasting = unique_bucket_name("tmp"), unique_bucket_name("keep")
    client.create_bucket(Bucket=scratch)
    client.create_bucket(Bucket=lasting)
    data = os.urandom(200 * 1024)
    digest = hashlib.sha256(data).hexdigest()
    client.put_object(Bucket=scratch, Key="src", Body=data, Metadata={"m": "1"})
    client.copy_object(Bucket=lasting, Key="to-s3", CopySource={"Bucket": scratch, "Key": "src"})
    landed = moto_plain.client().get_object(Bucket=lasting, Key="to-s3")
    assert hashlib.sha256(landed["Body"].read()).hexdigest() == digest
    assert landed["Metadata"] == {"m": "1"}
    client.copy_object(Bucket=scratch, Key="back", CopySource={"Bucket": lasting, "Key": "to-s3"})
    back = client.get_object(Bucket=scratch, Key="back")
    assert hashlib.sha256(back["Body"].read()).hexdigest() == digest
    assert back["Metadata"] == {"m": "1"}


def test_aws_cli_cp_ls_rm(proxy: ProxyProcess, tmp_path: Path) -> None:
    bucket = unique_bucket_name("tmp")

    def cli(*args: str) -> str:
        done = aws_cli(proxy.endpoint, KEY, SECRET, *args, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        return done.stdout

    cli("s3", "mb", f"s3://{bucket}")
    (tmp_path / "up.bin").write_bytes(data := os.urandom(100 * 1024))
    cli("s3", "cp", "up.bin", f"s3://{bucket}/dir/up.bin")
    cli("s3", "cp", f"s3://{bucket}/dir/up.bin", "down.bin")
    assert (tmp_path / "down.bin").read_bytes() == data
    assert "up.bin" in cli("s3", "ls", f"s3://{bucket}/dir/")
    assert "PRE dir/" in cli("s3", "ls", f"s3://{bucket}")
    assert bucket in cli("s3", "ls")
    head = json.loads(cli("s3api", "head-object", "--bucket", bucket, "--key", "dir/up.bin"))
    assert head["ContentLength"] == len(data)
    cli("s3", "rm", f"s3://{bucket}/dir/up.bin")
    assert cli("s3", "ls", f"s3://{bucket}", "--recursive") == ""
    cli("s3", "rb", f"s3://{bucket}")


def test_ready_pings_redis(proxy: ProxyProcess) -> None:
    with urllib.request.urlopen(proxy.admin_endpoint + "/ready", timeout=10) as answer:
        document = json.loads(answer.read())
    assert document["backends"]["scratch"] == "ok"
    assert document["backends"]["expiring"] == "ok"


def test_policies_metrics_and_the_access_log_see_the_store(
    start_proxy: StartProxy, redis: RedisServer
) -> None:
    proxy = start_proxy(
        f"""
        router:
          log_format: json
        backends:
          scratch: {{kind: redis, url: "{redis.url}"}}
        clients:
          - {{name: app, access_key_id: "{KEY}", secret_access_key: "{SECRET}"}}
          - name: reader
            access_key_id: "AKIAREADER"
            secret_access_key: "reader-secret-0123"
            allow: [{{buckets: ["tmp-*"], operations: [read, list]}}]
        routing:
          default_target: scratch
        """
    )
    writer, reader = proxy.client(KEY, SECRET), proxy.client("AKIAREADER", "reader-secret-0123")
    bucket = unique_bucket_name("tmp")
    writer.create_bucket(Bucket=bucket)
    writer.put_object(Bucket=bucket, Key="k", Body=b"12345")
    assert reader.get_object(Bucket=bucket, Key="k")["Body"].read() == b"12345"
    with pytest.raises(ClientError) as caught:
        reader.put_object(Bucket=bucket, Key="k", Body=b"no")
    assert caught.value.response["Error"]["Code"] == "AccessDenied"
    assert redis.command("GET", f"s3r:o:{bucket}/k") == b"$5\r\n12345\r\n"
    with urllib.request.urlopen(f"{proxy.admin_endpoint}/metrics", timeout=10) as answer:
        metrics = answer.read().decode()
    assert 's3router_backend_duration_seconds_count{backend="scratch"}' in metrics
    assert 's3router_request_bytes_total{backend="scratch"} 5.0' in metrics
    lines = [
        json.loads(line)
        for line in proxy.log_text().splitlines()
        if '"s3router_proxy.access"' in line
    ]
    put = next(e for e in lines if e.get("operation") == "PutObject" and e["status"] == 200)
    assert (put["backend"], put["bytes_in"]) == ("scratch", 5)


def test_names_are_mapped_for_the_store_and_back(
    start_proxy: StartProxy, redis: RedisServer
) -> None:
    stored = unique_bucket_name("store")
    proxy = start_proxy(
        f"""
        backends:
          scratch: {{kind: redis, url: "{redis.url}"}}
        clients:
          - {{name: app, access_key_id: "{KEY}", secret_access_key: "{SECRET}"}}
        routing:
          rules:
            - pattern: "work"
              key_pattern: "tmp/*"
              target: scratch
              mapped_bucket: "{stored}"
              mapped_prefix: "jobs/"
          default_target: scratch
        """
    )
    client = proxy.client(KEY, SECRET)
    client.create_bucket(Bucket=stored)  # by the default rule: its own name
    client.put_object(Bucket="work", Key="tmp/a/1", Body=b"one")
    assert redis.command("GET", f"s3r:o:{stored}/jobs/a/1") == b"$3\r\none\r\n"
    assert client.get_object(Bucket="work", Key="tmp/a/1")["Body"].read() == b"one"
    listed = client.list_objects_v2(Bucket="work", Prefix="tmp/", Delimiter="/")
    assert [p["Prefix"] for p in listed.get("CommonPrefixes", [])] == ["tmp/a/"]
    listed = client.list_objects_v2(Bucket="work", Prefix="tmp/a/")
    assert [o["Key"] for o in listed["Contents"]] == ["tmp/a/1"]
    with pytest.raises(ClientError) as caught:
        client.get_object(Bucket="work", Key="tmp/missing")
    assert caught.value.response["Error"]["Code"] == "NoSuchKey"


def test_boto3_over_https_keeps_its_trailer_checksum_in_the_store(
    start_proxy: StartProxy, redis: RedisServer, tmp_path: Path
) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    chain, key, ca_file = tmp_path / "chain.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.private_key_pem.write_to_path(str(key))
    cert.cert_chain_pems[0].write_to_path(str(chain))
    ca.cert_pem.write_to_path(str(ca_file))
    proxy = start_proxy(
        f"""
        router:
          tls: {{cert_file: "{chain}", key_file: "{key}"}}
        backends:
          scratch: {{kind: redis, url: "{redis.url}"}}
        clients:
          - {{name: app, access_key_id: "{KEY}", secret_access_key: "{SECRET}"}}
        routing:
          default_target: scratch
        """,
        log_level="info",
    )
    client = boto3.session.Session(
        aws_access_key_id=KEY, aws_secret_access_key=SECRET, region_name="us-east-1"
    ).client(
        "s3",
        endpoint_url=proxy.endpoint.replace("http://", "https://"),
        verify=str(ca_file),
        config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}),
    )
    bucket = unique_bucket_name("tmp")
    client.create_bucket(Bucket=bucket)
    body = os.urandom(100_000)
    put = client.put_object(Bucket=bucket, Key="k", Body=body)
    assert "payload=STREAMING-UNSIGNED-PAYLOAD-TRAILER" in proxy.log_text()
    got = client.get_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert got["Body"].read() == body  # botocore checks the CRC it was given against the bytes
    assert got["ChecksumCRC32"] == put["ChecksumCRC32"]
    assert redis.command("STRLEN", f"s3r:o:{bucket}/k") == b":100000\r\n"


def test_an_unsigned_request_is_refused_by_a_store_with_no_acls(
    start_proxy: StartProxy, redis: RedisServer
) -> None:
    """`anonymous: {forward: unsigned}` lets the store's ACLs decide; a Redis store has none,
    so an unsigned request to it must be refused, never served as if it were allowed."""
    proxy = start_proxy(
        f"""
        backends:
          scratch: {{kind: redis, url: "{redis.url}"}}
        clients:
          - {{name: app, access_key_id: "{KEY}", secret_access_key: "{SECRET}"}}
        anonymous:
          forward: unsigned
        routing:
          default_target: scratch
        """
    )
    bucket = unique_bucket_name("tmp")
    writer = proxy.client(KEY, SECRET)
    writer.create_bucket(Bucket=bucket)
    writer.put_object(Bucket=bucket, Key="secret", Body=b"kept")
    for method, target, body in (
        ("GET", f"/{bucket}/secret", None),
        ("PUT", f"/{bucket}/planted", b"unsigned"),
        ("DELETE", f"/{bucket}/secret", None),
    ):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(
                urllib.request.Request(f"{proxy.endpoint}{target}", data=body, method=method),
                timeout=10,
            )
        assert refused.value.code == 403
        assert b"<Code>AccessDenied</Code>" in refused.value.read()
    assert redis.command("EXISTS", f"s3r:o:{bucket}/planted") == b":0\r\n"
    assert writer.get_object(Bucket=bucket, Key="secret")["Body"].read() == b"kept"


def test_a_large_object_is_read_back_whole(start_proxy: StartProxy, redis: RedisServer) -> None:
    """Bodies of HTTP backends this large are spliced by the kernel; a store's are not sockets
    and must go through the copy loop."""
    proxy = start_proxy(
        f"""
        backends:
          scratch: {{kind: redis, url: "{redis.url}", max_object_size: "8MiB"}}
        clients:
          - {{name: app, access_key_id: "{KEY}", secret_access_key: "{SECRET}"}}
        routing:
          default_target: scratch
        """
    )
    client = proxy.client(KEY, SECRET)
    bucket = unique_bucket_name("tmp")
    client.create_bucket(Bucket=bucket)
    data = os.urandom(3 * 1024 * 1024)
    client.put_object(Bucket=bucket, Key="big", Body=data)
    got = client.get_object(Bucket=bucket, Key="big")["Body"].read()
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()
    ranged = client.get_object(Bucket=bucket, Key="big", Range="bytes=1048576-")["Body"].read()
    assert ranged == data[1048576:]


def test_a_browser_form_upload_lands_in_the_store(
    start_proxy: StartProxy, redis: RedisServer
) -> None:
    proxy = start_proxy(
        f"""
        backends:
          scratch: {{kind: redis, url: "{redis.url}", max_object_size: {LIMIT}}}
        clients:
          - {{name: app, access_key_id: "{KEY}", secret_access_key: "{SECRET}"}}
        routing:
          default_target: scratch
        """
    )
    client = proxy.client(KEY, SECRET)
    bucket = unique_bucket_name("tmp")
    client.create_bucket(Bucket=bucket)
    data = os.urandom(100_000)
    for key, body in (("form.bin", data), ("too-big.bin", os.urandom(LIMIT + 1))):
        form = client.generate_presigned_post(Bucket=bucket, Key=key, ExpiresIn=600)
        answer = requests.post(
            f"{proxy.endpoint}/{bucket}",
            data=form["fields"],
            files={"file": ("upload.bin", body)},
            timeout=60,
        )
        if key == "form.bin":
            assert answer.status_code == 204, answer.text
        else:
            assert (answer.status_code, "<Code>EntityTooLarge</Code>" in answer.text) == (400, True)
    got = client.get_object(Bucket=bucket, Key="form.bin")["Body"].read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    assert redis.command("EXISTS", f"s3r:o:{bucket}/too-big.bin") == b":0\r\n"
