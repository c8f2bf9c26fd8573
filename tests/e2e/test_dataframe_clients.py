"""Apache Arrow's S3 filesystem and Polars through the proxy, as data teams use them.

`pyarrow.fs.S3FileSystem` is the AWS SDK for C++ underneath (pandas and many other tools read
and write Parquet through it): it writes every output as a multipart upload whose parts go
as unsigned aws-chunked bodies with a checksum trailer, reads a Parquet footer with ranged
GETs from the end, and makes "directories" out of listings and empty `dir/` marker objects.
Polars reads and writes through Rust's `object_store` crate: one signed PutObject per file,
ranged GETs in parallel, listings for globs. Behind the proxy is moto with signature checks on,
as two backends: one is sent plain bodies, the other (`checksum_trailers: true`) Arrow's
aws-chunked parts and trailers as sent. Most writes go to a bucket the client knows as LOGICAL
and moto holds as PHYSICAL under `tables/`; what a test wrote is read back from moto directly,
so it passes only if the bytes arrived as written and under the names the rule gives them.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import trustme
from harness import LOOPBACK, REGION, MotoBackend, ProxyProcess, unique_bucket_name, write_config
from pyarrow import fs

KEY, SECRET = "AKIADATAFRAMES", "dataframes-secret"
MIB = 1024 * 1024
# A bucket of the default route, stored under its own name.
PLAIN = unique_bucket_name("arrow")
# A bucket the clients know as LOGICAL, stored in PHYSICAL under `tables/`.
LOGICAL, PHYSICAL = unique_bucket_name("arrow-logical"), unique_bucket_name("arrow-physical")
# A bucket on a backend that takes aws-chunked bodies and their checksum trailers as sent.
TRAILED = unique_bucket_name("arrow-trailed")


def start_proxy(directory: Path, moto: MotoBackend, router: str = "") -> ProxyProcess:
    """The proxy in front of `moto` under two backend names; `router` is a one-line section."""
    keys = moto.config_keys()
    config = write_config(
        directory,
        f"""
        {router}
        backends:
          lake: {{{keys}}}
          trailers: {{{keys}, checksum_trailers: true}}
        clients:
          - {{name: frames, access_key_id: "{KEY}", secret_access_key: "{SECRET}"}}
        routing:
          rules:
            - {{pattern: "{LOGICAL}", target: lake, mapped_bucket: "{PHYSICAL}",
                mapped_prefix: "tables/"}}
            - {{pattern: "{TRAILED}", target: trailers}}
          default_target: lake
        """,
    )
    return ProxyProcess(config, directory, log_level="info").start()


@pytest.fixture(scope="module")
def buckets(moto_auth: MotoBackend) -> None:
    moto = moto_auth.client()
    for bucket in (PLAIN, PHYSICAL, TRAILED):
        moto.create_bucket(Bucket=bucket)


@pytest.fixture(scope="module")
def proxy(
    moto_auth: MotoBackend, buckets: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    process = start_proxy(tmp_path_factory.mktemp("dataframe-proxy"), moto_auth)
    yield process
    process.stop()


def arrow_fs(port: int, secret: str = SECRET) -> fs.S3FileSystem:
    return fs.S3FileSystem(
        access_key=KEY,
        secret_key=secret,
        endpoint_override=f"{LOOPBACK}:{port}",
        scheme="http",
        region=REGION,
        retry_strategy=fs.AwsStandardS3RetryStrategy(max_attempts=1),
    )


@pytest.fixture(scope="module")
def s3(proxy: ProxyProcess) -> fs.S3FileSystem:
    return arrow_fs(proxy.port)


def polars_options(port: int, secret: str = SECRET) -> dict[str, str]:
    return {
        "aws_endpoint_url": f"http://{LOOPBACK}:{port}",
        "aws_access_key_id": KEY,
        "aws_secret_access_key": secret,
        "aws_region": REGION,
        "aws_allow_http": "true",
    }


def stored(moto: MotoBackend, bucket: str, key: str) -> bytes:
    body: bytes = moto.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def moto_keys(moto: MotoBackend, bucket: str, prefix: str = "") -> list[str]:
    pages = moto.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def table(rows: int) -> pa.Table:
    """Columns that do not compress, so a file is about 24 bytes a row."""
    return pa.table(
        {
            "id": pa.array(range(rows), pa.int64()),
            "blob": pa.array([os.urandom(16) for _ in range(rows)], pa.binary(16)),
        }
    )


@pytest.mark.parametrize(
    ("bucket", "stored_at", "checksums", "payload"),
    [
        pytest.param(
            LOGICAL,
            (PHYSICAL, "tables/frames/big.parquet"),
            "when_supported",
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
            id="renamed-trailers-decoded",
        ),
        pytest.param(
            TRAILED,
            (TRAILED, "frames/big.parquet"),
            "when_supported",
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
            id="trailers-as-sent",
        ),
        # What users of S3-compatible stores set since the SDKs began sending checksums by
        # default: the parts are then plain bodies with a signed SHA-256.
        pytest.param(
            LOGICAL,
            (PHYSICAL, "tables/frames/big.parquet"),
            "when_required",
            "sha256",
            id="renamed-signed-payloads",
        ),
    ],
)
def test_arrow_writes_a_parquet_file_of_several_parts_and_reads_it_back(
    proxy: ProxyProcess,
    moto_auth: MotoBackend,
    monkeypatch: pytest.MonkeyPatch,
    bucket: str,
    stored_at: tuple[str, str],
    checksums: str,
    payload: str,
) -> None:
    monkeypatch.setenv("AWS_REQUEST_CHECKSUM_CALCULATION", checksums)
    s3 = arrow_fs(proxy.port)  # the SDK reads the setting when its client is made
    data = table(700_000)  # ~17 MiB: the SDK's parts are 10 MiB
    mark, logged = moto_auth.request_count(), len(proxy.log_text().splitlines())
    pq.write_table(data, f"{bucket}/frames/big.parquet", filesystem=s3)
    parts = {e.query for e in moto_auth.requests_since(mark) if "partNumber=" in e.query}
    assert len(parts) >= 2, parts
    sent = {
        line.rpartition(" payload=")[2].split()[0]
        for line in proxy.log_text().splitlines()[logged:]
        if "operation=UploadPart " in line
    }
    assert sent == {payload}
    body = stored(moto_auth, *stored_at)
    assert len(body) > 10 * MIB
    assert pq.read_table(pa.BufferReader(body)).equals(data)
    assert pq.read_table(f"{bucket}/frames/big.parquet", filesystem=s3).equals(data)
    with s3.open_input_stream(f"{bucket}/frames/big.parquet") as stream:
        assert hashlib.sha256(stream.read()).digest() == hashlib.sha256(body).digest()


def test_arrow_random_access_reads_ranges_of_the_stored_bytes(
    s3: fs.S3FileSystem, moto_auth: MotoBackend
) -> None:
    data = table(50_000)
    path = f"{PLAIN}/frames/ranged.parquet"
    pq.write_table(data, path, filesystem=s3, row_group_size=10_000)
    body = stored(moto_auth, PLAIN, "frames/ranged.parquet")
    mark = moto_auth.request_count()
    with s3.open_input_file(path) as file:
        assert file.size() == len(body)
        assert file.read_at(8, len(body) - 8) == body[-8:]  # the footer's length, then PAR1
        assert file.read_at(1000, 12345) == body[12345:13345]
        file.seek(len(body) // 2)
        assert file.read(100) == body[len(body) // 2 : len(body) // 2 + 100]
        parquet = pq.ParquetFile(file)
        assert parquet.metadata.num_row_groups == 5
        assert parquet.read_row_group(3).equals(data.slice(30_000, 10_000))
    gets = [e for e in moto_auth.requests_since(mark) if e.method == "GET"]
    assert gets and all(e.status == 206 for e in gets), gets
    with s3.open_input_stream(path) as stream:
        assert stream.read(4) == b"PAR1"
        assert stream.read() == body[4:]


def test_arrow_over_https_writes_parts_and_reads_them_back(
    buckets: None, moto_auth: MotoBackend, tmp_path: Path
) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert(LOOPBACK, "localhost")
    chain, key, ca_file = tmp_path / "chain.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(chain))
    cert.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    tls = f'router: {{tls: {{cert_file: "{chain}", key_file: "{key}"}}}}'
    process = start_proxy(tmp_path, moto_auth, tls)
    try:
        s3 = fs.S3FileSystem(
            access_key=KEY,
            secret_key=SECRET,
            endpoint_override=f"{LOOPBACK}:{process.port}",
            scheme="https",
            tls_ca_file_path=str(ca_file),
            region=REGION,
            retry_strategy=fs.AwsStandardS3RetryStrategy(max_attempts=1),
        )
        data = table(700_000)  # ~17 MiB: two parts
        mark = moto_auth.request_count()
        pq.write_table(data, f"{LOGICAL}/tls/big.parquet", filesystem=s3)
        parts = {e.query for e in moto_auth.requests_since(mark) if "partNumber=" in e.query}
        assert len(parts) >= 2, parts
        body = stored(moto_auth, PHYSICAL, "tables/tls/big.parquet")
        assert pq.read_table(pa.BufferReader(body)).equals(data)
        assert pq.read_table(f"{LOGICAL}/tls/big.parquet", filesystem=s3).equals(data)
    finally:
        process.stop()


def test_arrow_files_and_directories_in_the_clients_names(
    s3: fs.S3FileSystem, moto_auth: MotoBackend
) -> None:
    s3.create_dir(f"{LOGICAL}/events/2026/empty")
    files = {"events/2026/a.parquet": table(1000), "events/2026/12/b.parquet": table(2000)}
    for name, data in files.items():
        pq.write_table(data, f"{LOGICAL}/{name}", filesystem=s3)
    with s3.open_output_stream(f"{LOGICAL}/events/read me ü+.txt") as out:
        out.write(b"what the events are")

    info = s3.get_file_info(f"{LOGICAL}/events/2026/a.parquet")
    assert info.type == fs.FileType.File
    assert info.size == len(stored(moto_auth, PHYSICAL, "tables/events/2026/a.parquet"))
    assert s3.get_file_info(f"{LOGICAL}/events/2026").type == fs.FileType.Directory
    assert s3.get_file_info(f"{LOGICAL}/events/2026/empty").type == fs.FileType.Directory
    assert s3.get_file_info(f"{LOGICAL}/events/nothing").type == fs.FileType.NotFound
    listed = s3.get_file_info(fs.FileSelector(f"{LOGICAL}/events", recursive=True))
    assert {(i.path, i.type) for i in listed} == {
        (f"{LOGICAL}/events/read me ü+.txt", fs.FileType.File),
        (f"{LOGICAL}/events/2026", fs.FileType.Directory),
        (f"{LOGICAL}/events/2026/empty", fs.FileType.Directory),
        (f"{LOGICAL}/events/2026/a.parquet", fs.FileType.File),
        (f"{LOGICAL}/events/2026/12", fs.FileType.Directory),
        (f"{LOGICAL}/events/2026/12/b.parquet", fs.FileType.File),
    }
    # Directories are empty marker objects, stored under the rule's prefix like the files.
    assert moto_keys(moto_auth, PHYSICAL, "tables/events/") == [
        "tables/events/",
        "tables/events/2026/",
        "tables/events/2026/12/b.parquet",
        "tables/events/2026/a.parquet",
        "tables/events/2026/empty/",
        "tables/events/read me ü+.txt",
    ]

    before = stored(moto_auth, PHYSICAL, "tables/events/2026/a.parquet")
    s3.move(f"{LOGICAL}/events/2026/a.parquet", f"{LOGICAL}/archive/a.parquet")
    assert stored(moto_auth, PHYSICAL, "tables/archive/a.parquet") == before
    assert "tables/events/2026/a.parquet" not in moto_keys(moto_auth, PHYSICAL)
    assert pq.read_table(f"{LOGICAL}/archive/a.parquet", filesystem=s3).equals(
        files["events/2026/a.parquet"]
    )
    s3.delete_file(f"{LOGICAL}/events/read me ü+.txt")
    assert s3.get_file_info(f"{LOGICAL}/events/read me ü+.txt").type == fs.FileType.NotFound
    s3.delete_dir(f"{LOGICAL}/events")  # one DeleteObjects, its keys renamed on the way
    assert s3.get_file_info(f"{LOGICAL}/events").type == fs.FileType.NotFound
    assert moto_keys(moto_auth, PHYSICAL, "tables/events") == []
    assert moto_keys(moto_auth, PHYSICAL, "tables/archive/") == ["tables/archive/a.parquet"]


def test_arrow_hive_partitions_with_awkward_values(
    s3: fs.S3FileSystem, moto_auth: MotoBackend
) -> None:
    data = pa.table({"v": [1, 2, 3, 4], "team": ["a b", "c=d", "ü+/", "a b"]})
    ds.write_dataset(
        data,
        f"{LOGICAL}/hive",
        format="parquet",
        filesystem=s3,
        partitioning=["team"],
        partitioning_flavor="hive",
    )
    # Arrow escapes the values itself; the proxy keeps those keys byte for byte.
    files = {k for k in moto_keys(moto_auth, PHYSICAL, "tables/hive/") if k.endswith(".parquet")}
    assert files == {
        "tables/hive/team=a%20b/part-0.parquet",
        "tables/hive/team=c%3Dd/part-0.parquet",
        "tables/hive/team=%C3%BC%2B%2F/part-0.parquet",
    }
    dataset = ds.dataset(f"{LOGICAL}/hive", filesystem=s3, partitioning="hive")
    assert dataset.to_table().sort_by("v").to_pydict() == data.to_pydict()
    picked = dataset.to_table(filter=ds.field("team") == "ü+/")
    assert picked.to_pydict() == {"v": [3], "team": ["ü+/"]}


def test_arrow_a_missing_key_is_file_not_found(s3: fs.S3FileSystem) -> None:
    missing = f"{LOGICAL}/frames/missing.parquet"
    with pytest.raises(FileNotFoundError):
        s3.open_input_stream(missing)
    with pytest.raises(FileNotFoundError):
        s3.open_input_file(missing)
    with pytest.raises(FileNotFoundError):
        pq.read_table(missing, filesystem=s3)


def test_arrow_with_a_wrong_secret_gets_access_errors_and_writes_nothing(
    proxy: ProxyProcess, moto_auth: MotoBackend
) -> None:
    wrong = arrow_fs(proxy.port, "not-the-secret")
    # A HEAD answer has no body, so the SDK names only the status: 403 is ACCESS_DENIED.
    with pytest.raises(OSError, match="ACCESS_DENIED during HeadObject"):
        wrong.open_input_stream(f"{LOGICAL}/frames/big.parquet")
    with pytest.raises(OSError, match="SIGNATURE_DOES_NOT_MATCH during ListObjectsV2"):
        wrong.get_file_info(fs.FileSelector(f"{LOGICAL}/frames"))
    with (
        pytest.raises(OSError, match="SIGNATURE_DOES_NOT_MATCH during CreateMultipartUpload"),
        wrong.open_output_stream(f"{LOGICAL}/refused/x.txt") as out,
    ):
        out.write(b"refused")
    assert moto_keys(moto_auth, PHYSICAL, "tables/refused/") == []


def test_polars_writes_reads_and_scans_parquet(proxy: ProxyProcess, moto_auth: MotoBackend) -> None:
    options = polars_options(proxy.port)
    rows = 100_000
    frame = pl.DataFrame({"id": range(rows), "name": [f"row {i}" for i in range(rows)]})
    frame.write_parquet(f"s3://{LOGICAL}/polars/one.parquet", storage_options=options)
    body = stored(moto_auth, PHYSICAL, "tables/polars/one.parquet")
    from_moto = pl.from_arrow(pq.read_table(pa.BufferReader(body)))
    assert isinstance(from_moto, pl.DataFrame) and from_moto.equals(frame)
    back = pl.read_parquet(f"s3://{LOGICAL}/polars/one.parquet", storage_options=options)
    assert back.equals(frame)

    frame.tail(3).write_parquet(f"s3://{LOGICAL}/polars/two.parquet", storage_options=options)
    scanned = (
        pl.scan_parquet(f"s3://{LOGICAL}/polars/*.parquet", storage_options=options)
        .filter(pl.col("id") >= rows - 2)
        .collect()
    )
    assert sorted(scanned["id"].to_list()) == [rows - 2, rows - 2, rows - 1, rows - 1]


def test_polars_hive_partitions_with_awkward_values(
    proxy: ProxyProcess, moto_auth: MotoBackend
) -> None:
    options = polars_options(proxy.port)
    frame = pl.DataFrame({"team": ["a b", "c=d", "ü+"], "v": [1, 2, 3]})
    frame.write_parquet(f"s3://{LOGICAL}/phive", storage_options=options, partition_by="team")
    assert set(moto_keys(moto_auth, PHYSICAL, "tables/phive/")) == {
        "tables/phive/team=a%20b/00000000.parquet",
        "tables/phive/team=c%3Dd/00000000.parquet",
        "tables/phive/team=%C3%BC+/00000000.parquet",
    }
    back = pl.read_parquet(
        f"s3://{LOGICAL}/phive/**/*.parquet", storage_options=options, hive_partitioning=True
    )
    assert back.sort("v").select("team", "v").equals(frame)


def test_polars_errors_are_file_not_found_and_permission_error(proxy: ProxyProcess) -> None:
    with pytest.raises(FileNotFoundError, match="NoSuchKey"):
        pl.read_parquet(
            f"s3://{LOGICAL}/polars/missing.parquet", storage_options=polars_options(proxy.port)
        )
    wrong = polars_options(proxy.port, "not-the-secret")
    with pytest.raises(PermissionError, match="SignatureDoesNotMatch"):
        pl.read_parquet(f"s3://{LOGICAL}/polars/one.parquet", storage_options=wrong)
    with pytest.raises(PermissionError, match="SignatureDoesNotMatch"):
        pl.DataFrame({"a": [1]}).write_parquet(
            f"s3://{LOGICAL}/polars/refused.parquet", storage_options=wrong
        )
