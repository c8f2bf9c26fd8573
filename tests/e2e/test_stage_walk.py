"""One request followed from the front server to the backend and back: it passes through each
stage of `serving/handler.py` once, in order, and then the backend sees it once.

This is the one end-to-end test that runs the proxy inside the test process (its real front
server on a loopback port, its real handler, a moto backend in its own process, boto3 as the
client), because the stages are watched by wrapping the names the handler calls them by.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import MotoBackend, boto3_client, free_port, unique_bucket_name, write_config

from s3router_proxy.config.load import load_config
from s3router_proxy.serving import handler as handler_module
from s3router_proxy.serving.handler import ProxyServer

KEY, SECRET = "AKIASTAGEWALK", "stage-walk-secret"
BUCKET = unique_bucket_name("walk")
# The handler's stages in the order `_serve` runs them; `bucket_answer` and `copies_across`
# are where a request may leave the ordinary path.
ORDER = [
    "parse",
    "authenticate",
    "authorize",
    "bucket_answer",
    "route",
    "locate_copy_source",
    "copies_across",
    "plan_body",
    "answer_forwarded",
]


class Walk:
    """The stages each request passed, by the request's bucket and key as the client named."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, Any]] = []
        self.lock = threading.Lock()

    def note(self, name: str, exchange: Any) -> None:
        with self.lock:
            self.steps.append((name, exchange))

    def take(self) -> list[tuple[str, str]]:
        """The stages entered since the last take, each with the request as `parse` named it."""
        with self.lock:
            steps, self.steps = self.steps, []
        return [(name, _named(exchange.request)) for name, exchange in steps]


def _named(request: Any) -> str:
    return "" if request is None else f"{request.operation} {request.bucket}/{request.key}"


def watched(walk: Walk, name: str, stage: Callable[..., Any]) -> Callable[..., Any]:
    """`stage`, noted as it is entered: before its answer can reach the client."""
    if asyncio.iscoroutinefunction(stage):

        async def async_stage(exchange: Any) -> Any:
            walk.note(name, exchange)
            return await stage(exchange)

        return async_stage

    def sync_stage(exchange: Any) -> Any:
        walk.note(name, exchange)
        return stage(exchange)

    return sync_stage


@pytest.fixture(scope="module")
def proxy(
    moto_plain: MotoBackend, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Walk]]:
    moto_plain.client().create_bucket(Bucket=BUCKET)
    directory: Path = tmp_path_factory.mktemp("stage-walk")
    port = free_port()
    config = load_config(
        write_config(
            directory,
            f"""
            router:
              listen_address: "127.0.0.1:{port}"
              admin_address: "off"
            backends:
              store:
                endpoint: "{moto_plain.endpoint}"
                access_key_id: "{moto_plain.access_key_id}"
                secret_access_key: "{moto_plain.secret_access_key}"
            clients:
              - {{name: walker, access_key_id: "{KEY}", secret_access_key: "{SECRET}"}}
            routing:
              default_target: store
            """,
        ),
        env={},
    )
    walk = Walk()
    patch = pytest.MonkeyPatch()
    for name in ORDER:
        patch.setattr(handler_module, name, watched(walk, name, getattr(handler_module, name)))
    loop = asyncio.new_event_loop()
    server = ProxyServer(config)
    loop.run_until_complete(server.start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}", walk
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()
        patch.undo()


def test_a_put_and_a_get_pass_each_stage_once_in_order(
    proxy: tuple[str, Walk], moto_plain: MotoBackend
) -> None:
    endpoint, walk = proxy
    client = boto3_client(endpoint, KEY, SECRET)
    body = os.urandom(300_000)
    walk.take()
    mark = moto_plain.request_count()
    client.put_object(Bucket=BUCKET, Key="walk/object.bin", Body=body)
    assert walk.take() == [(name, f"PutObject {BUCKET}/walk/object.bin") for name in ORDER]
    puts = [e for e in moto_plain.requests_since(mark) if "walk/object.bin" in e.path]
    assert [e.method for e in puts] == ["PUT"]  # the backend saw it once

    mark = moto_plain.request_count()
    got = client.get_object(Bucket=BUCKET, Key="walk/object.bin")["Body"].read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(body).digest()  # and back
    assert walk.take() == [(name, f"GetObject {BUCKET}/walk/object.bin") for name in ORDER]
    gets = [e for e in moto_plain.requests_since(mark) if "walk/object.bin" in e.path]
    assert [e.method for e in gets] == ["GET"]


def test_an_answer_that_takes_the_request_whole_ends_its_walk_there(
    proxy: tuple[str, Walk],
) -> None:
    endpoint, walk = proxy
    walk.take()
    names = [b["Name"] for b in boto3_client(endpoint, KEY, SECRET).list_buckets()["Buckets"]]
    assert BUCKET in names
    steps = walk.take()
    assert [name for name, _ in steps] == ORDER[: ORDER.index("bucket_answer") + 1]


def test_a_refused_request_stops_at_the_stage_that_refused_it(proxy: tuple[str, Walk]) -> None:
    endpoint, walk = proxy
    walk.take()
    wrong = boto3_client(endpoint, KEY, "not-the-secret")
    with pytest.raises(Exception, match="SignatureDoesNotMatch"):
        wrong.get_object(Bucket=BUCKET, Key="walk/object.bin")
    # `authenticate` refused it: no stage after it ran.
    assert [name for name, _ in walk.take()] == ["parse", "authenticate"]
