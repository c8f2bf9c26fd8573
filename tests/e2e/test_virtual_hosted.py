"""Virtual-hosted style (`bucket.s3.test`) for what the path-style tests cover: objects,
listings, multipart uploads, copies, DeleteObjects, bucket sub-resources, presigned URLs
(SigV4 and SigV2), and the hosts that are not a bucket's.

boto3 and urllib3 connect by name here, and there is no DNS: `s3.test` and every name under it
resolve to 127.0.0.1 in this test process only (`resolve_test_domains`), so the clients sign
and send the Host a real deployment would see. Every boto3 request's URL is recorded, to prove
it went virtual-hosted. The backend is moto with signature checks on: a request the proxy
re-signed for the wrong bucket or key fails loudly there.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from harness import (
    LOOPBACK,
    MotoBackend,
    ProxyProcess,
    boto3_client,
    unique_bucket_name,
    write_config,
)
from rawclient import send, sign

KEY, SECRET = "AKIAVIRTUAL", "virtual-secret"
DOMAIN = "s3.test"
OTHER_DOMAIN = "elsewhere.test"  # not a configured base domain
MAPPED = "vhost-mapped"  # a client's bucket name, kept as `data/` in the backend's PHYSICAL
PHYSICAL = unique_bucket_name("vhost-physical")


@pytest.fixture(autouse=True)
def resolve_test_domains(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.lower().rstrip(".").endswith((DOMAIN, OTHER_DOMAIN)):
            host = LOOPBACK
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture(scope="module")
def proxy(
    moto_auth: MotoBackend, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    directory = tmp_path_factory.mktemp("virtual-proxy")
    config = write_config(
        directory,
        f"""
router:
  virtual_host_domains: ["{DOMAIN}"]
backends:
  store:
    endpoint: "{moto_auth.endpoint}"
    access_key_id: "{moto_auth.access_key_id}"
    secret_access_key: "{moto_auth.secret_access_key}"
clients:
  - {{name: tester, access_key_id: "{KEY}", secret_access_key: "{SECRET}"}}
routing:
  rules:
    - {{pattern: "{MAPPED}", target: store, mapped_bucket: "{PHYSICAL}", mapped_prefix: "data/"}}
  default_target: store
""",
    )
    moto_auth.client().create_bucket(Bucket=PHYSICAL)
    with ProxyProcess(config, directory) as process:
        yield process


def recorded(client: BaseClient) -> list[str]:
    """The URL of every request `client` sends from now on."""
    urls: list[str] = []
    client.meta.events.register("before-send.s3", lambda request, **_: urls.append(request.url))
    return urls


def virtual_client(proxy: ProxyProcess, **config: Any) -> BaseClient:
    return boto3_client(
        f"http://{DOMAIN}:{proxy.port}", KEY, SECRET, s3={"addressing_style": "virtual"}, **config
    )


def all_virtual(urls: list[str], bucket: str, proxy: ProxyProcess) -> bool:
    return bool(urls) and all(
        url.startswith(f"http://{bucket}.{DOMAIN}:{proxy.port}/") for url in urls
    )


@pytest.fixture
def bucket(moto_auth: MotoBackend) -> str:
    name = unique_bucket_name("vhost")
    moto_auth.client().create_bucket(Bucket=name)
    return name


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("signature_version", ["s3v4", "s3"], ids=["sigv4", "sigv2"])
def test_objects_listings_and_deletes(
    proxy: ProxyProcess, moto_auth: MotoBackend, bucket: str, signature_version: str
) -> None:
    client = virtual_client(proxy, signature_version=signature_version)
    urls = recorded(client)
    keys = ["a/1.txt", "a/2 two+.txt", "a/b/3.txt", "z.txt"]
    for key in keys:
        client.put_object(Bucket=bucket, Key=key, Body=key.encode())
    assert client.get_object(Bucket=bucket, Key="a/2 two+.txt")["Body"].read() == b"a/2 two+.txt"
    assert client.head_object(Bucket=bucket, Key="z.txt")["ContentLength"] == len(b"z.txt")
    v2 = client.list_objects_v2(Bucket=bucket, Prefix="a/", Delimiter="/")
    assert [o["Key"] for o in v2["Contents"]] == ["a/1.txt", "a/2 two+.txt"]
    assert [p["Prefix"] for p in v2["CommonPrefixes"]] == ["a/b/"]
    v1 = client.list_objects(Bucket=bucket, Prefix="a/b")
    assert [o["Key"] for o in v1["Contents"]] == ["a/b/3.txt"]
    deleted = client.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "a/1.txt"}, {"Key": "a/2 two+.txt"}]}
    )
    assert sorted(d["Key"] for d in deleted["Deleted"]) == ["a/1.txt", "a/2 two+.txt"]
    left = moto_auth.client().list_objects_v2(Bucket=bucket)["Contents"]
    assert [o["Key"] for o in left] == ["a/b/3.txt", "z.txt"]
    assert all_virtual(urls, bucket, proxy), urls


def test_a_multipart_upload(proxy: ProxyProcess, moto_auth: MotoBackend, bucket: str) -> None:
    client = virtual_client(proxy)
    urls = recorded(client)
    parts = [os.urandom(5 * 1024 * 1024), os.urandom(1000)]
    upload_id = client.create_multipart_upload(Bucket=bucket, Key="big/object")["UploadId"]
    etags = [
        client.upload_part(
            Bucket=bucket, Key="big/object", UploadId=upload_id, PartNumber=n, Body=part
        )["ETag"]
        for n, part in enumerate(parts, 1)
    ]
    listed = client.list_parts(Bucket=bucket, Key="big/object", UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["ETag"]) for p in listed] == [(1, etags[0]), (2, etags[1])]
    uploads = client.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in uploads] == [("big/object", upload_id)]
    done = client.complete_multipart_upload(
        Bucket=bucket,
        Key="big/object",
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]},
    )
    # Where the object is, as the client addresses it: its bucket is in the host.
    assert done["Location"] == f"http://{bucket}.{DOMAIN}:{proxy.port}/big/object"
    assert (done["Bucket"], done["Key"]) == (bucket, "big/object")
    back = moto_auth.client().get_object(Bucket=bucket, Key="big/object")["Body"].read()
    assert sha256(back) == sha256(b"".join(parts))

    aborted = client.create_multipart_upload(Bucket=bucket, Key="gone")["UploadId"]
    client.upload_part(Bucket=bucket, Key="gone", UploadId=aborted, PartNumber=1, Body=b"x")
    client.abort_multipart_upload(Bucket=bucket, Key="gone", UploadId=aborted)
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert all_virtual(urls, bucket, proxy), urls


def test_copy_object_to_a_virtual_hosted_destination(
    proxy: ProxyProcess, moto_auth: MotoBackend, bucket: str
) -> None:
    source = unique_bucket_name("vhost-src")
    moto_auth.client().create_bucket(Bucket=source)
    moto_auth.client().put_object(Bucket=source, Key="from here", Body=b"copied bytes")
    client = virtual_client(proxy)
    urls = recorded(client)
    client.copy_object(
        Bucket=bucket, Key="to there", CopySource={"Bucket": source, "Key": "from here"}
    )
    client.copy_object(Bucket=bucket, Key="again", CopySource=f"{bucket}/to there")
    direct = moto_auth.client()
    assert direct.get_object(Bucket=bucket, Key="to there")["Body"].read() == b"copied bytes"
    assert direct.get_object(Bucket=bucket, Key="again")["Body"].read() == b"copied bytes"
    assert all_virtual(urls, bucket, proxy), urls


def test_create_bucket_answers_where_the_bucket_is(
    proxy: ProxyProcess, moto_auth: MotoBackend
) -> None:
    bucket = unique_bucket_name("vhost-new")
    client = virtual_client(proxy)
    urls = recorded(client)
    location = client.create_bucket(Bucket=bucket)["Location"]
    assert location == f"http://{bucket}.{DOMAIN}:{proxy.port}/"
    moto_auth.client().head_bucket(Bucket=bucket)
    assert all_virtual(urls, bucket, proxy), urls


def test_bucket_sub_resources(proxy: ProxyProcess, moto_auth: MotoBackend, bucket: str) -> None:
    client = virtual_client(proxy)
    urls = recorded(client)
    client.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "team", "Value": "a"}]})
    assert client.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "team", "Value": "a"}]
    assert moto_auth.client().get_bucket_tagging(Bucket=bucket)["TagSet"] == [
        {"Key": "team", "Value": "a"}
    ]
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert client.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    client.head_bucket(Bucket=bucket)
    assert all_virtual(urls, bucket, proxy), urls
    # botocore sends GetBucketLocation path style whatever it is told; here it is sent as S3
    # documents it, virtual-hosted.
    status, body = raw_get(proxy, f"{bucket}.{DOMAIN}:{proxy.port}", "/?location")
    assert status == 200 and b"<LocationConstraint" in body, body
    assert client.get_bucket_location(Bucket=bucket).get("LocationConstraint") is None


@pytest.mark.parametrize("signature_version", ["s3v4", "s3"], ids=["sigv4", "sigv2"])
def test_presigned_urls(
    proxy: ProxyProcess, moto_auth: MotoBackend, bucket: str, signature_version: str
) -> None:
    presigner = virtual_client(proxy, signature_version=signature_version)
    body = os.urandom(40_000)
    params = {"Bucket": bucket, "Key": "pre signed+key"}
    put_url = presigner.generate_presigned_url("put_object", Params=params, ExpiresIn=300)
    get_url = presigner.generate_presigned_url("get_object", Params=params, ExpiresIn=300)
    for url in (put_url, get_url):
        assert url.startswith(f"http://{bucket}.{DOMAIN}:{proxy.port}/pre%20signed%2Bkey?"), url
    http = urllib3.PoolManager(retries=False)
    assert http.request("PUT", put_url, body=body).status == 200
    stored = moto_auth.client().get_object(Bucket=bucket, Key="pre signed+key")["Body"].read()
    assert sha256(stored) == sha256(body)
    response = http.request("GET", get_url)
    assert response.status == 200
    assert sha256(response.data) == sha256(body)
    # The bucket is part of what was signed, though only the Host names it.
    other = get_url.replace(f"//{bucket}.", f"//{bucket}x.")
    response = http.request("GET", other)
    assert response.status == 403
    assert b"<Code>SignatureDoesNotMatch</Code>" in response.data


# -- which hosts name a bucket --------------------------------------------------------------------


def raw_get(proxy: ProxyProcess, host: str, path: str) -> tuple[int, bytes]:
    """A GET signed for `http://{host}{path}` with that Host as it is, sent to the proxy."""
    headers = sign("GET", f"http://{host}{path}", KEY, SECRET, headers={"Host": host})
    response = send(
        "GET", f"http://{LOOPBACK}:{proxy.port}{path}", headers={**headers, "Host": host}
    )
    return response.status, response.body


def test_the_bucket_host_with_or_without_a_port_and_in_any_case(
    proxy: ProxyProcess, moto_auth: MotoBackend, bucket: str
) -> None:
    moto_auth.client().put_object(Bucket=bucket, Key="k", Body=b"found")
    for host in (
        f"{bucket}.{DOMAIN}:{proxy.port}",
        f"{bucket}.{DOMAIN}",
        f"{bucket}.{DOMAIN}.:{proxy.port}",
        f"{bucket.upper()}.{DOMAIN.upper()}:{proxy.port}",
    ):
        assert raw_get(proxy, host, "/k") == (200, b"found"), host


def test_the_base_domain_itself_is_path_style(
    proxy: ProxyProcess, moto_auth: MotoBackend, bucket: str
) -> None:
    moto_auth.client().put_object(Bucket=bucket, Key="k", Body=b"found")
    assert raw_get(proxy, f"{DOMAIN}:{proxy.port}", f"/{bucket}/k") == (200, b"found")
    path_client = boto3_client(f"http://{DOMAIN}:{proxy.port}", KEY, SECRET)
    assert path_client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"found"


def test_a_host_under_another_domain_is_path_style(
    proxy: ProxyProcess, moto_auth: MotoBackend, bucket: str
) -> None:
    """Only the configured domains name buckets; any other Host (a load balancer's name, an
    IP) is path style, so `/k` on `bucket.elsewhere.test` asks for bucket `k`."""
    moto_auth.client().put_object(Bucket=bucket, Key="k", Body=b"found")
    host = f"{bucket}.{OTHER_DOMAIN}:{proxy.port}"
    assert raw_get(proxy, host, f"/{bucket}/k") == (200, b"found")
    status, body = raw_get(proxy, host, "/k")
    assert status == 404 and b"<Code>NoSuchBucket</Code>" in body and b"<BucketName>k<" in body


def test_a_bucket_name_with_dots(proxy: ProxyProcess, moto_auth: MotoBackend) -> None:
    """A dotted bucket is addressed path style on the base domain (as SDKs do by default, and
    over HTTPS must: a certificate for *.s3.test does not cover `a.b.s3.test`); over plain
    HTTP S3 also takes the dotted name in the Host, and so does the proxy."""
    bucket = f"{unique_bucket_name('vhost')}.with.dots"
    moto_auth.client().create_bucket(Bucket=bucket)
    path_client = boto3_client(f"http://{DOMAIN}:{proxy.port}", KEY, SECRET)
    urls = recorded(path_client)
    path_client.put_object(Bucket=bucket, Key="k", Body=b"dotted")
    assert path_client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"dotted"
    assert urls and all(u.startswith(f"http://{DOMAIN}:{proxy.port}/{bucket}/") for u in urls)
    client = virtual_client(proxy)
    urls = recorded(client)
    assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"dotted"
    assert all_virtual(urls, bucket, proxy), urls
    assert raw_get(proxy, f"{bucket}.{DOMAIN}:{proxy.port}", "/k") == (200, b"dotted")


def test_a_missing_virtual_hosted_bucket_is_no_such_bucket(proxy: ProxyProcess) -> None:
    client = virtual_client(proxy)
    with pytest.raises(ClientError) as caught:
        client.get_object(Bucket="no-such-bucket-here", Key="k")
    assert caught.value.response["Error"]["Code"] == "NoSuchBucket"


def test_a_mapped_bucket_answers_in_the_clients_names(
    proxy: ProxyProcess, moto_auth: MotoBackend
) -> None:
    client = virtual_client(proxy)
    urls = recorded(client)
    client.put_object(Bucket=MAPPED, Key="k 1", Body=b"one")
    assert moto_auth.client().get_object(Bucket=PHYSICAL, Key="data/k 1")["Body"].read() == b"one"
    listing = client.list_objects_v2(Bucket=MAPPED, Prefix="k")
    assert (listing["Name"], [o["Key"] for o in listing["Contents"]]) == (MAPPED, ["k 1"])
    upload_id = client.create_multipart_upload(Bucket=MAPPED, Key="big")["UploadId"]
    etag = client.upload_part(
        Bucket=MAPPED, Key="big", UploadId=upload_id, PartNumber=1, Body=b"part"
    )["ETag"]
    done = client.complete_multipart_upload(
        Bucket=MAPPED,
        Key="big",
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]},
    )
    assert (done["Location"], done["Bucket"], done["Key"]) == (
        f"http://{MAPPED}.{DOMAIN}:{proxy.port}/big",
        MAPPED,
        "big",
    )
    client.copy_object(Bucket=MAPPED, Key="copy", CopySource={"Bucket": MAPPED, "Key": "big"})
    assert moto_auth.client().get_object(Bucket=PHYSICAL, Key="data/copy")["Body"].read() == b"part"
    assert all_virtual(urls, MAPPED, proxy), urls
