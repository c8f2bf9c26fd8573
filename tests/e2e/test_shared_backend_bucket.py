"""Two client buckets stored under two prefixes of one backend bucket (lakeFS branches, tenants):
neither client can change the configuration of the backend bucket they share, because a
lifecycle rule, policy or versioning setting would act on the other's keys too. Buckets that
are a whole backend bucket keep their configuration operations."""

from __future__ import annotations

import contextlib

import pytest
from botocore.exceptions import ClientError
from harness import (
    PLAIN_ACCESS_KEY_ID,
    PLAIN_SECRET_ACCESS_KEY,
    MotoBackend,
    ProxyProcess,
    StartProxy,
    unique_bucket_name,
)

KEY, SECRET = "AKIATENANT", "tenant-secret"
SHARED = unique_bucket_name("shared")  # the backend bucket
MINE, THEIRS, WHOLE = (unique_bucket_name(n) for n in ("mine", "theirs", "whole"))
EXPIRE_ALL = {
    "Rules": [
        {"ID": "all", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}}
    ]
}
POLICY = (
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*",'
    f'"Action":"s3:GetObject","Resource":"arn:aws:s3:::{SHARED}/*"}}]}}'
)


@pytest.fixture
def proxy(start_proxy: StartProxy, moto_plain: MotoBackend) -> ProxyProcess:
    direct = moto_plain.client()
    for bucket in (SHARED, WHOLE):
        with contextlib.suppress(ClientError):
            direct.create_bucket(Bucket=bucket)
    direct.put_object(Bucket=SHARED, Key="theirs/data", Body=b"their bytes")
    return start_proxy(
        f"""
        backends:
          store:
            endpoint: "{moto_plain.endpoint}"
            access_key_id: "{PLAIN_ACCESS_KEY_ID}"
            secret_access_key: "{PLAIN_SECRET_ACCESS_KEY}"
        clients:
          - {{name: tenant, access_key_id: "{KEY}", secret_access_key: "{SECRET}"}}
        routing:
          rules:
            - {{pattern: "{MINE}", target: store, mapped_bucket: "{SHARED}", mapped_prefix: mine}}
            - {{pattern: "{THEIRS}", target: store, mapped_bucket: "{SHARED}",
                mapped_prefix: theirs}}
          default_target: store
        """
    )


CHANGES = {
    "PutBucketLifecycleConfiguration": lambda c, b: c.put_bucket_lifecycle_configuration(
        Bucket=b, LifecycleConfiguration=EXPIRE_ALL
    ),
    "PutBucketPolicy": lambda c, b: c.put_bucket_policy(Bucket=b, Policy=POLICY),
    "PutBucketVersioning": lambda c, b: c.put_bucket_versioning(
        Bucket=b, VersioningConfiguration={"Status": "Suspended"}
    ),
    "PutBucketAcl": lambda c, b: c.put_bucket_acl(Bucket=b, ACL="public-read"),
    "DeleteBucketPolicy": lambda c, b: c.delete_bucket_policy(Bucket=b),
    "PutBucketTagging": lambda c, b: c.put_bucket_tagging(
        Bucket=b, Tagging={"TagSet": [{"Key": "k", "Value": "v"}]}
    ),
}


@pytest.mark.parametrize("operation", sorted(CHANGES))
def test_a_prefix_of_a_backend_bucket_cannot_configure_the_whole_bucket(
    proxy: ProxyProcess, moto_plain: MotoBackend, operation: str
) -> None:
    client = proxy.client(KEY, SECRET)
    mark = moto_plain.request_count()
    with pytest.raises(ClientError) as caught:
        CHANGES[operation](client, MINE)
    assert caught.value.response["Error"]["Code"] == "AccessDenied"
    assert moto_plain.requests_since(mark) == []
    direct = moto_plain.client()
    with pytest.raises(ClientError) as none:
        direct.get_bucket_lifecycle_configuration(Bucket=SHARED)
    assert none.value.response["Error"]["Code"] == "NoSuchLifecycleConfiguration"
    assert direct.get_object(Bucket=SHARED, Key="theirs/data")["Body"].read() == b"their bytes"
    # The neighbour's objects are still theirs to read, through their own bucket.
    assert client.get_object(Bucket=THEIRS, Key="data")["Body"].read() == b"their bytes"


def test_a_whole_backend_bucket_keeps_its_configuration_operations(proxy: ProxyProcess) -> None:
    client = proxy.client(KEY, SECRET)
    client.put_bucket_tagging(Bucket=WHOLE, Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
    assert client.get_bucket_tagging(Bucket=WHOLE)["TagSet"] == [{"Key": "k", "Value": "v"}]
    # Reads of the shared bucket's configuration and object writes under the prefix still work.
    client.put_object(Bucket=MINE, Key="new", Body=b"mine")
    assert client.get_object(Bucket=MINE, Key="new")["Body"].read() == b"mine"
