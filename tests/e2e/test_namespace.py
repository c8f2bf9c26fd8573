"""One clean namespace across backends, through real processes and real clients.

The boto-s3-router example runs verbatim (its backends pointed at two moto servers): keys
`team2/*` of `example-bucket` live in another store under `data/team2/`, everything else in the
default store, and every client sees only its own names.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from botocore.exceptions import ClientError
from harness import (
    PLAIN_ACCESS_KEY_ID,
    PLAIN_SECRET_ACCESS_KEY,
    MotoBackend,
    ProxyProcess,
    aws_cli,
    unique_bucket_name,
)

from s3router_proxy.config.load import load_config
from s3router_proxy.routing.explain import DescribedRequest, explain

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "config" / "examples").glob("*.yaml"))


def pointed_at_moto(
    example: Path, directory: Path, moto_auth: MotoBackend, moto_plain: MotoBackend
) -> tuple[Path, dict[str, MotoBackend], tuple[str, str]]:
    """The example with its backends pointed at the moto servers; (path, backends, client)."""
    document = yaml.safe_load(example.read_text())
    stores: dict[str, MotoBackend] = {}
    sections = dict(document.get("backends") or {})
    for short in ("lakefs", "s3"):
        if short in document:
            sections[short] = document.pop(short)
    for index, name in enumerate(sorted(sections)):
        store = (moto_auth, moto_plain)[index % 2]
        stores[name] = store
        key = store.access_key_id if store is moto_auth else PLAIN_ACCESS_KEY_ID
        secret = store.secret_access_key if store is moto_auth else PLAIN_SECRET_ACCESS_KEY
        sections[name] = {
            "endpoint": store.endpoint,
            "access_key_id": key,
            "secret_access_key": secret,
        }
    document["backends"] = sections
    client = ("AKIAEXAMPLES", "examples-secret")
    document["clients"] = [
        {"name": "tester", "access_key_id": client[0], "secret_access_key": client[1]}
    ]
    path = directory / example.name
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path, stores, client


@pytest.fixture(scope="module")
def profiles_proxy(
    moto_auth: MotoBackend, moto_plain: MotoBackend, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ProxyProcess, dict[str, MotoBackend], tuple[str, str]]]:
    directory = tmp_path_factory.mktemp("profiles")
    path, stores, client = pointed_at_moto(
        REPO / "config" / "examples" / "boto-s3-router-profiles.yaml",
        directory,
        moto_auth,
        moto_plain,
    )
    for name, bucket in (("minio", "minio-bucket"), ("default", "example-bucket")):
        with contextlib.suppress(ClientError):
            stores[name].client().create_bucket(Bucket=bucket)
    with ProxyProcess(path, directory, log_level="info") as process:
        yield process, stores, client


def test_team2_keys_are_stored_under_the_mapped_prefix(profiles_proxy) -> None:
    proxy, stores, (key, secret) = profiles_proxy
    client = proxy.client(key, secret)
    minio, default = stores["minio"], stores["default"]
    body = os.urandom(1000)
    client.put_object(Bucket="example-bucket", Key="team2/obj2", Body=body)
    client.put_object(Bucket="example-bucket", Key="team1/obj1", Body=b"team1")
    client.put_object(Bucket="example-bucket", Key="top.txt", Body=b"top")
    assert (
        minio.client().get_object(Bucket="minio-bucket", Key="data/team2/obj2")["Body"].read()
        == body
    )
    assert (
        default.client().get_object(Bucket="example-bucket", Key="team1/obj1")["Body"].read()
        == b"team1"
    )
    assert client.get_object(Bucket="example-bucket", Key="team2/obj2")["Body"].read() == body
    head = client.head_object(Bucket="example-bucket", Key="team2/obj2")
    assert head["ContentLength"] == len(body)

    # A stray object in the default store under team2/ is not the client's: never listed.
    default.client().put_object(Bucket="example-bucket", Key="team2/stray", Body=b"x")
    listed = client.list_objects_v2(Bucket="example-bucket")
    keys = [o["Key"] for o in listed["Contents"]]
    assert "team2/stray" not in keys
    assert {"team2/obj2", "team1/obj1", "top.txt"} <= set(keys)
    assert keys == sorted(keys)
    top = client.list_objects_v2(Bucket="example-bucket", Delimiter="/")
    prefixes = [p["Prefix"] for p in top.get("CommonPrefixes", [])]
    assert "team1/" in prefixes and "team2/" in prefixes
    team2 = client.list_objects_v2(Bucket="example-bucket", Prefix="team2/")
    assert [o["Key"] for o in team2["Contents"]] == ["team2/obj2"]
    v1 = client.list_objects(Bucket="example-bucket", Prefix="team2/")
    assert [o["Key"] for o in v1["Contents"]] == ["team2/obj2"]

    # Pages of one key each walk the merged listing exactly once.
    paginator = client.get_paginator("list_objects_v2")
    paged = [
        o["Key"]
        for page in paginator.paginate(Bucket="example-bucket", PaginationConfig={"PageSize": 1})
        for o in page.get("Contents", [])
    ]
    assert paged == keys

    # Errors name the client's key, never the backend's.
    with pytest.raises(ClientError) as caught:
        client.get_object(Bucket="example-bucket", Key="team2/missing")
    assert caught.value.response["Error"]["Code"] == "NoSuchKey"
    assert "data/team2" not in str(caught.value.response)


def test_list_buckets_and_bucket_operations_on_the_split_bucket(profiles_proxy) -> None:
    proxy, _, (key, secret) = profiles_proxy
    client = proxy.client(key, secret)
    names = [b["Name"] for b in client.list_buckets()["Buckets"]]
    assert "example-bucket" in names
    assert "minio-bucket" not in names  # the backend's name for a renamed part stays hidden
    assert names == sorted(set(names))
    client.head_bucket(Bucket="example-bucket")  # both parts exist


def test_tampered_continuation_token_is_refused(profiles_proxy) -> None:
    proxy, _, (key, secret) = profiles_proxy
    client = proxy.client(key, secret)
    for name in ("team2/a", "team2/b", "z"):
        client.put_object(Bucket="example-bucket", Key=name, Body=b".")
    page = client.list_objects_v2(Bucket="example-bucket", MaxKeys=1)
    token = page["NextContinuationToken"]
    assert "data/team2" not in token
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    with pytest.raises(ClientError) as caught:
        client.list_objects_v2(Bucket="example-bucket", ContinuationToken=forged)
    assert caught.value.response["Error"]["Code"] == "InvalidArgument"


def test_delete_objects_across_both_stores(profiles_proxy) -> None:
    proxy, stores, (key, secret) = profiles_proxy
    client = proxy.client(key, secret)
    client.put_object(Bucket="example-bucket", Key="team2/del", Body=b"1")
    client.put_object(Bucket="example-bucket", Key="other/del", Body=b"2")
    result = client.delete_objects(
        Bucket="example-bucket",
        Delete={"Objects": [{"Key": "team2/del"}, {"Key": "other/del"}]},
    )
    assert sorted(d["Key"] for d in result["Deleted"]) == ["other/del", "team2/del"]
    with pytest.raises(ClientError):
        stores["minio"].client().head_object(Bucket="minio-bucket", Key="data/team2/del")
    with pytest.raises(ClientError):
        stores["default"].client().head_object(Bucket="example-bucket", Key="other/del")


def test_multipart_and_copy_in_the_mapped_part(profiles_proxy) -> None:
    proxy, stores, (key, secret) = profiles_proxy
    client = proxy.client(key, secret)
    upload = client.create_multipart_upload(Bucket="example-bucket", Key="team2/multi")
    assert upload["Key"] == "team2/multi"
    assert upload["Bucket"] == "example-bucket"
    part = os.urandom(5 * 1024 * 1024)
    etag = client.upload_part(
        Bucket="example-bucket",
        Key="team2/multi",
        UploadId=upload["UploadId"],
        PartNumber=1,
        Body=part,
    )["ETag"]
    done = client.complete_multipart_upload(
        Bucket="example-bucket",
        Key="team2/multi",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]},
    )
    assert done["Key"] == "team2/multi"
    stored = stores["minio"].client().get_object(Bucket="minio-bucket", Key="data/team2/multi")
    assert stored["Body"].read() == part
    client.copy_object(
        Bucket="example-bucket",
        Key="team2/copy",
        CopySource={"Bucket": "example-bucket", "Key": "team2/multi"},
    )
    copied = stores["minio"].client().get_object(Bucket="minio-bucket", Key="data/team2/copy")
    assert copied["Body"].read() == part
    # From the minio part into the default store: streamed by the proxy, no server-side copy.
    result = client.copy_object(
        Bucket="example-bucket",
        Key="elsewhere",
        CopySource={"Bucket": "example-bucket", "Key": "team2/multi"},
        MetadataDirective="REPLACE",
        ContentType="application/x-test",
        Metadata={"copied": "yes"},
    )
    assert result["CopyObjectResult"]["ETag"]
    stored = stores["default"].client().get_object(Bucket="example-bucket", Key="elsewhere")
    assert stored["Body"].read() == part
    assert stored["ContentType"] == "application/x-test"
    assert stored["Metadata"] == {"copied": "yes"}


def test_aws_cli_ls_and_sync_between_mapped_and_unmapped(profiles_proxy, tmp_path: Path) -> None:
    proxy, stores, (key, secret) = profiles_proxy
    client = proxy.client(key, secret)
    client.put_object(Bucket="example-bucket", Key="team2/sync/a.txt", Body=b"a")
    client.put_object(Bucket="example-bucket", Key="team2/sync/b/c.txt", Body=b"c")
    target = unique_bucket_name("unmapped")
    stores["default"].client().create_bucket(Bucket=target)

    def cli(*args: str) -> str:
        result = aws_cli(proxy.endpoint, key, secret, *args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        return result.stdout

    listing = cli("s3", "ls", "--recursive", "s3://example-bucket/team2/sync/")
    assert "team2/sync/a.txt" in listing and "team2/sync/b/c.txt" in listing
    assert "data/team2" not in listing
    cli("s3", "sync", "s3://example-bucket/team2/sync/", f"s3://{target}/copied/")
    direct = stores["default"].client().list_objects_v2(Bucket=target)
    assert sorted(o["Key"] for o in direct["Contents"]) == ["copied/a.txt", "copied/b/c.txt"]


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.stem for e in EXAMPLES])
def test_every_example_config_routes_as_explained(
    example: Path, moto_auth: MotoBackend, moto_plain: MotoBackend, tmp_path: Path
) -> None:
    path, stores, (key, secret) = pointed_at_moto(example, tmp_path, moto_auth, moto_plain)
    config = load_config(path)
    with ProxyProcess(path, tmp_path, log_level="info") as proxy:
        client = proxy.client(key, secret)
        tried = 0
        for rule in config.rules:
            bucket = rule.pattern.replace("*", "x").replace("?", "q")
            object_key = (rule.key_pattern or "obj").replace("*", "k").replace("?", "q")
            content_type, size = "application/octet-stream", 6
            conditions = rule.conditions
            if conditions is not None:
                if conditions.content_types:
                    content_type = conditions.content_types[0].replace("*", "png")
                if conditions.min_size is not None and conditions.min_size <= 8 * 1024 * 1024:
                    size = conditions.min_size
            body = b"r" * size
            headers = {"Content-Type": content_type, "Content-Length": str(size)}
            # Where the proxy's own explanation says this PUT goes (conditions included).
            put = explain(
                config, DescribedRequest("PUT", bucket, object_key, headers, operation="PutObject")
            )
            if put.route is None:
                continue
            store = stores[put.route.backend]
            with contextlib.suppress(ClientError):
                store.client().create_bucket(Bucket=put.route.bucket)
            client.put_object(Bucket=bucket, Key=object_key, Body=body, ContentType=content_type)
            stored = store.client().get_object(Bucket=put.route.bucket, Key=put.route.key)
            assert stored["Body"].read() == body, (rule, put.route)
            tried += 1
        assert tried >= 1
