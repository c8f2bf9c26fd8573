"""The pure parts of cross-backend copies, and how a long copy is answered."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import boto3
import pytest
from aiohttp import ClientSession
from botocore.config import Config
from botocore.exceptions import ClientError

from s3router_proxy.backends.transfer import backend_failure
from s3router_proxy.config.load import load_config
from s3router_proxy.config.model import BackendConfig
from s3router_proxy.config.reader import ConfigError
from s3router_proxy.http.messages import Request, Response
from s3router_proxy.http.server import FrontServer
from s3router_proxy.multi.copyacross import CopyResult, answer_copy
from s3router_proxy.s3.errors import S3Error
from s3router_proxy.telemetry.accessrecord import RequestRecord

MiB = 1024 * 1024


def test_backend_failures_keep_the_code_but_not_the_backend_message() -> None:
    body = b"<Error><Code>NoSuchBucket</Code><Message>backend-bucket-x</Message></Error>"
    error = backend_failure(404, body, "reading the copy source")
    assert (error.code, error.status) == ("NoSuchBucket", 404)
    assert "backend-bucket-x" not in error.message
    assert backend_failure(412, b"", "x").code == "PreconditionFailed"
    assert backend_failure(304, b"", "x").status == 412
    assert backend_failure(404, b"", "x").code == "NoSuchKey"
    assert backend_failure(503, b"<Code>SlowDown</Code>", "x").code == "SlowDown"
    assert (backend_failure(502, b"", "x").code, backend_failure(502, b"", "x").status) == (
        "InternalError",
        500,
    )


def test_copy_result_document_and_headers() -> None:
    result = CopyResult('"abc-2"', "2026-01-01T00:00:00.000Z", "v2", "v1")
    assert result.xml().endswith(
        b"<LastModified>2026-01-01T00:00:00.000Z</LastModified>"
        b'<ETag>"abc-2"</ETag></CopyObjectResult>'
    )
    assert result.headers() == {"x-amz-version-id": "v2", "x-amz-copy-source-version-id": "v1"}
    assert CopyResult('"e"', "t").headers() == {}


# -- answering a copy that takes long --------------------------------------------------------------


async def served(work: Callable[[], Awaitable[CopyResult]]) -> tuple[int, bytes]:
    """Serve one request whose answer is `answer_copy(work())` with a 0.05 s keepalive."""

    async def handler(request: Request) -> Response:
        try:
            return await answer_copy(request, RequestRecord("REQ1"), work(), keepalive=0.05)
        except S3Error as error:
            return Response(status=error.status, body=error.code.encode())

    async with (
        serving(handler) as url,
        ClientSession() as session,
        session.put(url + "/b/k") as response,
    ):
        return response.status, await response.read()


@contextlib.asynccontextmanager
async def serving(handler: Callable[[Request], Awaitable[Response]]) -> AsyncIterator[str]:
    """The proxy's own HTTP server on a free port, answering with `handler`."""
    server = FrontServer(handler)
    port = await server.start("127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await server.close()


RESULT = CopyResult('"etag"', "2026-01-01T00:00:00.000Z")


async def test_a_quick_copy_is_answered_at_once() -> None:
    async def quick() -> CopyResult:
        return RESULT

    assert await served(quick) == (200, RESULT.xml())


async def test_a_quick_failure_is_an_ordinary_error() -> None:
    async def refused() -> CopyResult:
        raise S3Error("PreconditionFailed", status=412)

    assert await served(refused) == (412, b"PreconditionFailed")


async def test_a_long_copy_sends_whitespace_then_its_result() -> None:
    async def slow() -> CopyResult:
        await asyncio.sleep(0.3)
        return RESULT

    status, body = await served(slow)
    assert status == 200
    declaration, _, rest = body.partition(b"?>")
    assert declaration.startswith(b"<?xml")
    assert rest.startswith(b"\n  ")  # kept alive while copying
    assert rest.strip() == RESULT.xml().partition(b"?>")[2].strip()


async def test_a_long_copy_that_fails_ends_with_an_error_document() -> None:
    async def broken() -> CopyResult:
        await asyncio.sleep(0.2)
        raise S3Error("ServiceUnavailable", "Backend 'src' could not be reached; please retry.")

    status, body = await served(broken)
    assert status == 200  # as S3 does: the status is gone, the document tells
    assert body.startswith(b"<?xml")
    assert body.count(b"<?xml") == 1
    document = body.partition(b"?>")[2].strip()
    assert document.startswith(b"<Error><Code>ServiceUnavailable</Code>")
    assert b"<RequestId>REQ1</RequestId>" in document


async def test_boto3_reads_a_long_copys_result_and_its_error() -> None:
    """What SDKs do with S3's 200-then-whitespace answers: botocore, for one."""
    outcomes: list[Callable[[], Awaitable[CopyResult]]] = []

    async def handler(request: Request) -> Response:
        return await answer_copy(request, RequestRecord("REQ2"), outcomes.pop(0)(), keepalive=0.05)

    async def slow() -> CopyResult:
        await asyncio.sleep(0.2)
        return RESULT

    async def broken() -> CopyResult:
        await asyncio.sleep(0.2)
        raise S3Error("ServiceUnavailable", "Backend 'src' could not be reached; please retry.")

    async with serving(handler) as url:
        client = boto3.session.Session(
            aws_access_key_id="k", aws_secret_access_key="s", region_name="us-east-1"
        ).client(
            "s3",
            endpoint_url=url,
            config=Config(retries={"total_max_attempts": 1}, s3={"addressing_style": "path"}),
        )

        def copy() -> dict[str, object]:
            return client.copy_object(Bucket="b", Key="k", CopySource="src/key")

        outcomes.append(slow)
        answer = await asyncio.to_thread(copy)
        assert answer["CopyObjectResult"]["ETag"] == '"etag"'
        outcomes.append(broken)
        with pytest.raises(ClientError) as caught:
            await asyncio.to_thread(copy)
        assert caught.value.response["Error"]["Code"] == "ServiceUnavailable"


# -- configuration --------------------------------------------------------------------------------

BACKEND = """
backends:
  a:
    endpoint: "http://127.0.0.1:9000"
    access_key_id: "k"
    secret_access_key: "s"
{options}
routing:
  default_target: a
"""


def backend_config(tmp_path: Path, options: str) -> BackendConfig:
    path = tmp_path / "c.yaml"
    path.write_text(BACKEND.format(options=options), encoding="utf-8")
    return load_config(path, env={}).backends["a"]


def test_copy_sizes_default_and_parse(tmp_path: Path) -> None:
    default = backend_config(tmp_path, "")
    assert (default.multipart_copy_threshold, default.copy_part_size) == (256 * MiB, 64 * MiB)
    chosen = backend_config(
        tmp_path, '    multipart_copy_threshold: "8MiB"\n    copy_part_size: 5242880'
    )
    assert (chosen.multipart_copy_threshold, chosen.copy_part_size) == (8 * MiB, 5 * MiB)


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("copy_part_size: 4MiB", "between 5MiB and 5GiB"),
        ("copy_part_size: 6GiB", "between 5MiB and 5GiB"),
        ("multipart_copy_threshold: 0", "between 1 byte and 5GiB"),
        ("multipart_copy_threshold: lots", "is not a size"),
        ("multipart_copy_threshold: true", "is not a size"),
    ],
)
def test_bad_copy_sizes_are_refused_with_their_line(
    tmp_path: Path, option: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        backend_config(tmp_path, f"    {option}")
    assert ":7: backends.a." in str(caught.value)
    assert message in str(caught.value)
