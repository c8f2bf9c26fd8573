"""Microbenchmark: the proxy's SigV4 work per request vs botocore's signer.

Ours, per typical request: `parse_auth` + `check_time` + `verify_signature` (the client's
signature) + `amz_date` + `sign_request` (toward the backend), with a warm signing-key cache, as
in a running proxy. Measured for a boto3-style header-signed GetObject and for a presigned
GetObject. botocore's reference: `S3SigV4Auth.add_auth` on the same GetObject (signing only).
`parse_request` and each SigV4 step are timed on their own, for context, and so is a fixed
pure-Python loop (`calibration_loop`, 10,000 additions): on a shared machine its time shows how
much slower than usual this CPU ran, so runs can be compared.

Run as `python -m bench.sigv4_micro [--quick]`; prints one JSON line of CPU microseconds per
call (thread CPU time, so time the scheduler gave to other processes is not counted; median and
best of several repeats).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

SECRET = "bench-client-secret-0123456789abcdefghij"
KEY_ID = "bench-client-key"
HOST = "127.0.0.1:8080"
BACKEND_HOST = "127.0.0.1:9000"
PATH = "/bench/reports/2026/obj-0001.csv"


def _time(call: Callable[[], object], *, repeats: int, seconds: float) -> tuple[float, float]:
    """(median, best) microseconds per call over `repeats` batches of about `seconds` each."""
    call()
    batch = 1
    while True:  # size a batch to last `seconds`
        started = time.thread_time()
        for _ in range(batch):
            call()
        elapsed = time.thread_time() - started
        if elapsed >= seconds / 4 or batch >= 1 << 22:
            batch = max(1, int(batch * seconds / max(elapsed, 1e-9)))
            break
        batch *= 4
    samples = []
    for _ in range(repeats):
        started = time.thread_time()
        for _ in range(batch):
            call()
        samples.append((time.thread_time() - started) / batch * 1e6)
    return statistics.median(samples), min(samples)


def _botocore_request(now: float) -> Any:
    """A boto3-style signed GetObject, as an AWSRequest (headers after add_auth)."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(
        method="GET",
        url=f"http://{HOST}{PATH}",
        headers={
            "User-Agent": "Boto3/1.40.0 md/Botocore#1.40.0 ua/2.1 os/linux lang/python#3.11.7",
            "Accept-Encoding": "identity",
            "amz-sdk-invocation-id": "0b4a8e4c-6a0f-4e57-9d0b-4a3a4a6b5c1d",
            "amz-sdk-request": "attempt=1; max=1",
        },
    )
    request.context["timestamp"] = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    S3SigV4Auth(Credentials(KEY_ID, SECRET), "s3", "us-east-1").add_auth(request)
    return request


def main() -> int:
    from botocore.auth import S3SigV4Auth
    from botocore.credentials import Credentials as BotocoreCredentials
    from multidict import CIMultiDict, CIMultiDictProxy

    from s3router_proxy.auth import sigv4
    from s3router_proxy.auth.requesttime import amz_date
    from s3router_proxy.auth.signer import Credentials, OutgoingRequest, sign_request
    from s3router_proxy.s3.request import parse_request

    quick = "--quick" in sys.argv
    repeats, seconds = (3, 0.05) if quick else (9, 0.3)
    now = time.time()

    # A header-signed GET exactly as boto3 sends it.
    signed = _botocore_request(now)
    header_items = [("Host", HOST), *((k, str(v)) for k, v in signed.headers.items())]
    headers = CIMultiDictProxy(CIMultiDict(header_items))
    header_request = parse_request("GET", PATH, headers)

    # The same GET as a presigned URL (botocore's own presigner).
    import botocore.session
    from botocore.config import Config

    presigner = botocore.session.get_session().create_client(
        "s3",
        endpoint_url=f"http://{HOST}",
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
        region_name="us-east-1",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    url = presigner.generate_presigned_url(
        "get_object", Params={"Bucket": "bench", "Key": PATH.split("/", 2)[2]}, ExpiresIn=3600
    )
    raw = url.split(HOST, 1)[1]
    presigned_headers = CIMultiDictProxy(
        CIMultiDict([("Host", HOST), ("User-Agent", "curl/7.88.1"), ("Accept", "*/*")])
    )
    presigned_request = parse_request("GET", raw, presigned_headers)

    backend_credentials = Credentials("backend-key", "backend-secret")

    def sign() -> object:
        # Built per request, as `Backend.signed_target` builds it.
        outgoing = OutgoingRequest("GET", PATH, "", {"host": BACKEND_HOST}, sigv4.EMPTY_SHA256)
        return sign_request(
            outgoing, backend_credentials, region="us-east-1", amz_date=amz_date(time.time())
        )

    def ours(request: Any) -> Callable[[], object]:
        def run() -> object:
            auth = sigv4.parse_auth(request)
            assert auth is not None
            sigv4.check_time(auth, now)
            sigv4.verify_signature(request, auth, SECRET)
            return sign()

        return run

    auth = sigv4.parse_auth(header_request)
    assert auth is not None

    def calibration() -> int:
        total = 0
        for i in range(10_000):
            total += i
        return total

    botocore_request = _botocore_request(now)
    botocore_signer = S3SigV4Auth(
        BotocoreCredentials("backend-key", "backend-secret"), "s3", "us-east-1"
    )

    results: dict[str, dict[str, float] | str] = {}
    cases: dict[str, Callable[[], object]] = {
        "ours_header_get": ours(header_request),
        "ours_presigned_get": ours(presigned_request),
        "botocore_add_auth": lambda: botocore_signer.add_auth(botocore_request),
        "parse_request": lambda: parse_request("GET", PATH, headers),
        "parse_auth": lambda: sigv4.parse_auth(header_request),
        "check_time": lambda: sigv4.check_time(auth, now),
        "verify_signature": lambda: sigv4.verify_signature(header_request, auth, SECRET),
        "sign_request": sign,
        # A fixed pure-Python loop: compares how fast this CPU ran against other runs.
        "calibration_loop": calibration,
    }
    for name, call in cases.items():
        try:
            median, best = _time(call, repeats=repeats, seconds=seconds)
        except Exception as exc:  # the API moved: report it, never fail the whole run
            results[name] = f"error: {type(exc).__name__}: {exc}"
            continue
        results[name] = {"median_us": round(median, 2), "best_us": round(best, 2)}
    print(json.dumps(results), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
