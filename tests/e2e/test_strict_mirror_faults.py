"""A strict mirror that is down, or that refuses after the body, never costs the previous object.

Every overwrite below fails; the stores are then read directly (boto3 against moto, not through
the proxy) and the previous object must be there, byte for byte: the proxy holds every
backend's complete request back until every backend is connected, and a write one backend kept
is taken back by its version id or left and journaled, never deleted by key."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError
from harness import (
    REGION,
    MotoBackend,
    ProxyProcess,
    RawBackend,
    StartProxy,
    unique_bucket_name,
)

KEY, SECRET = "AKIASTRICT", "strict-secret"
KiB, MiB = 1024, 1024 * 1024
SIZES = [0, 1, 4 * KiB, 64 * KiB, 1 * MiB]
REFUSED = b"<Error><Code>InternalError</Code><Message>refused</Message></Error>"
REFUSAL = (
    b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/xml\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(REFUSED), REFUSED)
)


def config_text(
    main: str, main_keys: tuple[str, str], copy: str, copy_keys: tuple[str, str], journal: Path
) -> str:
    return f"""
        router:
          mirror_journal: "{journal}"
        backends:
          main: {{endpoint: "{main}", access_key_id: "{main_keys[0]}",
                  secret_access_key: "{main_keys[1]}", connect_timeout: 2}}
          copy: {{endpoint: "{copy}", access_key_id: "{copy_keys[0]}",
                  secret_access_key: "{copy_keys[1]}", connect_timeout: 2}}
        clients:
          - {{name: app, access_key_id: "{KEY}", secret_access_key: "{SECRET}"}}
        routing:
          rules:
            - {{pattern: "*", target: main, mirror: [copy]}}
          default_target: main
        """


def keys_of(store: MotoBackend) -> tuple[str, str]:
    return store.access_key_id, store.secret_access_key


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stored_sha(store: MotoBackend, bucket: str, key: str) -> str:
    return sha(store.client().get_object(Bucket=bucket, Key=key)["Body"].read())


def writes_after(store: MotoBackend, seen: int, bucket: str) -> list[str]:
    """The object writes and deletes `store` served after its first `seen` log entries."""
    return [
        f"{e.method} {e.target}"
        for e in store.access_log()[seen:]
        if e.method in ("PUT", "POST", "DELETE") and e.path.startswith(f"/{bucket}/")
    ]


def default_retry_client(proxy: ProxyProcess) -> BaseClient:
    """boto3 as an application builds it: its own retry defaults, not the harness's single try."""
    session = boto3.session.Session(
        aws_access_key_id=KEY, aws_secret_access_key=SECRET, region_name=REGION
    )
    client: BaseClient = session.client(
        "s3", endpoint_url=proxy.endpoint, config=Config(s3={"addressing_style": "path"})
    )
    return client


@pytest.fixture
def doomed_mirror(tmp_path: Path) -> Iterator[MotoBackend]:
    with MotoBackend(tmp_path, name="doomed-mirror") as backend:
        yield backend


def test_a_strict_overwrite_with_the_mirror_down_keeps_the_previous_object(
    start_proxy: StartProxy, moto_auth: MotoBackend, doomed_mirror: MotoBackend, tmp_path: Path
) -> None:
    bucket = unique_bucket_name("strict")
    for store in (moto_auth, doomed_mirror):
        store.client().create_bucket(Bucket=bucket)
    proxy = start_proxy(
        config_text(
            moto_auth.endpoint,
            keys_of(moto_auth),
            doomed_mirror.endpoint,
            keys_of(doomed_mirror),
            tmp_path / "journal.jsonl",
        )
    )
    client = proxy.client(KEY, SECRET)
    previous = {f"k-{size}": os.urandom(size + 15) for size in SIZES}
    previous["mp"] = os.urandom(3 * KiB)
    for key, data in previous.items():
        client.put_object(Bucket=bucket, Key=key, Body=data)
    # A multipart overwrite whose parts reached both stores; only its completion is left.
    upload = client.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    part = client.upload_part(
        Bucket=bucket, Key="mp", UploadId=upload, PartNumber=1, Body=os.urandom(2 * KiB)
    )
    for key, data in previous.items():
        assert stored_sha(doomed_mirror, bucket, key) == sha(data)
    seen = len(moto_auth.access_log())

    doomed_mirror.stop()
    for size in SIZES:
        with pytest.raises(ClientError) as failed:
            client.put_object(Bucket=bucket, Key=f"k-{size}", Body=os.urandom(size))
        error = failed.value.response["Error"]
        assert error["Code"] == "ServiceUnavailable", size
        assert "Mirror backend 'copy'" in error["Message"]
        assert "nothing was written" in error["Message"]
    with pytest.raises(ClientError) as failed:
        client.complete_multipart_upload(
            Bucket=bucket,
            Key="mp",
            UploadId=upload,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
        )
    assert failed.value.response["Error"]["Code"] == "ServiceUnavailable"

    for key, data in previous.items():
        assert stored_sha(moto_auth, bucket, key) == sha(data), key
    # The target never saw a complete write, let alone a delete.
    assert writes_after(moto_auth, seen, bucket) == []
    assert not (tmp_path / "journal.jsonl").exists()


def test_a_strict_copy_with_the_mirror_down_keeps_the_previous_object(
    start_proxy: StartProxy,
    moto_auth: MotoBackend,
    moto_plain: MotoBackend,
    doomed_mirror: MotoBackend,
    tmp_path: Path,
) -> None:
    """A copy has no body to hold back: the target copies first, so the mirrors must be known
    to answer before it does, for a copy within the target and one from another store."""
    bucket, elsewhere = unique_bucket_name("strict"), unique_bucket_name("other")
    for store in (moto_auth, doomed_mirror):
        store.client().create_bucket(Bucket=bucket)
    moto_plain.client().create_bucket(Bucket=elsewhere)
    text = (
        config_text(
            moto_auth.endpoint,
            keys_of(moto_auth),
            doomed_mirror.endpoint,
            keys_of(doomed_mirror),
            tmp_path / "journal.jsonl",
        )
        .replace(
            "          rules:\n",
            f'          rules:\n            - {{pattern: "{elsewhere}", target: other}}\n',
        )
        .replace(
            "        clients:\n",
            f'          other: {{endpoint: "{moto_plain.endpoint}", access_key_id: "testing",'
            ' secret_access_key: "testing"}\n        clients:\n',
        )
    )
    proxy = start_proxy(text)
    client = proxy.client(KEY, SECRET)
    previous = {"within": os.urandom(4 * KiB), "across": os.urandom(4 * KiB)}
    for key, data in previous.items():
        client.put_object(Bucket=bucket, Key=key, Body=data)
    client.put_object(Bucket=bucket, Key="source", Body=b"copied over a previous object")
    moto_plain.client().put_object(Bucket=elsewhere, Key="source", Body=b"from another store")
    seen = len(moto_auth.access_log())

    doomed_mirror.stop()
    for key, source in (("within", bucket), ("across", elsewhere)):
        with pytest.raises(ClientError) as failed:
            client.copy_object(
                Bucket=bucket, Key=key, CopySource={"Bucket": source, "Key": "source"}
            )
        error = failed.value.response["Error"]
        assert error["Code"] == "ServiceUnavailable", key
        assert "Mirror backend 'copy'" in error["Message"]
        assert "nothing was written" in error["Message"]
    for key, data in previous.items():
        assert stored_sha(moto_auth, bucket, key) == sha(data), key
    assert writes_after(moto_auth, seen, bucket) == []


def test_boto3_retries_against_a_down_mirror_keep_the_previous_object(
    start_proxy: StartProxy, moto_auth: MotoBackend, doomed_mirror: MotoBackend, tmp_path: Path
) -> None:
    bucket = unique_bucket_name("strict")
    for store in (moto_auth, doomed_mirror):
        store.client().create_bucket(Bucket=bucket)
    proxy = start_proxy(
        config_text(
            moto_auth.endpoint,
            keys_of(moto_auth),
            doomed_mirror.endpoint,
            keys_of(doomed_mirror),
            tmp_path / "journal.jsonl",
        )
    )
    client = default_retry_client(proxy)
    previous = {f"k-{size}": os.urandom(size + 15) for size in (0, 15, 64 * KiB)}
    for key, data in previous.items():
        client.put_object(Bucket=bucket, Key=key, Body=data)
    seen = len(moto_auth.access_log())

    doomed_mirror.stop()
    for key, data in previous.items():
        with pytest.raises(ClientError) as failed:
            client.put_object(Bucket=bucket, Key=key, Body=os.urandom(len(data) - 15))
        assert failed.value.response["Error"]["Code"] == "ServiceUnavailable"
        assert failed.value.response["ResponseMetadata"]["RetryAttempts"] >= 2  # retried
        assert stored_sha(moto_auth, bucket, key) == sha(data), key
    assert writes_after(moto_auth, seen, bucket) == []


@pytest.fixture
def raw_backend(tmp_path: Path) -> Iterator[RawBackend]:
    with RawBackend(tmp_path, name="refusing") as backend:
        yield backend


@pytest.mark.parametrize("versioned", [False, True], ids=["unversioned", "versioned"])
@pytest.mark.parametrize("refuser", ["mirror", "target"])
def test_a_refusal_after_the_body_never_deletes_by_key(
    start_proxy: StartProxy,
    moto_auth: MotoBackend,
    raw_backend: RawBackend,
    tmp_path: Path,
    refuser: str,
    versioned: bool,
) -> None:
    """Both backends got the whole body; one answered 500. The store that took the write has
    its new version deleted when it named one (the previous is current again), or keeps the
    write, with the mirror journaled for repair; the previous object is never deleted."""
    bucket = unique_bucket_name("after")
    store = moto_auth.client()
    store.create_bucket(Bucket=bucket)
    if versioned:
        store.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    old, new = os.urandom(5 * KiB), os.urandom(300 * KiB)
    store.put_object(Bucket=bucket, Key="k", Body=old)
    raw_backend.script({"*": [{"send": REFUSAL}]})
    journal = tmp_path / "journal.jsonl"
    moto = (moto_auth.endpoint, keys_of(moto_auth))
    raw = (raw_backend.endpoint, ("raw", "raw-secret"))
    main, copy = (moto, raw) if refuser == "mirror" else (raw, moto)
    proxy = start_proxy(config_text(main[0], main[1], copy[0], copy[1], journal))
    seen = len(moto_auth.access_log())

    with pytest.raises(ClientError) as failed:
        proxy.client(KEY, SECRET).put_object(Bucket=bucket, Key="k", Body=new)
    error = failed.value.response["Error"]
    assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] >= 500
    # The refusing backend really had the whole body.
    (refused,) = [r for r in raw_backend.requests() if r.get("method") == "PUT"]
    assert refused["body_sha256"] == sha(new)

    versions = store.list_object_versions(Bucket=bucket, Prefix="k").get("Versions", [])
    writes = writes_after(moto_auth, seen, bucket)
    if versioned:
        # Exactly the version the client wrote is gone: the previous one is current again.
        assert stored_sha(moto_auth, bucket, "k") == sha(old)
        assert len(versions) == 1
        assert [w.split("?")[0] for w in writes] == [f"PUT /{bucket}/k", f"DELETE /{bucket}/k"]
        assert "versionId=" in writes[1]
        assert not journal.exists()
    else:
        # The store already replaced the previous object: the client's bytes stay, not an
        # absent key, and the mirror that differs is journaled for repair.
        assert stored_sha(moto_auth, bucket, "k") == sha(new)
        assert writes == [f"PUT /{bucket}/k"]
        entries = [json.loads(line) for line in journal.read_text().splitlines()]
        assert [(e["mirror"], e["bucket"], e["key"]) for e in entries] == [("copy", bucket, "k")]
    if refuser == "mirror":
        assert error["Code"] == "ServiceUnavailable"
        assert "Mirror backend 'copy'" in error["Message"]
        kept = "the target backend kept it" in error["Message"]
        assert kept == (not versioned)
    else:
        assert error["Code"] == "InternalError"  # the target's own answer
