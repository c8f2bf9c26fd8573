"""Mirrored writes through the real proxy: every write reaches the target and its mirrors,
strict mode leaves nothing behind when a mirror dies mid-upload, and best-effort mode records
what the mirror missed so `repair` can bring it back in line."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import rawclient
from botocore.exceptions import ClientError
from harness import (
    PLAIN_ACCESS_KEY_ID,
    PLAIN_SECRET_ACCESS_KEY,
    MotoBackend,
    ProxyProcess,
    StartProxy,
    unique_bucket_name,
    write_config,
)

KEY, SECRET = "AKIAMIRROR", "mirror-secret"
MiB = 1024 * 1024


def config_text(target: MotoBackend, mirror_endpoint: str, journal: Path) -> str:
    return f"""
        router:
          log_format: json
          mirror_journal: "{journal}"
        backends:
          main:
            endpoint: "{target.endpoint}"
            access_key_id: "{target.access_key_id}"
            secret_access_key: "{target.secret_access_key}"
          copy:
            endpoint: "{mirror_endpoint}"
            access_key_id: "{PLAIN_ACCESS_KEY_ID}"
            secret_access_key: "{PLAIN_SECRET_ACCESS_KEY}"
            connect_timeout: 2
        clients:
          - {{name: app, access_key_id: "{KEY}", secret_access_key: "{SECRET}"}}
        routing:
          rules:
            - {{pattern: "strict-*", target: main, mirror: [copy]}}
            - {{pattern: "loose-*", target: main, mirror: [copy], mirror_mode: best_effort}}
            - {{pattern: "elsewhere-*", target: copy}}
            - pattern: "lake-*"
              target: main
              mapped_prefix: main            # lakeFS-style: the branch is the key prefix
              mirror: [{{backend: copy}}]      # the mirror keeps the client's own names
            - pattern: "moving-*"
              target: main
              mapped_prefix: main
              fallback: [{{backend: copy, mapped_bucket: archive, mapped_prefix: old}}]
          default_target: main
        """


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read(store: MotoBackend, bucket: str, key: str) -> bytes:
    body: bytes = store.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def exists(store: MotoBackend, bucket: str, key: str) -> bool:
    try:
        store.client().head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        assert error.response["Error"]["Code"] in ("404", "NoSuchKey")
        return False
    return True


@pytest.fixture
def buckets(moto_auth: MotoBackend, moto_plain: MotoBackend) -> tuple[str, str]:
    strict, loose = unique_bucket_name("strict"), unique_bucket_name("loose")
    for store in (moto_auth, moto_plain):
        for bucket in (strict, loose):
            store.client().create_bucket(Bucket=bucket)
    return strict, loose


@pytest.fixture
def proxy(
    start_proxy: StartProxy, moto_auth: MotoBackend, moto_plain: MotoBackend, tmp_path: Path
) -> ProxyProcess:
    return start_proxy(config_text(moto_auth, moto_plain.endpoint, tmp_path / "journal.jsonl"))


@pytest.mark.parametrize("mode", ["strict", "loose"])
def test_every_write_reaches_the_mirror(
    proxy: ProxyProcess,
    buckets: tuple[str, str],
    moto_auth: MotoBackend,
    moto_plain: MotoBackend,
    mode: str,
) -> None:
    bucket = buckets[0] if mode == "strict" else buckets[1]
    client = proxy.client(KEY, SECRET)
    small = os.urandom(3 * MiB + 17)
    client.put_object(Bucket=bucket, Key="a/small", Body=small, ContentType="text/x-test")
    for store in (moto_auth, moto_plain):
        assert sha(read(store, bucket, "a/small")) == sha(small)
        head = store.client().head_object(Bucket=bucket, Key="a/small")
        assert head["ContentType"] == "text/x-test"

    # Multipart through boto3's transfer manager: three parts, each teed to both stores.
    big = os.urandom(20 * MiB + 5)
    from boto3.s3.transfer import TransferConfig

    client.upload_fileobj(
        io.BytesIO(big),
        bucket,
        "a/big",
        Config=TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB),
    )
    for store in (moto_auth, moto_plain):
        assert sha(read(store, bucket, "a/big")) == sha(big)
        assert store.client().head_object(Bucket=bucket, Key="a/big")["ETag"].endswith('-3"')
        uploads = store.client().list_multipart_uploads(Bucket=bucket)
        assert not uploads.get("Uploads")

    client.copy_object(
        Bucket=bucket, Key="b/copied", CopySource={"Bucket": bucket, "Key": "a/small"}
    )
    for store in (moto_auth, moto_plain):
        assert sha(read(store, bucket, "b/copied")) == sha(small)

    client.delete_object(Bucket=bucket, Key="a/small")
    for store in (moto_auth, moto_plain):
        assert not exists(store, bucket, "a/small")
    for name in ("c/1", "c/2", "c/3"):
        client.put_object(Bucket=bucket, Key=name, Body=name.encode())
    deleted = client.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "c/1"}, {"Key": "c/3"}]}
    )
    assert sorted(d["Key"] for d in deleted["Deleted"]) == ["c/1", "c/3"]
    for store in (moto_auth, moto_plain):
        assert [exists(store, bucket, n) for n in ("c/1", "c/2", "c/3")] == [False, True, False]
    assert sha(client.get_object(Bucket=bucket, Key="a/big")["Body"].read()) == sha(big)


def test_an_aborted_upload_is_aborted_on_the_mirror_too(
    proxy: ProxyProcess, buckets: tuple[str, str], moto_auth: MotoBackend, moto_plain: MotoBackend
) -> None:
    bucket = buckets[0]
    client = proxy.client(KEY, SECRET)
    upload = client.create_multipart_upload(Bucket=bucket, Key="dropped")
    client.upload_part(
        Bucket=bucket, Key="dropped", UploadId=upload["UploadId"], PartNumber=1, Body=b"x" * 1024
    )
    mirrored = moto_plain.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert [u["Key"] for u in mirrored] == ["dropped"]
    parts = client.list_parts(Bucket=bucket, Key="dropped", UploadId=upload["UploadId"])
    assert parts["UploadId"] == upload["UploadId"]  # the same id, mirrors and all
    client.abort_multipart_upload(Bucket=bucket, Key="dropped", UploadId=upload["UploadId"])
    for store in (moto_auth, moto_plain):
        assert not store.client().list_multipart_uploads(Bucket=bucket).get("Uploads")
        assert not exists(store, bucket, "dropped")


def test_a_bad_body_is_written_nowhere(
    proxy: ProxyProcess, buckets: tuple[str, str], moto_auth: MotoBackend, moto_plain: MotoBackend
) -> None:
    bucket = buckets[0]
    url = f"{proxy.endpoint}/{bucket}/corrupt"
    body = os.urandom(2 * MiB)
    response = rawclient.signed_request(
        "PUT", url, KEY, SECRET, body=body, payload_hash=sha(body[:-1] + b"!")
    )
    assert response.status == 400
    assert response.error_code == "XAmzContentSHA256Mismatch"
    for store in (moto_auth, moto_plain):
        assert not exists(store, bucket, "corrupt")


def test_strict_journals_a_mirror_that_refused_what_the_target_took(
    proxy: ProxyProcess, moto_auth: MotoBackend, moto_plain: MotoBackend, tmp_path: Path
) -> None:
    bucket = unique_bucket_name("strict")
    moto_auth.client().create_bucket(Bucket=bucket)  # the mirror has no such bucket
    client = proxy.client(KEY, SECRET)
    body = b"only one store would take this"
    with pytest.raises(ClientError) as refused:
        client.put_object(Bucket=bucket, Key="lonely", Body=body)
    assert refused.value.response["Error"]["Code"] == "ServiceUnavailable"
    message = refused.value.response["Error"]["Message"]
    assert "NoSuchBucket" in message and "the target backend kept it" in message
    # The mirror answered after the body, when the target had committed: deleting by key would
    # take a previous object with it, so the write stays and the mirror is journaled.
    assert sha(read(moto_auth, bucket, "lonely")) == sha(body)
    entries = [json.loads(line) for line in (tmp_path / "journal.jsonl").read_text().splitlines()]
    assert [(e["mirror"], e["key"], e["operation"]) for e in entries] == [
        ("copy", "lonely", "PutObject")
    ]
    with pytest.raises(ClientError) as refused:
        client.create_multipart_upload(Bucket=bucket, Key="lonely")
    assert refused.value.response["Error"]["Code"] == "ServiceUnavailable"
    assert not moto_auth.client().list_multipart_uploads(Bucket=bucket).get("Uploads")


class SlowBody:
    """A request body that stops after `pause_after` bytes until `go` is set."""

    def __init__(self, data: bytes, pause_after: int) -> None:
        self.data = data
        self.pause_after = pause_after
        self.paused = threading.Event()
        self.go = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        step = 256 * 1024
        for offset in range(0, len(self.data), step):
            if offset >= self.pause_after and not self.go.is_set():
                self.paused.set()
                self.go.wait(30)
            yield self.data[offset : offset + step]


def put_in_background(proxy: ProxyProcess, url: str, body: SlowBody) -> dict[str, object]:
    headers = rawclient.sign(
        "PUT",
        url,
        KEY,
        SECRET,
        headers={"Content-Length": str(len(body.data))},
        payload_hash="UNSIGNED-PAYLOAD",
    )
    result: dict[str, object] = {}

    def run() -> None:
        try:
            result["response"] = rawclient.send("PUT", url, headers=headers, body=iter(body))
        except Exception as exc:  # the proxy may close the connection while the body flows
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    result["thread"] = thread
    return result


@pytest.fixture
def doomed_mirror(tmp_path: Path) -> Iterator[MotoBackend]:
    with MotoBackend(tmp_path / "doomed", name="doomed-mirror") as backend:
        yield backend


@pytest.mark.parametrize("mode", ["strict", "loose"])
def test_a_mirror_killed_mid_upload(
    start_proxy: StartProxy,
    moto_auth: MotoBackend,
    doomed_mirror: MotoBackend,
    tmp_path: Path,
    mode: str,
) -> None:
    (tmp_path / "doomed").mkdir(exist_ok=True)
    bucket = unique_bucket_name(mode)
    moto_auth.client().create_bucket(Bucket=bucket)
    doomed_mirror.client().create_bucket(Bucket=bucket)
    journal = tmp_path / "journal.jsonl"
    text = config_text(moto_auth, doomed_mirror.endpoint, journal)
    proxy = start_proxy(text)
    data = os.urandom(24 * MiB)
    body = SlowBody(data, pause_after=8 * MiB)
    result = put_in_background(proxy, f"{proxy.endpoint}/{bucket}/victim", body)
    assert body.paused.wait(30)
    time.sleep(0.3)  # the first 8 MiB reached both stores
    doomed_mirror.stop()
    body.go.set()
    result["thread"].join(60)  # type: ignore[attr-defined]
    response = result.get("response")

    if mode == "strict":
        # The client is told it failed, and neither store has any of it.
        assert response is None or response.status >= 500  # type: ignore[attr-defined]
        if response is not None:
            assert response.error_code == "ServiceUnavailable"  # type: ignore[attr-defined]
            assert b"Mirror backend 'copy'" in response.body  # type: ignore[attr-defined]
        assert not exists(moto_auth, bucket, "victim")
        assert not moto_auth.client().list_multipart_uploads(Bucket=bucket).get("Uploads")
        return

    # best_effort: the target has it all, the miss is journaled and counted.
    assert response is not None and response.status == 200, result  # type: ignore[attr-defined]
    assert sha(read(moto_auth, bucket, "victim")) == sha(data)
    entries = [json.loads(line) for line in journal.read_text().splitlines()]
    assert [(e["mirror"], e["bucket"], e["key"]) for e in entries] == [("copy", bucket, "victim")]
    assert "secret" not in journal.read_text().lower()
    with urllib.request.urlopen(f"{proxy.admin_endpoint}/metrics") as metrics:
        text_metrics = metrics.read().decode()
    assert (
        's3router_mirror_failures_total{backend="copy",operation="PutObject"} 1.0' in text_metrics
    )

    # The mirror comes back (empty, on a new address); repair copies what it missed.
    with MotoBackend(tmp_path / "reborn", name="reborn-mirror") as reborn:
        reborn.client().create_bucket(Bucket=bucket)
        repair_config = write_config(
            tmp_path, config_text(moto_auth, reborn.endpoint, journal), "repair.yaml"
        )
        command = [sys.executable, "-m", "s3router_proxy", "repair", "--config", str(repair_config)]
        dry = subprocess.run([*command, "--dry-run"], capture_output=True, text=True, timeout=60)
        assert dry.returncode == 0, dry.stderr
        assert "would-copy" in dry.stdout and not exists(reborn, bucket, "victim")
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "copied" in done.stdout
        assert sha(read(reborn, bucket, "victim")) == sha(data)
        assert not journal.exists() or not journal.read_text().strip()
        again = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert again.returncode == 0 and "0 entries" in again.stderr


def test_mirror_settings_are_checked(tmp_path: Path, moto_auth: MotoBackend) -> None:
    bad = config_text(moto_auth, "http://127.0.0.1:9", tmp_path / "j").replace(
        "mirror: [copy]}", "mirror: [nowhere]}", 1
    )
    path = write_config(tmp_path, bad)
    result = subprocess.run(
        [sys.executable, "-m", "s3router_proxy", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "mirror" in result.stderr + result.stdout and "nowhere" in result.stderr + result.stdout
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def test_copies_from_another_store_and_part_copies_reach_the_mirror(
    proxy: ProxyProcess, buckets: tuple[str, str], moto_auth: MotoBackend, moto_plain: MotoBackend
) -> None:
    bucket = buckets[0]
    elsewhere = unique_bucket_name("elsewhere")
    moto_plain.client().create_bucket(Bucket=elsewhere)
    source = os.urandom(6 * MiB + 3)
    moto_plain.client().put_object(Bucket=elsewhere, Key="src", Body=source)
    client = proxy.client(KEY, SECRET)
    # CopyObject across stores (copy -> main), then on to the mirror.
    client.copy_object(Bucket=bucket, Key="copied", CopySource={"Bucket": elsewhere, "Key": "src"})
    for store in (moto_auth, moto_plain):
        assert sha(read(store, bucket, "copied")) == sha(source)
    # UploadPartCopy into a mirrored upload: a range from another store, a whole object from
    # the target's own store.
    upload = client.create_multipart_upload(Bucket=bucket, Key="assembled")
    first = client.upload_part_copy(
        Bucket=bucket,
        Key="assembled",
        UploadId=upload["UploadId"],
        PartNumber=1,
        CopySource={"Bucket": elsewhere, "Key": "src"},
        CopySourceRange=f"bytes=0-{5 * MiB - 1}",
    )
    second = client.upload_part_copy(
        Bucket=bucket,
        Key="assembled",
        UploadId=upload["UploadId"],
        PartNumber=2,
        CopySource={"Bucket": bucket, "Key": "copied"},
    )
    client.complete_multipart_upload(
        Bucket=bucket,
        Key="assembled",
        UploadId=upload["UploadId"],
        MultipartUpload={
            "Parts": [
                {"PartNumber": 1, "ETag": first["CopyPartResult"]["ETag"]},
                {"PartNumber": 2, "ETag": second["CopyPartResult"]["ETag"]},
            ]
        },
    )
    expected = sha(source[: 5 * MiB] + source)
    for store in (moto_auth, moto_plain):
        assert sha(read(store, bucket, "assembled")) == expected


def test_a_mirror_with_names_of_its_own(
    proxy: ProxyProcess, moto_auth: MotoBackend, moto_plain: MotoBackend
) -> None:
    bucket = unique_bucket_name("lake")
    for store in (moto_auth, moto_plain):
        store.client().create_bucket(Bucket=bucket)
    client = proxy.client(KEY, SECRET)
    client.put_object(Bucket=bucket, Key="t/a", Body=b"alpha")
    client.put_object(Bucket=bucket, Key="t/b", Body=b"beta")
    big = os.urandom(11 * MiB)
    from boto3.s3.transfer import TransferConfig

    client.upload_fileobj(
        io.BytesIO(big),
        bucket,
        "t/big",
        Config=TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB),
    )
    assert read(moto_auth, bucket, "main/t/a") == b"alpha"  # the target's names
    assert read(moto_plain, bucket, "t/a") == b"alpha"  # the mirror's own (the client's)
    assert sha(read(moto_auth, bucket, "main/t/big")) == sha(big)
    assert sha(read(moto_plain, bucket, "t/big")) == sha(big)
    assert not exists(moto_plain, bucket, "main/t/a")
    client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "t/a"}]})
    client.delete_object(Bucket=bucket, Key="t/b")
    for store, prefix in ((moto_auth, "main/"), (moto_plain, "")):
        assert not exists(store, bucket, prefix + "t/a")
        assert not exists(store, bucket, prefix + "t/b")
        assert exists(store, bucket, prefix + "t/big")


def test_a_fallback_with_names_of_its_own(
    proxy: ProxyProcess, moto_auth: MotoBackend, moto_plain: MotoBackend
) -> None:
    bucket = unique_bucket_name("moving")
    moto_auth.client().create_bucket(Bucket=bucket)
    with contextlib.suppress(ClientError):
        moto_plain.client().create_bucket(Bucket="archive")
    moto_plain.client().put_object(Bucket="archive", Key=f"old/{bucket}.txt", Body=b"old store")
    moto_auth.client().put_object(Bucket=bucket, Key="main/new.txt", Body=b"new store")
    client = proxy.client(KEY, SECRET)
    assert client.get_object(Bucket=bucket, Key="new.txt")["Body"].read() == b"new store"
    # Not in the new store under main/: the old one is asked under its own names.
    answer = client.get_object(Bucket=bucket, Key=f"{bucket}.txt")
    assert answer["Body"].read() == b"old store"
    with pytest.raises(ClientError) as missing:
        client.get_object(Bucket=bucket, Key="nowhere.txt")
    assert missing.value.response["Error"]["Code"] == "NoSuchKey"
    assert "archive" not in str(missing.value.response)  # the client's names only
