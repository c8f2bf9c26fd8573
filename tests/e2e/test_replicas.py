"""Replicas are interchangeable: three proxy processes with the same config behind a round-robin
nginx, driven by boto3, aws-cli and a plain HTTP client as one endpoint.

What one replica hands out (a multipart upload id, a listing's continuation token, a presigned
URL) is honoured by the others, because everything that seals them comes from the config
(`router.secret`), and a config reload on one replica does not disturb the others. Which
replica served what is read from each replica's own JSON access log, so the test fails if the
balancer did not actually spread the requests.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from balancer import NginxBalancer, nginx_binary
from harness import (
    PLAIN_ACCESS_KEY_ID,
    PLAIN_SECRET_ACCESS_KEY,
    MotoBackend,
    ProxyProcess,
    aws_cli,
    boto3_client,
    unique_bucket_name,
)

KEY, SECRET = "AKIAREPLICAS", "replicas-secret"
LATE_KEY, LATE_SECRET = "AKIALATECOMER", "latecomer-secret"
BUCKET = unique_bucket_name("replicas")
PART_BUCKET = unique_bucket_name("replicas-part")
MIB = 1 << 20


FIRST_SECRET = "shared-by-every-replica-0123456789"
NEXT_SECRET = "the-secret-after-rotation-9876543"


def config_text(
    lake: MotoBackend,
    part: MotoBackend,
    *,
    late_client: bool = False,
    secret: str = FIRST_SECRET,
    previous: tuple[str, ...] = (),
) -> str:
    """One bucket split over two stores: `team2/*` in `part` under `data/team2/`."""
    late = (
        f'  - {{name: late, access_key_id: "{LATE_KEY}", secret_access_key: "{LATE_SECRET}"}}\n'
        if late_client
        else ""
    )
    return f"""
router:
  log_format: json
  secret: "{secret}"
  previous_secrets: [{", ".join(f'"{p}"' for p in previous)}]
backends:
  lake:
    endpoint: "{lake.endpoint}"
    access_key_id: "{lake.access_key_id}"
    secret_access_key: "{lake.secret_access_key}"
  part:
    endpoint: "{part.endpoint}"
    access_key_id: "{PLAIN_ACCESS_KEY_ID}"
    secret_access_key: "{PLAIN_SECRET_ACCESS_KEY}"
clients:
  - {{name: app, access_key_id: "{KEY}", secret_access_key: "{SECRET}"}}
{late}routing:
  rules:
    - pattern: "{BUCKET}"
      key_pattern: "team2/*"
      target: part
      mapped_bucket: "{PART_BUCKET}"
      mapped_prefix: "data/team2"
    - pattern: "{BUCKET}"
      target: lake
  default_target: lake
"""


class Cluster:
    def __init__(
        self, replicas: list[ProxyProcess], balancer: NginxBalancer, configs: list[Path]
    ) -> None:
        self.replicas = replicas
        self.balancer = balancer
        self.configs = configs

    def client(self, **config: Any) -> Any:
        return boto3_client(self.balancer.endpoint, KEY, SECRET, **config)

    def served(self, operation: str) -> Counter[str]:
        """How many requests of `operation` each replica's access log holds."""
        counts: Counter[str] = Counter()
        for replica in self.replicas:
            for line in replica.log_text().splitlines():
                if not line.startswith("{"):
                    continue
                entry = json.loads(line)
                access = entry.get("logger") == "s3router_proxy.access"
                if access and entry.get("operation") == operation:
                    counts[replica.name] += 1
        return counts

    def served_since(self, operation: str, before: Counter[str], total: int) -> Counter[str]:
        """The replicas that served `total` more requests of `operation` (an access line is
        written just after its answer went out, so wait a little for the last ones)."""
        deadline = time.monotonic() + 10
        while True:
            spread = self.served(operation) - before
            if sum(spread.values()) >= total or time.monotonic() > deadline:
                return spread
            time.sleep(0.05)


@pytest.fixture(scope="module")
def cluster(
    moto_auth: MotoBackend, moto_plain: MotoBackend, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    binary = nginx_binary()
    if binary is None:
        pytest.skip("nginx is not installed and cannot be (needs root and apt-get)")
    directory = tmp_path_factory.mktemp("replicas")
    moto_auth.client().create_bucket(Bucket=BUCKET)
    moto_plain.client().create_bucket(Bucket=PART_BUCKET)
    replicas, configs = [], []
    try:
        for index in range(3):
            # Each replica reads its own copy, as each pod mounts its own ConfigMap volume.
            config = directory / f"replica-{index}.yaml"
            config.write_text(config_text(moto_auth, moto_plain))
            configs.append(config)
            replica = ProxyProcess(config, directory, log_level="info", name=f"replica-{index}")
            replicas.append(replica.start())
        with NginxBalancer(directory, [r.port for r in replicas], binary=binary) as balancer:
            yield Cluster(replicas, balancer, configs)
    finally:
        for replica in replicas:
            replica.stop()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_multipart_upload_spread_over_replicas(cluster: Cluster, moto_plain: MotoBackend) -> None:
    client = cluster.client()
    before = cluster.served("UploadPart")
    parts_data = [os.urandom(5 * MIB), os.urandom(5 * MIB), os.urandom(5 * MIB), b"tail"]
    for key in ("big/object.bin", "team2/big/object.bin"):  # one per store of the split bucket
        upload = client.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
        parts = []
        for number, data in enumerate(parts_data, start=1):
            answer = client.upload_part(
                Bucket=BUCKET, Key=key, UploadId=upload, PartNumber=number, Body=data
            )
            parts.append({"PartNumber": number, "ETag": answer["ETag"]})
        listed = client.list_parts(Bucket=BUCKET, Key=key, UploadId=upload)
        assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2, 3, 4]
        client.complete_multipart_upload(
            Bucket=BUCKET, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
        )
        got = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        assert sha(got) == sha(b"".join(parts_data))
    stored = moto_plain.client().get_object(Bucket=PART_BUCKET, Key="data/team2/big/object.bin")
    assert sha(stored["Body"].read()) == sha(b"".join(parts_data))
    spread = cluster.served_since("UploadPart", before, 8)
    assert sum(spread.values()) == 8
    assert len(spread) == 3, f"the parts did not reach every replica: {spread}"


def test_a_merged_listing_paged_across_replicas(cluster: Cluster) -> None:
    client = cluster.client()
    keys = sorted([f"list/{i:02d}" for i in range(7)] + [f"team2/list/{i:02d}" for i in range(7)])
    for key in keys:
        client.put_object(Bucket=BUCKET, Key=key, Body=key.encode())
    before = cluster.served("ListObjectsV2")
    paginator = client.get_paginator("list_objects_v2")
    pages = list(paginator.paginate(Bucket=BUCKET, Prefix="", PaginationConfig={"PageSize": 2}))
    listed = [o["Key"] for page in pages for o in page.get("Contents", [])]
    wanted = [k for k in listed if k.startswith(("list/", "team2/list/"))]
    assert wanted == keys  # every key once, in order, though each page came from a replica
    assert listed == sorted(listed) and len(listed) == len(set(listed))
    spread = cluster.served_since("ListObjectsV2", before, len(pages))
    assert sum(spread.values()) == len(pages) >= 7
    assert len(spread) == 3, f"the pages did not come from every replica: {spread}"
    # ListObjects (v1) markers too.
    v1 = client.get_paginator("list_objects")
    v1_keys = [
        o["Key"]
        for page in v1.paginate(
            Bucket=BUCKET, Prefix="team2/list/", PaginationConfig={"PageSize": 3}
        )
        for o in page.get("Contents", [])
    ]
    assert v1_keys == [k for k in keys if k.startswith("team2/")]


def fetch(url: str, host: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_a_presigned_url_made_for_one_replica_works_on_another(cluster: Cluster) -> None:
    body = os.urandom(100_000)
    cluster.client().put_object(Bucket=BUCKET, Key="team2/shared.bin", Body=body)
    first = cluster.replicas[0]
    url = boto3_client(first.endpoint, KEY, SECRET).generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": "team2/shared.bin"}, ExpiresIn=300
    )
    host = first.endpoint.removeprefix("http://")
    for other in cluster.replicas[1:]:
        # The URL reaches another replica, Host as it was signed (what a balancer forwards).
        status, got = fetch(url.replace(first.endpoint, other.endpoint), host=host)
        assert status == 200 and sha(got) == sha(body)
    # Signed for the balancer's name, it works whichever replica takes it.
    via = cluster.client().generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": "team2/shared.bin"}, ExpiresIn=300
    )
    before = cluster.served("GetObject")
    for _ in range(3):
        status, got = fetch(via)
        assert status == 200 and sha(got) == sha(body)
    assert len(cluster.served_since("GetObject", before, 3)) == 3
    # And a tampered one is refused by every replica alike.
    for replica in cluster.replicas:
        status, answer = fetch(
            url.replace(first.endpoint, replica.endpoint).replace("shared.bin", "other.bin"),
            host=host,
        )
        assert status == 403 and b"SignatureDoesNotMatch" in answer


def test_aws_cli_through_the_balancer(cluster: Cluster, tmp_path: Path) -> None:
    source = tmp_path / "up.bin"
    source.write_bytes(os.urandom(20 * MIB))  # above aws-cli's 8 MiB multipart threshold
    endpoint = cluster.balancer.endpoint
    target = f"s3://{BUCKET}/team2/cli/up.bin"
    done = aws_cli(endpoint, KEY, SECRET, "s3", "cp", str(source), target)
    assert done.returncode == 0, done.stderr
    down = tmp_path / "down.bin"
    done = aws_cli(endpoint, KEY, SECRET, "s3", "cp", target, str(down))
    assert done.returncode == 0, done.stderr
    assert sha(down.read_bytes()) == sha(source.read_bytes())
    done = aws_cli(endpoint, KEY, SECRET, "s3", "ls", f"s3://{BUCKET}/team2/cli/")
    assert done.returncode == 0 and "up.bin" in done.stdout, done.stderr


def test_a_reload_on_one_replica_while_the_others_serve(
    cluster: Cluster, moto_auth: MotoBackend, moto_plain: MotoBackend
) -> None:
    client = cluster.client(max_pool_connections=4)
    body = os.urandom(64 * 1024)
    client.put_object(Bucket=BUCKET, Key="team2/steady.bin", Body=body)
    failures: list[str] = []
    served = [0]
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            try:
                got = client.get_object(Bucket=BUCKET, Key="team2/steady.bin")["Body"].read()
                if got != body:
                    failures.append("a read came back different")
                served[0] += 1
            except Exception as error:  # every failure is the finding
                failures.append(repr(error))

    threads = [threading.Thread(target=traffic) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        first = cluster.replicas[0]
        # Replace the file in one step (rename over it), then signal this replica only.
        staged = cluster.configs[0].with_suffix(".new")
        staged.write_text(config_text(moto_auth, moto_plain, late_client=True))
        staged.replace(cluster.configs[0])
        os.kill(first.pid, signal.SIGHUP)
        deadline = time.monotonic() + 30
        while "config reloaded" not in first.log_text():
            assert time.monotonic() < deadline, first.log_tail()
            time.sleep(0.1)
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert not failures, failures[:5]
    assert served[0] > 10
    # The reloaded replica knows the new client; the others, not reloaded, still do not.
    late = boto3_client(cluster.replicas[0].endpoint, LATE_KEY, LATE_SECRET)
    assert late.get_object(Bucket=BUCKET, Key="team2/steady.bin")["Body"].read() == body
    for other in cluster.replicas[1:]:
        refused = boto3_client(other.endpoint, LATE_KEY, LATE_SECRET)
        with pytest.raises(Exception, match="InvalidAccessKeyId"):
            refused.get_object(Bucket=BUCKET, Key="team2/steady.bin")


def reload_all(cluster: Cluster, text: str) -> None:
    """Every replica reads `text` (a file replaced in one step) and reloads, one after another."""
    for replica, config in zip(cluster.replicas, cluster.configs, strict=True):
        seen = replica.log_text().count("config reloaded")
        staged = config.with_suffix(".new")
        staged.write_text(text)
        staged.replace(config)
        os.kill(replica.pid, signal.SIGHUP)
        deadline = time.monotonic() + 30
        while replica.log_text().count("config reloaded") <= seen:
            assert time.monotonic() < deadline, replica.log_tail()
            time.sleep(0.1)


def test_a_secret_rotation_keeps_uploads_and_listings_in_flight(
    cluster: Cluster, moto_auth: MotoBackend, moto_plain: MotoBackend
) -> None:
    client = cluster.client()
    key = "team2/rotation/object.bin"
    parts_data = [os.urandom(5 * MIB), b"the last part"]
    upload = client.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    kept = client.create_multipart_upload(Bucket=BUCKET, Key=key + ".kept")["UploadId"]
    first = client.upload_part(
        Bucket=BUCKET, Key=key, UploadId=upload, PartNumber=1, Body=parts_data[0]
    )
    # A listing of the whole bucket spans both stores: its token is the proxy's, sealed.
    every = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET)["Contents"]]
    page = client.list_objects_v2(Bucket=BUCKET, MaxKeys=2)
    token = page["NextContinuationToken"]
    # Rotate: the new secret seals, the old one is still accepted, on every replica.
    reload_all(
        cluster,
        config_text(moto_auth, moto_plain, secret=NEXT_SECRET, previous=(FIRST_SECRET,)),
    )
    last = client.upload_part(
        Bucket=BUCKET, Key=key, UploadId=upload, PartNumber=2, Body=parts_data[1]
    )
    rest = client.list_objects_v2(Bucket=BUCKET, MaxKeys=1000, ContinuationToken=token)
    assert [o["Key"] for o in page["Contents"] + rest["Contents"]] == every
    client.complete_multipart_upload(
        Bucket=BUCKET,
        Key=key,
        UploadId=upload,
        MultipartUpload={
            "Parts": [
                {"PartNumber": 1, "ETag": first["ETag"]},
                {"PartNumber": 2, "ETag": last["ETag"]},
            ]
        },
    )
    got = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert sha(got) == sha(b"".join(parts_data))
    # An upload started after the rotation is sealed with the new secret: it outlives the
    # old secret, while what only the old one sealed is then refused like a forged id.
    later = client.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    reload_all(cluster, config_text(moto_auth, moto_plain, secret=NEXT_SECRET))
    client.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=later)
    with pytest.raises(Exception, match="NoSuchUpload"):
        client.upload_part(Bucket=BUCKET, Key=key + ".kept", UploadId=kept, PartNumber=1, Body=b"x")
    with pytest.raises(Exception, match="InvalidArgument"):
        client.list_objects_v2(Bucket=BUCKET, MaxKeys=2, ContinuationToken=token)
    direct = moto_plain.client()  # the refused upload is the operator's to abort, directly
    for found in direct.list_multipart_uploads(Bucket=PART_BUCKET).get("Uploads", []):
        if found["Key"].endswith(".kept"):
            direct.abort_multipart_upload(
                Bucket=PART_BUCKET, Key=found["Key"], UploadId=found["UploadId"]
            )
