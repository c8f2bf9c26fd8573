"""Copies whose source and destination live on different backends, through the real proxy.

`lake-*` buckets live on moto_auth, which takes copies above 8 MiB as multipart uploads of
5 MiB parts; every other bucket lives on moto_plain with the default threshold (256 MiB), so
the same proxy exercises the streamed single PUT and the multipart copy. What is asserted is
what a client sees: the bytes read back straight from the destination store (sha256), its
metadata and tags, S3's error codes, and nothing partial left behind when a copy fails.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from harness import (
    PLAIN_ACCESS_KEY_ID,
    PLAIN_SECRET_ACCESS_KEY,
    MotoBackend,
    ProxyProcess,
    unique_bucket_name,
    write_config,
)

KEY, SECRET = "AKIACROSSCOPY", "crosscopy-secret"
MiB = 1024 * 1024
RSS_LIMIT_MIB = 120  # the proxy's peak resident memory, whatever it copied
RSS_GROWTH_MIB = 40  # less than any object copied here: nothing is held whole


def config_text(
    moto_auth: MotoBackend, moto_plain: MotoBackend, flaky: MotoBackend | None = None
) -> str:
    """lake-* on moto_auth (multipart copies above 8 MiB), the rest on moto_plain; flaky-* on
    `flaky`, whose reads time out after 2 s, when given."""
    flaky_backend = flaky_rule = ""
    if flaky is not None:
        flaky_backend = f"""
          flaky:
            endpoint: "{flaky.endpoint}"
            access_key_id: "{PLAIN_ACCESS_KEY_ID}"
            secret_access_key: "{PLAIN_SECRET_ACCESS_KEY}"
            read_timeout: 2"""
        flaky_rule = """
            - {pattern: "flaky-*", target: flaky}"""
    return f"""
        backends:
          lake:
            endpoint: "{moto_auth.endpoint}"
            access_key_id: "{moto_auth.access_key_id}"
            secret_access_key: "{moto_auth.secret_access_key}"
            multipart_copy_threshold: 8MiB
            copy_part_size: 5MiB
          store:
            endpoint: "{moto_plain.endpoint}"
            access_key_id: "{PLAIN_ACCESS_KEY_ID}"
            secret_access_key: "{PLAIN_SECRET_ACCESS_KEY}"{flaky_backend}
        clients:
          - {{name: copier, access_key_id: "{KEY}", secret_access_key: "{SECRET}"}}
        routing:
          rules:
            - {{pattern: "lake-*", target: lake}}{flaky_rule}
          default_target: store
        """


@pytest.fixture(scope="module")
def proxy(
    moto_auth: MotoBackend, moto_plain: MotoBackend, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    directory = tmp_path_factory.mktemp("crosscopy-proxy")
    config = write_config(directory, config_text(moto_auth, moto_plain))
    with ProxyProcess(config, directory, log_level="info") as process:
        yield process


@pytest.fixture(scope="module")
def client(proxy: ProxyProcess) -> BaseClient:
    return proxy.client(KEY, SECRET)


@pytest.fixture(scope="module")
def check_memory(proxy: ProxyProcess) -> Callable[[], None]:
    """Assert the proxy's peak memory stayed bounded (measured from its start)."""
    at_start = proxy.peak_rss_mib()

    def check() -> None:
        peak = proxy.peak_rss_mib()
        assert peak < RSS_LIMIT_MIB, f"peak RSS {peak:.0f} MiB"
        assert peak - at_start < RSS_GROWTH_MIB, f"peak RSS {peak:.0f} MiB, {at_start:.0f} at start"

    return check


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stored(backend: MotoBackend, bucket: str, key: str) -> tuple[dict[str, Any], bytes]:
    """The object as the backend itself has it: (its GetObject answer, its bytes)."""
    answer = backend.client().get_object(Bucket=bucket, Key=key)
    return answer, answer["Body"].read()


def buckets(client: BaseClient, *prefixes: str) -> list[str]:
    names = [unique_bucket_name(prefix) for prefix in prefixes]
    for name in names:
        client.create_bucket(Bucket=name)
    return names


def upload_multipart(client: BaseClient, bucket: str, key: str, body: bytes, **extra: Any) -> str:
    """A multipart object of 5 MiB parts; its ETag."""
    upload = client.create_multipart_upload(Bucket=bucket, Key=key, **extra)["UploadId"]
    parts = []
    for number, start in enumerate(range(0, len(body), 5 * MiB), start=1):
        etag = client.upload_part(
            Bucket=bucket,
            Key=key,
            UploadId=upload,
            PartNumber=number,
            Body=body[start : start + 5 * MiB],
        )["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    done = client.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
    )
    return str(done["ETag"])


def error_code(call: Callable[[], object]) -> tuple[str, int]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def no_uploads(backend: MotoBackend, bucket: str) -> bool:
    return "Uploads" not in backend.client().list_multipart_uploads(Bucket=bucket)


# -- CopyObject -----------------------------------------------------------------------------------


def test_large_object_is_streamed_into_one_put(
    client: BaseClient,
    check_memory: Callable[[], None],
    moto_auth: MotoBackend,
    moto_plain: MotoBackend,
) -> None:
    source, target = buckets(client, "lake", "plain")
    body = os.urandom(50 * MiB)
    moto_auth.client().put_object(
        Bucket=source,
        Key="big/object",
        Body=body,
        ContentType="video/mp4",
        Metadata={"origin": "camera-7"},
    )
    copied = client.copy_object(
        Bucket=target, Key="copy of big", CopySource={"Bucket": source, "Key": "big/object"}
    )
    answer, data = stored(moto_plain, target, "copy of big")
    assert sha256(data) == sha256(body)
    assert answer["ContentType"] == "video/mp4"
    assert answer["Metadata"] == {"origin": "camera-7"}
    # One PUT: the destination's ETag is the MD5 of the bytes, and the result names it.
    assert answer["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    assert copied["CopyObjectResult"]["ETag"] == answer["ETag"]
    check_memory()


def test_large_object_is_copied_as_a_multipart_upload(
    client: BaseClient,
    check_memory: Callable[[], None],
    moto_auth: MotoBackend,
    moto_plain: MotoBackend,
) -> None:
    source, target = buckets(client, "plain", "lake")
    body = os.urandom(52 * MiB + 12345)  # 11 parts of 5 MiB, the last one short
    upload_multipart(
        moto_plain.client(),
        source,
        "parts",
        body,
        ContentType="application/x-parquet",
        ContentDisposition='attachment; filename="p.parquet"',
        Metadata={"rows": "1000"},
        Tagging="stage=raw&owner=data%20team",
    )
    copied = client.copy_object(
        Bucket=target, Key="parts", CopySource={"Bucket": source, "Key": "parts"}
    )
    answer, data = stored(moto_auth, target, "parts")
    assert sha256(data) == sha256(body)
    assert answer["ETag"].endswith('-11"')  # written as a multipart upload, as S3 would
    assert copied["CopyObjectResult"]["ETag"] == answer["ETag"]
    assert answer["ContentType"] == "application/x-parquet"
    assert answer["ContentDisposition"] == 'attachment; filename="p.parquet"'
    assert answer["Metadata"] == {"rows": "1000"}
    tags = moto_auth.client().get_object_tagging(Bucket=target, Key="parts")["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [
        ("owner", "data team"),
        ("stage", "raw"),
    ]
    assert no_uploads(moto_auth, target)
    check_memory()


def test_metadata_and_tagging_directives(client: BaseClient, moto_auth: MotoBackend) -> None:
    source, target = buckets(client, "plain", "lake")
    client.put_object(
        Bucket=source,
        Key="doc",
        Body=b"{}",
        ContentType="application/json",
        Metadata={"a": "1"},
        Tagging="team=alpha",
    )
    copy = {"Bucket": source, "Key": "doc"}
    client.copy_object(Bucket=target, Key="kept", CopySource=copy)
    client.copy_object(
        Bucket=target,
        Key="replaced",
        CopySource=copy,
        MetadataDirective="REPLACE",
        ContentType="text/plain",
        Metadata={"b": "2"},
        TaggingDirective="REPLACE",
        Tagging="team=beta&env=prod",
    )
    # COPY ignores the request's tags and metadata: the source's are kept.
    client.copy_object(
        Bucket=target, Key="copy-ignores", CopySource=copy, Tagging="x=y", Metadata={"c": "3"}
    )
    direct = moto_auth.client()

    def described(key: str) -> tuple[str, dict[str, str], list[tuple[str, str]]]:
        head = direct.head_object(Bucket=target, Key=key)
        tags = direct.get_object_tagging(Bucket=target, Key=key)["TagSet"]
        return (
            head["ContentType"],
            head["Metadata"],
            sorted((t["Key"], t["Value"]) for t in tags),
        )

    assert described("kept") == ("application/json", {"a": "1"}, [("team", "alpha")])
    assert described("copy-ignores") == ("application/json", {"a": "1"}, [("team", "alpha")])
    assert described("replaced") == ("text/plain", {"b": "2"}, [("env", "prod"), ("team", "beta")])
    assert direct.get_object(Bucket=target, Key="replaced")["Body"].read() == b"{}"
    code = error_code(
        lambda: client.copy_object(
            Bucket=target, Key="bad", CopySource=copy, MetadataDirective="MERGE"
        )
    )
    assert code == ("InvalidArgument", 400)


def test_conditional_copies(client: BaseClient, moto_auth: MotoBackend) -> None:
    source, target = buckets(client, "plain", "lake")
    etag = client.put_object(Bucket=source, Key="c", Body=b"conditional")["ETag"]
    copy = {"Bucket": source, "Key": "c"}
    failing: list[dict[str, Any]] = [
        {"CopySourceIfMatch": '"00000000000000000000000000000000"'},
        {"CopySourceIfNoneMatch": etag},
        {"CopySourceIfModifiedSince": "2100-01-01T00:00:00Z"},
        {"CopySourceIfUnmodifiedSince": "2000-01-01T00:00:00Z"},
    ]
    for conditions in failing:
        copy_call = lambda c=conditions: client.copy_object(  # noqa: E731
            Bucket=target, Key="c", CopySource=copy, **c
        )
        assert error_code(copy_call) == ("PreconditionFailed", 412), conditions
    assert "Contents" not in moto_auth.client().list_objects_v2(Bucket=target)
    client.copy_object(Bucket=target, Key="c", CopySource=copy, CopySourceIfMatch=etag)
    assert moto_auth.client().get_object(Bucket=target, Key="c")["Body"].read() == b"conditional"
    missing = {"Bucket": source, "Key": "missing"}
    assert error_code(lambda: client.copy_object(Bucket=target, Key="m", CopySource=missing)) == (
        "NoSuchKey",
        404,
    )


def test_copy_of_a_version(client: BaseClient, moto_auth: MotoBackend) -> None:
    source, target = buckets(client, "plain", "lake")
    for bucket in (source, target):
        client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    first = client.put_object(Bucket=source, Key="v", Body=b"version one")["VersionId"]
    client.put_object(Bucket=source, Key="v", Body=b"version two")
    copied = client.copy_object(
        Bucket=target, Key="v", CopySource={"Bucket": source, "Key": "v", "VersionId": first}
    )
    assert copied["CopySourceVersionId"] == first
    answer, data = stored(moto_auth, target, "v")
    assert data == b"version one"
    assert copied["VersionId"] == answer["VersionId"]
    latest = client.copy_object(Bucket=target, Key="w", CopySource={"Bucket": source, "Key": "v"})
    assert latest["CopySourceVersionId"] not in (None, first)
    assert stored(moto_auth, target, "w")[1] == b"version two"


# -- UploadPartCopy -------------------------------------------------------------------------------


def test_upload_part_copy_with_ranges(
    client: BaseClient, check_memory: Callable[[], None], moto_auth: MotoBackend
) -> None:
    source, target = buckets(client, "plain", "lake")
    big = os.urandom(13 * MiB)
    small = os.urandom(1000)
    client.put_object(Bucket=source, Key="big", Body=big)
    client.put_object(Bucket=source, Key="small", Body=small)
    upload = client.create_multipart_upload(Bucket=target, Key="assembled")["UploadId"]
    ranges = [(0, 5 * MiB - 1), (8 * MiB, 13 * MiB - 1)]
    parts = []
    for number, (first, last) in enumerate(ranges, start=1):
        result = client.upload_part_copy(
            Bucket=target,
            Key="assembled",
            UploadId=upload,
            PartNumber=number,
            CopySource={"Bucket": source, "Key": "big"},
            CopySourceRange=f"bytes={first}-{last}",
        )
        parts.append({"PartNumber": number, "ETag": result["CopyPartResult"]["ETag"]})
        assert (
            result["CopyPartResult"]["ETag"]
            == f'"{hashlib.md5(big[first : last + 1]).hexdigest()}"'
        )
    result = client.upload_part_copy(  # the whole object, as the last part
        Bucket=target,
        Key="assembled",
        UploadId=upload,
        PartNumber=3,
        CopySource={"Bucket": source, "Key": "small"},
    )
    parts.append({"PartNumber": 3, "ETag": result["CopyPartResult"]["ETag"]})

    def part_copy(copy_range: str, key: str = "big", **extra: Any) -> tuple[str, int]:
        return error_code(
            lambda: client.upload_part_copy(
                Bucket=target,
                Key="assembled",
                UploadId=upload,
                PartNumber=9,
                CopySource={"Bucket": source, "Key": key},
                CopySourceRange=copy_range,
                **extra,
            )
        )

    assert part_copy("bytes=0-") == ("InvalidArgument", 400)
    assert part_copy("bytes=5-1") == ("InvalidArgument", 400)
    assert part_copy(f"bytes=0-{13 * MiB}") == ("InvalidArgument", 400)  # one past the end
    assert part_copy(f"bytes={14 * MiB}-{15 * MiB}") == ("InvalidArgument", 400)
    assert part_copy("bytes=0-1", key="missing") == ("NoSuchKey", 404)
    assert part_copy("bytes=0-1", CopySourceIfMatch='"0000"') == ("PreconditionFailed", 412)
    client.complete_multipart_upload(
        Bucket=target, Key="assembled", UploadId=upload, MultipartUpload={"Parts": parts}
    )
    expected = big[: 5 * MiB] + big[8 * MiB :] + small
    assert sha256(stored(moto_auth, target, "assembled")[1]) == sha256(expected)
    check_memory()


def test_managed_copy_across_backends(client: BaseClient, moto_auth: MotoBackend) -> None:
    """boto3's `copy()` (the transfer manager) uses UploadPartCopy above its threshold."""
    source, target = buckets(client, "plain", "lake")
    body = os.urandom(21 * MiB)
    client.put_object(Bucket=source, Key="managed", Body=body, Metadata={"m": "1"})
    client.copy(
        {"Bucket": source, "Key": "managed"},
        target,
        "managed",
        Config=TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB),
    )
    answer, data = stored(moto_auth, target, "managed")
    assert sha256(data) == sha256(body)
    assert answer["ETag"].endswith('-3"')
    assert answer["Metadata"] == {"m": "1"}


# -- failures -------------------------------------------------------------------------------------


@pytest.fixture
def flaky(tmp_path: Path) -> Iterator[MotoBackend]:
    """A source backend of this test's own, to be killed in the middle of a copy."""
    with MotoBackend(tmp_path, name="moto-flaky") as backend:
        yield backend


def copy_while_killing(
    proxy: ProxyProcess, flaky: MotoBackend, moment: Callable[[], bool], target: str
) -> tuple[str, int]:
    """Start a copy from flaky-* into `target`; once `moment()` holds, freeze the source and
    kill it. The client's error code and status."""
    source = unique_bucket_name("flaky")
    flaky.client().create_bucket(Bucket=source)
    flaky.client().put_object(Bucket=source, Key="doomed", Body=os.urandom(60 * MiB))
    client = proxy.client(KEY, SECRET, read_timeout=120)
    with ThreadPoolExecutor(1) as pool:
        copying: Future[object] = pool.submit(
            client.copy_object,
            Bucket=target,
            Key="doomed",
            CopySource={"Bucket": source, "Key": "doomed"},
            TaggingDirective="REPLACE",  # no tag lookup: the GET goes straight into the write
        )
        deadline = time.monotonic() + 30
        while not moment():
            assert not copying.done(), "the copy ended before the source could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.001)
        os.kill(flaky.pid, signal.SIGSTOP)  # frozen at once, mid-copy: 60 MiB take far longer
        flaky.stop(timeout=0)  # then killed (SIGTERM, SIGKILL): its connections reset
        return error_code(copying.result)


def connected(process: ProxyProcess, port: int) -> bool:
    """Whether `process` holds an established TCP connection to `port` (read from /proc)."""
    inodes = set()
    for row in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = row.split()
        if fields[3] == "01" and int(fields[2].rsplit(":", 1)[1], 16) == port:  # 01: ESTABLISHED
            inodes.add(f"socket:[{fields[9]}]")
    for fd in Path(f"/proc/{process.pid}/fd").iterdir() if inodes else ():
        with contextlib.suppress(OSError):
            if os.readlink(fd) in inodes:
                return True
    return False


def started_parts(backend: MotoBackend, mark: int) -> bool:
    return any(
        e.method == "POST" and e.query.startswith("uploads") for e in backend.requests_since(mark)
    )


@pytest.mark.parametrize("destination", ["lake", "plain"])
def test_a_copy_whose_source_dies_leaves_nothing(
    destination: str,
    flaky: MotoBackend,
    moto_auth: MotoBackend,
    moto_plain: MotoBackend,
    start_proxy: Any,
) -> None:
    proxy = start_proxy(config_text(moto_auth, moto_plain, flaky))
    store = moto_auth if destination == "lake" else moto_plain
    target = unique_bucket_name(destination)
    store.client().create_bucket(Bucket=target)
    mark = store.request_count()
    if destination == "lake":  # multipart: kill once the upload has started
        moment = lambda: started_parts(store, mark)  # noqa: E731
    else:  # one PUT (the proxy's first request to this store): kill once it is under way
        moment = lambda: connected(proxy, store.port)  # noqa: E731
    code = copy_while_killing(proxy, flaky, moment, target)
    assert code in (("ServiceUnavailable", 503), ("InternalError", 500)), code
    assert "Contents" not in store.client().list_objects_v2(Bucket=target)
    assert no_uploads(store, target)
    if destination == "plain":  # the PUT had begun, and the store refused the short body
        deadline = time.monotonic() + 5  # the store logs it once it noticed the cut
        while not (puts := [e for e in store.requests_since(mark) if e.method == "PUT"]):
            assert time.monotonic() < deadline, "the store never saw the PUT"
            time.sleep(0.05)
        assert [e.path.rsplit("/", 1)[-1] for e in puts] == ["doomed"]
        assert all(e.status is not None and e.status >= 400 for e in puts)
    else:
        assert started_parts(store, mark)
        assert any(
            e.method == "DELETE" and "uploadId=" in e.query for e in store.requests_since(mark)
        )


@pytest.mark.parametrize("versioned", [True, False])
def test_a_source_overwritten_mid_copy_never_mixes_into_the_copy(
    versioned: bool, proxy: ProxyProcess, moto_auth: MotoBackend, moto_plain: MotoBackend
) -> None:
    """Parts are read pinned to what the first read found: its version, else its ETag."""
    client = proxy.client(KEY, SECRET, read_timeout=120)
    source, target = buckets(client, "plain", "lake")
    if versioned:
        client.put_bucket_versioning(Bucket=source, VersioningConfiguration={"Status": "Enabled"})
    body = os.urandom(60 * MiB)
    moto_plain.client().put_object(Bucket=source, Key="moving", Body=body)
    direct = moto_plain.client()  # made now: making a client takes longer than a part
    mark = moto_auth.request_count()
    with ThreadPoolExecutor(1) as pool:
        copying = pool.submit(
            client.copy_object,
            Bucket=target,
            Key="moving",
            CopySource={"Bucket": source, "Key": "moving"},
        )
        while not started_parts(moto_auth, mark):
            assert not copying.done(), "the copy ended before the source could change"
            time.sleep(0.001)
        direct.put_object(Bucket=source, Key="moving", Body=b"a new version")
        if versioned:  # the copy is of the version it started with, whole
            copying.result()
            assert sha256(stored(moto_auth, target, "moving")[1]) == sha256(body)
            return
        # S3 answers the pinned reads 412, and the proxy OperationAborted; moto also fails the
        # reads already under way (500: it closes an overwritten object's bytes).
        code = error_code(copying.result)
        assert code in (("OperationAborted", 409), ("InternalError", 500)), code
    assert "Contents" not in moto_auth.client().list_objects_v2(Bucket=target)
    assert no_uploads(moto_auth, target)
