"""`lakefs-s3-router migrate` spread over processes and fed key lists, as a Kubernetes Indexed
Job runs it: each shard a process of its own, all at once, against moto_server backends, with
reports kept on a store. What landed is read from the backends themselves, and every request
that created a destination object is counted in the backend's own access log.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from harness import (
    PLAIN_ACCESS_KEY_ID,
    PLAIN_SECRET_ACCESS_KEY,
    AccessLogEntry,
    MotoBackend,
    unique_bucket_name,
    write_config,
)

from s3router_proxy.commands.migrateshard import shard_of

MIB = 2**20
SHARDS = 3
ODD_KEYS = ["odd name+plus %25 é.txt", "comma,key.csv", 'quote"d', "日本/データ.bin"]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def argv(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "s3router_proxy", "migrate", "--config", str(config), *args]


def migrate(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv(config, "--no-progress", *args),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def seed(store: MotoBackend, bucket: str, objects: dict[str, bytes]) -> None:
    client = store.client()
    client.create_bucket(Bucket=bucket)
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda kv: client.put_object(Bucket=bucket, Key=kv[0], Body=kv[1]), objects.items()
            )
        )


def listing(store: MotoBackend, bucket: str, prefix: str = "") -> dict[str, tuple[int, str]]:
    found = {}
    for page in (
        store.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    ):
        for item in page.get("Contents", []):
            found[item["Key"]] = (item["Size"], item["ETag"])
    return found


def sha256_of(store: MotoBackend, bucket: str, key: str) -> str:
    return hashlib.sha256(
        store.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    ).hexdigest()


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def creations(requests: list[AccessLogEntry], bucket: str) -> Counter[str]:
    """Requests that created an object in `bucket`, by path: a PUT that is not an UploadPart,
    and a CompleteMultipartUpload."""
    made: Counter[str] = Counter()
    for request in requests:
        if not request.path.startswith(f"/{bucket}/") or request.status != 200:
            continue
        part = "uploadId=" in request.query
        if (request.method == "PUT" and not part) or (request.method == "POST" and part):
            made[request.path] += 1
    return made


def two_store_config(tmp_path: Path, plain: MotoBackend, auth: MotoBackend, repo: str) -> Path:
    """`s3` (plain moto) holds sources and reports; the bucket `lake` is `repo` on `lakefs`
    (signature-checking moto), which copies objects above 8 MiB as 5 MiB parts."""
    return write_config(
        tmp_path,
        f"""
        backends:
          s3:
            endpoint: "{plain.endpoint}"
            access_key_id: "{PLAIN_ACCESS_KEY_ID}"
            secret_access_key: "{PLAIN_SECRET_ACCESS_KEY}"
          lakefs:
            endpoint: "{auth.endpoint}"
            access_key_id: "{auth.access_key_id}"
            secret_access_key: "{auth.secret_access_key}"
            multipart_copy_threshold: 8MiB
            copy_part_size: 5MiB
        routing:
          rules:
            - {{pattern: "lake", target: lakefs, mapped_bucket: "{repo}"}}
          default_target: s3
        """,
    )


def test_three_shards_copy_every_key_once_and_verify_proves_the_union(
    tmp_path: Path, moto_plain: MotoBackend, moto_auth: MotoBackend
) -> None:
    source, repo, reports = (unique_bucket_name(n) for n in ("s3-shards", "repo", "reports"))
    objects = {f"data/{n:04d}.bin": os.urandom(n * 7 % 3000) for n in range(290)}
    objects.update({key: key.encode() * 3 for key in ODD_KEYS})
    big = {f"big/{n}.bin": os.urandom(size * MIB) for n, size in enumerate((3, 6, 9, 12))}
    objects.update(big)
    seed(moto_plain, source, objects)
    moto_plain.client().create_bucket(Bucket=reports)
    moto_auth.client().create_bucket(Bucket=repo)
    config = two_store_config(tmp_path, moto_plain, moto_auth, repo)
    mark = moto_auth.request_count()

    shards = [
        subprocess.Popen(
            argv(
                config,
                f"s3://{source}",
                "s3://lake",
                "--no-progress",
                "--concurrency",
                "4",
                "--shard",
                f"{i}/{SHARDS}",
                "--report",
                f"s3://s3/{reports}/run-1/",
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(SHARDS)
    ]
    for i, shard in enumerate(shards):
        out, err = shard.communicate(timeout=600)
        assert shard.returncode == 0, err
        assert f"(shard {i}/{SHARDS})" in out and f"s3://s3/{reports}/run-1/" in out

    # The union is the source: every key, its size, and for objects copied in one piece its
    # ETag (the MD5 of its bytes); the large ones by their bytes' SHA-256.
    landed, wanted = listing(moto_auth, repo), listing(moto_plain, source)
    assert {k: size for k, (size, _) in landed.items()} == {k: len(b) for k, b in objects.items()}
    for key, (size, etag) in wanted.items():
        if size < 8 * MIB:
            assert landed[key][1] == etag, key
    for key in [*big, *ODD_KEYS, "data/0000.bin", "data/0123.bin", "data/0289.bin"]:
        assert sha256_of(moto_auth, repo, key) == hashlib.sha256(objects[key]).hexdigest(), key
    assert landed["big/3.bin"][1].endswith('-3"'), "12 MiB went as a multipart upload"

    # No key written twice: one object-creating request per key, across the three processes.
    made = creations(moto_auth.requests_since(mark), repo)
    assert len(made) == len(objects) and set(made.values()) == {1}, made.most_common(3)

    # Each shard's report is on the store, named for its shard, with exactly its keys.
    client = moto_plain.client()
    names = sorted(listing(moto_plain, reports, "run-1/"))
    assert len(names) == SHARDS, names
    seen: set[str] = set()
    for i in range(SHARDS):
        (name,) = [n for n in names if n.endswith(f"-shard-{i}-of-{SHARDS}.csv")]
        rows = rows_of(client.get_object(Bucket=reports, Key=name)["Body"].read().decode())
        keys = {row["key"] for row in rows}
        assert {row["status"] for row in rows} == {"copied"} and len(keys) == len(rows)
        assert keys == {k for k in objects if shard_of(k, SHARDS) == i}
        seen |= keys
    assert seen == set(objects)

    verify = migrate(config, f"s3://{source}", "s3://lake", "--verify", "--report", "v.csv")
    assert verify.returncode == 0, verify.stderr
    assert {row["status"] for row in rows_of(Path("v.csv").read_text())} == {"verified"}

    moto_auth.client().delete_object(Bucket=repo, Key="data/0123.bin")
    again = migrate(config, f"s3://{source}", "s3://lake", "--verify", "--report", "v2.csv")
    assert again.returncode == 1
    assert "migrate: missing: data/0123.bin" in again.stderr, again.stderr
    missing = [r for r in rows_of(Path("v2.csv").read_text()) if r["status"] != "verified"]
    assert [(r["status"], r["key"]) for r in missing] == [("missing", "data/0123.bin")]


def test_an_interrupted_shard_resumes_and_its_report_survives(
    tmp_path: Path, moto_plain: MotoBackend, moto_auth: MotoBackend
) -> None:
    source, repo, reports = (unique_bucket_name(n) for n in ("s3-int", "repo", "reports"))
    objects = {f"k/{n:04d}": os.urandom(64 * 1024 + n) for n in range(300)}
    seed(moto_plain, source, objects)
    moto_plain.client().create_bucket(Bucket=reports)
    moto_auth.client().create_bucket(Bucket=repo)
    config = two_store_config(tmp_path, moto_plain, moto_auth, repo)
    mark = moto_auth.request_count()
    common = (f"s3://{source}", "s3://lake", "--no-progress")

    def start(i: int, *extra: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            argv(config, *common, "--shard", f"{i}/{SHARDS}", *extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    watched = start(
        1,
        "--concurrency",
        "1",
        "--report",
        f"s3://s3/{reports}/r1.csv",
        "--report-upload-interval",
        "0.2",
    )
    others = [start(i, "--report", f"r{i}.csv") for i in (0, 2)]
    # The report is uploaded while the shard still runs: stop it once the store shows rows.
    deadline = time.monotonic() + 120
    early: list[dict[str, str]] = []
    while len(early) < 3:
        assert watched.poll() is None, "the shard ended before it was interrupted"
        assert time.monotonic() < deadline
        if "r1.csv" in listing(moto_plain, reports):
            body = moto_plain.client().get_object(Bucket=reports, Key="r1.csv")["Body"].read()
            early = rows_of(body.decode())
        time.sleep(0.05)
    watched.send_signal(signal.SIGTERM)
    _, err = watched.communicate(timeout=120)
    assert watched.returncode == 130, err
    for other in others:
        other.communicate(timeout=600)
        assert other.returncode == 0
    mine = {k for k in objects if shard_of(k, SHARDS) == 1}
    body = moto_plain.client().get_object(Bucket=reports, Key="r1.csv")["Body"].read()
    first = rows_of(body.decode())  # the last upload, after the copies in flight finished
    done = {row["key"] for row in first if row["status"] == "copied"}
    assert len(first) >= len(early) and done and done < mine, (len(done), len(mine))
    assert {k for k in listing(moto_auth, repo) if shard_of(k, SHARDS) == 1} == done

    whole = migrate(config, *common[:2], "--verify", "--report", "v.csv")
    assert whole.returncode == 1 and "migrate: missing: " in whole.stderr

    rerun = migrate(config, *common[:2], "--shard", f"1/{SHARDS}", "--report", "again.csv")
    assert rerun.returncode == 0, rerun.stderr
    rows = rows_of(Path("again.csv").read_text())
    assert {r["key"] for r in rows if r["status"] == "skipped"} == done
    assert {r["key"] for r in rows if r["status"] == "copied"} == mine - done
    assert migrate(config, *common[:2], "--verify", "--report", "v2.csv").returncode == 0
    made = creations(moto_auth.requests_since(mark), repo)
    assert len(made) == len(objects) and set(made.values()) == {1}, made.most_common(3)


# -- key lists -------------------------------------------------------------------------------------

INVENTORY_SCHEMA = "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag"


def inventory_files(bucket: str, keys: list[str]) -> dict[str, bytes]:
    """An S3 Inventory of `keys` as AWS writes one: quoted CSV, keys URL-encoded, gzipped data
    files named by the manifest, plus a noncurrent version and a delete marker to leave out."""
    rows = [
        [
            bucket,
            quote_plus(k, safe="/"),
            "v1",
            "true",
            "false",
            "1",
            "2026-12-01T00:00:00.000Z",
            "e",
        ]
        for k in keys
    ]
    rows.append(
        [bucket, "old%2Fversion", "v0", "false", "false", "1", "2026-11-01T00:00:00.000Z", "e"]
    )
    rows.append([bucket, "deleted", "v2", "true", "true", "", "2026-11-02T00:00:00.000Z", ""])
    files = {}
    for n, part in enumerate((rows[::2], rows[1::2])):
        text = io.StringIO()
        csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(part)
        files[f"{bucket}/daily/data/part-{n}.csv.gz"] = gzip.compress(text.getvalue().encode())
    manifest = {
        "sourceBucket": bucket,
        "destinationBucket": "arn:aws:s3:::inventory-destination",
        "version": "2016-11-30",
        "creationTimestamp": "1764547200000",
        "fileFormat": "CSV",
        "fileSchema": INVENTORY_SCHEMA,
        "files": [
            {"key": key, "size": len(data), "MD5checksum": hashlib.md5(data).hexdigest()}
            for key, data in files.items()
        ],
    }
    files[f"{bucket}/daily/2026-12-01T01-00Z/manifest.json"] = json.dumps(manifest).encode()
    return files


def test_an_inventory_and_a_batch_csv_drive_a_migrate(
    tmp_path: Path, moto_plain: MotoBackend, moto_auth: MotoBackend
) -> None:
    source, repo, inventory = (unique_bucket_name(n) for n in ("s3-keys", "repo", "inventory"))
    objects = {f"in/{n:03d}.csv": f"row {n}\n".encode() for n in range(40)}
    objects.update({f"in/{key}": key.encode() for key in ODD_KEYS})
    objects["outside/prefix.txt"] = b"not under in/"
    seed(moto_plain, source, objects)
    moto_auth.client().create_bucket(Bucket=repo)
    config = two_store_config(tmp_path, moto_plain, moto_auth, repo)
    listed = sorted({*sorted(objects)[::2], *(f"in/{key}" for key in ODD_KEYS)})
    files = inventory_files(source, listed)
    seed(moto_plain, inventory, files)
    (manifest_key,) = [k for k in files if k.endswith("manifest.json")]
    manifest = f"s3://s3/{inventory}/{manifest_key}"
    wanted = {k for k in listed if k.startswith("in/")}

    # Two shards read the same inventory and copy its keys under the source prefix, once.
    for i in range(2):
        run = migrate(
            config,
            f"s3://{source}/in",
            "s3://lake/inv",
            "--keys",
            manifest,
            "--shard",
            f"{i}/2",
            "--report",
            f"inv-{i}.csv",
        )
        assert run.returncode == 0, run.stderr
    copied = [r for i in range(2) for r in rows_of(Path(f"inv-{i}.csv").read_text())]
    assert sorted(r["key"] for r in copied) == sorted(wanted)
    assert {r["status"] for r in copied} == {"copied"}
    landed = listing(moto_auth, repo, "inv/")
    assert set(landed) == {"inv/" + k.removeprefix("in/") for k in wanted}
    for key in wanted:
        assert (
            sha256_of(moto_auth, repo, "inv/" + key.removeprefix("in/"))
            == hashlib.sha256(objects[key]).hexdigest()
        )

    # The same inventory synced to a local folder, as `aws s3 sync` lays it out.
    for key, data in files.items():
        (tmp_path / "inv" / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "inv" / key).write_bytes(data)
    local = migrate(
        config,
        f"s3://{source}/in",
        "s3://lake/inv",
        "--verify",
        "--keys",
        str(tmp_path / "inv" / manifest_key),
        "--report",
        "inv-v.csv",
    )
    assert local.returncode == 0, local.stderr
    assert len(rows_of(Path("inv-v.csv").read_text())) == len(wanted)

    # A Batch Operations manifest: bucket,key lines (one quoted, one a bare key), %-encoded.
    batch = [f"in/{n:03d}.csv" for n in (1, 3, 5)] + [f"in/{ODD_KEYS[0]}", f"in/{ODD_KEYS[1]}"]
    lines = [f"{source},{quote(k)}" for k in batch[:3]]
    lines += [f'"{source}","{quote(batch[3])}","null"', quote(batch[4])]
    Path("batch.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = migrate(
        config, f"s3://{source}", "s3://lake/batch", "--keys", "batch.csv", "--report", "b.csv"
    )
    assert run.returncode == 0, run.stderr
    assert sorted(listing(moto_auth, repo, "batch/")) == sorted(f"batch/{k}" for k in batch)
    again = migrate(
        config, f"s3://{source}", "s3://lake/batch", "--keys", "batch.csv", "--report", "b2.csv"
    )
    assert again.returncode == 0
    assert {r["status"] for r in rows_of(Path("b2.csv").read_text())} == {"skipped"}

    # A key the source does not hold fails, named; the others are still done.
    Path("gone.csv").write_text(f"{source},in/000.csv\n{source},in/not-there\n", encoding="utf-8")
    gone = migrate(
        config, f"s3://{source}", "s3://lake/batch", "--keys", "gone.csv", "--report", "g.csv"
    )
    assert gone.returncode == 1 and "migrate: failed: in/not-there" in gone.stderr
    assert migrate(config, f"s3://{source}", "s3://lake", "--keys", "absent.csv").returncode == 2
