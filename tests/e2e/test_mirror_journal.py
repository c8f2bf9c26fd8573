"""The mirror journal on a backend (`router.mirror_journal: s3://...`) outlives the proxy that
wrote it: misses recorded by a proxy that is then killed outright are repaired by `repair`
processes started elsewhere afterwards, two of them at once replay each entry once, and a
journal store that is down costs the client nothing."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from harness import (
    PLAIN_ACCESS_KEY_ID,
    PLAIN_SECRET_ACCESS_KEY,
    MotoBackend,
    ProxyProcess,
    StartProxy,
    free_port,
    unique_bucket_name,
    write_config,
)

KEY, SECRET = "AKIAJOURNAL", "journal-secret"
PREFIX = "mirror/"
MiB = 1024 * 1024


def config_text(target: MotoBackend, mirror: str, journal_store: str, journal_bucket: str) -> str:
    return f"""
        router:
          log_format: json
          mirror_journal: "s3://journal/{journal_bucket}/{PREFIX}"
        backends:
          main:
            endpoint: "{target.endpoint}"
            access_key_id: "{target.access_key_id}"
            secret_access_key: "{target.secret_access_key}"
          copy:
            endpoint: "{mirror}"
            access_key_id: "{PLAIN_ACCESS_KEY_ID}"
            secret_access_key: "{PLAIN_SECRET_ACCESS_KEY}"
            connect_timeout: 2
          journal:
            endpoint: "{journal_store}"
            access_key_id: "{PLAIN_ACCESS_KEY_ID}"
            secret_access_key: "{PLAIN_SECRET_ACCESS_KEY}"
            connect_timeout: 2
        clients:
          - {{name: app, access_key_id: "{KEY}", secret_access_key: "{SECRET}"}}
        routing:
          rules:
            - {{pattern: "loose-*", target: main, mirror: [copy], mirror_mode: best_effort}}
          default_target: main
        """


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def journal_keys(store: MotoBackend, bucket: str) -> list[str]:
    listed = store.client().list_objects_v2(Bucket=bucket, Prefix=PREFIX)
    return sorted(item["Key"] for item in listed.get("Contents", []))


def metric_lines(proxy: ProxyProcess) -> str:
    with urllib.request.urlopen(f"{proxy.admin_endpoint}/metrics") as answer:
        return str(answer.read().decode())


def nobody_listens() -> str:
    """An endpoint refusing connections: a backend that is down."""
    return f"http://127.0.0.1:{free_port()}"


def repair_command(config: Path) -> list[str]:
    return [sys.executable, "-m", "s3router_proxy", "repair", "--config", str(config)]


@pytest.mark.parametrize("repairs", [1, 2])
def test_misses_outlive_a_killed_proxy_and_are_replayed_once(
    start_proxy: StartProxy,
    moto_auth: MotoBackend,
    moto_plain: MotoBackend,
    tmp_path: Path,
    repairs: int,
) -> None:
    bucket, journal_bucket = unique_bucket_name("loose"), unique_bucket_name("journal")
    moto_auth.client().create_bucket(Bucket=bucket)
    moto_plain.client().create_bucket(Bucket=journal_bucket)
    proxy = start_proxy(
        config_text(moto_auth, nobody_listens(), moto_plain.endpoint, journal_bucket)
    )
    client = proxy.client(KEY, SECRET)
    # Large enough that two repairs started together are still copying when the other looks:
    # without claims both would see the mirror without the object and both would copy it.
    written = {f"k/{n}": os.urandom(4 * MiB + n) for n in range(6)}
    for key, data in written.items():
        client.put_object(Bucket=bucket, Key=key, Body=data)  # the mirror is down: a miss each

    # Journaled before each answer: the entries are there the moment the writes returned.
    keys = journal_keys(moto_plain, journal_bucket)
    assert len(keys) == len(written) and all(k.endswith(".json") for k in keys), keys
    entries = [
        json.loads(moto_plain.client().get_object(Bucket=journal_bucket, Key=k)["Body"].read())
        for k in keys
    ]
    assert sorted((e["primary"], e["mirror"], e["bucket"], e["key"]) for e in entries) == [
        ("main", "copy", bucket, key) for key in sorted(written)
    ]
    assert all(e["operation"] == "PutObject" and e["time"] for e in entries)
    assert not any("secret" in json.dumps(e).lower() for e in entries)

    os.kill(proxy.pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while proxy.running():
        assert time.monotonic() < deadline, "the proxy outlived SIGKILL"
        time.sleep(0.05)

    # The mirror comes back (empty, on a new address); repair runs elsewhere, from the config.
    with MotoBackend(tmp_path / "reborn", name="reborn-mirror") as reborn:
        reborn.client().create_bucket(Bucket=bucket)
        mark = reborn.request_count()
        config = write_config(
            tmp_path,
            config_text(moto_auth, reborn.endpoint, moto_plain.endpoint, journal_bucket),
            "repair.yaml",
        )
        started = [
            subprocess.Popen(
                repair_command(config), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for _ in range(repairs)
        ]
        results = [(p.wait(120), *p.communicate()) for p in started]
        for code, out, err in results:
            assert code == 0, f"exit {code}\n{out}\n{err}"
        copied = Counter(
            line.split()[-1]
            for _, out, _ in results
            for line in out.splitlines()
            if line.startswith("copied")
        )
        assert copied == {f"{bucket}/{key}": 1 for key in written}, results

        puts = Counter(
            e.path for e in reborn.requests_since(mark) if e.method == "PUT" and "k/" in e.path
        )
        assert puts == {f"/{bucket}/{key}": 1 for key in written}, puts
        for key, data in written.items():
            got = reborn.client().get_object(Bucket=bucket, Key=key)["Body"].read()
            assert sha(got) == sha(data)
        assert journal_keys(moto_plain, journal_bucket) == [], "entries and claims are gone"

        again = subprocess.run(repair_command(config), capture_output=True, text=True, timeout=60)
        assert again.returncode == 0 and "0 entries" in again.stderr, again.stderr


def test_a_failed_repair_keeps_its_entry_with_the_reason(
    moto_auth: MotoBackend, moto_plain: MotoBackend, tmp_path: Path
) -> None:
    """An entry whose mirror is still down stays, its reason updated, with no claim left over."""
    bucket, journal_bucket = unique_bucket_name("loose"), unique_bucket_name("journal")
    moto_auth.client().create_bucket(Bucket=bucket)
    moto_plain.client().create_bucket(Bucket=journal_bucket)
    moto_auth.client().put_object(Bucket=bucket, Key="k", Body=b"on the target")
    entry = {"primary": "main", "mirror": "copy", "bucket": bucket, "key": "k"}
    entry |= {"operation": "PutObject", "reason": "status 503", "time": "2026-01-01T00:00:00Z"}
    entry |= {"mirror_bucket": "", "mirror_key": ""}
    name = f"{PREFIX}20260101T000000.000000Z-0123456789abcdef.json"
    moto_plain.client().put_object(Bucket=journal_bucket, Key=name, Body=json.dumps(entry))
    config = write_config(
        tmp_path, config_text(moto_auth, nobody_listens(), moto_plain.endpoint, journal_bucket)
    )
    result = subprocess.run(repair_command(config), capture_output=True, text=True, timeout=90)
    assert result.returncode == 1, result.stderr
    assert result.stdout.startswith("failed") and "1 entries, 1 failed" in result.stderr
    assert journal_keys(moto_plain, journal_bucket) == [name]
    kept = json.loads(
        moto_plain.client().get_object(Bucket=journal_bucket, Key=name)["Body"].read()
    )
    assert kept["reason"].startswith("repair failed: ServiceUnavailable"), kept
    assert {k: v for k, v in kept.items() if k != "reason"} == {
        k: v for k, v in entry.items() if k != "reason"
    }


def test_a_journal_store_that_is_down_does_not_fail_the_write(
    start_proxy: StartProxy, moto_auth: MotoBackend, tmp_path: Path
) -> None:
    bucket = unique_bucket_name("loose")
    moto_auth.client().create_bucket(Bucket=bucket)
    proxy = start_proxy(config_text(moto_auth, nobody_listens(), nobody_listens(), "journal"))
    data = os.urandom(64 * 1024)
    answer = proxy.client(KEY, SECRET).put_object(Bucket=bucket, Key="kept", Body=data)
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    stored = moto_auth.client().get_object(Bucket=bucket, Key="kept")["Body"].read()
    assert sha(stored) == sha(data)
    metrics = metric_lines(proxy)
    assert 's3router_mirror_failures_total{backend="copy",operation="PutObject"} 1.0' in metrics
    journal = "s3://journal/journal/mirror/"
    assert f's3router_mirror_journal_failures_total{{journal="{journal}"}} 1.0' in metrics
    errors = [
        json.loads(line)
        for line in proxy.log_text().splitlines()
        if line.startswith("{") and "cannot journal" in line
    ]
    assert len(errors) == 1 and errors[0]["level"] in ("ERROR", "error"), errors
    assert f"copy missed {bucket}/kept" in errors[0]["message"], errors
    assert SECRET not in proxy.log_text()


def test_a_live_claim_is_left_to_its_holder_and_an_expired_one_taken_over(
    moto_auth: MotoBackend, moto_plain: MotoBackend, tmp_path: Path
) -> None:
    """Claims another repair holds: a live one keeps its entry untouched, an expired one (a run
    that died) is taken over and the entry repaired."""
    bucket, journal_bucket = unique_bucket_name("loose"), unique_bucket_name("journal")
    for store in (moto_auth, moto_plain):
        store.client().create_bucket(Bucket=bucket)
    moto_plain.client().create_bucket(Bucket=journal_bucket)
    journal = moto_plain.client()
    names = {}
    for key, expires in (("live", time.time() + 3600), ("dead", time.time() - 1)):
        moto_auth.client().put_object(Bucket=bucket, Key=key, Body=key.encode() * 1000)
        entry = {"primary": "main", "mirror": "copy", "bucket": bucket, "key": key}
        entry |= {"operation": "PutObject", "reason": "status 503", "time": "", "mirror_key": ""}
        name = names[key] = f"{PREFIX}20260101T000000.000000Z-{key}.json"
        journal.put_object(Bucket=journal_bucket, Key=name, Body=json.dumps(entry))
        claim = {"holder": "another-run", "expires": expires}
        journal.put_object(Bucket=journal_bucket, Key=name + ".claim", Body=json.dumps(claim))
    # The mirror is moto_plain itself: the config's `copy` and `journal` are the same store.
    config = write_config(
        tmp_path, config_text(moto_auth, moto_plain.endpoint, moto_plain.endpoint, journal_bucket)
    )
    result = subprocess.run(repair_command(config), capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr
    assert f"claimed      copy {bucket}/live" in result.stdout, result.stdout
    assert f"copied       copy {bucket}/dead" in result.stdout, result.stdout
    read = moto_plain.client().get_object(Bucket=bucket, Key="dead")["Body"].read()
    assert read == b"dead" * 1000
    assert journal_keys(moto_plain, journal_bucket) == [names["live"], names["live"] + ".claim"]
    live = json.loads(
        journal.get_object(Bucket=journal_bucket, Key=names["live"] + ".claim")["Body"].read()
    )
    assert live["holder"] == "another-run"
    with pytest.raises(ClientError) as missing:
        moto_plain.client().head_object(Bucket=bucket, Key="live")
    assert missing.value.response["Error"]["Code"] in ("404", "NoSuchKey")
