"""Serial boto3 calls, as most users make them: put_object then get_object, 4 KiB, one at a time.

Run as `python -m bench.boto_loop SPEC_JSON` (pinned to the client CPU by the runner); prints one
JSON line: ops/s per target and operation. Direct targets are boto3 straight at nginx, which
ignores the signature; the proxy verifies it. Checksums are `when_required` so PutObject is a
plain body with a signed payload hash (botocore signs the payload over plain http), which the
proxy verifies while streaming.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any


def _client(endpoint: str, key_id: str, secret: str, region: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        region_name=region,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1, "mode": "standard"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def _loop(client: Any, operation: str, bucket: str, seconds: float, body: bytes) -> float:
    """Calls per second of one operation over `seconds`, cycling through 64 keys."""
    calls = 0
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        key = f"boto-{calls % 64:04d}"
        if operation == "put":
            client.put_object(Bucket=bucket, Key=key, Body=body)
        else:
            data = client.get_object(Bucket=bucket, Key=key)["Body"].read()
            if len(data) != len(body):
                raise RuntimeError(f"get_object {key}: {len(data)} bytes, expected {len(body)}")
        calls += 1
        now = time.perf_counter()
        if now >= deadline:
            return calls / (now - started)


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    body = b"b" * spec["size"]
    clients = {
        name: _client(url, spec["key_id"], spec["secret"], spec["region"])
        for name, url in spec["targets"].items()
    }
    for client in clients.values():  # connect, and make sure every key exists for the GETs
        for i in range(64):
            client.put_object(Bucket=spec["bucket"], Key=f"boto-{i:04d}", Body=body)
    results: dict[str, dict[str, float]] = {name: {} for name in clients}
    for operation in ("put", "get"):
        for name in spec["order"]:
            results[name][operation] = _loop(
                clients[name], operation, spec["bucket"], spec["seconds"], body
            )
    print(json.dumps(results), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
