"""Real tools through the proxy with their default settings: aws-cli sync, s3fs/fsspec.

s3fs pins its own botocore (through aiobotocore), which conflicts with aws-cli's exact pin,
so it runs from a venv of its own, created once and kept under .cache/ in the repository.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from harness import (
    PLAIN_ACCESS_KEY_ID,
    PLAIN_SECRET_ACCESS_KEY,
    MotoBackend,
    ProxyProcess,
    StartProxy,
    aws_cli,
    unique_bucket_name,
)

REPO = Path(__file__).resolve().parents[2]
KEY, SECRET = "AKIACLIENTS", "clients-secret"


@pytest.fixture
def proxy(start_proxy: StartProxy, moto_plain: MotoBackend, moto_auth: MotoBackend) -> ProxyProcess:
    return start_proxy(
        f"""
        backends:
          lake:
            endpoint: "{moto_auth.endpoint}"
            access_key_id: "{moto_auth.access_key_id}"
            secret_access_key: "{moto_auth.secret_access_key}"
          store:
            endpoint: "{moto_plain.endpoint}"
            access_key_id: "{PLAIN_ACCESS_KEY_ID}"
            secret_access_key: "{PLAIN_SECRET_ACCESS_KEY}"
        clients:
          - {{name: tools, access_key_id: "{KEY}", secret_access_key: "{SECRET}"}}
        routing:
          rules:
            - {{pattern: "lakefs-*", target: lake}}
          default_target: store
        """
    )


def tree(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_aws_cli_sync_both_ways(
    proxy: ProxyProcess, moto_auth: MotoBackend, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    for name, size in {
        "a.txt": 10,
        "dir/b.bin": 100_000,
        "dir/sub dir/c+d.bin": 9 * 1024 * 1024,  # multipart
        "ü/é.txt": 5,
    }.items():
        path = source / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
        # Files from before the upload, as a user's are: `aws s3 sync` uploads again when a
        # file's mtime is after the object's LastModified, which has whole seconds, so a file
        # written and uploaded within one second would look newer than its own upload.
        past = path.stat().st_mtime - 60
        os.utime(path, (past, past))
    bucket = unique_bucket_name("lakefs")

    def cli(*args: str) -> str:
        result = aws_cli(proxy.endpoint, KEY, SECRET, *args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        return result.stdout

    cli("s3", "mb", f"s3://{bucket}")
    cli("s3", "sync", str(source), f"s3://{bucket}/main/data")
    direct = moto_auth.client()
    stored = {
        o["Key"] for o in direct.list_objects_v2(Bucket=bucket, Prefix="main/data/")["Contents"]
    }
    assert stored == {f"main/data/{name}" for name in tree(source)}
    # A second sync finds nothing to do.
    assert cli("s3", "sync", str(source), f"s3://{bucket}/main/data").strip() == ""
    back = tmp_path / "back"
    cli("s3", "sync", f"s3://{bucket}/main/data", str(back))
    assert tree(back) == tree(source)
    listing = cli("s3", "ls", "--recursive", f"s3://{bucket}/")
    assert "main/data/dir/sub dir/c+d.bin" in listing
    cli("s3", "rm", "--recursive", f"s3://{bucket}/main/")
    assert direct.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    cli("s3", "rb", f"s3://{bucket}")


@pytest.fixture(scope="session")
def s3fs_python() -> Path:
    venv = REPO / ".cache" / "s3fs-venv"
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import s3fs"]
    if not python.exists() or subprocess.run(check, capture_output=True).returncode != 0:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "s3fs"],
            check=True,
            timeout=600,
        )
    return python


S3FS_SCRIPT = textwrap.dedent(
    """
    import hashlib, json, sys
    import s3fs

    endpoint, key, secret, bucket = sys.argv[1:5]
    fs = s3fs.S3FileSystem(
        key=key, secret=secret, client_kwargs={"endpoint_url": endpoint, "region_name": "us-east-1"}
    )
    big = bytes(range(256)) * 40000  # ~10 MB: s3fs writes it in parts
    fs.pipe(f"{bucket}/main/small.txt", b"hello s3fs")
    with fs.open(f"{bucket}/main/dir/big.bin", "wb", block_size=5 * 2**20) as f:
        f.write(big)
    out = {
        "small": fs.cat(f"{bucket}/main/small.txt").decode(),
        "big": hashlib.sha256(fs.cat(f"{bucket}/main/dir/big.bin")).hexdigest(),
        "expected_big": hashlib.sha256(big).hexdigest(),
        "ls": sorted(fs.ls(f"{bucket}/main/")),
        "find": sorted(fs.find(f"{bucket}/")),
        "size": fs.size(f"{bucket}/main/dir/big.bin"),
        "range": fs.cat_file(f"{bucket}/main/dir/big.bin", start=256, end=512).hex(),
    }
    fs.rm(f"{bucket}/main/small.txt")
    out["after_rm"] = sorted(fs.find(f"{bucket}/"))
    print(json.dumps(out))
    """
)


def test_s3fs_reads_writes_lists(
    proxy: ProxyProcess, moto_plain: MotoBackend, s3fs_python: Path
) -> None:
    bucket = unique_bucket_name("fsspec")
    # s3fs's mkdir sends a us-east-1 LocationConstraint, which S3 itself refuses.
    proxy.client(KEY, SECRET).create_bucket(Bucket=bucket)
    result = subprocess.run(
        [str(s3fs_python), "-c", S3FS_SCRIPT, proxy.endpoint, KEY, SECRET, bucket],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "AWS_EC2_METADATA_DISABLED": "true"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["small"] == "hello s3fs"
    assert out["big"] == out["expected_big"]
    assert out["ls"] == [f"{bucket}/main/dir", f"{bucket}/main/small.txt"]
    assert out["find"] == [f"{bucket}/main/dir/big.bin", f"{bucket}/main/small.txt"]
    assert out["size"] == 256 * 40000
    assert out["range"] == bytes(range(256)).hex()
    assert out["after_rm"] == [f"{bucket}/main/dir/big.bin"]
    stored = moto_plain.client().get_object(Bucket=bucket, Key="main/dir/big.bin")["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == out["expected_big"]
