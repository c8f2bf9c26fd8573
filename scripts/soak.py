"""Soak test: the proxy's memory and open file descriptors stay flat under sustained load.

    python scripts/soak.py --minutes 10 --concurrency 200

starts moto_server and the proxy (as separate processes, from this venv), then runs mixed
S3 operations (PUT, GET, HEAD, ranged GET, ListObjectsV2, DELETE, and GETs of missing keys)
from `--concurrency` concurrent client connections for `--minutes`. Every 10 s it samples the
proxy's RSS and open FD count. It exits 1 if any request failed unexpectedly, or if, after the
warm-up (the first `--warmup` seconds), RSS grew by more than `--rss-tolerance-mib` or the FD
count by more than `--fd-tolerance` between the first and the last sample; 0 otherwise.

Requests are SigV4-signed with botocore's own signer and sent with aiohttp (no connection limit
per host), so `--concurrency` is the number of simultaneously open client connections.
`run_load` is also what the short CI variant in tests/e2e/test_faults.py runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import hashlib
import os
import random
import resource
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import aiohttp
import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ROOT = Path(__file__).resolve().parent.parent
KEY, SECRET = "AKIASOAK", "soak-secret"


def sign_headers(
    method: str, url: str, key: str, secret: str, body: bytes = b"", extra: dict | None = None
) -> dict[str, str]:
    request = AWSRequest(method=method, url=url, headers=dict(extra or {}), data=body)
    signer = botocore.auth.S3SigV4Auth(Credentials(key, secret), "s3", "us-east-1")
    payload = hashlib.sha256(body).hexdigest()
    signer.payload = lambda _request: payload  # type: ignore[method-assign]
    with mock.patch.object(
        botocore.auth,
        "get_current_datetime",
        return_value=dt.datetime.now(dt.UTC).replace(tzinfo=None),
    ):
        signer.add_auth(request)
    return dict(request.headers.items())


@dataclass
class LoadResult:
    requests: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    operations: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def error(self, what: str) -> None:
        self.errors[what] += 1
        if len(self.examples) < 10:
            self.examples.append(what)


def proc_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def proc_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def raise_nofile(wanted: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE towards `wanted` (up to the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(soft, wanted), hard) if hard != resource.RLIM_INFINITY else max(soft, wanted)
    if target != soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


async def _worker(
    session: aiohttp.ClientSession,
    endpoint: str,
    bucket: str,
    key: str,
    secret: str,
    deadline: float,
    result: LoadResult,
    rng: random.Random,
    *,
    count: int | None,
    jitter: float,
    pause: float,
    list_bucket: str | None,
) -> None:
    own = f"w-{uuid.uuid4().hex[:12]}"
    if jitter:
        await asyncio.sleep(rng.uniform(0, jitter))
    stored: dict[str, bytes] = {}
    done = 0
    while True:
        if done and pause:
            await asyncio.sleep(rng.uniform(0, pause))
        done += 1
        if stored:
            choice = rng.choice(["put", "get", "get", "head", "range", "list", "delete", "miss"])
            if choice == "list" and not list_bucket:
                choice = "get"
        else:
            choice = "put"
        name = (
            rng.choice(list(stored)) if stored and choice != "put" else f"{own}/{rng.randrange(4)}"
        )
        url = f"{endpoint}/{bucket}/{name}"
        method, body, extra, ok = "GET", b"", {}, (200,)
        if choice == "put":
            method, body = "PUT", rng.randbytes(rng.choice([0, 10, 1000, 20_000, 200_000]))
        elif choice == "head":
            method = "HEAD"
        elif choice == "range":
            extra = {"Range": "bytes=0-9"}
            ok = (206, 200, 416)
        elif choice == "list":
            # moto lists a bucket by walking all its keys: a concurrent delete in the same bucket
            # makes it fail with 500 (KeyError), so listings go to a bucket nobody changes.
            url = f"{endpoint}/{list_bucket}?list-type=2&prefix=p%2F&max-keys=20"
        elif choice == "delete":
            method, ok = "DELETE", (204,)
        elif choice == "miss":
            url, ok = f"{endpoint}/{bucket}/{own}/missing", (404,)
        headers = sign_headers(method, url, key, secret, body, extra)
        result.operations[choice] += 1
        try:
            async with session.request(method, url, headers=headers, data=body or None) as response:
                data = await response.read()
                result.requests += 1
                if response.status not in ok:
                    result.error(f"{choice} {response.status} {data[:200]!r}")
                elif choice == "put":
                    stored[name] = body
                elif (
                    choice == "get"
                    and hashlib.sha256(data).digest() != hashlib.sha256(stored[name]).digest()
                ):
                    result.error(f"get {name}: {len(data)} bytes, expected {len(stored[name])}")
                elif choice == "delete":
                    stored.pop(name, None)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            result.requests += 1
            result.error(f"{choice} {type(exc).__name__}: {exc}")
        if (count is not None and done >= count) or (count is None and time.monotonic() > deadline):
            return


async def run_load(
    endpoint: str,
    bucket: str,
    *,
    seconds: float,
    concurrency: int,
    key: str = KEY,
    secret: str = SECRET,
    count: int | None = None,
    on_tick: Callable[[LoadResult], None] | None = None,
    tick: float = 10.0,
    seed: int = 0,
    jitter: float = 0.0,
    pause: float = 0.0,
    list_bucket: str | None = None,
    own_connections: bool = False,
) -> LoadResult:
    """`concurrency` workers, each running mixed operations until `seconds` have passed.

    With `count`, every connection makes exactly that many requests (the first a PUT) and stops
    instead. `jitter` spreads each connection's first request over that many seconds, `pause`
    waits up to that long between two requests of a connection. Connections stay open (pooled)
    until every worker is done. ListObjectsV2 requests go to `list_bucket` (none without it),
    a bucket no one writes to during the run. Workers share one connection pool (an idle
    connection goes to whichever worker asks next), or with `own_connections` each worker has a
    connection of its own, so `concurrency` connections are open at once once all have started.
    `on_tick(result)` is called every `tick` seconds while the load runs.
    """
    result = LoadResult()
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=120, connect=30)
    async with contextlib.AsyncExitStack() as stack:
        session = await stack.enter_async_context(
            aiohttp.ClientSession(connector=connector, timeout=timeout)
        )
        sessions = [session] * concurrency
        if own_connections:
            sessions = [
                await stack.enter_async_context(
                    aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1), timeout=timeout)
                )
                for _ in range(concurrency)
            ]
        workers = [
            asyncio.create_task(
                _worker(
                    sessions[index],
                    endpoint,
                    bucket,
                    key,
                    secret,
                    deadline,
                    result,
                    random.Random(seed * 100_000 + index),
                    count=count,
                    jitter=jitter,
                    pause=pause,
                    list_bucket=list_bucket,
                )
            )
            for index in range(concurrency)
        ]

        async def ticker() -> None:
            while True:
                await asyncio.sleep(tick)
                if on_tick is not None:
                    on_tick(result)

        ticking = asyncio.create_task(ticker())
        try:
            await asyncio.gather(*workers)
        finally:
            ticking.cancel()
    return result


def _soak(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(ROOT / "tests" / "e2e"))
    from harness import (
        PLAIN_ACCESS_KEY_ID,
        PLAIN_SECRET_ACCESS_KEY,
        MotoBackend,
        ProxyProcess,
        write_config,
    )

    raise_nofile(args.concurrency * 4 + 1024)
    with tempfile.TemporaryDirectory(prefix="s3router-soak-") as temp:
        directory = Path(temp)
        with MotoBackend(directory) as moto:
            config = write_config(
                directory,
                f"""
                backends:
                  store:
                    endpoint: "{moto.endpoint}"
                    access_key_id: "{PLAIN_ACCESS_KEY_ID}"
                    secret_access_key: "{PLAIN_SECRET_ACCESS_KEY}"
                clients:
                  - name: "soak"
                    access_key_id: "{KEY}"
                    secret_access_key: "{SECRET}"
                routing:
                  default_target: store
                """,
            )
            with ProxyProcess(config, directory, log_level="warning") as proxy:
                bucket = f"soak-{uuid.uuid4().hex[:12]}"
                direct = moto.client()
                direct.create_bucket(Bucket=bucket)
                direct.create_bucket(Bucket=f"{bucket}-list")
                for index in range(30):
                    direct.put_object(Bucket=f"{bucket}-list", Key=f"p/{index}", Body=b"l")
                samples: list[tuple[float, float, int]] = []
                started = time.monotonic()

                def sample(result: LoadResult) -> None:
                    elapsed = time.monotonic() - started
                    rss, fds = proc_rss_mib(proxy.pid), proc_fds(proxy.pid)
                    samples.append((elapsed, rss, fds))
                    print(
                        f"[{elapsed:7.1f} s] requests={result.requests} "
                        f"errors={sum(result.errors.values())} rss={rss:.1f} MiB fds={fds}",
                        flush=True,
                    )

                result = asyncio.run(
                    run_load(
                        proxy.endpoint,
                        bucket,
                        seconds=args.minutes * 60,
                        concurrency=args.concurrency,
                        on_tick=sample,
                        tick=args.interval,
                        jitter=min(5.0, args.minutes * 6),
                        list_bucket=f"{bucket}-list",
                    )
                )
                time.sleep(2)
                sample(result)
    return verdict(result, samples, args)


def verdict(
    result: LoadResult, samples: list[tuple[float, float, int]], args: argparse.Namespace
) -> int:
    failed = False
    print(f"requests: {result.requests}, by operation: {dict(result.operations)}")
    if result.errors:
        failed = True
        print(f"FAIL: {sum(result.errors.values())} errors; first: {result.examples}")
    steady = [s for s in samples if s[0] >= args.warmup] or samples[-1:]
    if len(steady) >= 2:
        first, last = steady[0], steady[-1]
        rss_growth, fd_growth = last[1] - first[1], last[2] - first[2]
        print(
            f"after warm-up: RSS {first[1]:.1f} -> {last[1]:.1f} MiB, FDs {first[2]} -> {last[2]}"
        )
        if rss_growth > args.rss_tolerance_mib:
            failed = True
            print(f"FAIL: RSS grew {rss_growth:.1f} MiB (> {args.rss_tolerance_mib})")
        if fd_growth > args.fd_tolerance:
            failed = True
            print(f"FAIL: open FDs grew by {fd_growth} (> {args.fd_tolerance})")
    print("FAIL" if failed else "OK")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--interval", type=float, default=10.0, help="sampling period, seconds")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before the baseline")
    parser.add_argument("--rss-tolerance-mib", type=float, default=64.0)
    parser.add_argument("--fd-tolerance", type=int, default=50)
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.minutes > 24 * 60 or args.concurrency < 1:
        parser.error("--minutes must be in (0, 1440] and --concurrency at least 1")
    args.warmup = min(args.warmup, args.minutes * 60 / 3)
    return _soak(args)


if __name__ == "__main__":
    sys.exit(main())
