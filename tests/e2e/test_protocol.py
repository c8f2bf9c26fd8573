"""Protocol breadth through real clients: SigV2, multipart pinning across reloads, copies,
conditional requests, bucket sub-resources and keys that break other proxies."""

from __future__ import annotations

import hashlib
import os
import signal
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3
from botocore.exceptions import ClientError
from harness import (
    PLAIN_ACCESS_KEY_ID,
    PLAIN_SECRET_ACCESS_KEY,
    MotoBackend,
    ProxyProcess,
    boto3_client,
    unique_bucket_name,
    write_config,
)

KEY, SECRET = "AKIAPROTOCOL", "protocol-secret"


def config_text(moto_auth: MotoBackend, moto_plain: MotoBackend, pinned_target: str) -> str:
    return f"""
        backends:
          lake:
            endpoint: "{moto_auth.endpoint}"
            access_key_id: "{moto_auth.access_key_id}"
            secret_access_key: "{moto_auth.secret_access_key}"
          store:
            endpoint: "{moto_plain.endpoint}"
            access_key_id: "{PLAIN_ACCESS_KEY_ID}"
            secret_access_key: "{PLAIN_SECRET_ACCESS_KEY}"
            add_content_md5: true
        clients:
          - {{name: protocol, access_key_id: "{KEY}", secret_access_key: "{SECRET}"}}
        routing:
          rules:
            - {{pattern: "lakefs-*", target: lake}}
            - {{pattern: "moving-*", target: {pinned_target}}}
          default_target: store
        """


@pytest.fixture(scope="module")
def proxy_and_config(
    moto_auth: MotoBackend, moto_plain: MotoBackend, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ProxyProcess, Path]]:
    directory = tmp_path_factory.mktemp("protocol-proxy")
    config = write_config(directory, config_text(moto_auth, moto_plain, "lake"))
    with ProxyProcess(config, directory, log_level="info") as process:
        yield process, config


@pytest.fixture(scope="module")
def proxy(proxy_and_config: tuple[ProxyProcess, Path]) -> ProxyProcess:
    return proxy_and_config[0]


@pytest.fixture(scope="module")
def client(proxy: ProxyProcess):
    return proxy.client(KEY, SECRET)


def reload_with(proxy: ProxyProcess, path: Path, text: str) -> None:
    marker = proxy.log_text().count("config reloaded")
    write_config(path.parent, text, path.name)
    os.kill(proxy.pid, signal.SIGHUP)
    deadline = time.monotonic() + 10
    while proxy.log_text().count("config reloaded") == marker:
        assert time.monotonic() < deadline, proxy.log_tail()
        time.sleep(0.05)


def test_sigv2_header_and_presigned(proxy: ProxyProcess, moto_plain: MotoBackend) -> None:
    v2 = boto3_client(proxy.endpoint, KEY, SECRET, signature_version="s3")
    bucket = unique_bucket_name("plain")
    v2.create_bucket(Bucket=bucket)
    body = os.urandom(10_000)
    v2.put_object(Bucket=bucket, Key="v2 key+plus", Body=body)
    stored = moto_plain.client().get_object(Bucket=bucket, Key="v2 key+plus")["Body"].read()
    assert stored == body
    assert v2.get_object(Bucket=bucket, Key="v2 key+plus")["Body"].read() == body
    # boto3's default presigner for us-east-1 is still SigV2.
    url = proxy.client(KEY, SECRET).generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "v2 key+plus"}, ExpiresIn=60
    )
    assert "AWSAccessKeyId=" in url
    response = urllib3.PoolManager(retries=False).request("GET", url)
    assert response.status == 200
    assert response.data == body
    bad = boto3_client(proxy.endpoint, KEY, "wrong", signature_version="s3")
    with pytest.raises(ClientError) as caught:
        bad.get_object(Bucket=bucket, Key="v2 key+plus")
    assert caught.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


def test_multipart_upload_stays_on_its_backend_across_a_reload(
    proxy_and_config: tuple[ProxyProcess, Path],
    moto_auth: MotoBackend,
    moto_plain: MotoBackend,
) -> None:
    proxy, path = proxy_and_config
    client = proxy.client(KEY, SECRET)
    bucket = unique_bucket_name("moving")
    moto_auth.client().create_bucket(Bucket=bucket)
    moto_plain.client().create_bucket(Bucket=bucket)
    upload = client.create_multipart_upload(Bucket=bucket, Key="big")
    upload_id = upload["UploadId"]
    inner = moto_auth.client().list_multipart_uploads(Bucket=bucket)["Uploads"][0]["UploadId"]
    assert upload_id != inner  # the client sees a sealed id, not the backend's
    part1 = os.urandom(5 * 1024 * 1024)
    etag1 = client.upload_part(
        Bucket=bucket, Key="big", UploadId=upload_id, PartNumber=1, Body=part1
    )["ETag"]
    try:
        # The rule now sends moving-* to the other backend; the upload must not follow it.
        reload_with(proxy, path, config_text(moto_auth, moto_plain, "store"))
        part2 = os.urandom(1024)
        etag2 = client.upload_part(
            Bucket=bucket, Key="big", UploadId=upload_id, PartNumber=2, Body=part2
        )["ETag"]
        parts = client.list_parts(Bucket=bucket, Key="big", UploadId=upload_id)
        assert [p["PartNumber"] for p in parts["Parts"]] == [1, 2]
        assert parts["UploadId"] == upload_id
        listed = client.list_multipart_uploads(Bucket=bucket)
        assert listed.get("Uploads", []) == []  # the bucket now lists from `store`
        client.complete_multipart_upload(
            Bucket=bucket,
            Key="big",
            UploadId=upload_id,
            MultipartUpload={
                "Parts": [{"PartNumber": 1, "ETag": etag1}, {"PartNumber": 2, "ETag": etag2}]
            },
        )
        stored = moto_auth.client().get_object(Bucket=bucket, Key="big")["Body"].read()
        assert hashlib.sha256(stored).digest() == hashlib.sha256(part1 + part2).digest()
        assert "Contents" not in moto_plain.client().list_objects_v2(Bucket=bucket)
    finally:
        reload_with(proxy, path, config_text(moto_auth, moto_plain, "lake"))


def test_forged_or_reused_upload_ids_are_no_such_upload(client, moto_auth: MotoBackend) -> None:
    bucket = unique_bucket_name("lakefs")
    client.create_bucket(Bucket=bucket)
    upload_id = client.create_multipart_upload(Bucket=bucket, Key="a")["UploadId"]
    inner = moto_auth.client().list_multipart_uploads(Bucket=bucket)["Uploads"][0]["UploadId"]
    middle = len(upload_id) // 2
    flipped = (
        upload_id[:middle] + ("A" if upload_id[middle] != "A" else "B") + upload_id[middle + 1 :]
    )
    forged = [
        inner,  # the backend's own id
        flipped,  # one character changed
        "x" + upload_id,
    ]
    assert moto_auth.endpoint.split(":")[-1] not in upload_id
    for candidate in forged:
        with pytest.raises(ClientError) as caught:
            client.upload_part(Bucket=bucket, Key="a", UploadId=candidate, PartNumber=1, Body=b"x")
        assert caught.value.response["Error"]["Code"] == "NoSuchUpload"
    with pytest.raises(ClientError) as caught:  # a real id, for another key
        client.upload_part(Bucket=bucket, Key="b", UploadId=upload_id, PartNumber=1, Body=b"x")
    assert caught.value.response["Error"]["Code"] == "NoSuchUpload"
    uploads = client.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in uploads] == [("a", upload_id)]
    client.abort_multipart_upload(Bucket=bucket, Key="a", UploadId=uploads[0]["UploadId"])
    assert "Uploads" not in moto_auth.client().list_multipart_uploads(Bucket=bucket)


def test_copy_object_within_a_backend(client, moto_auth: MotoBackend) -> None:
    bucket = unique_bucket_name("lakefs")
    other = unique_bucket_name("lakefs")
    client.create_bucket(Bucket=bucket)
    client.create_bucket(Bucket=other)
    body = os.urandom(50_000)
    client.put_object(Bucket=bucket, Key="src dir/ü+x", Body=body, Metadata={"a": "1"})
    client.copy_object(
        Bucket=other, Key="copy", CopySource={"Bucket": bucket, "Key": "src dir/ü+x"}
    )
    assert moto_auth.client().get_object(Bucket=other, Key="copy")["Body"].read() == body
    head = client.head_object(Bucket=other, Key="copy")
    assert head["Metadata"] == {"a": "1"}
    # Conditional copy headers reach the backend: the answer is the backend's own.
    outcomes = []
    for target in (client, moto_auth.client()):
        try:
            target.copy_object(
                Bucket=bucket,
                Key="x",
                CopySource={"Bucket": bucket, "Key": "src dir/ü+x"},
                CopySourceIfMatch='"0000"',
            )
            outcomes.append("copied")
        except ClientError as exc:
            outcomes.append(exc.response["Error"]["Code"])
    assert outcomes[0] == outcomes[1]


def test_conditional_requests(client) -> None:
    bucket = unique_bucket_name("plain")
    client.create_bucket(Bucket=bucket)
    etag = client.put_object(Bucket=bucket, Key="c", Body=b"v1")["ETag"]
    with pytest.raises(ClientError) as caught:
        client.get_object(Bucket=bucket, Key="c", IfNoneMatch=etag)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    with pytest.raises(ClientError) as caught:
        client.get_object(Bucket=bucket, Key="c", IfMatch='"nope"')
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert client.get_object(Bucket=bucket, Key="c", IfMatch=etag)["Body"].read() == b"v1"


def test_bucket_and_object_sub_resources(client, moto_plain: MotoBackend) -> None:
    bucket = unique_bucket_name("plain")
    client.create_bucket(Bucket=bucket)
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert client.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    client.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "team", "Value": "a"}]})
    assert client.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "team", "Value": "a"}]
    v1 = client.put_object(Bucket=bucket, Key="k", Body=b"one")["VersionId"]
    client.put_object(Bucket=bucket, Key="k", Body=b"two")
    versions = client.list_object_versions(Bucket=bucket)["Versions"]
    assert len(versions) == 2
    assert client.get_object(Bucket=bucket, Key="k", VersionId=v1)["Body"].read() == b"one"
    client.put_object_tagging(
        Bucket=bucket, Key="k", Tagging={"TagSet": [{"Key": "x", "Value": "y"}]}
    )
    assert client.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == [
        {"Key": "x", "Value": "y"}
    ]
    assert client.get_bucket_location(Bucket=bucket)["LocationConstraint"] in (None, "us-east-1")
    client.put_bucket_policy(
        Bucket=bucket,
        Policy='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*",'
        f'"Action":"s3:GetObject","Resource":"arn:aws:s3:::{bucket}/*"}}]}}',
    )
    assert bucket in client.get_bucket_policy(Bucket=bucket)["Policy"]
    acl = client.get_object_acl(Bucket=bucket, Key="k")
    assert acl["Grants"]
    attributes = client.get_object_attributes(
        Bucket=bucket, Key="k", ObjectAttributes=["ObjectSize", "ETag"]
    )
    assert attributes["ObjectSize"] == 3
    deleted = client.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "k"}, {"Key": "absent"}]}
    )
    assert {d["Key"] for d in deleted["Deleted"]} == {"k", "absent"}


@pytest.mark.parametrize(
    "key",
    [
        "percent%2Fslash",
        "colon:semi;comma,",
        "hash#and?query",
        "./lead",
        "../up",
        "trailing/",
        "a" * 1024,
        unicodedata.normalize("NFC", "café"),
    ],
)
def test_awkward_keys_list_back_exactly(client, moto_plain: MotoBackend, key: str) -> None:
    bucket = unique_bucket_name("plain")
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key=key, Body=b"x")
    # boto3 asks for encoding-type=url itself and decodes; an explicit EncodingType is left
    # encoded for the caller. Either way the proxy's answer is the backend's.
    assert [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]] == [key]
    for api in ("list_objects", "list_objects_v2", "list_object_versions"):
        through = getattr(client, api)(Bucket=bucket, EncodingType="url")
        direct = getattr(moto_plain.client(), api)(Bucket=bucket, EncodingType="url")
        field = "Versions" if api == "list_object_versions" else "Contents"
        assert [o["Key"] for o in through[field]] == [o["Key"] for o in direct[field]]
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == b"x"


def test_nfc_and_nfd_are_different_keys(client) -> None:
    bucket = unique_bucket_name("plain")
    client.create_bucket(Bucket=bucket)
    nfc, nfd = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
    assert nfc != nfd
    client.put_object(Bucket=bucket, Key=nfc, Body=b"composed")
    client.put_object(Bucket=bucket, Key=nfd, Body=b"decomposed")
    assert client.get_object(Bucket=bucket, Key=nfc)["Body"].read() == b"composed"
    assert client.get_object(Bucket=bucket, Key=nfd)["Body"].read() == b"decomposed"
    assert sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]) == sorted(
        [nfc, nfd]
    )


def test_rule_body_size_cap(start_proxy, moto_plain: MotoBackend) -> None:
    proxy = start_proxy(
        f"""
        backends:
          store:
            endpoint: "{moto_plain.endpoint}"
            access_key_id: "{PLAIN_ACCESS_KEY_ID}"
            secret_access_key: "{PLAIN_SECRET_ACCESS_KEY}"
        clients:
          - {{name: protocol, access_key_id: "{KEY}", secret_access_key: "{SECRET}"}}
        routing:
          rules:
            - {{pattern: "small-*", target: store, max_body_size: 1KiB}}
          default_target: store
        """
    )
    client = proxy.client(KEY, SECRET)
    bucket = unique_bucket_name("small")
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="ok", Body=b"x" * 1024)
    with pytest.raises(ClientError) as caught:
        client.put_object(Bucket=bucket, Key="big", Body=b"x" * 1025)
    assert caught.value.response["Error"]["Code"] == "EntityTooLarge"
    assert [o["Key"] for o in moto_plain.client().list_objects_v2(Bucket=bucket)["Contents"]] == [
        "ok"
    ]


def test_disabled_sigv2_is_refused_clearly_for_requests_and_forms(
    start_proxy, moto_plain: MotoBackend
) -> None:
    proxy = start_proxy(
        f"""
        router:
          sigv2: false
        backends:
          store:
            endpoint: "{moto_plain.endpoint}"
            access_key_id: "{PLAIN_ACCESS_KEY_ID}"
            secret_access_key: "{PLAIN_SECRET_ACCESS_KEY}"
        clients:
          - {{name: protocol, access_key_id: "{KEY}", secret_access_key: "{SECRET}"}}
        routing:
          default_target: store
        """
    )
    v2 = boto3_client(proxy.endpoint, KEY, SECRET, signature_version="s3")
    with pytest.raises(ClientError) as caught:
        v2.list_buckets()
    assert caught.value.response["Error"]["Code"] == "AccessDenied"
    assert "Version 2" in caught.value.response["Error"]["Message"]
    # A browser form signed with SigV2 (botocore signs presigned POSTs so by default).
    fields = v2.generate_presigned_post(Bucket="some-bucket", Key="k")["fields"]
    form = urllib3.PoolManager(retries=False).request(
        "POST",
        f"{proxy.endpoint}/some-bucket",
        fields={**fields, "file": ("f.txt", b"data")},
    )
    assert form.status == 403
    assert b"<Code>AccessDenied</Code>" in form.data
    assert b"Version 2" in form.data


@pytest.mark.parametrize(
    ("put", "get"),
    [
        (
            lambda c, b: c.put_bucket_cors(
                Bucket=b,
                CORSConfiguration={
                    "CORSRules": [{"AllowedMethods": ["GET"], "AllowedOrigins": ["*"]}]
                },
            ),
            lambda c, b: c.get_bucket_cors(Bucket=b)["CORSRules"][0]["AllowedMethods"],
        ),
        (
            lambda c, b: c.put_bucket_lifecycle_configuration(
                Bucket=b,
                LifecycleConfiguration={
                    "Rules": [
                        {
                            "ID": "r",
                            "Status": "Enabled",
                            "Filter": {"Prefix": "tmp/"},
                            "Expiration": {"Days": 1},
                        }
                    ]
                },
            ),
            lambda c, b: c.get_bucket_lifecycle_configuration(Bucket=b)["Rules"][0]["ID"],
        ),
        (
            lambda c, b: c.put_bucket_encryption(
                Bucket=b,
                ServerSideEncryptionConfiguration={
                    "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
                },
            ),
            lambda c, b: c.get_bucket_encryption(Bucket=b)["ServerSideEncryptionConfiguration"][
                "Rules"
            ][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"],
        ),
        (
            lambda c, b: c.put_public_access_block(
                Bucket=b,
                PublicAccessBlockConfiguration={"BlockPublicAcls": True},
            ),
            lambda c, b: c.get_public_access_block(Bucket=b)["PublicAccessBlockConfiguration"][
                "BlockPublicAcls"
            ],
        ),
        (
            lambda c, b: c.put_bucket_ownership_controls(
                Bucket=b,
                OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
            ),
            lambda c, b: c.get_bucket_ownership_controls(Bucket=b)["OwnershipControls"]["Rules"][0][
                "ObjectOwnership"
            ],
        ),
        (
            lambda c, b: c.put_bucket_website(
                Bucket=b,
                WebsiteConfiguration={"IndexDocument": {"Suffix": "index.html"}},
            ),
            lambda c, b: c.get_bucket_website(Bucket=b)["IndexDocument"]["Suffix"],
        ),
    ],
    ids=["cors", "lifecycle", "encryption", "public-access-block", "ownership", "website"],
)
def test_bucket_configuration_round_trips_like_the_backend(
    client, moto_plain: MotoBackend, put, get
) -> None:
    bucket = unique_bucket_name("plain")
    client.create_bucket(Bucket=bucket)
    put(client, bucket)
    assert get(client, bucket) == get(moto_plain.client(), bucket)
