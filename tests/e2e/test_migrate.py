"""`lakefs-s3-router migrate` as a user runs it: a real process against moto_server backends.

The source is seeded straight on its backend; the command is run with the config the proxy
would use, so the destination's routing and renaming apply; what landed is read back from the
backends (and, for the large object, through the proxy) and compared byte for byte.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import http.client
import os
import pty
import re
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from harness import (
    LOOPBACK,
    PLAIN_ACCESS_KEY_ID,
    PLAIN_SECRET_ACCESS_KEY,
    ManagedProcess,
    MotoBackend,
    ProxyProcess,
    StartProxy,
    aws_cli,
    boto3_client,
    free_port,
    unique_bucket_name,
    write_config,
)

from s3router_proxy.serving.embedded import running_stores

KEY, SECRET = "AKIAMIGRATE", "migrate-secret"
SMALL_KEYS = {
    "a/1.csv": b"id,name\n1,one\n",
    "a/2.csv": b"id,name\n2,two\n",
    "a/b/deep.json": b'{"deep": true}',
    "odd name+plus %25 é.txt": b"unicode and specials",
    "empty": b"",
}


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # relative --report paths and default report names land here


def migrate(config: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "s3router_proxy", "migrate", "--config", str(config), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def report_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as stream:
        return list(csv.DictReader(stream))


def by_status(rows: list[dict[str, str]]) -> dict[str, set[str]]:
    statuses: dict[str, set[str]] = {}
    for row in rows:
        statuses.setdefault(row["status"], set()).add(row["key"])
    return statuses


def keys_in(store: MotoBackend, bucket: str, prefix: str = "") -> dict[str, int]:
    found: dict[str, int] = {}
    paginator = store.client().get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            found[item["Key"]] = item["Size"]
    return found


def test_migrate_routes_dry_runs_and_reports_failures(
    tmp_path: Path, moto_plain: MotoBackend, moto_auth: MotoBackend
) -> None:
    source, repo = unique_bucket_name("s3-data"), unique_bucket_name("repo")
    moto_plain.client().create_bucket(Bucket=source)
    moto_auth.client().create_bucket(Bucket=repo)
    for key, body in SMALL_KEYS.items():
        moto_plain.client().put_object(Bucket=source, Key=key, Body=body, ContentType="text/csv")
    moto_plain.client().put_object(Bucket=source, Key="reject/x", Body=b"nowhere to go")
    config = write_config(
        tmp_path,
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
        routing:
          rules:
            - {{pattern: "lake", key_pattern: "reject/*", target: lakefs,
                mapped_bucket: "{unique_bucket_name("absent")}"}}
            - {{pattern: "lake", target: lakefs, mapped_bucket: "{repo}", mapped_prefix: main}}
          default_target: s3
        """,
    )
    every_key = {*SMALL_KEYS, "reject/x"}

    dry = migrate(config, f"s3://{source}", "s3://lake", "--dry-run", "--report", "dry.csv")
    assert dry.returncode == 0, dry.stderr
    assert by_status(report_rows(Path("dry.csv"))) == {"would-copy": every_key}
    assert keys_in(moto_auth, repo) == {}, "a dry run copied something"

    report = tmp_path / "run.csv"
    run = migrate(config, f"s3://{source}", "s3://lake/", "--report", str(report))
    assert run.returncode == 1, run.stderr  # one key failed
    rows = report_rows(report)
    assert by_status(rows) == {"copied": set(SMALL_KEYS), "failed": {"reject/x"}}
    failed = next(row for row in rows if row["status"] == "failed")
    assert failed["error_code"] == "NoSuchBucket"
    assert failed["reason"]
    # The destination rule renamed the bucket and put every key under the lakeFS branch.
    assert keys_in(moto_auth, repo) == {f"main/{k}": len(b) for k, b in SMALL_KEYS.items()}
    for key, body in SMALL_KEYS.items():
        copy = moto_auth.client().get_object(Bucket=repo, Key=f"main/{key}")
        assert hashlib.sha256(copy["Body"].read()).digest() == hashlib.sha256(body).digest()
        assert copy["ContentType"] == "text/csv"
    assert "1 failed" in run.stdout and "5 copied" in run.stdout

    again = migrate(config, f"s3://{source}", "s3://lake", "--report", str(tmp_path / "2.csv"))
    assert again.returncode == 1
    assert by_status(report_rows(tmp_path / "2.csv")) == {
        "skipped": set(SMALL_KEYS),
        "failed": {"reject/x"},
    }

    moto_auth.client().put_object(Bucket=repo, Key="main/a/1.csv", Body=b"id,name\n1,ONE\n")
    moto_auth.client().put_object(Bucket=repo, Key="main/only-here", Body=b"extra")
    verify = migrate(config, f"s3://{source}", "s3://lake", "--verify", "--report", "v.csv")
    assert verify.returncode == 1
    assert by_status(report_rows(Path("v.csv"))) == {
        "verified": set(SMALL_KEYS) - {"a/1.csv"},
        "different": {"a/1.csv"},
        "missing": {"reject/x"},
        "extra": {"only-here"},
    }


def test_copy_within_one_store_is_server_side(tmp_path: Path, moto_auth: MotoBackend) -> None:
    source, target = unique_bucket_name("s3-src"), unique_bucket_name("s3-dst")
    for bucket in (source, target):
        moto_auth.client().create_bucket(Bucket=bucket)
    for key, body in SMALL_KEYS.items():
        moto_auth.client().put_object(Bucket=source, Key=f"in/{key}", Body=body)
    moto_auth.client().put_object(Bucket=source, Key="out-of-prefix", Body=b"stays")
    config = write_config(
        tmp_path,
        f"""
        backends:
          only:
            endpoint: "{moto_auth.endpoint}"
            access_key_id: "{moto_auth.access_key_id}"
            secret_access_key: "{moto_auth.secret_access_key}"
        """,
    )
    mark = moto_auth.request_count()
    run = migrate(config, f"s3://{source}/in", f"s3://{target}/copied", "--no-progress")
    assert run.returncode == 0, run.stderr
    assert keys_in(moto_auth, target) == {f"copied/{k}": len(b) for k, b in SMALL_KEYS.items()}
    requests = moto_auth.requests_since(mark)
    assert not [r for r in requests if r.method == "GET" and r.path.startswith(f"/{source}/")]
    assert len([r for r in requests if r.method == "PUT"]) == len(SMALL_KEYS)
    reports = list(tmp_path.glob("migrate-report-*.csv"))
    assert len(reports) == 1
    assert by_status(report_rows(reports[0])) == {"copied": {f"in/{k}" for k in SMALL_KEYS}}


def test_bad_usage_exits_2(tmp_path: Path, moto_plain: MotoBackend) -> None:
    config = write_config(
        tmp_path,
        f"""
        backends:
          s3: {{endpoint: "{moto_plain.endpoint}", access_key_id: a, secret_access_key: b}}
        """,
    )
    absent = unique_bucket_name("absent")
    assert migrate(config, "bucket", "s3://b").returncode == 2
    assert migrate(config, "s3://a/x", "s3://a/x/y").returncode == 2  # overlapping
    missing = migrate(config, f"s3://{absent}", "s3://elsewhere", "--no-progress")
    assert missing.returncode == 2
    assert "NoSuchBucket" in missing.stderr
    assert migrate(tmp_path / "absent.yaml", "s3://a", "s3://b").returncode == 2


# -- watching a migration ------------------------------------------------------------------------

BIG_PROGRESS = 24 * 1024 * 1024
_PROGRESS = re.compile(
    r"^migrate: ([\d.]+) (B|KiB|MiB) of ([\d.]+ MiB) \((\d+)%\), (\d+) of (\d+) objects; "
)


class SlowLink(ManagedProcess):
    """`slowlink.py` in its own process: a TCP relay to `target_port` at `rate` bytes/s."""

    def __init__(self, log_dir: Path, target_port: int, rate: int) -> None:
        super().__init__("slowlink", log_dir / "slowlink.log")
        self.target_port = target_port
        self.rate = rate
        self.port = 0
        self.endpoint = ""

    def __enter__(self) -> SlowLink:
        script = Path(__file__).with_name("slowlink.py")
        self.port = free_port()
        self.endpoint = f"http://{LOOPBACK}:{self.port}"
        argv = [sys.executable, str(script), str(self.port), str(self.target_port), str(self.rate)]
        self._spawn(argv, dict(os.environ), cwd=None)
        self._wait_until(lambda: self.listens_on(self.port), "listening", 30)
        return self


def test_progress_shows_bytes_while_a_large_object_copies(
    tmp_path: Path, moto_plain: MotoBackend, moto_auth: MotoBackend
) -> None:
    """The source is reached through a link of 4 MiB/s per connection, so the 24 MiB object
    (five 5 MiB parts, four at a time) takes seconds: the log lines must show it moving."""
    source, repo = unique_bucket_name("s3-watch"), unique_bucket_name("repo")
    moto_plain.client().create_bucket(Bucket=source)
    moto_auth.client().create_bucket(Bucket=repo)
    body = os.urandom(BIG_PROGRESS)
    moto_plain.client().put_object(Bucket=source, Key="big.bin", Body=body)
    moto_plain.client().put_object(Bucket=source, Key="small.txt", Body=b"small")
    with SlowLink(tmp_path, moto_plain.port, 4 * 1024 * 1024) as link:
        config = write_config(
            tmp_path,
            f"""
            backends:
              s3:
                endpoint: "{link.endpoint}"
                access_key_id: "{PLAIN_ACCESS_KEY_ID}"
                secret_access_key: "{PLAIN_SECRET_ACCESS_KEY}"
              lakefs:
                endpoint: "{moto_auth.endpoint}"
                access_key_id: "{moto_auth.access_key_id}"
                secret_access_key: "{moto_auth.secret_access_key}"
                multipart_copy_threshold: 8MiB
                copy_part_size: 5MiB
            routing:
              rules:
                - {{pattern: "lake", target: lakefs, mapped_bucket: "{repo}"}}
              default_target: s3
            """,
        )
        dry = migrate(config, f"s3://{source}", "s3://lake", "--dry-run", "--report", "d.csv")
        assert dry.returncode == 0, dry.stderr
        # The dry run totals what a run would copy.
        assert "2 listed (24.0 MiB); 2 would-copy (24.0 MiB)" in dry.stdout, dry.stdout
        assert keys_in(moto_auth, repo) == {}

        run = migrate(
            config, f"s3://{source}", "s3://lake", "--progress-interval", "0.2", "--report", "r.csv"
        )
    assert run.returncode == 0, run.stderr
    assert "\r" not in run.stderr  # not a terminal: whole lines, for a log
    lines = [line for line in run.stderr.splitlines() if line.startswith("migrate: ")]
    progress = [m for m in map(_PROGRESS.match, lines) if m]
    assert progress, run.stderr
    # Totals from the listing, before the copy is done.
    assert all(m[3] == "24.0 MiB" and m[6] == "2" for m in progress), run.stderr
    # The large object's bytes move while it copies: lines between 0 and all of them, with
    # the large object not done yet (the small one may be).
    partway = [m for m in progress if int(m[5]) < 2 and 10 <= int(m[4]) <= 90]
    assert len(partway) >= 2, run.stderr
    assert any("MiB/s" in line and "objects/s" in line and ", ETA " in line for line in lines)
    seen = [float(m[1]) * {"B": 1, "KiB": 1024, "MiB": 2**20}[m[2]] for m in progress]
    assert seen == sorted(seen), "progress went backwards"
    assert "2 listed (24.0 MiB); 2 copied (24.0 MiB); " in run.stdout, run.stdout
    copy = moto_auth.client().get_object(Bucket=repo, Key="big.bin")
    assert copy["ETag"].endswith('-5"'), copy["ETag"]  # five parts of 5 MiB, streamed
    assert hashlib.sha256(copy["Body"].read()).digest() == hashlib.sha256(body).digest()


def test_a_terminal_gets_a_progress_bar(tmp_path: Path, moto_plain: MotoBackend) -> None:
    """stderr on a terminal (a pseudo-terminal here): the bar, redrawn in place."""
    source, target = unique_bucket_name("s3-tty"), unique_bucket_name("s3-tty-dst")
    for bucket in (source, target):
        moto_plain.client().create_bucket(Bucket=bucket)
    for key, body in SMALL_KEYS.items():
        moto_plain.client().put_object(Bucket=source, Key=key, Body=body)
    config = write_config(
        tmp_path,
        f"""
        backends:
          s3:
            endpoint: "{moto_plain.endpoint}"
            access_key_id: "{PLAIN_ACCESS_KEY_ID}"
            secret_access_key: "{PLAIN_SECRET_ACCESS_KEY}"
        """,
    )
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 160, 0, 0))
    shown = bytearray()

    def read_terminal() -> None:
        with contextlib.suppress(OSError):  # EIO once the last writer is gone
            while piece := os.read(leader, 4096):
                shown.extend(piece)

    reader = threading.Thread(target=read_terminal, daemon=True)
    reader.start()
    try:
        argv = [sys.executable, "-m", "s3router_proxy", "migrate", "--config", str(config)]
        run = subprocess.run(
            [*argv, f"s3://{source}", f"s3://{target}"],
            stdout=subprocess.PIPE,
            stderr=follower,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        os.close(follower)
        reader.join(timeout=30)
        os.close(leader)
    assert run.returncode == 0, shown.decode(errors="replace")
    text = shown.decode(errors="replace")
    assert "\rmigrate |" in text, text
    assert f"{len(SMALL_KEYS)} of {len(SMALL_KEYS)} objects" in text, text
    assert f"{len(SMALL_KEYS)} copied" in run.stdout


# -- the README's demo ----------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]
README_ENDPOINT = "http://127.0.0.1:8080"


def readme_block(containing: str) -> list[str]:
    """The commands of the README's `sh` block that holds `containing`, comments dropped."""
    blocks = re.findall(r"```sh\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    block = next(b for b in blocks if containing in b)
    return [line for line in block.splitlines() if shlex.split(line, comments=True)]


def test_the_readme_demo_migration_runs_as_written(tmp_path: Path) -> None:
    """The README's commands, as written, against the demo config and a real demo proxy; only
    the proxy's port differs (8080 may be taken here)."""
    (tmp_path / "config").mkdir()
    shutil.copy(REPO / "config" / "demo.yaml", tmp_path / "config" / "demo.yaml")
    shutil.copytree(REPO / "docs", tmp_path / "docs")
    shutil.copy(REPO / "README.md", tmp_path / "README.md")
    use = readme_block("s3 mb s3://analytics")
    move = readme_block("migrate --config config/demo.yaml")
    assert len(move) == 2, move  # put the objects, then migrate
    environment = dict(
        item.split("=", 1) for item in shlex.split(use[0], comments=True)[1:]
    )  # export KEY=VALUE ...
    key, secret = environment["AWS_ACCESS_KEY_ID"], environment["AWS_SECRET_ACCESS_KEY"]

    def run(line: str, endpoint: str) -> subprocess.CompletedProcess[str]:
        argv = shlex.split(line, comments=True)
        if argv[0] == "aws":
            assert argv[1:3] == ["--endpoint-url", README_ENDPOINT], line
            return aws_cli(endpoint, key, secret, *argv[3:], cwd=tmp_path)
        assert argv[0] == ".venv/bin/lakefs-s3-router", line
        argv = [sys.executable, "-m", "s3router_proxy", *argv[1:]]
        return subprocess.run(
            argv, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False
        )

    # Without the demo proxy running, migrate says what to do.
    early = run(move[1], README_ENDPOINT)
    assert early.returncode == 2
    assert "start `lakefs-s3-router --config config/demo.yaml` first" in early.stderr
    with ProxyProcess(tmp_path / "config" / "demo.yaml", tmp_path / "proxy") as proxy:
        for line in [*use[1:], *move]:
            result = run(line, proxy.endpoint)
            assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"
        assert "; report migrate-report-" in result.stdout
        docs = {
            path.relative_to(tmp_path).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in (tmp_path / "docs").rglob("*")
            if path.is_file()
        }
        assert f"{len(docs)} copied" in result.stdout, result.stdout
        # What arrived: the lakefs store itself holds every file, byte for byte ...
        lakefs = running_stores(tmp_path / "config" / "demo.yaml")["lakefs"]
        store = boto3_client(lakefs, "any", "any")
        for name, digest in docs.items():
            stored = store.get_object(Bucket="lakefs-demo", Key=f"main/{name}")["Body"].read()
            assert hashlib.sha256(stored).hexdigest() == digest, name
        # ... and the client reads it through the proxy, in the other bucket.
        client = proxy.client(key, secret)
        listed = client.list_objects_v2(Bucket="lakefs-demo", Prefix="main/docs/")["Contents"]
        assert {item["Key"].removeprefix("main/") for item in listed} == set(docs)
    # The proxy gone, its stores are gone: migrate says so instead of failing to connect.
    assert running_stores(tmp_path / "config" / "demo.yaml") == {}


# -- 10,000 objects and 200 MiB, interrupted and resumed ------------------------------------------

# The acceptance run; S3ROUTER_MIGRATE_OBJECTS=1000 makes it quick for local work.
SMALL_COUNT = int(os.environ.get("S3ROUTER_MIGRATE_OBJECTS", "10000"))
INTERRUPT_AFTER = max(1, SMALL_COUNT // 5)  # copies done before the SIGINT
BIG_KEY = "big/blob.bin"
BIG_SIZE = 200 * 1024 * 1024


@pytest.fixture(scope="module")
def bulk_stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MotoBackend, ...]]:
    """Two fresh plain stores, so 10,000 objects do not slow the shared ones down."""
    with (
        MotoBackend(tmp_path_factory.mktemp("bulk-src"), name="bulk-src") as source,
        MotoBackend(tmp_path_factory.mktemp("bulk-dst"), name="bulk-dst") as dest,
    ):
        yield source, dest


def seed_small(store: MotoBackend, bucket: str, count: int) -> None:
    """PUT `count` small objects fast: raw keep-alive HTTP from threads (moto_plain takes
    unsigned requests), so the client leaves the CPU to the server."""
    local = threading.local()

    def put(index: int) -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection(LOOPBACK, store.port, timeout=30)
        body = f"object {index}\n".encode()
        conn.request("PUT", f"/{bucket}/small/{index:05d}", body=body)
        response = conn.getresponse()
        response.read()
        assert response.status == 200, response.status

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(put, range(count)))


def sha256_of_stream(body: object) -> str:
    digest = hashlib.sha256()
    for chunk in iter(lambda: body.read(1024 * 1024), b""):  # type: ignore[attr-defined]
        digest.update(chunk)
    return digest.hexdigest()


@pytest.mark.slow
def test_ten_thousand_objects_interrupted_resumed_and_verified(
    tmp_path: Path, bulk_stores: tuple[MotoBackend, MotoBackend], start_proxy: StartProxy
) -> None:
    source_store, dest_store = bulk_stores
    source, repo = unique_bucket_name("s3-bulk"), unique_bucket_name("repo")
    source_store.client().create_bucket(Bucket=source)
    dest_store.client().create_bucket(Bucket=repo)
    started = time.monotonic()
    big, digest = tmp_path / "big.bin", hashlib.sha256()
    with big.open("wb") as out:
        for block in range(BIG_SIZE // (1024 * 1024)):
            data = hashlib.sha256(str(block).encode()).digest() * 32768  # 1 MiB
            digest.update(data)
            out.write(data)
    big_sha = digest.hexdigest()
    # upload_file uploads in parts: the source ETag is a multipart one, which a copy across
    # stores cannot keep, so resuming must prove the copy another way.
    source_store.client().upload_file(str(big), source, BIG_KEY)
    big.unlink()
    seed_small(source_store, source, SMALL_COUNT)
    seeded = time.monotonic() - started
    every_key = {BIG_KEY, *(f"small/{i:05d}" for i in range(SMALL_COUNT))}
    config = write_config(
        tmp_path,
        f"""
        backends:
          s3:
            endpoint: "{source_store.endpoint}"
            access_key_id: "{PLAIN_ACCESS_KEY_ID}"
            secret_access_key: "{PLAIN_SECRET_ACCESS_KEY}"
          lakefs:
            endpoint: "{dest_store.endpoint}"
            access_key_id: "{PLAIN_ACCESS_KEY_ID}"
            secret_access_key: "{PLAIN_SECRET_ACCESS_KEY}"
        clients:
          - {{name: app, access_key_id: "{KEY}", secret_access_key: "{SECRET}"}}
        routing:
          rules:
            - {{pattern: "lakefs-repo", target: lakefs, mapped_bucket: "{repo}",
                mapped_prefix: main}}
          default_target: s3
        """,
    )
    argv = [sys.executable, "-m", "s3router_proxy", "migrate", "--config", str(config)]
    argv += [f"s3://{source}", "s3://lakefs-repo/"]
    first_report = tmp_path / "first.csv"
    first = subprocess.Popen(
        [*argv, "--report", str(first_report)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while first.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(FileNotFoundError):
                if first_report.read_bytes().count(b",copied,") >= INTERRUPT_AFTER:
                    break
            time.sleep(0.2)
        first.send_signal(signal.SIGINT)
        out, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 130, err
    interrupted = time.monotonic() - started
    first_rows = report_rows(first_report)  # an interrupted run's report is whole
    copied_first = by_status(first_rows)["copied"]
    assert set(by_status(first_rows)) == {"copied"}
    assert INTERRUPT_AFTER <= len(copied_first) < len(every_key)
    # The big object is the first key: taken first, and finished after the SIGINT if need be.
    assert BIG_KEY in copied_first
    # No partial objects: the destination holds exactly what the report says was copied.
    assert {k.removeprefix("main/") for k in keys_in(dest_store, repo)} == copied_first

    second_report = tmp_path / "second.csv"
    second = subprocess.run(
        [*argv, "--report", str(second_report), "--previous-report", str(first_report)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert second.returncode == 0, second.stderr
    second_status = by_status(report_rows(second_report))
    assert second_status["skipped"] == copied_first
    assert second_status["copied"] == every_key - copied_first
    assert set(second_status) == {"skipped", "copied"}
    resumed = time.monotonic() - started

    verify = migrate(config, f"s3://{source}", "s3://lakefs-repo", "--verify", "--report", "v.csv")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    verified = report_rows(Path("v.csv"))
    assert by_status(verified) == {"verified": every_key}
    # Multipart source ETag, single-part copy, no earlier report given: compared by content.
    assert next(r for r in verified if r["key"] == BIG_KEY)["reason"] == "same SHA-256"

    proxy = start_proxy(config)
    body = proxy.client(KEY, SECRET).get_object(Bucket="lakefs-repo", Key=BIG_KEY)["Body"]
    assert sha256_of_stream(body) == big_sha
    assert len(keys_in(dest_store, repo, "main/small/")) == SMALL_COUNT
    print(
        f"seeded in {seeded:.0f} s, interrupted at {interrupted:.0f} s, resumed by "
        f"{resumed:.0f} s, verified and read back by {time.monotonic() - started:.0f} s",
        file=sys.stderr,
    )
